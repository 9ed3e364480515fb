// The data layer's limits (mil/core/reader_limits.h) and the core's JSON limits: each refused
// before the memory it guards is allocated, with an error naming the file and the limit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#ifdef MIL_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "mil/core/json_reader.h"
#include "mil/core/reader_limits.h"
#include "mil/core/sha256.h"
#include "mil/data/feature_io.h"
#include "mil/data/label_csv.h"
#include "mil/data/packed_cache.h"
#include "mil/data/split_protocol.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;

/// A file of `bytes` that takes no disk space (a hole), or false where the file system cannot.
bool make_sparse(const std::string& path, std::uint64_t bytes) {
  std::ofstream(path, std::ios::binary).put('x');
  std::error_code ec;
  fs::resize_file(path, bytes, ec);
  return !ec;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

// CSV files.

TEST(CsvLimits, RefusesALineOverKMaxCsvLineBytesNamingFileAndLine) {
  mil::testing::TempDir dir;
  const std::string path = dir / "labels.csv";
  write_text(path, "slide_id,label\n" + std::string(mil::kMaxCsvLineBytes + 1, 'a') + ",1\n");
  mil::DatasetSpec spec;
  MIL_EXPECT_THROW_WITH(mil::read_label_csv(path, spec),
                        path +
                            ":2: the line's length exceeds the limit of 1048576 "
                            "(kMaxCsvLineBytes)");
  // check-data's reader reports it as a problem of the file instead.
  mil::ProblemLog log;
  EXPECT_TRUE(mil::read_label_csv(path, spec, &log).empty());
  ASSERT_EQ(log.problems().size(), 1u);
  EXPECT_NE(log.problems()[0].message.find("(kMaxCsvLineBytes)"), std::string::npos);
}

TEST(CsvLimits, RefusesMoreLinesThanKMaxCsvLines) {
  mil::testing::TempDir dir;
  const std::string path = dir / "survival.csv";
  write_text(path, "Study,ID,Event,Status,WSI\n" + std::string(mil::kMaxCsvLines, '\n'));
  MIL_EXPECT_THROW_WITH(mil::read_survival_csv(path),
                        path + ": its line count exceeds the limit of 4194304 (kMaxCsvLines)");
}

TEST(CsvLimits, RefusesAFileOverKMaxCsvFileBytes) {
  mil::testing::TempDir dir;
  const std::string path = dir / "fold_0.csv";
  if (!make_sparse(path, mil::kMaxCsvFileBytes + 1)) GTEST_SKIP() << "no sparse files here";
  MIL_EXPECT_THROW_WITH(mil::read_split_file(dir.path().string(), 0),
                        path +
                            ": its size (268435457) exceeds the limit of 268435456 "
                            "(kMaxCsvFileBytes)");
}

TEST(CsvLimits, SplitFilesHaveTheSameLineLimit) {
  mil::testing::TempDir dir;
  write_text(dir / "splits_0.csv", ",train,val,test\n0," + std::string(mil::kMaxCsvLineBytes, 'a'));
  MIL_EXPECT_THROW_WITH(mil::read_split_file(dir.path().string(), 0),
                        dir / "splits_0.csv" + ":2: the line's length exceeds the limit");
}

// JSON documents read from files.

TEST(JsonLimits, RefusesNestingDeeperThanKMaxJsonDepthBeforeParsing) {
  mil::testing::TempDir dir;
  const std::string path = dir / "result.json";
  write_text(path,
             std::string(mil::kMaxJsonDepth + 1, '[') + std::string(mil::kMaxJsonDepth + 1, ']'));
  MIL_EXPECT_THROW_WITH(mil::read_json_file(path),
                        path +
                            ": the nesting of JSON arrays and objects exceeds the limit of 64 "
                            "(kMaxJsonDepth)");
  write_text(path, std::string(mil::kMaxJsonDepth, '[') + std::string(mil::kMaxJsonDepth, ']'));
  EXPECT_TRUE(mil::read_json_file(path).is_array());
  // Brackets inside strings do not count.
  EXPECT_FALSE(mil::json_nests_deeper_than("[\"" + std::string(100, '[') + "\\\"\"]", 2));
}

TEST(JsonLimits, RefusesAFileOverKMaxJsonDocumentBytesBeforeReadingIt) {
  mil::testing::TempDir dir;
  const std::string path = dir / "job.json";
  if (!make_sparse(path, mil::kMaxJsonDocumentBytes + 1)) GTEST_SKIP() << "no sparse files here";
  MIL_EXPECT_THROW_WITH(mil::read_json_file(path),
                        "'" + path +
                            "': its size (268435457) exceeds the limit of 268435456 "
                            "(kMaxJsonDocumentBytes)");
}

// Packed caches.

namespace {

/// A .milpack header (version 1, f32, D = 4, `slides` slides) for an index of `index_bytes` at
/// offset 128, with `hash` and a file length of `file_bytes`.
std::string milpack_header(std::uint64_t slides, std::uint64_t index_bytes, const std::string& hash,
                           std::uint64_t file_bytes) {
  std::string header(128, '\0');
  std::memcpy(header.data(), "MILPACK\0", 8);
  const std::uint32_t version = 1, dtype = 2;
  const std::uint64_t dim = 4, offset = 128;
  std::memcpy(header.data() + 8, &version, 4);
  std::memcpy(header.data() + 12, &dtype, 4);
  std::memcpy(header.data() + 16, &dim, 8);
  std::memcpy(header.data() + 24, &slides, 8);
  std::memcpy(header.data() + 32, &offset, 8);
  std::memcpy(header.data() + 40, &index_bytes, 8);
  std::memcpy(header.data() + 48, hash.data(), std::min<std::size_t>(64, hash.size()));
  std::memcpy(header.data() + 112, &file_bytes, 8);
  return header;
}

}  // namespace

TEST(PackedCacheLimits, RefusesAnIndexOverKMaxPackedIndexBytes) {
  mil::testing::TempDir dir;
  const std::string path = dir / "big.milpack";
  const std::uint64_t index = mil::kMaxPackedIndexBytes + 1;
  if (!make_sparse(path, 128 + index)) GTEST_SKIP() << "no sparse files here";
  std::fstream(path, std::ios::in | std::ios::out | std::ios::binary)
      .write(milpack_header(1, index, std::string(64, '0'), 128 + index).data(), 128);
  MIL_EXPECT_THROW_WITH(mil::PackedCache::open(path),
                        "packed cache '" + path +
                            "': its index's size (268435457) exceeds the "
                            "limit of 268435456 (kMaxPackedIndexBytes)");
}

TEST(PackedCacheLimits, RefusesASlideWhoseSizeWrapsAround) {
  // 2^62 instances x 4 dims x 4 bytes wraps to 0 in 64 bits; the check must not.
  mil::testing::TempDir dir;
  const std::string path = dir / "wrap.milpack";
  const std::string index =
      R"({"format":"milpack","version":1,"dtype":"f32","feature_dim":4,"source":{},"slides":[)"
      R"({"id":"s","instances":4611686018427387904,"offset":512,"bytes":0,"sha256":"",)"
      R"("source_file":"s.pt","source_sha256":""}]})";
  std::string file = milpack_header(1, index.size(), mil::sha256_hex(index), 0) + index;
  file.resize(576, ' ');
  const std::uint64_t length = file.size();
  std::memcpy(file.data() + 112, &length, 8);
  write_text(path, file);
  MIL_EXPECT_THROW_WITH(mil::PackedCache::open(path), "slide 's' has an inconsistent index entry");
}

// CLAM/TRIDENT .h5 files.

#ifdef MIL_HAVE_HDF5

TEST(H5Limits, RefusesFeaturesThatWouldDecodeToMoreThanKMaxH5ExpansionRatioTimesTheFile) {
  mil::testing::TempDir dir;
  const std::string path = dir / "claims.h5";
  {
    // [10^6, 10^3] float32 in chunks that are never written: a few KB on disk, 4 GB decoded.
    H5::H5File file(path, H5F_ACC_TRUNC);
    const hsize_t dims[2] = {1000000, 1000}, chunk[2] = {1000, 1000};
    H5::DSetCreatPropList chunked;
    chunked.setChunk(2, chunk);
    file.createDataSet("features", H5::PredType::IEEE_F32LE, H5::DataSpace(2, dims), chunked);
  }
  MIL_EXPECT_THROW_WITH(mil::read_h5_slide(path), "'" + path +
                                                      "': 'features' [1000000, 1000] "
                                                      "decodes to 4000000000 bytes");
  MIL_EXPECT_THROW_WITH(mil::read_h5_slide(path), "(kMaxH5ExpansionRatio)");
}

TEST(H5Limits, RefusesMoreAttributesThanKMaxH5AttributesAndLongStrings) {
  mil::testing::TempDir dir;
  const at::Tensor features = at::ones({2, 3});
  const std::string many = dir / "many.h5";
  mil::write_h5_slide(many, features, at::Tensor(), /*float16=*/false);
  {
    H5::H5File file(many, H5F_ACC_RDWR);
    H5::DataSet data = file.openDataSet("features");
    const int one = 1;
    for (int i = 0; i <= mil::kMaxH5Attributes; ++i) {
      data.createAttribute("a" + std::to_string(i), H5::PredType::STD_I32LE,
                           H5::DataSpace(H5S_SCALAR))
          .write(H5::PredType::NATIVE_INT, &one);
    }
  }
  MIL_EXPECT_THROW_WITH(mil::read_h5_slide(many),
                        "'" + many +
                            "': the attribute count of '/features' (257) exceeds the "
                            "limit of 256 (kMaxH5Attributes)");
  const std::string longer = dir / "long.h5";
  {
    // Attributes over 64 KB need the 1.8 file format's dense attribute storage.
    H5::FileAccPropList access;
    access.setLibverBounds(H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    H5::H5File file(longer, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, access);
    const hsize_t dims[2] = {2, 3};
    H5::DataSet data =
        file.createDataSet("features", H5::PredType::IEEE_F32LE, H5::DataSpace(2, dims));
    data.write(features.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
    const std::string text(mil::kMaxH5StringAttributeBytes + 1, 'x');
    H5::StrType type(H5::PredType::C_S1, text.size());
    data.createAttribute("name", type, H5::DataSpace(H5S_SCALAR)).write(type, text);
  }
  MIL_EXPECT_THROW_WITH(mil::read_h5_slide(longer),
                        "the size of string attribute 'name' (65537) exceeds the limit of 65536 "
                        "(kMaxH5StringAttributeBytes)");
}

#endif  // MIL_HAVE_HDF5
