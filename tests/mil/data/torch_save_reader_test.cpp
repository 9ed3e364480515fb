// The torch.save reader's refusals: the zip container, the unpickler's limits and its rules for
// containers, and the tensor views it rebuilds. Each limit error names the limit (the callers add
// the file's name: see FeatureFiles.* below).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mil/core/reader_limits.h"
#include "mil/data/feature_io.h"
#include "mil/data/torch_pickle.h"
#include "mil/data/zip_archive.h"
#include "mil/models/state_dict.h"
#include "tests/support/expect_throw.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/temp_dir.h"

namespace {

using mil::testing::Pickle;
using mil::testing::torch_save_archive;

/// Four float32 values 0, 1, 2, 3 as a storage record's bytes.
std::string four_floats() {
  const float values[4] = {0, 1, 2, 3};
  return std::string(reinterpret_cast<const char*>(values), sizeof values);
}

c10::IValue load(const Pickle& pickle,
                 const std::vector<std::pair<std::string, std::string>>& records = {}) {
  return mil::load_torch_save_bytes(torch_save_archive(pickle.bytes(), records));
}

/// Offset of the first occurrence of `pattern` in `bytes`.
std::size_t find(const std::vector<char>& bytes, const std::string& pattern) {
  const auto it = std::search(bytes.begin(), bytes.end(), pattern.begin(), pattern.end());
  EXPECT_NE(it, bytes.end()) << "no " << pattern;
  return std::size_t(it - bytes.begin());
}

/// Little-endian bytes of `v`, `width` of them.
std::string le(std::uint64_t v, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out += char((v >> (8 * i)) & 0xff);
  return out;
}

/// A one-member zip ("archive/data.pkl", 4 bytes) whose central directory claims `claimed` bytes
/// for the member through a ZIP64 field.
std::vector<char> zip_claiming(std::uint64_t claimed) {
  const std::string name = "archive/data.pkl", data = "abcd";
  std::string zip = le(0x04034b50, 4) + le(45, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                    le(mil::crc32_of(data), 4) + le(4, 4) + le(4, 4) + le(name.size(), 2) +
                    le(0, 2) + name + data;
  const std::size_t directory = zip.size();
  zip += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
         le(mil::crc32_of(data), 4) + le(0xffffffffu, 4) + le(0xffffffffu, 4) + le(name.size(), 2) +
         le(20, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + name + le(1, 2) +
         le(16, 2) + le(claimed, 8) + le(claimed, 8);
  const std::size_t directory_bytes = zip.size() - directory;
  zip += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(1, 2) + le(1, 2) + le(directory_bytes, 4) +
         le(directory, 4) + le(0, 2);
  return std::vector<char>(zip.begin(), zip.end());
}

}  // namespace

TEST(ZipArchive, ReadsWhatLibTorchsWriterWritesMemberByMember) {
  const auto bytes = torch_save_archive("pickle", {{"data/0", "abcd"}});
  const mil::ZipArchive archive(std::string_view(bytes.data(), bytes.size()));
  EXPECT_EQ(archive.prefix(), "archive");
  ASSERT_NE(archive.find("data/0"), nullptr);
  EXPECT_EQ(archive.data(*archive.find("data/0")), "abcd");
  EXPECT_EQ(archive.data(*archive.find("data.pkl")), "pickle");
  EXPECT_EQ(archive.find("data/1"), nullptr);
}

TEST(ZipArchive, RefusesATruncatedArchive) {
  auto bytes = torch_save_archive("pickle", {{"data/0", "abcd"}});
  bytes.resize(bytes.size() / 2);
  MIL_EXPECT_THROW_WITH(mil::ZipArchive(std::string_view(bytes.data(), bytes.size())),
                        "no end-of-central-directory record (truncated?)");
}

TEST(ZipArchive, RefusesAMemberClaiming400GBBeforeReadingIt) {
  const std::uint64_t claimed = std::uint64_t{400} << 30;
  const auto bytes = zip_claiming(claimed);
  MIL_EXPECT_THROW_WITH(mil::ZipArchive(std::string_view(bytes.data(), bytes.size())),
                        "member 'archive/data.pkl': its size (429496729600) exceeds the limit of "
                        "17179869184 (kMaxArchiveMemberBytes)");
  // Under the limit, the claim is still checked against the archive before anything is read.
  const auto smaller = zip_claiming(std::uint64_t{4} << 30);
  MIL_EXPECT_THROW_WITH(mil::ZipArchive(std::string_view(smaller.data(), smaller.size())),
                        "run past the central directory");
}

TEST(ZipArchive, RefusesMoreMembersThanKMaxArchiveMembersBeforeReadingTheDirectory) {
  // LibTorch's writer always writes a ZIP64 end record; its 64-bit member count (at +32) is the
  // one the reader believes.
  auto bytes = torch_save_archive("pickle", {{"data/0", "abcd"}});
  const std::size_t record = find(bytes, std::string("PK\x06\x06", 4));
  const std::string claimed = le(std::uint64_t(mil::kMaxArchiveMembers) + 1, 8);
  std::memcpy(bytes.data() + record + 32, claimed.data(), claimed.size());
  MIL_EXPECT_THROW_WITH(mil::ZipArchive(std::string_view(bytes.data(), bytes.size())),
                        "its member count (1048577) exceeds the limit of 1048576 "
                        "(kMaxArchiveMembers)");
}

TEST(TorchSaveReader, RefusesAStorageRecordClaiming400GB) {
  // The pickle's element count disagrees with the record's bytes: refused before allocating.
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", 0, 0, {1}, {1}).stop(),
                             {{"data/0", four_floats()}}),
                        "storage record data/0 holds 16 bytes, expected 0 elements of 4");
  Pickle huge;
  huge.global("torch._utils", "_rebuild_tensor_v2").mark();
  huge.mark().text("storage").global("torch", "FloatStorage").text("0").text("cpu");
  huge.long_int(std::int64_t{100} << 30).tuple().raw("Q");
  huge.integer(0).int_tuple({1}).int_tuple({1}).tuple().reduce().stop();
  MIL_EXPECT_THROW_WITH(load(huge, {{"data/0", four_floats()}}),
                        "storage record data/0 holds 16 bytes, expected 107374182400 elements");
}

TEST(ZipArchive, RefusesCompressedAndCorruptMembers) {
  auto bytes = torch_save_archive("pickle", {{"data/0", "abcd"}});
  const std::size_t entry = find(bytes, std::string("PK\x01\x02", 4));
  auto compressed = bytes;
  compressed[entry + 10] = 8;  // deflate
  MIL_EXPECT_THROW_WITH(mil::ZipArchive(std::string_view(compressed.data(), compressed.size())),
                        "is compressed (method 8); torch.save stores members uncompressed");
  auto corrupt = bytes;
  corrupt[find(corrupt, "pickle")] = 'P';
  const mil::ZipArchive archive(std::string_view(corrupt.data(), corrupt.size()));
  MIL_EXPECT_THROW_WITH(archive.data(*archive.find("data.pkl")), "CRC-32 mismatch");
}

TEST(ZipArchive, CrcMatchesTheStandardCheckValue) {
  EXPECT_EQ(mil::crc32_of("123456789"), 0xcbf43926u);  // the CRC-32/ISO-HDLC check value
  EXPECT_EQ(mil::crc32_of(""), 0u);
}

TEST(TorchSaveReader, RebuildsAHandMadeTensor) {
  const auto value = load(Pickle().tensor("FloatStorage", "0", 4, 1, {3}, {1}).stop(),
                          {{"data/0", four_floats()}});
  EXPECT_TRUE(value.toTensor().equal(at::arange(1, 4, at::kFloat)));
}

TEST(TorchSaveReader, RefusesAViewThatReachesPastItsStorage) {
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", 4, 2, {3}, {1}).stop(),
                             {{"data/0", four_floats()}}),
                        "a tensor view reaches past its storage of 4 elements");
  MIL_EXPECT_THROW_WITH(
      load(Pickle().tensor("FloatStorage", "0", 4, 0, {2, 2}, {0x40000000, 1}).stop(),
           {{"data/0", four_floats()}}),
      "reaches past its storage");
}

TEST(TorchSaveReader, RefusesAStorageRecordOfAnotherSizeThanItsElementCountSays) {
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", 1000000, 0, {1}, {1}).stop(),
                             {{"data/0", four_floats()}}),
                        "storage record data/0 holds 16 bytes, expected 1000000 elements of 4");
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", -4, 0, {1}, {1}).stop(),
                             {{"data/0", four_floats()}}),
                        "storage record data/0 holds 16 bytes");
}

TEST(TorchSaveReader, RefusesMoreElementsThanKMaxTensorElements) {
  MIL_EXPECT_THROW_WITH(
      load(Pickle().tensor("FloatStorage", "0", 4, 0, {65536, 65536, 2}, {0, 0, 0}).stop(),
           {{"data/0", four_floats()}}),
      "a tensor's element count (8589934592) exceeds the limit of 4294967296 (kMaxTensorElements)");
}

TEST(TorchSaveReader, RefusesABroadcastViewOverKMaxExpandedTensorElements) {
  // 2^25 elements from one stored float: 4 bytes on disk would become 128 MB.
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", 4, 0, {1 << 25}, {0}).stop(),
                             {{"data/0", four_floats()}}),
                        "exceeds the limit of 16777216 (kMaxExpandedTensorElements)");
  // Within the limit it is read, as Python's torch.load reads it.
  const auto small = load(Pickle().tensor("FloatStorage", "0", 4, 3, {5}, {0}).stop(),
                          {{"data/0", four_floats()}});
  EXPECT_TRUE(small.toTensor().equal(at::full({5}, 3.0f)));
}

TEST(TorchSaveReader, RefusesMoreDimensionsThanKMaxTensorDims) {
  const std::vector<std::int32_t> ones(mil::kMaxTensorDims + 1, 1);
  MIL_EXPECT_THROW_WITH(load(Pickle().tensor("FloatStorage", "0", 4, 0, ones, ones).stop(),
                             {{"data/0", four_floats()}}),
                        "a tensor's dimension count (17) exceeds the limit of 16 (kMaxTensorDims)");
}

TEST(TorchSaveReader, RefusesNestingDeeperThanKMaxPickleDepth) {
  Pickle deep;
  deep.empty_list();
  for (int i = 0; i < mil::kMaxPickleDepth; ++i) deep.empty_list();
  for (int i = 0; i < mil::kMaxPickleDepth; ++i) deep.append();
  MIL_EXPECT_THROW_WITH(load(deep.stop()),
                        "the nesting of the pickle's containers exceeds the limit of 32 "
                        "(kMaxPickleDepth)");
  Pickle fine;
  fine.empty_list();
  for (int i = 1; i < mil::kMaxPickleDepth; ++i) fine.empty_list();
  for (int i = 1; i < mil::kMaxPickleDepth; ++i) fine.append();
  EXPECT_TRUE(load(fine.stop()).isList());
}

TEST(TorchSaveReader, RefusesMoreOpcodesThanKMaxPickleOpcodes) {
  Pickle busy;
  std::string none_pop;
  for (std::size_t i = 0; i < mil::kMaxPickleOpcodes / 2; ++i) none_pop += "N0";
  busy.raw(none_pop).none();
  MIL_EXPECT_THROW_WITH(
      load(busy.stop()),
      "the pickle's opcode count exceeds the limit of 8388608 (kMaxPickleOpcodes)");
}

TEST(TorchSaveReader, RefusesAPickleLargerThanKMaxPickleBytes) {
  Pickle large;
  large.none().stop().raw(std::string(mil::kMaxPickleBytes, 'N'));
  MIL_EXPECT_THROW_WITH(load(large), "exceeds the limit of 67108864 (kMaxPickleBytes)");
}

TEST(TorchSaveReader, RefusesAListThatHoldsItself) {
  // l = []; l.append(l): a cycle would leak and make every traversal recurse forever.
  MIL_EXPECT_THROW_WITH(load(Pickle().empty_list().put(0).get(0).append().stop()),
                        "places a container inside itself");
}

TEST(TorchSaveReader, RefusesChangingAContainerAfterPlacingItInAnother) {
  // outer = [inner]; then inner.append(outer): the other way to build a cycle.
  MIL_EXPECT_THROW_WITH(
      load(Pickle().empty_list().put(0).empty_list().put(1).append().get(1).get(0).append().stop()),
      "changes a container after placing it in another");
}

TEST(TorchSaveReader, RefusesAStringLongerThanWhatIsLeftBeforeAllocatingIt) {
  // BINUNICODE8 claiming 2^62 bytes.
  MIL_EXPECT_THROW_WITH(load(Pickle().raw(std::string("\x8d\0\0\0\0\0\0\0\x40", 9)).stop()),
                        "truncated pickle program");
}

TEST(FeatureFiles, LimitErrorsNameTheFile) {
  mil::testing::TempDir dir;
  const std::string path = dir / "deep.pt";
  Pickle deep;
  for (int i = 0; i <= mil::kMaxPickleDepth; ++i) deep.empty_list();
  for (int i = 0; i < mil::kMaxPickleDepth; ++i) deep.append();
  const auto bytes = torch_save_archive(deep.stop().bytes());
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  MIL_EXPECT_THROW_WITH(mil::read_feature_file(path), "'" + path + "'");
  MIL_EXPECT_THROW_WITH(mil::read_feature_file(path), "(kMaxPickleDepth)");
  MIL_EXPECT_THROW_WITH(mil::read_state_dict(path), "'" + path + "'");
  MIL_EXPECT_THROW_WITH(mil::read_state_dict(path), "(kMaxPickleDepth)");
}

TEST(FeatureFiles, RefusesAFileOverKMaxTorchSaveFileBytesBeforeReadingIt) {
  mil::testing::TempDir dir;
  const std::string path = dir / "huge.pt";
  std::ofstream(path).put('P');
  std::error_code ec;
  std::filesystem::resize_file(path, mil::kMaxTorchSaveFileBytes + 1, ec);  // sparse: no disk used
  if (ec) GTEST_SKIP() << "cannot make a sparse file here: " << ec.message();
  MIL_EXPECT_THROW_WITH(mil::read_feature_file(path),
                        "'" + path +
                            "': its size (17179869185) exceeds the limit of 17179869184 "
                            "(kMaxTorchSaveFileBytes)");
}
