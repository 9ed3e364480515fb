#include "mil/synthetic.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mil/feature_io.h"
#include "mil/splits.h"

namespace mil {
namespace fs = std::filesystem;

void write_synthetic_benchmark(const std::string& root, const SyntheticOptions& o) {
  if (o.bag_count < 2 || o.feature_dim < 1 || o.min_instances < 1 || o.max_instances < o.min_instances) {
    throw std::invalid_argument("synthetic: need bag_count >= 2, feature_dim >= 1, 1 <= min_instances <= max_instances");
  }
  if (!(o.witness_fraction_min > 0 && o.witness_fraction_min <= o.witness_fraction_max && o.witness_fraction_max <= 1)) {
    throw std::invalid_argument("synthetic: need 0 < witness_fraction_min <= witness_fraction_max <= 1");
  }
  fs::create_directories(fs::path(root) / "pt_files");
  at::Generator noise = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  const auto uniform01 = [&rng] { return double(rng() >> 11) * 0x1.0p-53; };

  at::Tensor direction = at::randn({o.feature_dim}, noise, at::kFloat);
  direction = direction / direction.norm();

  // Exactly round(positive_fraction * bag_count) positives, in shuffled positions.
  std::vector<int> labels(o.bag_count, 0);
  const int positives = int(std::lround(o.positive_fraction * o.bag_count));
  for (int i = 0; i < positives && i < o.bag_count; ++i) labels[i] = 1;
  deterministic_shuffle(labels, rng);

  std::ofstream csv(fs::path(root) / "labels.csv");
  if (!csv) throw std::runtime_error("cannot write " + (fs::path(root) / "labels.csv").string());
  csv << "slide_id,label\n";
  for (int i = 0; i < o.bag_count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "slide_%04d", i);
    const int n = o.min_instances + int(rng() % std::uint64_t(o.max_instances - o.min_instances + 1));
    at::Tensor features = at::randn({n, o.feature_dim}, noise, at::kFloat);
    if (labels[i] == 1) {
      const double fraction = o.witness_fraction_min + (o.witness_fraction_max - o.witness_fraction_min) * uniform01();
      const int witnesses = std::max(1, int(std::lround(fraction * n)));
      std::vector<int> rows(n);
      for (int r = 0; r < n; ++r) rows[r] = r;
      deterministic_shuffle(rows, rng);
      for (int w = 0; w < witnesses; ++w) features[rows[w]].add_(direction, o.signal_strength);
    }
    write_feature_file((fs::path(root) / "pt_files" / (std::string(id) + ".pt")).string(), features);
    csv << id << ',' << labels[i] << '\n';
  }
  if (!csv) throw std::runtime_error("write error in " + (fs::path(root) / "labels.csv").string());

  const nlohmann::json provenance = {
      {"generator", "mhim synth"},      {"bag_count", o.bag_count},
      {"feature_dim", o.feature_dim},   {"min_instances", o.min_instances},
      {"max_instances", o.max_instances}, {"positive_fraction", o.positive_fraction},
      {"witness_fraction_min", o.witness_fraction_min}, {"witness_fraction_max", o.witness_fraction_max},
      {"signal_strength", o.signal_strength}, {"seed", o.seed}};
  std::ofstream(fs::path(root) / "synthetic.json") << provenance.dump(2) << '\n';
}

}  // namespace mil
