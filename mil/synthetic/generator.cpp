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

#include "mil/data/feature_io.h"
#include "mil/data/splits.h"

namespace mil {
namespace fs = std::filesystem;

void write_synthetic_benchmark(const std::string& root, const SyntheticOptions& o) {
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
  fs::create_directories(fs::path(root) / "pt_files");
  at::Generator noise = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  const auto uniform01 = [&rng] { return double(rng() >> 11) * 0x1.0p-53; };
  std::mt19937_64 easy_rng(o.seed ^ 0x2545f4914f6cdd1dULL);

  at::Tensor direction = at::randn({o.feature_dim}, noise, at::kFloat);
  direction = direction / direction.norm();

  // Exactly round(positive_fraction * bag_count) positives, in shuffled positions.
  std::vector<int> labels(o.bag_count, 0);
  const int positives = int(std::lround(o.positive_fraction * o.bag_count));
  for (int i = 0; i < positives && i < o.bag_count; ++i) labels[i] = 1;
  deterministic_shuffle(labels, rng);

  const bool survival = o.task == "survival";
  const std::string csv_name = survival ? "survival.csv" : "labels.csv";
  std::ofstream csv(fs::path(root) / csv_name);
  if (!csv) throw std::runtime_error("cannot write " + (fs::path(root) / csv_name).string());
  csv << (survival ? "Study,ID,Event,Status,WSI\n" : "slide_id,label\n");
  for (int i = 0; i < o.bag_count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, survival ? "case_%04d" : "slide_%04d", i);
    const int n =
        o.min_instances + int(rng() % std::uint64_t(o.max_instances - o.min_instances + 1));
    at::Tensor features = at::randn({n, o.feature_dim}, noise, at::kFloat);
    if (labels[i] == 1) {
      const double fraction =
          o.witness_fraction_min + (o.witness_fraction_max - o.witness_fraction_min) * uniform01();
      const int witnesses = std::max(1, int(std::lround(fraction * n)));
      std::vector<int> rows(n);
      for (int r = 0; r < n; ++r) rows[r] = r;
      deterministic_shuffle(rows, rng);
      for (int w = 0; w < witnesses; ++w) features[rows[w]].add_(direction, o.signal_strength);
      // From a stream of its own: the same options with and without easy witnesses give the same
      // bags, labels, noise and hard witnesses, and data without them stays what it always was.
      if (o.easy_witnesses > 0 && double(easy_rng() >> 11) * 0x1.0p-53 < o.easy_bag_fraction) {
        const int easy_end = std::min(n, witnesses + o.easy_witnesses);
        for (int w = witnesses; w < easy_end; ++w) features[rows[w]].add_(direction, o.easy_signal);
      }
    }
    if (!survival) {
      write_feature_file((fs::path(root) / "pt_files" / (std::string(id) + ".pt")).string(),
                         features);
      csv << id << ',' << labels[i] << '\n';
      continue;
    }
    constexpr double kBaseRate = 0.01;  // events per month of a negative case
    const double rate = labels[i] == 1 ? kBaseRate * o.hazard_ratio : kBaseRate;
    const double event_time = -std::log(1.0 - uniform01()) / rate;
    const double censor_time = 120.0 * uniform01();
    const bool observed = event_time <= censor_time;
    const double time = std::round(std::min(event_time, censor_time) * 100.0) / 100.0 + 0.01;
    const bool two_slides = n >= 2 && uniform01() < 1.0 / 3.0;
    const int64_t first = two_slides ? n / 2 : n;
    std::vector<std::pair<std::string, at::Tensor>> slides{
        {std::string(id) + "_s0", features.slice(0, 0, first)}};
    if (two_slides) slides.emplace_back(std::string(id) + "_s1", features.slice(0, first, n));
    for (const auto& [slide, part] : slides) {
      write_feature_file((fs::path(root) / "pt_files" / (slide + ".pt")).string(), part);
      csv << "synth," << id << ',' << time << ',' << (observed ? 1 : 0) << ',' << slide << '\n';
    }
  }
  if (!csv) throw std::runtime_error("write error in " + (fs::path(root) / csv_name).string());

  const nlohmann::json provenance = {{"generator", "mhim synth"},
                                     {"bag_count", o.bag_count},
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
                                     {"easy_bag_fraction", o.easy_bag_fraction}};
  std::ofstream(fs::path(root) / "synthetic.json") << provenance.dump(2) << '\n';
}

}  // namespace mil
