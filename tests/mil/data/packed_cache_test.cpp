// The packed feature cache (.milpack): exact round trips, zero-copy views, corruption reports, and
// the RAM budget that points users to it.
#include "mil/data/packed_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "mil/data/bag_dataset.h"
#include "mil/data/feature_io.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
namespace fs = std::filesystem;

/// Three slides with values float16 cannot all hold exactly: large, tiny, negative zero, subnormal.
std::vector<at::Tensor> awkward_slides() {
  at::manual_seed(3);
  std::vector<at::Tensor> slides{at::randn({5, 7}) * 1000, at::randn({1, 7}) * 1e-6,
                                 at::randn({9, 7})};
  slides[2][0][0] = -0.0f;
  slides[2][0][1] = std::numeric_limits<float>::denorm_min();
  return slides;
}

/// <root>/pt_files/s<i>.pt for each tensor and labels.csv with alternating labels.
void write_dataset(const fs::path& root, const std::vector<at::Tensor>& slides) {
  fs::create_directories(root / "pt_files");
  std::ofstream labels(root / "labels.csv");
  labels << "slide_id,label\n";
  for (std::size_t i = 0; i < slides.size(); ++i) {
    write_feature_file((root / "pt_files" / ("s" + std::to_string(i) + ".pt")).string(), slides[i]);
    labels << "s" << i << ',' << i % 2 << '\n';
  }
}

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(),
                     std::size_t(a.nbytes())) == 0;
}

DatasetSpec spec_for(const fs::path& root, const std::string& features) {
  DatasetSpec spec{"d", "bags", root.string(), 2, false};
  spec.features = features;
  return spec;
}
}  // namespace

TEST(PackedCache, RoundTripsFloat32BitForBitAsZeroCopyViewsThatOutliveTheCache) {
  testing::TempDir dir;
  const auto slides = awkward_slides();
  write_dataset(dir.path(), slides);
  const PackSummary summary =
      pack_feature_folder(dir / "pt_files", false, dir / "c.milpack", {"f32", true, {}});
  EXPECT_TRUE(summary.verified);
  EXPECT_EQ(summary.slides, 3u);
  EXPECT_EQ(summary.instances, 15);
  EXPECT_EQ(summary.payload_bytes, 15u * 7 * 4);
  std::vector<at::Tensor> views;
  {
    const auto cache = PackedCache::open(dir / "c.milpack");
    ASSERT_EQ(cache->slides().size(), 3u);
    EXPECT_EQ(cache->feature_dim(), 7);
    for (std::size_t i = 0; i < 3; ++i) {
      const PackedSlide& s = cache->slides()[i];
      EXPECT_EQ(s.id, "s" + std::to_string(i));
      EXPECT_EQ(s.offset % 64, 0u) << "payload blocks are 64-byte aligned";
      views.push_back(cache->features(i));
      EXPECT_EQ(views.back().data_ptr(), static_cast<const void*>(cache->raw(i)))
          << "a view, not a copy";
    }
  }  // the cache object is gone; the views keep the mapping alive
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(views[i], slides[i])) << "slide " << i;
  EXPECT_TRUE(std::signbit(views[2][0][0].item<float>())) << "-0.0 survives";
}

TEST(PackedCache, Float16EqualsTheFloat16RoundingOfTheSource) {
  testing::TempDir dir;
  const auto slides = awkward_slides();
  write_dataset(dir.path(), slides);
  pack_feature_folder(dir / "pt_files", false, dir / "h.milpack", {"f16", false, {}});
  const auto cache = PackedCache::open(dir / "h.milpack");
  EXPECT_EQ(cache->dtype(), "f16");
  EXPECT_EQ(cache->slides()[0].bytes, 5u * 7 * 2);
  bool any_rounded = false;
  for (std::size_t i = 0; i < 3; ++i) {
    const at::Tensor expected = slides[i].to(at::kHalf).to(at::kFloat);
    EXPECT_TRUE(same_bits(cache->features(i), expected)) << "slide " << i;
    any_rounded = any_rounded || !at::equal(expected, slides[i]);
  }
  EXPECT_TRUE(any_rounded) << "the fixture must hold values float16 rounds";
}

TEST(PackedCache, LoadsAsTheSameDatasetAndRecordsTheSourceHashOfTheFiles) {
  testing::TempDir dir;
  const auto slides = awkward_slides();
  write_dataset(dir.path(), slides);
  pack_feature_folder(dir / "pt_files", false, dir / kPackedCacheName);
  const BagDataset files = load_dataset(spec_for(dir.path(), "pt"));
  const BagDataset packed = load_dataset(spec_for(dir.path(), "packed"));
  ASSERT_EQ(packed.bags.size(), files.bags.size());
  for (std::size_t i = 0; i < files.bags.size(); ++i) {
    EXPECT_TRUE(same_bits(packed.bags[i].features, files.bags[i].features));
    EXPECT_EQ(packed.bags[i].label, files.bags[i].label);
  }
  const auto& p = packed.inputs.at("features");
  EXPECT_EQ(p.at("source_sha256"), files.inputs.at("features").at("sha256"))
      << "same inputs, same hash";
  EXPECT_EQ(p.at("cache"), dir / kPackedCacheName);
  EXPECT_EQ(p.at("dtype"), "f32");
}

TEST(PackedCache, KeepsTheCoordsOfH5Sources) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "h5_files");
  const at::Tensor x = at::arange(12, at::kFloat).reshape({4, 3}),
                   coords = at::arange(8, at::kLong).reshape({4, 2}) * 256;
  write_h5_slide(dir / "h5_files/a.h5", x, coords, /*float16=*/true);
  write_h5_slide(dir / "h5_files/b.h5", x + 1, at::Tensor(), /*float16=*/false);
  pack_feature_folder(dir / "h5_files", true, dir / "c.milpack");
  const auto cache = PackedCache::open(dir / "c.milpack");
  EXPECT_TRUE(at::equal(cache->features(0), x));
  EXPECT_TRUE(at::equal(cache->coords(0), coords));
  EXPECT_FALSE(cache->coords(1).defined());
  EXPECT_EQ(cache->slides()[0].coords_offset % 64, 0u);
}

TEST(PackedCache, NamesTheFileAndTheSlideWhenTruncatedOrCorrupt) {
  testing::TempDir dir;
  write_dataset(dir.path(), awkward_slides());
  const std::string path = dir / "c.milpack";
  pack_feature_folder(dir / "pt_files", false, path);
  const PackedSlide last = PackedCache::open(path)->slides().back();
  {  // flip one byte of the last slide: opening still works, verification names the slide
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(last.offset + 5));
    f.put('\x7f');
  }
  const auto cache = PackedCache::open(path);
  cache->verify(0);
  MIL_EXPECT_THROW_WITH(cache->verify(2), "slide 's2' is corrupt");
  MIL_EXPECT_THROW_WITH(cache->verify(2), path);
  fs::resize_file(path, last.offset + 8);
  MIL_EXPECT_THROW_WITH(PackedCache::open(path), "slide(s) 's2' lie past the end");
  MIL_EXPECT_THROW_WITH(PackedCache::open(path), "packed cache '" + path + "' is truncated");
  {  // damage the index
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(140);
    f.put('#');
  }
  MIL_EXPECT_THROW_WITH(PackedCache::open(path), "the index is corrupt");
  std::ofstream(dir / "other.milpack")
      << "not a cache, but long enough to hold a header. " << std::string(100, '.');
  MIL_EXPECT_THROW_WITH(PackedCache::open(dir / "other.milpack"), "is not a packed cache");
}

TEST(PackedCache, PackRefusesMixedDimsAndNonFiniteValuesNamingTheFile) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "mixed");
  write_feature_file(dir / "mixed/a.pt", at::zeros({2, 4}));
  write_feature_file(dir / "mixed/b.pt", at::zeros({2, 5}));
  MIL_EXPECT_THROW_WITH(pack_feature_folder(dir / "mixed", false, dir / "m.milpack"),
                        "b.pt': feature dim 5 differs from 4");
  fs::create_directories(dir.path() / "nan");
  write_feature_file(dir / "nan/a.pt", at::full({2, 4}, std::numeric_limits<float>::quiet_NaN()));
  MIL_EXPECT_THROW_WITH(pack_feature_folder(dir / "nan", false, dir / "n.milpack"),
                        "a.pt': features hold NaN or Inf");
  fs::create_directories(dir.path() / "big");
  write_feature_file(dir / "big/a.pt", at::full({2, 4}, 1e6f));
  MIL_EXPECT_THROW_WITH(
      pack_feature_folder(dir / "big", false, dir / "b.milpack", {"f16", false, {}}),
      "beyond float16's range");
  EXPECT_FALSE(fs::exists(dir / "m.milpack"));
  EXPECT_TRUE(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 3)
      << "no temporary files are left behind";
}

TEST(RamBudget, RefusesAPreloadOverBudgetSuggestingPackButNotAnF32Cache) {
  testing::TempDir dir;
  write_dataset(dir.path(), awkward_slides());  // 15 x 7 floats = 420 bytes
  DatasetSpec spec = spec_for(dir.path(), "pt");
  spec.ram_budget_gb = 300e-9;  // 300 bytes
  MIL_EXPECT_THROW_WITH(load_dataset(spec), "over ram_budget_gb");
  MIL_EXPECT_THROW_WITH(load_dataset(spec), "mhim pack --root " + dir.path().string());
  spec.ram_budget_gb = 1e-5;  // 10 kB: the .pt files (about 1 kB each) and the tensors fit
  EXPECT_EQ(load_dataset(spec).bags.size(), 3u);
  spec.ram_budget_gb = 300e-9;
  pack_feature_folder(dir / "pt_files", false, dir / kPackedCacheName);
  spec.features = "packed";
  EXPECT_EQ(load_dataset(spec).bags.size(), 3u) << "f32 bags are views of the mapped file";
  pack_feature_folder(dir / "pt_files", false, dir / kPackedCacheName, {"f16", false, {}});
  // f16 bags are converted copies, so they count.
  MIL_EXPECT_THROW_WITH(load_dataset(spec), "over ram_budget_gb");
}

}  // namespace mil
