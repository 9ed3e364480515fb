// Instance-level truth beside the features: written by the synthetic benchmarks, read with the
// bags, absent from older files without harm; the witnesses' coordinates form contiguous regions;
// a dataset folder that describes itself; the patch geometry of CLAM-layout .h5 files.
#include <ATen/ATen.h>
#include <H5Cpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <set>

#include "mil/data/bag_dataset.h"
#include "mil/data/dataset_folder.h"
#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/data/patch_geometry.h"
#include "mil/data/split_protocol.h"
#include "mil/synthetic/benchmarks.h"
#include "mil/synthetic/generator.h"
#include "mil/synthetic/layout.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
namespace fs = std::filesystem;

at::Tensor codes_of(std::vector<int> v) {
  at::Tensor t = at::empty({int64_t(v.size())}, at::kByte);
  for (std::size_t i = 0; i < v.size(); ++i) t[int64_t(i)] = v[i];
  return t;
}

/// Number of 4-connected components formed by the grid cells `cells` (coords / patch).
int components(const std::set<std::pair<int64_t, int64_t>>& cells) {
  std::set<std::pair<int64_t, int64_t>> seen;
  int count = 0;
  for (const auto& start : cells) {
    if (seen.count(start)) continue;
    ++count;
    std::queue<std::pair<int64_t, int64_t>> todo;
    todo.push(start);
    seen.insert(start);
    while (!todo.empty()) {
      const auto [x, y] = todo.front();
      todo.pop();
      for (const auto& n : {std::make_pair(x + 1, y), std::make_pair(x - 1, y),
                            std::make_pair(x, y + 1), std::make_pair(x, y - 1)}) {
        if (cells.count(n) && seen.insert(n).second) todo.push(n);
      }
    }
  }
  return count;
}

/// The grid cells of the instances whose code is `code`.
std::set<std::pair<int64_t, int64_t>> cells_with(const at::Tensor& coords, const at::Tensor& codes,
                                                 int code, int64_t patch = 256) {
  std::set<std::pair<int64_t, int64_t>> cells;
  for (int64_t i = 0; i < codes.numel(); ++i) {
    if (codes[i].item<int>() == code)
      cells.insert({coords[i][0].item<int64_t>() / patch, coords[i][1].item<int64_t>() / patch});
  }
  return cells;
}

SyntheticOptions hard_easy(const std::string& format) {
  SyntheticOptions o;
  o.bag_count = 24;
  o.feature_dim = 8;
  o.min_instances = 60;
  o.max_instances = 120;
  o.witness_fraction_min = 0.05;
  o.witness_fraction_max = 0.1;
  o.easy_witnesses = 4;
  o.easy_bag_fraction = 0.5;
  o.format = format;
  return o;
}

TEST(InstanceLabels, RoundTripThroughAPtSidecarAndAnH5Dataset) {
  testing::TempDir dir;
  const at::Tensor x = at::randn({5, 3});
  write_feature_file(dir / "s.pt", x);
  write_h5_slide(dir / "s.h5", x, at::Tensor(), /*float16=*/false);
  EXPECT_FALSE(read_instance_labels(dir / "s.pt", 5).defined());  // older files: no truth
  EXPECT_FALSE(read_instance_labels(dir / "s.h5", 5).defined());
  const at::Tensor codes = codes_of({0, 1, 2, 0, 3});
  write_instance_labels(dir / "s.pt", codes);
  write_instance_labels(dir / "s.h5", codes);
  EXPECT_EQ(instance_labels_sidecar_path(dir / "s.pt"), dir / "s.instance_labels.csv");
  std::ifstream sidecar(dir / "s.instance_labels.csv");
  const std::string text((std::istreambuf_iterator<char>(sidecar)), {});
  EXPECT_EQ(text, "instance_label\n0\n1\n2\n0\n3\n");
  EXPECT_TRUE(read_instance_labels(dir / "s.pt", 5).equal(codes));
  EXPECT_TRUE(read_instance_labels(dir / "s.h5", 5).equal(codes));
  EXPECT_TRUE(read_h5_slide(dir / "s.h5").features.equal(x));  // the features are untouched
  EXPECT_EQ(count_roles(codes), (std::vector<int64_t>{2, 1, 1, 1, 0}));
}

TEST(InstanceLabels, WrongLengthOrCodeFailsNamingTheFile) {
  testing::TempDir dir;
  write_feature_file(dir / "s.pt", at::randn({3, 2}));
  write_instance_labels(dir / "s.pt", codes_of({0, 1}));
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.pt", 3), "s.instance_labels.csv': holds 2");
  write_instance_labels(dir / "s.pt", codes_of({0, 9, 1}));
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.pt", 3), "instance label 9 at row 1");
}

TEST(InstanceLabels, SidecarLinesOfBlanksAndCarriageReturnsOnlyAreSkipped) {
  // Found by the instance_truth fuzzer: a line "\r\r" (Windows line end after a stray CR) left
  // the parser's end pointer one before the line's start (undefined behaviour under UBSan).
  testing::TempDir dir;
  write_feature_file(dir / "s.pt", at::randn({3, 2}));
  std::ofstream(dir / "s.instance_labels.csv")
      << "instance_label\r\n2\r\n\r\r\n \t\r\n0\r\n\r\n\t1 \r\n";
  const at::Tensor codes = read_instance_labels(dir / "s.pt", 3);
  ASSERT_TRUE(codes.defined());
  EXPECT_TRUE(codes.equal(codes_of({2, 0, 1})));
  // Blanks only around a code: one inside a line is still refused, naming the line.
  std::ofstream(dir / "s.instance_labels.csv") << "instance_label\n1\n\r1 2\r\n0\n";
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.pt", 3), ":3: '\r1 2' is not an instance");
}

TEST(InstanceLabels, ASidecarOrH5DatasetLongerThanTheSlideIsRefusedBeforeItIsStored) {
  testing::TempDir dir;
  write_feature_file(dir / "s.pt", at::randn({3, 2}));
  // Line 5 is the fourth code of a 3-instance slide: refused there, not after reading the rest.
  std::ofstream(dir / "s.instance_labels.csv") << "instance_label\n0\n1\n2\n1\nnot a code\n";
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.pt", 3),
                        "s.instance_labels.csv':5: more instance labels than the 3 instances");
  std::ofstream(dir / "s.instance_labels.csv") << "instance_label\n0\n1x\n2\n";
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.pt", 3), ":3: '1x' is not an instance");
  // An .h5 dataset's length is compared with the slide's before anything is read, and a dataset
  // of rank 3 is refused before its extent is read.
  write_h5_slide(dir / "s.h5", at::randn({3, 2}), at::Tensor(), /*float16=*/false);
  write_instance_labels(dir / "s.h5", codes_of({0, 1, 2, 1, 0}));
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.h5", 3), "holds 5 instance labels for 3");
  {
    H5::H5File file(dir / "s.h5", H5F_ACC_RDWR);
    file.unlink(kInstanceLabelsDataset);
    const hsize_t dims[3] = {3, 1, 1};
    file.createDataSet(kInstanceLabelsDataset, H5::PredType::STD_U8LE, H5::DataSpace(3, dims));
  }
  MIL_EXPECT_THROW_WITH(read_instance_labels(dir / "s.h5", 3), "'instance_labels' must be [N]");
}

TEST(InstanceLabels, LoadWithTheBagsAndOlderDatasetsLoadWithout) {
  testing::TempDir dir;
  const SyntheticOptions o = hard_easy("pt");
  write_synthetic_benchmark(dir / "d", o);
  const BagDataset data = load_dataset(dataset_of_folder(dir / "d"));
  ASSERT_EQ(data.bags.size(), 24u);
  EXPECT_EQ(data.inputs.at("instance_labels").at("slides").get<int>(), 24);
  for (const Bag& bag : data.bags) {
    ASSERT_TRUE(bag.instance_labels.defined()) << bag.slide_id;
    const std::vector<int64_t> counts = count_roles(bag.instance_labels);
    if (bag.label == 0) {
      EXPECT_EQ(counts[kRoleHardWitness] + counts[kRoleEasyWitness], 0) << bag.slide_id;
    } else {
      EXPECT_GE(counts[kRoleHardWitness], 3) << bag.slide_id;  // 5-10% of >= 60 instances
      EXPECT_TRUE(counts[kRoleEasyWitness] == 0 || counts[kRoleEasyWitness] == 4) << bag.slide_id;
    }
  }
  // Remove every sidecar: an older dataset, which loads as before without truth.
  for (const auto& e : fs::directory_iterator(dir.path() / "d/pt_files")) {
    if (e.path().string().find(kInstanceLabelsSidecarSuffix) != std::string::npos)
      fs::remove(e.path());
  }
  const BagDataset old = load_dataset(dataset_of_folder(dir / "d"));
  EXPECT_FALSE(old.inputs.contains("instance_labels"));
  for (std::size_t i = 0; i < old.bags.size(); ++i) {
    EXPECT_FALSE(old.bags[i].instance_labels.defined());
    EXPECT_TRUE(old.bags[i].features.equal(data.bags[i].features));
  }
}

TEST(InstanceLabels, H5WitnessesFormContiguousRegionsOverTheSameFeatures) {
  testing::TempDir dir;
  write_synthetic_benchmark(dir / "pt", hard_easy("pt"));
  write_synthetic_benchmark(dir / "h5", hard_easy("h5"));
  const BagDataset pt = load_dataset(dataset_of_folder(dir / "pt"));
  const BagDataset h5 = load_dataset(dataset_of_folder(dir / "h5"));
  ASSERT_EQ(pt.bags.size(), h5.bags.size());
  int with_easy = 0;
  for (std::size_t i = 0; i < h5.bags.size(); ++i) {
    const Bag& bag = h5.bags[i];
    EXPECT_TRUE(bag.features.equal(pt.bags[i].features)) << bag.slide_id;
    EXPECT_TRUE(bag.instance_labels.equal(pt.bags[i].instance_labels)) << bag.slide_id;
    ASSERT_TRUE(bag.coords.defined());
    // Every instance on its own grid cell.
    std::set<std::pair<int64_t, int64_t>> all;
    for (int code = 0; code <= kRoleAggressive; ++code) {
      for (const auto& c : cells_with(bag.coords, bag.instance_labels, code)) all.insert(c);
    }
    EXPECT_EQ(int64_t(all.size()), bag.features.size(0)) << bag.slide_id;
    const auto hard = cells_with(bag.coords, bag.instance_labels, kRoleHardWitness);
    const auto easy = cells_with(bag.coords, bag.instance_labels, kRoleEasyWitness);
    if (!hard.empty()) {
      EXPECT_EQ(components(hard), 1) << bag.slide_id;
    }
    if (!easy.empty()) {
      EXPECT_EQ(components(easy), 1) << bag.slide_id;
      ++with_easy;
    }
  }
  EXPECT_GT(with_easy, 0);
}

TEST(RegionLayout, GivesEachRoleOneBlobAndEveryInstanceItsOwnCell) {
  std::vector<std::uint8_t> roles(400, kRoleBackground);
  for (int i = 0; i < 150; ++i) roles[std::size_t(i * 2)] = kRoleTumour;  // scattered rows
  for (int i = 0; i < 12; ++i) roles[std::size_t(i * 2 + 1)] = kRoleEasyWitness;
  for (int i = 0; i < 5; ++i) roles[std::size_t(399 - i)] = kRoleHardWitness;
  const at::Tensor coords =
      region_coords(roles, {kRoleTumour, kRoleEasyWitness, kRoleHardWitness}, /*seed=*/3, 10);
  at::Tensor codes = at::empty({400}, at::kByte);
  for (int i = 0; i < 400; ++i) codes[i] = roles[std::size_t(i)];
  std::set<std::pair<int64_t, int64_t>> cells;
  for (int64_t i = 0; i < 400; ++i) {
    const int64_t x = coords[i][0].item<int64_t>(), y = coords[i][1].item<int64_t>();
    EXPECT_EQ(x % 10, 0);
    EXPECT_LT(x, 200);  // 20 x 20 grid of 10-px cells
    EXPECT_LT(y, 200);
    cells.insert({x, y});
  }
  EXPECT_EQ(cells.size(), 400u);
  EXPECT_EQ(components(cells_with(coords, codes, kRoleTumour, 10)), 1);
  EXPECT_EQ(components(cells_with(coords, codes, kRoleEasyWitness, 10)), 1);
  EXPECT_EQ(components(cells_with(coords, codes, kRoleHardWitness, 10)), 1);
  EXPECT_TRUE(
      coords.equal(region_coords(roles, {kRoleTumour, kRoleEasyWitness, kRoleHardWitness}, 3, 10)));
}

TEST(StandInTruth, CamelyonH5PutsEasyAndHardWitnessesInRegions) {
  testing::TempDir dir;
  StandInOptions o;
  o.scale = 0.02;
  o.feature_dim = 8;
  o.format = "h5";
  const nlohmann::json entry = write_benchmark_stand_in("camelyon-r50", dir / "c", o);
  const BagDataset data = load_dataset(entry.get<DatasetSpec>());
  int tumour_slides = 0;
  for (const Bag& bag : data.bags) {
    ASSERT_TRUE(bag.instance_labels.defined()) << bag.slide_id;
    const std::vector<int64_t> counts = count_roles(bag.instance_labels);
    if (bag.label == 0) {
      EXPECT_EQ(counts[kRoleHardWitness] + counts[kRoleEasyWitness], 0) << bag.slide_id;
      continue;
    }
    ++tumour_slides;
    EXPECT_GE(counts[kRoleHardWitness], 2) << bag.slide_id;  // 2-10 in every tumour slide
    EXPECT_LE(counts[kRoleHardWitness], 10) << bag.slide_id;
    EXPECT_EQ(components(cells_with(bag.coords, bag.instance_labels, kRoleHardWitness)), 1);
    if (counts[kRoleEasyWitness] > 0) {
      EXPECT_EQ(components(cells_with(bag.coords, bag.instance_labels, kRoleEasyWitness)), 1);
    }
  }
  EXPECT_GT(tumour_slides, 0);
  // The .pt stand-in carries the same truth in sidecars.
  o.format = "pt";
  const BagDataset pt =
      load_dataset(write_benchmark_stand_in("camelyon-r50", dir / "p", o).get<DatasetSpec>());
  for (std::size_t i = 0; i < pt.bags.size(); ++i)
    EXPECT_TRUE(pt.bags[i].instance_labels.equal(data.bags[i].instance_labels));
}

TEST(HeldOutTest, SplitFilesValidateOnDevelopmentFoldsAndTestOnTheHeldOutBags) {
  testing::TempDir dir;
  SyntheticOptions o = hard_easy("pt");
  o.bag_count = 40;
  o.easy_bag_fraction = 0.8;
  o.test_bag_count = 30;
  o.test_easy_bag_fraction = 0.0;  // every held-out positive is hard-only
  o.split_folds = 4;
  write_synthetic_benchmark(dir / "d", o);
  const DatasetSpec spec = dataset_of_folder(dir / "d");
  const BagDataset data = load_dataset(spec);
  ASSERT_EQ(data.bags.size(), 70u);
  std::set<std::string> val_union;
  for (int k = 0; k < 4; ++k) {
    SplitSpec split;
    split.protocol = "file";
    split.dir = "splits";
    split.fold_count = 4;
    split.fold_index = k;
    const ResolvedSplit r = resolve_split(data, spec, split);
    EXPECT_EQ(r.split.test.size(), 30u);
    EXPECT_EQ(r.split.train.size() + r.split.val.size(), 40u);
    for (int i : r.split.test) {
      EXPECT_EQ(data.bags[std::size_t(i)].slide_id.rfind("test_", 0), 0u);
      EXPECT_EQ(count_roles(data.bags[std::size_t(i)].instance_labels)[kRoleEasyWitness], 0);
    }
    for (int i : r.split.val) val_union.insert(data.bags[std::size_t(i)].slide_id);
  }
  EXPECT_EQ(val_union.size(), 40u);  // the folds partition the development bags
  // The held-out bags do not change the development bags.
  SyntheticOptions without = o;
  without.test_bag_count = 0;
  without.split_folds = 0;
  write_synthetic_benchmark(dir / "dev", without);
  const BagDataset dev = load_dataset(dataset_of_folder(dir / "dev"));
  for (std::size_t i = 0; i < dev.bags.size(); ++i)
    EXPECT_TRUE(dev.bags[i].features.equal(data.bags[i].features));
}

TEST(SyntheticOptions, RoundTripThroughTheirJson) {
  SyntheticOptions o = hard_easy("h5");
  o.test_bag_count = 7;
  o.split_folds = 3;
  const SyntheticOptions back = synthetic_options_from_json(synthetic_options_json(o));
  EXPECT_EQ(synthetic_options_json(back), synthetic_options_json(o));
  EXPECT_THROW(synthetic_options_from_json({{"bags", 3}}), std::runtime_error);
}

TEST(DatasetFolder, ItsOwnDescriptionNamesTheLabelFileAndFlagsOverrideIt) {
  testing::TempDir dir;
  StandInOptions o;
  o.scale = 0.02;
  o.feature_dim = 8;
  write_benchmark_stand_in("camelyon-r50", dir / "c", o);
  fs::rename(dir.path() / "c", dir.path() / "moved");  // the folder may move after it is written
  const DatasetSpec spec = dataset_of_folder(dir / "moved");
  EXPECT_EQ(spec.labels, "label_c16.csv");
  EXPECT_EQ(spec.root, dir / "moved");
  EXPECT_EQ(spec.name, "camelyon-r50");
  EXPECT_FALSE(load_dataset(spec).bags.empty());
  const DatasetSpec named = dataset_of_folder(dir / "moved", {{"name", "c16"}, {"class_count", 3}});
  EXPECT_EQ(named.name, "c16");
  EXPECT_EQ(named.class_count, 3);
  // A folder without a description gets the defaults and its own name.
  fs::create_directories(dir.path() / "plain");
  const DatasetSpec plain = dataset_of_folder(dir / "plain/");
  EXPECT_EQ(plain.name, "plain");
  EXPECT_EQ(plain.labels, "");
  // Labels of slides for commands that take files.
  const std::map<std::string, int> labels = slide_labels(spec, {});
  EXPECT_EQ(labels.at("normal_001"), 0);
  EXPECT_EQ(labels.at("tumor_001"), 1);
}

TEST(PatchGeometry, ReadsClamAttributesAndAsksForTheSizeWhenTheyDoNotSay) {
  testing::TempDir dir;
  const auto clam_file = [&](const std::string& name, int level, double downsample) {
    const std::string path = dir / name;
    write_h5_slide(path, at::randn({2, 4}), at::zeros({2, 2}, at::kLong), false, 256);
    H5::H5File file(path, H5F_ACC_RDWR);
    H5::DataSet coords = file.openDataSet("coords");
    coords.createAttribute("patch_level", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT, &level);
    if (downsample > 0) {
      const hsize_t two[1] = {2};
      const double values[2] = {downsample, downsample};
      coords.createAttribute("downsample", H5::PredType::IEEE_F64LE, H5::DataSpace(1, two))
          .write(H5::PredType::NATIVE_DOUBLE, values);
      const long long dims[2] = {3000, 2000};
      coords.createAttribute("level_dim", H5::PredType::STD_I64LE, H5::DataSpace(1, two))
          .write(H5::PredType::NATIVE_LLONG, dims);
    }
    return path;
  };
  const std::string level1 = clam_file("a.h5", 1, 4.0);
  const PatchGeometry g = read_patch_geometry(level1);
  EXPECT_EQ(g.patch_size, 256);
  EXPECT_EQ(g.patch_level, 1);
  EXPECT_DOUBLE_EQ(g.downsample, 4.0);
  EXPECT_EQ(g.level_width, 3000);
  EXPECT_EQ(g.level_height, 2000);
  EXPECT_EQ(level0_patch_size(g, level1), 1024);
  const std::string level0 = clam_file("b.h5", 0, 0);
  EXPECT_EQ(level0_patch_size(read_patch_geometry(level0), level0), 256);
  const std::string unknown = clam_file("c.h5", 2, 0);
  MIL_EXPECT_THROW_WITH(level0_patch_size(read_patch_geometry(unknown), unknown), "--patch-size");
}

}  // namespace
}  // namespace mil
