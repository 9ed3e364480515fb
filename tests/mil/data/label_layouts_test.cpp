// The reference's label CSV layouts (its datasets/dataset_csv/), slide lookup, and .h5 features.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mil/data/bag_dataset.h"
#include "mil/data/feature_io.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
namespace fs = std::filesystem;

/// A dataset folder with one small .pt per slide; slide i has i + 1 instances of value i.
void write_slides(const fs::path& root, const std::vector<std::string>& slides) {
  fs::create_directories(root / "pt_files");
  for (std::size_t i = 0; i < slides.size(); ++i) {
    write_feature_file((root / "pt_files" / (slides[i] + ".pt")).string(),
                       at::full({int64_t(i) + 1, 3}, float(i)));
  }
}

DatasetSpec spec_for(const fs::path& root, const std::string& labels) {
  DatasetSpec spec{"d", "bags", root.string(), 2, false};
  spec.labels = labels;
  return spec;
}
}  // namespace

TEST(LabelLayouts, ReadsHeaderlessTwoColumnsThroughALabelMap) {
  testing::TempDir dir;
  write_slides(dir.path(), {"s1", "s2", "s3"});
  std::ofstream(dir / "nsclc.csv") << "s1,LUAD\ns2,LUSC\ns3,LUAD\n";
  DatasetSpec spec = spec_for(dir.path(), "nsclc.csv");
  spec.label_map = {{"LUAD", 0}, {"LUSC", 1}};
  const BagDataset data = load_dataset(spec);
  ASSERT_EQ(data.bags.size(), 3u);
  EXPECT_EQ(data.labels(), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(data.bags[1].features.size(0), 2);
}

TEST(LabelLayouts, ReadsCaseIdLabelSplitWithoutHeaderAndKeepsCases) {
  testing::TempDir dir;
  write_slides(dir.path(), {"p1_a", "p1_b", "p2_a"});
  std::ofstream(dir / "four.csv") << "p1,p1_a,1,train\np1,p1_b,1,train\np2,p2_a,0,test\n";
  const BagDataset data = load_dataset(spec_for(dir.path(), "four.csv"));
  EXPECT_EQ(data.groups(), (std::vector<std::string>{"p1", "p1", "p2"}));
  EXPECT_EQ(data.labels(), (std::vector<int>{1, 1, 0}));
}

TEST(LabelLayouts, ReadsANamedHeaderInAnyColumnOrder) {
  testing::TempDir dir;
  write_slides(dir.path(), {"x", "y"});
  std::ofstream(dir / "h.csv") << "label,case_id,slide_id\n1,c1,x\n0,c2,y\n";
  const BagDataset data = load_dataset(spec_for(dir.path(), "h.csv"));
  EXPECT_EQ(data.labels(), (std::vector<int>{1, 0}));
  EXPECT_EQ(data.groups(), (std::vector<std::string>{"c1", "c2"}));
}

TEST(LabelLayouts, NameTheLineOfAWrongFieldCountOrAnUnknownLabel) {
  testing::TempDir dir;
  write_slides(dir.path(), {"s1", "s2"});
  std::ofstream(dir / "bad.csv") << "s1,0\ns2,1,extra\n";
  MIL_EXPECT_THROW_WITH(load_dataset(spec_for(dir.path(), "bad.csv")),
                        "bad.csv:2: 3 fields, the file has 2");
  std::ofstream(dir / "unknown.csv") << "s1,LUAD\ns2,BRCA\n";
  DatasetSpec spec = spec_for(dir.path(), "unknown.csv");
  spec.label_map = {{"LUAD", 0}, {"LUSC", 1}};
  MIL_EXPECT_THROW_WITH(load_dataset(spec),
                        "unknown.csv:2: label 'BRCA' is not in label_map (LUAD, LUSC)");
}

TEST(SlideLookup, ListsEveryMissingFileAtOnce) {
  testing::TempDir dir;
  write_slides(dir.path(), {"s1"});
  std::ofstream(dir / "labels.csv") << "slide_id,label\ns1,0\ns2,1\ns3,0\n";
  MIL_EXPECT_THROW_WITH(load_dataset(spec_for(dir.path(), "")), "2 slide file(s) missing");
  MIL_EXPECT_THROW_WITH(load_dataset(spec_for(dir.path(), "")), "s3.pt (");
}

TEST(SlideLookup, SubstringMatchMakesOneBagPerSlideOfTheCase) {
  testing::TempDir dir;
  write_slides(dir.path(),
               {"TCGA-05-4244-01Z-00-DX1", "TCGA-05-4244-01Z-00-DX2", "TCGA-05-4249-01Z-00-DX1"});
  std::ofstream(dir / "cases.csv") << "TCGA-05-4244,LUAD\nTCGA-05-4249,LUSC\n";
  DatasetSpec spec = spec_for(dir.path(), "cases.csv");
  spec.label_map = {{"LUAD", 0}, {"LUSC", 1}};
  spec.slide_match = "substring";
  const BagDataset data = load_dataset(spec);
  ASSERT_EQ(data.bags.size(), 3u);
  EXPECT_EQ(data.groups(),
            (std::vector<std::string>{"TCGA-05-4244", "TCGA-05-4244", "TCGA-05-4249"}));
  EXPECT_EQ(data.labels(), (std::vector<int>{0, 0, 1}));
  spec.slide_match = "exact";
  MIL_EXPECT_THROW_WITH(load_dataset(spec), "TCGA-05-4244.pt");
}

TEST(H5Features, RoundTripFloat32AndFloat16WithCoordsAndAttributes) {
  if (!hdf5_supported()) GTEST_SKIP() << "built without HDF5 (MIL_WITH_HDF5=OFF)";
  testing::TempDir dir;
  const at::Tensor x = at::arange(12, at::kFloat).reshape({4, 3}) / 8;  // exact in float16 too
  const at::Tensor coords = at::arange(8, at::kLong).reshape({4, 2}) * 256;
  for (const bool half : {false, true}) {
    const std::string path = dir / (half ? "half.h5" : "full.h5");
    write_h5_slide(path, x, coords, half, 512);
    const H5Slide slide = read_h5_slide(path);
    EXPECT_TRUE(at::equal(slide.features, x)) << (half ? "float16" : "float32");
    EXPECT_TRUE(at::equal(slide.coords, coords));
    EXPECT_EQ(slide.attributes.at("patch_size").get<int>(), 512);
  }
}

TEST(H5Features, LoadAsADatasetFromH5FilesAndNameABrokenFile) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "h5_files");
  write_h5_slide(dir / "h5_files/a.h5", at::ones({5, 4}), at::zeros({5, 2}, at::kLong), true);
  write_h5_slide(dir / "h5_files/b.h5", at::zeros({2, 4}), at::Tensor(), false);
  std::ofstream(dir / "labels.csv") << "slide_id,label\na,1\nb,0\n";
  const BagDataset data = load_dataset(spec_for(dir.path(), ""));
  ASSERT_EQ(data.bags.size(), 2u);
  EXPECT_EQ(data.bags[0].coords.size(0), 5);
  EXPECT_FALSE(data.bags[1].coords.defined());
  std::ofstream(dir / "h5_files/b.h5", std::ios::trunc) << "not hdf5";
  MIL_EXPECT_THROW_WITH(load_dataset(spec_for(dir.path(), "")), "b.h5': HDF5 error while opening");
}

}  // namespace mil
