// mhim check-data's engine: every problem class is found, reported once with its place, and the
// rest of the dataset is still checked.
#include "mil/data/data_check.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "mil/data/feature_io.h"
#include "mil/data/packed_cache.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
namespace fs = std::filesystem;

/// A clean dataset: slides a, b, c (D = 4) with labels 0, 1, 0.
struct CleanDataset {
  testing::TempDir dir;
  CleanDataset() {
    fs::create_directories(dir.path() / "pt_files");
    for (const char* slide : {"a", "b", "c"}) write_feature_file(pt(slide), at::ones({3, 4}));
    labels("slide_id,label\na,0\nb,1\nc,0\n");
  }
  std::string pt(const std::string& slide) const { return dir / ("pt_files/" + slide + ".pt"); }
  void labels(const std::string& text) const { std::ofstream(dir / "labels.csv") << text; }
  DatasetSpec spec() const { return DatasetSpec{"d", "bags", dir.path().string(), 2, false}; }
};

/// The only problem found must be of `kind`, at a place containing `where`, saying `message`.
void expect_single(const DataCheckReport& report, const std::string& kind, const std::string& where,
                   const std::string& message) {
  ASSERT_EQ(report.problems.size(), 1u)
      << "first: " << (report.problems.empty() ? "none" : report.problems[0].message);
  const DataProblem& p = report.problems[0];
  EXPECT_EQ(p.kind, kind);
  EXPECT_NE(p.where.find(where), std::string::npos) << p.where;
  EXPECT_NE(p.message.find(message), std::string::npos) << p.message;
}
}  // namespace

TEST(CheckData, FindsNothingInACleanDatasetAndCountsIt) {
  CleanDataset d;
  const DataCheckReport r = check_dataset(d.spec());
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(r.slides_read, 3u);
  EXPECT_EQ(r.instances, 9);
  EXPECT_EQ(r.feature_dim, 4);
  EXPECT_EQ(r.bags_per_label, (std::map<int, int>{{0, 2}, {1, 1}}));
}

TEST(CheckData, ListsEveryMissingFileAndKeepsCheckingTheRest) {
  CleanDataset d;
  fs::remove(d.pt("a"));
  fs::remove(d.pt("c"));
  write_feature_file(d.pt("b"), at::zeros({0, 4}));
  const DataCheckReport r = check_dataset(d.spec());
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.problems[0].kind, "missing_file");
  EXPECT_NE(r.problems[0].where.find("a.pt (" + (d.dir / "labels.csv") + ":2)"), std::string::npos);
  EXPECT_EQ(r.problems[1].kind, "missing_file");
  EXPECT_NE(r.problems[1].where.find("c.pt"), std::string::npos);
  EXPECT_EQ(r.problems[2].kind, "empty_bag");
}

TEST(CheckData, ReportsSlidesWhoseDimDiffersFromTheMostCommon) {
  CleanDataset d;
  write_feature_file(d.pt("b"), at::ones({3, 5}));
  expect_single(check_dataset(d.spec()), "feature_dim", "b.pt",
                "feature dim 5, but 2 slide(s) have 4");
}

TEST(CheckData, CountsNanAndInfAndNamesTheFirstInstance) {
  CleanDataset d;
  at::Tensor x = at::ones({3, 4});
  x[1][2] = std::numeric_limits<float>::quiet_NaN();
  x[2][0] = std::numeric_limits<float>::infinity();
  write_feature_file(d.pt("c"), x);
  expect_single(check_dataset(d.spec()), "non_finite", "c.pt",
                "2 NaN or Inf value(s), the first in instance 1");
}

TEST(CheckData, ReportsEmptyBags) {
  CleanDataset d;
  write_feature_file(d.pt("a"), at::zeros({0, 4}));
  expect_single(check_dataset(d.spec()), "empty_bag", "a.pt", "bag has no instances");
}

TEST(CheckData, ReportsAnIdListedTwiceWithBothLines) {
  CleanDataset d;
  d.labels("slide_id,label\na,0\nb,1\nc,0\nb,1\n");
  expect_single(check_dataset(d.spec()), "duplicate_id", "labels.csv:5",
                "id 'b' is already listed at");
}

TEST(CheckData, ReportsACaseWithTwoLabels) {
  CleanDataset d;
  d.labels("case_id,slide_id,label\np1,a,0\np1,b,1\np2,c,0\n");
  expect_single(check_dataset(d.spec()), "label_conflict", "labels.csv:3",
                "case 'p1' has label 1 here and 0 at");
}

TEST(CheckData, ReportsLabelsOutsideTheMapOrTheClassRange) {
  CleanDataset d;
  d.labels("a,LUAD\nb,LUSC\nc,BRCA\n");
  DatasetSpec spec = d.spec();
  spec.label_map = {{"LUAD", 0}, {"LUSC", 1}};
  expect_single(check_dataset(spec), "unknown_label", "labels.csv:3",
                "label 'BRCA' is not in label_map (LUAD, LUSC)");
  d.labels("a,0\nb,1\nc,2\n");
  expect_single(check_dataset(d.spec()), "unknown_label", "labels.csv:3",
                "label 2 is outside [0, 2)");
}

TEST(CheckData, ReportsEveryRowWithTheWrongFieldCountByLine) {
  CleanDataset d;
  d.labels("a,0\nb,1,extra\nc\n");
  const DataCheckReport r = check_dataset(d.spec());
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_EQ(r.problems[0].kind, "csv_fields");
  EXPECT_NE(r.problems[0].where.find("labels.csv:2"), std::string::npos);
  EXPECT_EQ(r.problems[0].message, "3 fields, the file has 2");
  EXPECT_NE(r.problems[1].where.find("labels.csv:3"), std::string::npos);
  EXPECT_EQ(r.problems[1].message, "1 fields, the file has 2");
}

TEST(CheckData, ReportsBadSurvivalValuesByLine) {
  CleanDataset d;
  std::ofstream(d.dir / "survival.csv")
      << "Study,ID,Event,Status,WSI\nx,p1,12.5,1,a\nx,p2,soon,0,b\nx,p3,3,2,c\n";
  DatasetSpec spec = d.spec();
  spec.kind = "survival";
  spec.class_count = 4;
  const DataCheckReport r = check_dataset(spec);
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.problems[0].kind, "csv_value");
  EXPECT_NE(r.problems[0].message.find("Event 'soon' is not a non-negative time"),
            std::string::npos);
  EXPECT_EQ(r.problems[1].kind, "csv_value");
  EXPECT_NE(r.problems[1].where.find("survival.csv:4"), std::string::npos);
  EXPECT_EQ(r.problems[2].kind, "dataset") << "one good case cannot be split";
}

TEST(CheckData, ReportsTruncatedAndLegacyPtFiles) {
  CleanDataset d;
  fs::resize_file(d.pt("a"), 100);
  fs::copy_file(std::string(MIL_SOURCE_DIR) + "/tests/fixtures/pt/legacy.pt", d.pt("c"),
                fs::copy_options::overwrite_existing);
  const DataCheckReport r = check_dataset(d.spec());
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_EQ(r.problems[0].kind, "unreadable_pt");
  EXPECT_NE(r.problems[0].message.find("truncated or corrupt torch.save archive (100 bytes)"),
            std::string::npos);
  EXPECT_EQ(r.problems[1].kind, "unreadable_pt");
  EXPECT_NE(r.problems[1].message.find("legacy (pre-1.6) torch.save format"), std::string::npos);
}

TEST(CheckData, ReportsFilesThatHoldNoFloatFeatureMatrix) {
  CleanDataset d;
  write_feature_file(d.pt("b"),
                     at::ones({3, 4}, at::kLong));  // e.g. coords saved in place of features
  expect_single(check_dataset(d.spec()), "bad_content", "b.pt",
                "features are Long, expected floats");
}

TEST(CheckData, ReportsUnreadableH5Files) {
  if (!hdf5_supported()) GTEST_SKIP() << "built without HDF5 (MIL_WITH_HDF5=OFF)";
  CleanDataset d;
  fs::create_directories(d.dir.path() / "h5_files");
  for (const char* slide : {"a", "b", "c"}) {
    write_h5_slide(d.dir / ("h5_files/" + std::string(slide) + ".h5"), at::ones({2, 4}), {},
                   /*float16=*/false);
  }
  std::ofstream(d.dir / "h5_files/b.h5", std::ios::trunc) << "not hdf5";
  DatasetSpec spec = d.spec();
  spec.features = "h5";
  expect_single(check_dataset(spec), "unreadable_h5", "b.h5", "HDF5 error while opening");
}

TEST(CheckData, VerifiesEverySlideOfAPackedCache) {
  CleanDataset d;
  const std::string cache = d.dir / kPackedCacheName;
  pack_feature_folder(d.dir / "pt_files", false, cache);
  DatasetSpec spec = d.spec();
  spec.features = "packed";
  EXPECT_TRUE(check_dataset(spec).clean());
  const PackedSlide b = PackedCache::open(cache)->slides()[1];
  {
    std::fstream f(cache, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(b.offset));
    f.put('\x42');
  }
  expect_single(check_dataset(spec), "packed_cache", ":b", "slide 'b' is corrupt");
  fs::resize_file(cache, b.offset);
  expect_single(check_dataset(spec), "packed_cache", kPackedCacheName,
                "slide(s) 'b', 'c' lie past the end");
}

}  // namespace mil
