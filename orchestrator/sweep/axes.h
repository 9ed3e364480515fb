#pragma once
// The axes a sweep varies: `grid` (one axis per key, crossed), `zip` (keys varied together) and
// `random` (seeded samples of a search space). expand() crosses all axes in this order, the last
// one varying fastest. The formats are documented in sweeps/README.md.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mil::orch {

/// One value set by one axis point.
struct AxisSetting {
  std::string key;       ///< Dotted JobSpec path, e.g. "train.lr".
  nlohmann::json value;  ///< The value set there.
  /// For errors: "grid key 'train.lr'", "zip key 'train.lr' (entry 2)", "random key 'train.lr'
  /// (sample 4)".
  std::string origin;
  std::string pointer;  ///< JSON pointer of the key in the sweep file, e.g. "/zip/train.lr".
};

/// The settings of one point of the swept space, in axis order.
using SweepPoint = std::vector<AxisSetting>;

/// One independent axis: its points are alternatives; different axes are crossed.
struct SweepAxis {
  std::string name;                ///< "grid key 'train.lr'", "zip group 0", "random".
  std::vector<SweepPoint> points;  ///< >= 1.
};

/// The axes of a sweep file's `grid` (an object), `zip` (an object, or an array of objects, each
/// one group) and `random` ({"samples", "seed", "space"}) sections, null when absent: grid keys in
/// sorted order, then zip groups, then random. Throws SweepError (with the pointer of the culprit)
/// when a section is malformed, a key is not a JobSpec path, zip lists differ in length, or a key
/// appears on two axes.
std::vector<SweepAxis> sweep_axes(const nlohmann::json& grid, const nlohmann::json& zip,
                                  const nlohmann::json& random);

/// The cartesian product of `axes`, the last axis varying fastest; one empty point for no axes.
std::vector<SweepPoint> cross(const std::vector<SweepAxis>& axes);

/// `samples` distinct points drawn from `space` with a mt19937_64 seeded by `seed`: per sample,
/// the keys in sorted order each take one uniform double u = (next() >> 11) * 2^-53, mapped by
/// their distribution (uniform, log_uniform, int_uniform, choice); continuous values are rounded
/// to 4 significant digits. Draws that repeat an earlier point are skipped; throws when
/// 1000 x samples draws do not give enough distinct points.
std::vector<SweepPoint> sample_random(const nlohmann::json& random);

}  // namespace mil::orch
