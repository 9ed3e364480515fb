#include "mil/synthetic/generator.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/data/splits.h"
#include "mil/synthetic/layout.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

void check(const SyntheticOptions& o) {
  if (o.bag_count < 2 || o.feature_dim < 1 || o.min_instances < 1 ||
      o.max_instances < o.min_instances) {
    throw std::invalid_argument(
        "synthetic: need bag_count >= 2, feature_dim >= 1, 1 <= min_instances <= max_instances");
  }
  if (!(o.hazard_ratio > 0)) throw std::invalid_argument("synthetic: hazard_ratio must be > 0");
  if (o.task != "classification" && o.task != "survival") {
    throw std::invalid_argument("synthetic: task must be classification or survival, got '" +
                                o.task + "'");
  }
  if (!(o.witness_fraction_min > 0 && o.witness_fraction_min <= o.witness_fraction_max &&
        o.witness_fraction_max <= 1)) {
    throw std::invalid_argument(
        "synthetic: need 0 < witness_fraction_min <= witness_fraction_max <= 1");
  }
  if (o.easy_witnesses < 0 || !(o.easy_bag_fraction >= 0 && o.easy_bag_fraction <= 1)) {
    throw std::invalid_argument(
        "synthetic: need easy_witnesses >= 0 and 0 <= easy_bag_fraction <= 1");
  }
  if (o.format != "pt" && o.format != "h5")
    throw std::invalid_argument("synthetic: format must be pt or h5, got '" + o.format + "'");
  if (o.test_bag_count < 0 || o.test_easy_bag_fraction > 1)
    throw std::invalid_argument("synthetic: need test_bag_count >= 0, test_easy_bag_fraction <= 1");
  if (o.test_bag_count > 0 && o.task != "classification")
    throw std::invalid_argument("synthetic: a held-out test set needs task classification");
  if (o.split_folds < 0 || o.split_folds == 1 || (o.split_folds > 0 && o.test_bag_count == 0)) {
    throw std::invalid_argument(
        "synthetic: split_folds must be 0, or >= 2 with a held-out test (test_bag_count > 0)");
  }
}

/// One feature file with its truth (and, for .h5, coordinates where each kind of witness forms a
/// contiguous region).
void write_slide(const fs::path& root, const std::string& format, const std::string& slide,
                 const at::Tensor& features, const std::vector<std::uint8_t>& roles,
                 std::uint64_t layout_seed) {
  const std::string file = (root / (format + "_files") / (slide + "." + format)).string();
  at::Tensor codes = at::empty({int64_t(roles.size())}, at::kByte);
  std::copy(roles.begin(), roles.end(), codes.data_ptr<std::uint8_t>());
  if (format == "pt") {
    write_feature_file(file, features);
  } else {
    const at::Tensor coords =
        region_coords(roles, {kRoleEasyWitness, kRoleHardWitness}, layout_seed);
    write_h5_slide(file, features, coords, /*float16=*/false);
  }
  write_instance_labels(file, codes);
}

/// splits/splits_{k}.csv: fold k of the development bags validates, the others train, and every
/// file tests on the held-out bags.
void write_split_files(const fs::path& root, const SyntheticOptions& o,
                       const std::vector<std::string>& ids, const std::vector<int>& labels,
                       const std::vector<std::string>& test_ids) {
  const std::vector<int> fold = stratified_fold_assignment(labels, o.split_folds, o.split_seed);
  fs::create_directories(root / "splits");
  for (int k = 0; k < o.split_folds; ++k) {
    std::vector<std::string> train, val;
    for (std::size_t i = 0; i < ids.size(); ++i) (fold[i] == k ? val : train).push_back(ids[i]);
    const fs::path path = root / "splits" / ("splits_" + std::to_string(k) + ".csv");
    std::ofstream out(path);
    out << "train,val,test\n";
    const std::size_t rows = std::max({train.size(), val.size(), test_ids.size()});
    const auto cell = [](const std::vector<std::string>& v, std::size_t r) {
      return r < v.size() ? v[r] : std::string();
    };
    for (std::size_t r = 0; r < rows; ++r)
      out << cell(train, r) << ',' << cell(val, r) << ',' << cell(test_ids, r) << '\n';
    if (!out) throw std::runtime_error("write error in " + path.string());
  }
}

}  // namespace

nlohmann::json synthetic_options_json(const SyntheticOptions& o) {
  return {{"bag_count", o.bag_count},
          {"feature_dim", o.feature_dim},
          {"min_instances", o.min_instances},
          {"max_instances", o.max_instances},
          {"positive_fraction", o.positive_fraction},
          {"witness_fraction_min", o.witness_fraction_min},
          {"witness_fraction_max", o.witness_fraction_max},
          {"signal_strength", o.signal_strength},
          {"seed", o.seed},
          {"task", o.task},
          {"hazard_ratio", o.hazard_ratio},
          {"easy_witnesses", o.easy_witnesses},
          {"easy_signal", o.easy_signal},
          {"easy_bag_fraction", o.easy_bag_fraction},
          {"format", o.format},
          {"test_bag_count", o.test_bag_count},
          {"test_easy_bag_fraction", o.test_easy_bag_fraction},
          {"split_folds", o.split_folds},
          {"split_seed", o.split_seed}};
}

SyntheticOptions synthetic_options_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("synthetic options: expected a JSON object");
  SyntheticOptions o;
  std::vector<std::string> known{"generator"};
  const nlohmann::json defaults = synthetic_options_json(o);
  for (const auto& item : defaults.items()) known.push_back(item.key());
  require_known_keys(j, known, "synthetic options");
  const auto read = [&j](const char* key, auto& field) {
    if (j.contains(key)) field = j.at(key).get<std::remove_reference_t<decltype(field)>>();
  };
  read("bag_count", o.bag_count);
  read("feature_dim", o.feature_dim);
  read("min_instances", o.min_instances);
  read("max_instances", o.max_instances);
  read("positive_fraction", o.positive_fraction);
  read("witness_fraction_min", o.witness_fraction_min);
  read("witness_fraction_max", o.witness_fraction_max);
  read("signal_strength", o.signal_strength);
  read("seed", o.seed);
  read("task", o.task);
  read("hazard_ratio", o.hazard_ratio);
  read("easy_witnesses", o.easy_witnesses);
  read("easy_signal", o.easy_signal);
  read("easy_bag_fraction", o.easy_bag_fraction);
  read("format", o.format);
  read("test_bag_count", o.test_bag_count);
  read("test_easy_bag_fraction", o.test_easy_bag_fraction);
  read("split_folds", o.split_folds);
  read("split_seed", o.split_seed);
  return o;
}

void write_synthetic_benchmark(const std::string& root, const SyntheticOptions& o) {
  check(o);
  const fs::path base(root);
  fs::create_directories(base / (o.format + "_files"));
  at::Generator noise = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  const auto uniform01 = [&rng] { return double(rng() >> 11) * 0x1.0p-53; };
  std::mt19937_64 easy_rng(o.seed ^ 0x2545f4914f6cdd1dULL);

  at::Tensor direction = at::randn({o.feature_dim}, noise, at::kFloat);
  direction = direction / direction.norm();

  // Exactly round(positive_fraction * count) positives, in shuffled positions.
  const auto draw_labels = [&](int count) {
    std::vector<int> labels(std::size_t(count), 0);
    const int positives = int(std::lround(o.positive_fraction * count));
    for (int i = 0; i < positives && i < count; ++i) labels[std::size_t(i)] = 1;
    deterministic_shuffle(labels, rng);
    return labels;
  };
  const std::vector<int> labels = draw_labels(o.bag_count);

  const bool survival = o.task == "survival";
  const std::string csv_name = survival ? "survival.csv" : "labels.csv";
  std::ofstream csv(base / csv_name);
  if (!csv) throw std::runtime_error("cannot write " + (base / csv_name).string());
  csv << (survival ? "Study,ID,Event,Status,WSI\n" : "slide_id,label\n");

  /// Draws bag `i`'s features (and its instances' roles) with label `label`; easy witnesses go to
  /// a share `easy_fraction` of the positive bags.
  const auto draw_bag = [&](int label, double easy_fraction, std::vector<std::uint8_t>& roles) {
    const int n =
        o.min_instances + int(rng() % std::uint64_t(o.max_instances - o.min_instances + 1));
    at::Tensor features = at::randn({n, o.feature_dim}, noise, at::kFloat);
    roles.assign(std::size_t(n), kRoleBackground);
    if (label == 1) {
      const double fraction =
          o.witness_fraction_min + (o.witness_fraction_max - o.witness_fraction_min) * uniform01();
      const int witnesses = std::max(1, int(std::lround(fraction * n)));
      std::vector<int> rows(static_cast<std::size_t>(n));
      for (int r = 0; r < n; ++r) rows[std::size_t(r)] = r;
      deterministic_shuffle(rows, rng);
      for (int w = 0; w < witnesses; ++w) {
        features[rows[std::size_t(w)]].add_(direction, o.signal_strength);
        roles[std::size_t(rows[std::size_t(w)])] = kRoleHardWitness;
      }
      // From a stream of its own: the same options with and without easy witnesses give the same
      // bags, labels, noise and hard witnesses, and data without them stays what it always was.
      if (o.easy_witnesses > 0 && double(easy_rng() >> 11) * 0x1.0p-53 < easy_fraction) {
        const int easy_end = std::min(n, witnesses + o.easy_witnesses);
        for (int w = witnesses; w < easy_end; ++w) {
          features[rows[std::size_t(w)]].add_(direction, o.easy_signal);
          roles[std::size_t(rows[std::size_t(w)])] = kRoleEasyWitness;
        }
      }
    }
    return features;
  };
  const auto layout_seed = [&o](int i, std::uint64_t salt) {
    return (o.seed * 0x9e3779b97f4a7c15ULL) ^ (std::uint64_t(i) * 0xbf58476d1ce4e5b9ULL) ^ salt;
  };

  std::vector<std::string> ids;
  std::vector<std::uint8_t> roles;
  for (int i = 0; i < o.bag_count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, survival ? "case_%04d" : "slide_%04d", i);
    const at::Tensor features = draw_bag(labels[std::size_t(i)], o.easy_bag_fraction, roles);
    const int n = int(features.size(0));
    ids.push_back(id);
    if (!survival) {
      write_slide(base, o.format, id, features, roles, layout_seed(i, 0));
      csv << id << ',' << labels[std::size_t(i)] << '\n';
      continue;
    }
    constexpr double kBaseRate = 0.01;  // events per month of a negative case
    const double rate = labels[std::size_t(i)] == 1 ? kBaseRate * o.hazard_ratio : kBaseRate;
    const double event_time = -std::log(1.0 - uniform01()) / rate;
    const double censor_time = 120.0 * uniform01();
    const bool observed = event_time <= censor_time;
    const double time = std::round(std::min(event_time, censor_time) * 100.0) / 100.0 + 0.01;
    const bool two_slides = n >= 2 && uniform01() < 1.0 / 3.0;
    const int64_t first = two_slides ? n / 2 : n;
    std::vector<std::pair<int64_t, int64_t>> parts{{0, first}};
    if (two_slides) parts.emplace_back(first, n);
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const std::string slide = std::string(id) + "_s" + std::to_string(k);
      const auto [begin, end] = parts[k];
      write_slide(base, o.format, slide, features.slice(0, begin, end),
                  std::vector<std::uint8_t>(roles.begin() + begin, roles.begin() + end),
                  layout_seed(i, k + 1));
      csv << "synth," << id << ',' << time << ',' << (observed ? 1 : 0) << ',' << slide << '\n';
    }
  }
  std::vector<std::string> test_ids;
  if (o.test_bag_count > 0) {
    const std::vector<int> test_labels = draw_labels(o.test_bag_count);
    const double easy_fraction =
        o.test_easy_bag_fraction < 0 ? o.easy_bag_fraction : o.test_easy_bag_fraction;
    for (int i = 0; i < o.test_bag_count; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "test_%04d", i);
      const at::Tensor features = draw_bag(test_labels[std::size_t(i)], easy_fraction, roles);
      write_slide(base, o.format, id, features, roles, layout_seed(o.bag_count + i, 0));
      csv << id << ',' << test_labels[std::size_t(i)] << '\n';
      test_ids.push_back(id);
    }
  }
  if (!csv) throw std::runtime_error("write error in " + (base / csv_name).string());
  if (o.split_folds > 0) write_split_files(base, o, ids, labels, test_ids);

  nlohmann::json provenance = synthetic_options_json(o);
  provenance["generator"] = "mhim synth";
  std::ofstream(base / "synthetic.json") << provenance.dump(2) << '\n';
  std::string name = fs::path(root).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(root).lexically_normal().parent_path().filename().string();
  const nlohmann::json dataset = {
      {"name", name},       {"kind", survival ? "survival" : "bags"}, {"root", root},
      {"labels", csv_name}, {"class_count", survival ? 4 : 2},        {"features", o.format}};
  std::ofstream(base / "dataset.json") << dataset.dump(2) << '\n';
}

}  // namespace mil
