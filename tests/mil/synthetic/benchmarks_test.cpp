// The 12 benchmark stand-ins: the reference's counts and file layouts, a learnable signal, and
// byte-identical files from a seed.
#include "mil/synthetic/benchmarks.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "mil/core/sha256.h"
#include "mil/data/bag_dataset.h"
#include "mil/eval/metrics.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
namespace fs = std::filesystem;

StandInOptions tiny(double scale = 0.02, int dim = 16) {
  StandInOptions o;
  o.scale = scale;
  o.feature_dim = dim;
  return o;
}

/// SHA-256 of every file under `root`, by path relative to it.
std::map<std::string, std::string> file_hashes(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file())
      out[fs::relative(e.path(), root).string()] = sha256_file(e.path().string());
  }
  return out;
}

DatasetSpec entry_of(const nlohmann::json& entry) { return entry.get<DatasetSpec>(); }
}  // namespace

TEST(StandIns, HaveTheReferenceCohortSizesAtScaleOne) {
  ASSERT_EQ(benchmark_stand_in_names().size(), 12u);
  const StandInOptions full;
  // The reference's label CSVs: bags and label-1 bags (tumor, LUSC, ILC) or events; BRCA is our
  // ~1000 at 80/20.
  const std::map<std::string, std::pair<int, int>> expected = {
      {"camelyon-r50", {398, 159}},       {"tcga-nsclc-uni", {956, 478}},
      {"tcga-brca-r50", {1000, 200}},     {"tcga-blca-surv-uni", {376, 171}},
      {"tcga-luad-surv-r50", {455, 159}}, {"tcga-lusc-surv-uni", {452, 190}}};
  for (const auto& [name, counts] : expected) {
    const nlohmann::json c = plan_benchmark_stand_in(name, full).at("counts");
    EXPECT_EQ(c.at("bags").get<int>(), counts.first) << name;
    EXPECT_EQ(c.at("positives").get<int>(), counts.second) << name;
  }
  const nlohmann::json camelyon = plan_benchmark_stand_in("camelyon-uni", full);
  const double mean = camelyon.at("counts").at("instances").get<double>() / 398;
  EXPECT_GT(mean, 8000);  // log-normal around 9,000 (reference v1 logs: 9,075 per C16 train bag)
  EXPECT_LT(mean, 10000);
  int tests = 0;
  for (const auto& c : camelyon.at("cases")) {
    const std::string id = c.at("id");
    tests += id.rfind("test_", 0) == 0;
    EXPECT_NE(id, "test_049") << "absent from the reference's label_c16.csv";
  }
  EXPECT_EQ(tests, 128);
  // Survival: the latent risk drives the hazard, so it orders the times well (about 0.7 by design).
  std::vector<double> risk, time;
  std::vector<int> event;
  const nlohmann::json blca = plan_benchmark_stand_in("tcga-blca-surv-r50", full);
  for (const auto& c : blca.at("cases")) {
    risk.push_back(c.at("risk"));
    time.push_back(c.at("time"));
    event.push_back(c.at("label"));
  }
  EXPECT_GT(harrell_c_index(risk, time, event), 0.65);
}

TEST(StandIns, WriteTheReferenceLayoutsThatLoadThroughTheirDatasetEntries) {
  testing::TempDir dir;
  const BagDataset camelyon =
      load_dataset(entry_of(write_benchmark_stand_in("camelyon-uni", dir / "c", tiny(0.05))));
  EXPECT_EQ(camelyon.bags.size(), 20u);
  EXPECT_EQ(camelyon.feature_dim, 16);
  std::ifstream c16(dir / "c/label_c16.csv");
  std::string first;
  std::getline(c16, first);
  EXPECT_EQ(first, "normal_001,0") << "headerless slide_id,label";

  const nlohmann::json nsclc = write_benchmark_stand_in("tcga-nsclc-r50", dir / "n", tiny(0.05));
  EXPECT_EQ(nsclc.at("slide_match"), "substring");
  const BagDataset n = load_dataset(entry_of(nsclc));
  EXPECT_GE(n.bags.size(), 48u);  // 956 * 0.05 cases, some with two slides
  std::ifstream nsclc_csv(dir / "n/label_tcga_nsclc.csv");
  std::getline(nsclc_csv, first);
  EXPECT_TRUE(first.size() == 17 && first.rfind("TCGA-", 0) == 0 &&
              (first.substr(12) == ",LUAD" || first.substr(12) == ",LUSC"))
      << first;
  EXPECT_EQ(n.bags[0].slide_id.rfind(n.bags[0].case_id + "-01Z-00-DX", 0), 0u)
      << n.bags[0].slide_id;

  StandInOptions h5 = tiny();
  h5.format = "h5";
  const BagDataset blca =
      load_dataset(entry_of(write_benchmark_stand_in("tcga-blca-surv-r50", dir / "b", h5)));
  EXPECT_TRUE(blca.survival);
  EXPECT_TRUE(fs::is_directory(dir.path() / "b/h5_files"));
  EXPECT_TRUE(blca.bags[0].coords.defined());
  std::ifstream surv(dir / "b/label_blca_surv.csv");
  std::getline(surv, first);
  EXPECT_EQ(first, "Study,ID,Event,Status,WSI");
}

TEST(StandIns, AreByteIdenticalFromASeedIncludingHdf5) {
  testing::TempDir dir;
  StandInOptions o = tiny();
  StandInOptions h5 = tiny();
  h5.format = "h5";
  for (const char* run : {"a", "b"}) {
    write_benchmark_stand_in("camelyon-r50", dir / (std::string(run) + "/c"), o);
    write_benchmark_stand_in("tcga-luad-surv-uni", dir / (std::string(run) + "/s"), h5);
  }
  o.seed += 1;
  write_benchmark_stand_in("camelyon-r50", dir / "other/c", o);
  const auto a = file_hashes(dir.path() / "a"), b = file_hashes(dir.path() / "b");
  ASSERT_GT(a.size(), 20u);
  // dataset.json records the root, which differs between the two runs by design.
  for (const auto& [path, hash] : a) {
    if (path.find("dataset.json") == std::string::npos) {
      EXPECT_EQ(b.at(path), hash) << path;
    }
  }
  EXPECT_NE(file_hashes(dir.path() / "other/c").at("pt_files/normal_001.pt"),
            a.at("c/pt_files/normal_001.pt"));
}

TEST(StandIns, PlantASignalThatUniShowsMoreClearlyThanR50) {
  // No model: centre each slide's instances (which removes its batch-effect offset), take the top
  // eigenvector of (covariance of positive slides - covariance of negative slides), the direction
  // along which positives have extra instances, and score a slide by the mean of its top 1%
  // projections. Both encoders must separate the classes; uni with the wider margin.
  testing::TempDir dir;
  std::map<std::string, double> auc, margin;
  for (const char* encoder : {"r50", "uni"}) {
    const std::string name = std::string("camelyon-") + encoder;
    const BagDataset data =
        load_dataset(entry_of(write_benchmark_stand_in(name, dir / name, tiny(0.1, 128))));
    at::Tensor scatter[2] = {at::zeros({128, 128}, at::kDouble),
                             at::zeros({128, 128}, at::kDouble)};
    double count[2] = {0, 0};
    std::vector<at::Tensor> centred;
    for (const Bag& b : data.bags) {
      centred.push_back(b.features.to(at::kDouble) - b.features.to(at::kDouble).mean(0));
      scatter[b.label] += centred.back().t().matmul(centred.back());
      count[b.label] += double(b.features.size(0));
    }
    const at::Tensor contrast = scatter[1] / count[1] - scatter[0] / count[0];
    at::Tensor direction = std::get<1>(at::linalg_eigh(contrast)).select(1, 127);
    double skew = 0;
    for (const at::Tensor& c : centred) skew += c.matmul(direction).pow(3).sum().item<double>();
    if (skew < 0)
      direction = -direction;  // an eigenvector's sign is arbitrary; witnesses lie on the + side
    std::vector<double> scores;
    double sum[2] = {0, 0};
    for (std::size_t i = 0; i < centred.size(); ++i) {
      const at::Tensor projection = centred[i].matmul(direction);
      scores.push_back(std::get<0>(projection.topk(std::max<int64_t>(1, projection.size(0) / 100)))
                           .mean()
                           .item<double>());
      sum[data.bags[i].label] += scores.back();
    }
    const auto labels = data.labels();
    const double positives = double(std::count(labels.begin(), labels.end(), 1));
    auc[encoder] = roc_auc(scores, labels);
    margin[encoder] = sum[1] / positives - sum[0] / (double(labels.size()) - positives);
  }
  EXPECT_GT(auc["r50"], 0.9);
  EXPECT_GE(auc["uni"], auc["r50"]);
  EXPECT_GT(margin["uni"], 1.2 * margin["r50"])
      << "uni " << margin["uni"] << ", r50 " << margin["r50"];
}

}  // namespace mil
