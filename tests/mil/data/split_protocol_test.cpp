// Split files (CLAM splits_{k}.csv, reference fold_{k}.csv), the leakage guardrails, and the legacy
// protocol that reproduces the reference's validation = test on purpose.
#include "mil/data/split_protocol.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

/// Eight slides of four cases: case pK holds slides pK_a and pK_b; p0, p1 are class 0, p2, p3
/// class 1.
BagDataset four_cases() {
  BagDataset data;
  for (int c = 0; c < 4; ++c) {
    for (const char* s : {"_a", "_b"}) {
      Bag bag;
      bag.case_id = "p" + std::to_string(c);
      bag.slide_id = bag.case_id + s;
      bag.label = c / 2;
      data.bags.push_back(bag);
    }
  }
  return data;
}

SplitSpec from_files(const std::string& dir, const std::string& protocol = "file") {
  SplitSpec s;
  s.protocol = protocol;
  s.fold_count = 2;
  s.dir = dir;
  return s;
}

std::vector<std::string> ids(const nlohmann::json& part) {
  return part.get<std::vector<std::string>>();
}
}  // namespace

TEST(SplitFiles, ReadClamColumnsOfRaggedLengthByCaseOrSlideId) {
  testing::TempDir dir;
  // CLAM writes a pandas index column with an empty header; shorter columns end in empty cells.
  std::ofstream(dir / "splits_0.csv") << ",train,val,test\n0,p0,p2,p1_a\n1,p3,,p1_b\n";
  std::ofstream(dir / "splits_1.csv") << ",train,val,test\n0,p1,,p0\n1,p2,,\n2,p3,,\n";
  SplitSpec spec = from_files(dir.path().string());
  const ResolvedSplit r =
      resolve_split(four_cases(), DatasetSpec{"d", "bags", "/unused", 2, false}, spec);
  EXPECT_EQ(ids(r.record.at("train")), (std::vector<std::string>{"p0_a", "p0_b", "p3_a", "p3_b"}));
  EXPECT_EQ(ids(r.record.at("val")), (std::vector<std::string>{"p2_a", "p2_b"}));
  EXPECT_EQ(ids(r.record.at("test")), (std::vector<std::string>{"p1_a", "p1_b"}));
  EXPECT_EQ(r.split_file.at("path"), dir / "splits_0.csv");
  EXPECT_TRUE(r.flags.empty());
  // Fold 1 names no validation: with val_ratio, floor(n_c * 0.5) training cases per class are
  // carved out: none of class 0 (p1 alone), one of class 1 (p2 or p3), with both its slides.
  spec.fold_index = 1;
  spec.val_ratio = 0.5;
  const ResolvedSplit carved =
      resolve_split(four_cases(), DatasetSpec{"d", "bags", "/unused", 2, false}, spec);
  const auto val = ids(carved.record.at("val"));
  ASSERT_EQ(val.size(), 2u);
  EXPECT_TRUE(val == (std::vector<std::string>{"p2_a", "p2_b"}) ||
              val == (std::vector<std::string>{"p3_a", "p3_b"}));
  EXPECT_EQ(carved.split.train.size(), 4u);
  EXPECT_EQ(ids(carved.record.at("test")), (std::vector<std::string>{"p0_a", "p0_b"}));
}

TEST(SplitFiles, ReadReferenceFoldFilesAndNameUnknownIdsAndMissingFolds) {
  testing::TempDir dir;
  std::ofstream(dir / "fold_0.csv")
      << "ID,Label,Split\np0,0,train\np2,1,train\np1,0,val\np3,1,test\n";
  std::ofstream(dir / "fold_1.csv")
      << "p0,0,test\np1,0,train\np2,1,train\np3,1,validation\n";  // headerless
  SplitSpec spec = from_files(dir.path().string());
  const BagDataset data = four_cases();
  const DatasetSpec dataset{"d", "bags", "/unused", 2, false};
  EXPECT_EQ(ids(resolve_split(data, dataset, spec).record.at("test")),
            (std::vector<std::string>{"p3_a", "p3_b"}));
  spec.fold_index = 1;
  EXPECT_EQ(ids(resolve_split(data, dataset, spec).record.at("val")),
            (std::vector<std::string>{"p3_a", "p3_b"}));
  std::ofstream(dir / "fold_1.csv") << "ID,Label,Split\np0,0,test\np9,0,train\n";
  MIL_EXPECT_THROW_WITH(resolve_split(data, dataset, spec),
                        "fold_1.csv: 1 id(s) match no slide or case of the dataset: p9");
  spec.fold_count = 3;
  MIL_EXPECT_THROW_WITH(resolve_split(data, dataset, spec),
                        "has no splits_{k}.csv or fold_{k}.csv for k = 2");
}

TEST(SplitGuardrails, RefuseValidationEqualToTestUnlessLegacyWhichIsFlagged) {
  testing::TempDir dir;
  for (int k : {0, 1})
    std::ofstream(dir / ("splits_" + std::to_string(k) + ".csv"))
        << "train,val,test\np0,p1,p1\np2,p3,p3\n";
  const BagDataset data = four_cases();
  const DatasetSpec dataset{"d", "bags", "/unused", 2, false};
  MIL_EXPECT_THROW_WITH(resolve_split(data, dataset, from_files(dir.path().string())),
                        "validation equals test (4 bags)");
  const ResolvedSplit legacy =
      resolve_split(data, dataset, from_files(dir.path().string(), "legacy"));
  EXPECT_EQ(legacy.flags, std::vector<std::string>{"val_equals_test"});
  EXPECT_EQ(legacy.split.val, legacy.split.test);
}

TEST(SplitGuardrails, RefuseACaseWithSlidesInTwoPartsUnlessLegacy) {
  testing::TempDir dir;
  for (int k : {0, 1}) {
    std::ofstream(dir / ("splits_" + std::to_string(k) + ".csv"))
        << "train,val,test\np0_a,p2,p0_b\np1,p3,\n";
  }
  const BagDataset data = four_cases();
  const DatasetSpec dataset{"d", "bags", "/unused", 2, false};
  MIL_EXPECT_THROW_WITH(resolve_split(data, dataset, from_files(dir.path().string())),
                        "1 case(s) in two parts: 'p0' (test+train)");
  const ResolvedSplit legacy =
      resolve_split(data, dataset, from_files(dir.path().string(), "legacy"));
  EXPECT_EQ(legacy.flags, std::vector<std::string>{"case_in_two_parts"});
  EXPECT_EQ(ids(legacy.record.at("val")),
            (std::vector<std::string>{"p2_a", "p2_b", "p3_a", "p3_b"}))
      << "a file's own validation is kept";
}

TEST(LegacyProtocol, TrainsOnTheKfoldTrainingFoldsAndValidatesOnTheTestFold) {
  BagDataset data = four_cases();
  for (int i = 0; i < 12; ++i) data.bags.push_back(Bag{"x" + std::to_string(i), {}, i % 2});
  SplitSpec kfold;
  kfold.fold_count = 3;
  kfold.fold_index = 1;
  SplitSpec legacy = kfold;
  legacy.protocol = "legacy";
  const DatasetSpec dataset{"d", "bags", "/unused", 2, false};
  const ResolvedSplit a = resolve_split(data, dataset, kfold),
                      b = resolve_split(data, dataset, legacy);
  EXPECT_EQ(b.split.train, a.split.train);
  EXPECT_EQ(b.split.test, a.split.test);
  EXPECT_EQ(b.split.val, a.split.test);
  EXPECT_TRUE(a.split.val.empty());
  EXPECT_EQ(b.flags, std::vector<std::string>{"val_equals_test"});
  EXPECT_TRUE(a.flags.empty());
  EXPECT_NE(a.sha256, b.sha256) << "the hash covers the validation part";
  EXPECT_EQ(a.record.at("sha256"), a.sha256);
}

}  // namespace mil
