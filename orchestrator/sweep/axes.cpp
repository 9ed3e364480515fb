#include "orchestrator/sweep/axes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "orchestrator/sweep/file.h"

namespace mil::orch {
namespace {

using nlohmann::json;

/// First segments a swept key may start with (the JobSpec sections a sweep may vary).
const std::vector<std::string> kAxisRoots = {"dataset", "model", "train", "split"};
/// Distributions a random space entry may name.
const std::vector<std::string> kDistributions = {"uniform", "log_uniform", "int_uniform", "choice"};
/// Draws allowed per requested sample before a small space is reported.
constexpr int kDrawsPerSample = 1000;
/// Significant digits kept of a continuous random value (readable labels, stable ids).
constexpr int kRandomDigits = 4;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

/// Throws unless `key` is a dotted path into a JobSpec section a sweep may vary.
void check_axis_key(const std::string& key, const std::string& what, const std::string& pointer) {
  const std::string root = key.substr(0, key.find('.'));
  if (key.empty() || key.find("..") != std::string::npos || key.back() == '.' ||
      std::find(kAxisRoots.begin(), kAxisRoots.end(), root) == kAxisRoots.end()) {
    throw SweepError(pointer, what + " '" + key +
                                  "': must start with dataset, model, train or split" +
                                  " (seeds and folds have their own top-level keys)");
  }
  if (key == "split.fold_index") {
    throw SweepError(
        pointer, what + " 'split.fold_index': list test folds in the top-level 'folds' instead");
  }
}

void check_list(const json& values, const std::string& what, const std::string& pointer) {
  if (!values.is_array() || values.empty()) {
    throw SweepError(pointer, what + ": expected a non-empty array of values");
  }
}

void add_grid_axes(const json& grid, std::vector<SweepAxis>& axes) {
  if (!grid.is_object()) {
    throw SweepError(
        "/grid", "grid: expected an object of key -> list, got " + std::string(grid.type_name()));
  }
  for (const auto& item : grid.items()) {  // nlohmann objects iterate in sorted key order
    const std::string pointer = pointer_append("/grid", item.key());
    const std::string origin = "grid key '" + item.key() + "'";
    check_axis_key(item.key(), "grid key", pointer);
    check_list(item.value(), origin, pointer);
    SweepAxis axis{origin, {}};
    for (const json& value : item.value())
      axis.points.push_back({{item.key(), value, origin, pointer}});
    axes.push_back(std::move(axis));
  }
}

void add_zip_group(const json& group, const std::string& group_pointer, const std::string& name,
                   std::vector<SweepAxis>& axes) {
  if (!group.is_object() || group.empty()) {
    throw SweepError(group_pointer, name + ": expected a non-empty object of key -> list");
  }
  std::size_t length = 0;
  std::string first_key;
  for (const auto& item : group.items()) {
    const std::string pointer = pointer_append(group_pointer, item.key());
    check_axis_key(item.key(), "zip key", pointer);
    check_list(item.value(), "zip key '" + item.key() + "'", pointer);
    if (first_key.empty()) {
      first_key = item.key();
      length = item.value().size();
    } else if (item.value().size() != length) {
      throw SweepError(pointer, name + ": lists must have equal lengths, but '" + first_key +
                                    "' has " + std::to_string(length) + " values and '" +
                                    item.key() + "' has " + std::to_string(item.value().size()));
    }
  }
  SweepAxis axis{name, std::vector<SweepPoint>(length)};
  for (const auto& item : group.items()) {
    for (std::size_t i = 0; i < length; ++i) {
      axis.points[i].push_back({item.key(), item.value()[i],
                                "zip key '" + item.key() + "' (entry " + std::to_string(i) + ")",
                                pointer_append(group_pointer, item.key())});
    }
  }
  axes.push_back(std::move(axis));
}

void add_zip_axes(const json& zip, std::vector<SweepAxis>& axes) {
  if (zip.is_array()) {
    for (std::size_t g = 0; g < zip.size(); ++g) {
      add_zip_group(zip[g], "/zip/" + std::to_string(g), "zip group " + std::to_string(g), axes);
    }
    return;
  }
  add_zip_group(zip, "/zip", "zip", axes);
}

double round_significant(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*e", kRandomDigits - 1, value);
  return std::strtod(text, nullptr);
}

/// Reads [lo, hi] of a range distribution; checks lo < hi (and lo > 0 for log_uniform).
std::pair<double, double> read_range(const json& range, const std::string& kind,
                                     const std::string& what, const std::string& pointer) {
  const bool integers = kind == "int_uniform";
  if (!range.is_array() || range.size() != 2 || !range[0].is_number() || !range[1].is_number() ||
      (integers && !(range[0].is_number_integer() && range[1].is_number_integer()))) {
    throw SweepError(pointer, what + ": " + kind + " expects [low, high]" +
                                  (integers ? " integers" : " numbers") + ", got " + range.dump());
  }
  const double lo = range[0].get<double>(), hi = range[1].get<double>();
  if (integers ? !(lo <= hi) : !(lo < hi)) {
    throw SweepError(pointer, what + ": " + kind + " needs low < high, got " + range.dump());
  }
  if (kind == "log_uniform" && !(lo > 0)) {
    throw SweepError(pointer, what + ": log_uniform needs low > 0, got " + range.dump());
  }
  return {lo, hi};
}

}  // namespace

std::vector<SweepPoint> sample_random(const json& random) {
  if (!random.is_object()) {
    throw SweepError("/random",
                     "random: expected an object {\"samples\": n, \"seed\": s, \"space\": {...}}");
  }
  for (const auto& item : random.items()) {
    if (item.key() != "samples" && item.key() != "seed" && item.key() != "space") {
      throw SweepError(pointer_append("/random", item.key()),
                       "random: unknown key '" + item.key() + "' (allowed: samples, seed, space)");
    }
  }
  for (const char* key : {"samples", "seed", "space"}) {
    if (!random.contains(key)) {
      throw SweepError(
          "/random",
          std::string("random: '") + key + "' is required" +
              (std::string(key) == "seed" ? " (it makes the samples reproducible)" : ""));
    }
  }
  const json& samples = random.at("samples");
  if (!samples.is_number_integer() || samples.get<std::int64_t>() < 1 ||
      samples.get<std::int64_t>() > 100000) {
    throw SweepError("/random/samples",
                     "random.samples: expected an integer in [1, 100000], got " + samples.dump());
  }
  if (!random.at("seed").is_number_integer() || random.at("seed").get<std::int64_t>() < 0) {
    throw SweepError("/random/seed", "random.seed: expected a non-negative integer, got " +
                                         random.at("seed").dump());
  }
  const json& space = random.at("space");
  if (!space.is_object() || space.empty()) {
    throw SweepError("/random/space",
                     "random.space: expected a non-empty object of key -> distribution");
  }
  for (const auto& item : space.items()) {
    const std::string pointer = pointer_append("/random/space", item.key());
    const std::string what = "random key '" + item.key() + "'";
    check_axis_key(item.key(), "random key", pointer);
    const json& dist = item.value();
    if (!dist.is_object() || dist.size() != 1 ||
        std::find(kDistributions.begin(), kDistributions.end(), dist.begin().key()) ==
            kDistributions.end()) {
      throw SweepError(pointer, what + ": expected one of {\"" + join(kDistributions) +
                                    "\": ...}, got " + dist.dump());
    }
    if (dist.begin().key() == "choice") {
      check_list(dist.begin().value(), what + ": choice", pointer);
    } else {
      read_range(dist.begin().value(), dist.begin().key(), what, pointer);
    }
  }

  const std::size_t wanted = samples.get<std::size_t>();
  std::mt19937_64 engine(random.at("seed").get<std::uint64_t>());
  const auto uniform01 = [&engine] { return double(engine() >> 11) * 0x1.0p-53; };
  std::vector<SweepPoint> points;
  std::set<std::string> seen;
  for (std::size_t draw = 0; points.size() < wanted; ++draw) {
    if (draw >= wanted * kDrawsPerSample) {
      throw SweepError("/random", "random: only " + std::to_string(points.size()) +
                                      " distinct points in " + std::to_string(draw) +
                                      " draws; the space is too small for " +
                                      std::to_string(wanted) + " samples");
    }
    SweepPoint point;
    json key_of_point = json::object();
    for (const auto& item : space.items()) {
      const std::string pointer = pointer_append("/random/space", item.key());
      const std::string& kind = item.value().begin().key();
      const json& arg = item.value().begin().value();
      const double u = uniform01();
      json value;
      if (kind == "choice") {
        value = arg[std::min(arg.size() - 1, std::size_t(u * double(arg.size())))];
      } else {
        const auto [lo, hi] = read_range(arg, kind, item.key(), pointer);
        if (kind == "int_uniform") {
          const auto low = arg[0].get<std::int64_t>(), high = arg[1].get<std::int64_t>();
          const auto offset =
              std::min<std::int64_t>(high - low, std::int64_t(u * double(high - low + 1)));
          value = low + offset;
          if (low + offset >= 0)
            value = std::uint64_t(low + offset);  // as JSON reads a non-negative integer
        } else if (kind == "log_uniform") {
          value = round_significant(std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo))));
        } else {
          value = round_significant(lo + u * (hi - lo));
        }
      }
      key_of_point[item.key()] = value;
      point.push_back(
          {item.key(), value,
           "random key '" + item.key() + "' (sample " + std::to_string(points.size()) + ")",
           pointer});
    }
    if (seen.insert(key_of_point.dump()).second) points.push_back(std::move(point));
  }
  return points;
}

std::vector<SweepAxis> sweep_axes(const json& grid, const json& zip, const json& random) {
  std::vector<SweepAxis> axes;
  if (!grid.is_null()) add_grid_axes(grid, axes);
  if (!zip.is_null()) add_zip_axes(zip, axes);
  if (!random.is_null()) axes.push_back(SweepAxis{"random", sample_random(random)});
  std::map<std::string, std::string> owner;
  for (const SweepAxis& axis : axes) {
    for (const AxisSetting& setting : axis.points.front()) {
      const auto [it, inserted] = owner.emplace(setting.key, axis.name);
      if (!inserted) {
        throw SweepError(setting.pointer, "key '" + setting.key + "' is varied by both " +
                                              it->second + " and " + axis.name +
                                              "; vary it in one place");
      }
    }
  }
  return axes;
}

std::vector<SweepPoint> cross(const std::vector<SweepAxis>& axes) {
  std::vector<SweepPoint> points;
  std::vector<std::size_t> odometer(axes.size(), 0);
  while (true) {
    SweepPoint point;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const SweepPoint& part = axes[a].points[odometer[a]];
      point.insert(point.end(), part.begin(), part.end());
    }
    points.push_back(std::move(point));
    std::size_t a = axes.size();
    while (a > 0 && ++odometer[a - 1] == axes[a - 1].points.size()) odometer[--a] = 0;
    if (a == 0) return points;
  }
}

}  // namespace mil::orch
