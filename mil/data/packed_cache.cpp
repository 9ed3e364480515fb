#include "mil/data/packed_cache.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "mil/core/durable_file.h"
#include "mil/core/json_reader.h"
#include "mil/core/reader_limits.h"
#include "mil/core/sha256.h"
#include "mil/data/feature_io.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .milpack layout is little-endian");

constexpr char kMagic[8] = {'M', 'I', 'L', 'P', 'A', 'C', 'K', '\0'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint64_t kHeaderBytes = 128;  ///< Fixed header size; the index starts here.
constexpr std::uint64_t kAlignment =
    64;  ///< Every payload block starts at a multiple of this (cache line, AVX-512).

/// The fixed header, field by field at the offsets the layout comment gives.
struct Header {
  std::uint32_t version = kVersion;
  std::uint32_t dtype = 0;  ///< 1 = f16, 2 = f32.
  std::uint64_t feature_dim = 0;
  std::uint64_t slide_count = 0;
  std::uint64_t index_offset = 0;
  std::uint64_t index_bytes = 0;
  std::string index_sha256;  ///< 64 hex characters.
  std::uint64_t file_bytes = 0;
};

template <typename T>
void put(std::vector<char>& out, std::size_t at, T value) {
  std::memcpy(out.data() + at, &value, sizeof value);
}
template <typename T>
T get(const std::uint8_t* in, std::size_t at) {
  T value;
  std::memcpy(&value, in + at, sizeof value);
  return value;
}

std::vector<char> encode_header(const Header& h) {
  std::vector<char> out(kHeaderBytes, 0);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  put(out, 8, h.version);
  put(out, 12, h.dtype);
  put(out, 16, h.feature_dim);
  put(out, 24, h.slide_count);
  put(out, 32, h.index_offset);
  put(out, 40, h.index_bytes);
  std::memcpy(out.data() + 48, h.index_sha256.data(), 64);
  put(out, 112, h.file_bytes);
  return out;
}

std::uint64_t align_up(std::uint64_t value) {
  return (value + kAlignment - 1) / kAlignment * kAlignment;
}

[[noreturn]] void throw_errno(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

/// A write-only file written at explicit offsets; closes on destruction.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_errno("cannot create", path);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write_at(std::uint64_t offset, const void* data, std::size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::pwrite(fd_, bytes, size, off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot write", path_);
      bytes += n, offset += std::uint64_t(n), size -= std::size_t(n);
    }
  }
  void finish(std::uint64_t length) {
    if (::ftruncate(fd_, off_t(length)) != 0) throw_errno("cannot size", path_);
    if (::fsync(fd_) != 0) throw_errno("cannot fsync", path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_errno("cannot close", path_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

/// An upper bound on the index's JSON size, known before any slide is read: ids and names may grow
/// six-fold when escaped, every number fits 20 digits.
std::uint64_t index_bound(const std::vector<fs::path>& files, const std::string& directory) {
  std::uint64_t bound = 512 + 6 * directory.size();
  for (const fs::path& f : files)
    bound += 400 + 6 * (f.stem().string().size() + f.filename().string().size());
  return bound;
}

nlohmann::json slide_json(const PackedSlide& s) {
  nlohmann::json j = {{"id", s.id},
                      {"instances", s.instances},
                      {"offset", s.offset},
                      {"bytes", s.bytes},
                      {"sha256", s.sha256},
                      {"source_file", s.source_file},
                      {"source_sha256", s.source_sha256}};
  if (s.coords_offset != 0) j["coords_offset"] = s.coords_offset;
  return j;
}

}  // namespace

PackSummary pack_feature_folder(const std::string& directory, bool h5, const std::string& out,
                                const PackOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16") {
    throw std::invalid_argument("pack: dtype must be f32 or f16, got '" + options.dtype + "'");
  }
  const std::string extension = h5 ? ".h5" : ".pt";
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (entry.path().extension() == extension && entry.is_regular_file())
      files.push_back(entry.path());
  }
  if (ec) throw std::runtime_error("cannot list '" + directory + "': " + ec.message());
  if (files.empty())
    throw std::runtime_error("'" + directory + "' holds no " + extension + " files to pack");
  std::sort(files.begin(), files.end());

  const bool half = options.dtype == "f16";
  const std::uint64_t index_space = align_up(index_bound(files, directory));
  const std::string temporary = temporary_path_for(out);
  PackSummary summary;
  std::vector<PackedSlide> slides;
  try {
    OutputFile file(temporary);
    std::uint64_t position = kHeaderBytes + index_space;
    for (const fs::path& source : files) {
      const std::string path = source.string();
      at::Tensor features, coords;
      std::string source_sha256;
      if (h5) {
        H5Slide slide = read_h5_slide(path);
        features = slide.features;
        coords = slide.coords;
        source_sha256 = sha256_file(path);
      } else {
        const std::vector<char> bytes = read_file_bytes(path);
        features = decode_feature_bytes(bytes, path);
        source_sha256 = sha256_hex(std::string_view(bytes.data(), bytes.size()));
      }
      if (summary.feature_dim == 0) summary.feature_dim = int(features.size(1));
      if (features.size(1) != summary.feature_dim) {
        throw std::runtime_error("'" + path + "': feature dim " + std::to_string(features.size(1)) +
                                 " differs from " + std::to_string(summary.feature_dim) + " of '" +
                                 files.front().string() + "'");
      }
      if (!at::isfinite(features).all().item<bool>()) {
        throw std::runtime_error("'" + path + "': features hold NaN or Inf (see mhim check-data)");
      }
      const at::Tensor stored = half ? features.to(at::kHalf).contiguous() : features.contiguous();
      if (half && !at::isfinite(stored).all().item<bool>()) {
        throw std::runtime_error("'" + path +
                                 "': values beyond float16's range (65504); pack with --dtype f32");
      }
      PackedSlide slide;
      slide.id = source.stem().string();
      slide.instances = features.size(0);
      slide.offset = position;
      slide.bytes = std::uint64_t(stored.nbytes());
      slide.sha256 =
          sha256_hex(std::string_view(static_cast<const char*>(stored.data_ptr()), slide.bytes));
      slide.source_file = source.filename().string();
      slide.source_sha256 = source_sha256;
      file.write_at(position, stored.data_ptr(), slide.bytes);
      position = align_up(position + slide.bytes);
      if (coords.defined()) {
        const at::Tensor c = coords.to(at::kLong).contiguous();
        slide.coords_offset = position;
        file.write_at(position, c.data_ptr(), std::size_t(c.nbytes()));
        position = align_up(position + std::uint64_t(c.nbytes()));
      }
      summary.instances += slide.instances;
      summary.payload_bytes += slide.bytes;
      slides.push_back(std::move(slide));
      if (options.progress) options.progress(slides.size(), files.size(), slides.back().id);
    }
    // The file ends where the last block ends; the padding before it stays a hole.
    const PackedSlide& last = slides.back();
    const std::uint64_t end = last.coords_offset != 0
                                  ? last.coords_offset + 16 * std::uint64_t(last.instances)
                                  : last.offset + last.bytes;
    nlohmann::json index = {{"format", "milpack"},
                            {"version", kVersion},
                            {"dtype", options.dtype},
                            {"feature_dim", summary.feature_dim},
                            {"source", {{"directory", directory}, {"kind", h5 ? "h5" : "pt"}}},
                            {"slides", nlohmann::json::array()}};
    for (const PackedSlide& s : slides) index["slides"].push_back(slide_json(s));
    const std::string text = index.dump();
    if (text.size() > index_space) throw std::logic_error("pack: index outgrew its reserved space");
    Header header;
    header.dtype = half ? 1 : 2;
    header.feature_dim = std::uint64_t(summary.feature_dim);
    header.slide_count = slides.size();
    header.index_offset = kHeaderBytes;
    header.index_bytes = text.size();
    header.index_sha256 = sha256_hex(text);
    header.file_bytes = end;
    std::string padded = text;
    padded.resize(index_space, ' ');
    file.write_at(kHeaderBytes, padded.data(), padded.size());
    const std::vector<char> head = encode_header(header);
    file.write_at(0, head.data(), head.size());
    file.finish(end);
    summary.file_bytes = end;
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  replace_file_atomic(temporary, out);
  summary.slides = slides.size();
  if (options.verify) {
    const auto cache = PackedCache::open(out);
    for (std::size_t i = 0; i < cache->slides().size(); ++i) cache->verify(i);
    summary.verified = true;
  }
  return summary;
}

/// The whole file, mapped privately; unmapped when the last cache or tensor view lets go.
struct PackedCache::Mapping {
  std::uint8_t* base = nullptr;
  std::size_t length = 0;
  ~Mapping() {
    if (base != nullptr) ::munmap(base, length);
  }
};

std::shared_ptr<const PackedCache> PackedCache::open(const std::string& path) {
  const auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error("packed cache '" + path + "'" + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw fail(": cannot open: " + std::string(std::strerror(errno)) +
               " (create it with mhim pack)");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    throw fail(": cannot stat: " + std::string(std::strerror(errno)));
  }
  const std::uint64_t size = std::uint64_t(info.st_size);
  if (size < kHeaderBytes) {
    ::close(fd);
    throw fail(" is truncated: " + std::to_string(size) +
               " bytes, shorter than its 128-byte header");
  }
  // Private and writable: an in-place op on a view copies that page instead of faulting, and never
  // reaches the file. NORESERVE: no swap is reserved for pages that are only ever read.
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) throw fail(": cannot map: " + std::string(std::strerror(errno)));
  std::shared_ptr<PackedCache> cache(new PackedCache());
  cache->path_ = path;
  cache->mapping_ = std::make_shared<Mapping>();
  cache->mapping_->base = static_cast<std::uint8_t*>(base);
  cache->mapping_->length = size;
  const std::uint8_t* bytes = cache->mapping_->base;

  if (std::memcmp(bytes, kMagic, sizeof kMagic) != 0)
    throw fail(" is not a packed cache (bad magic)");
  Header h;
  h.version = get<std::uint32_t>(bytes, 8);
  h.dtype = get<std::uint32_t>(bytes, 12);
  h.feature_dim = get<std::uint64_t>(bytes, 16);
  h.slide_count = get<std::uint64_t>(bytes, 24);
  h.index_offset = get<std::uint64_t>(bytes, 32);
  h.index_bytes = get<std::uint64_t>(bytes, 40);
  h.index_sha256.assign(reinterpret_cast<const char*>(bytes) + 48, 64);
  h.file_bytes = get<std::uint64_t>(bytes, 112);
  if (h.version != kVersion) {
    throw fail(" has format version " + std::to_string(h.version) + "; this mhim reads version " +
               std::to_string(kVersion));
  }
  if (h.dtype != 1 && h.dtype != 2)
    throw fail(": header dtype " + std::to_string(h.dtype) + " is not 1 (f16) or 2 (f32)");
  if (h.index_offset < kHeaderBytes || h.index_bytes > size ||
      h.index_offset > size - h.index_bytes) {
    throw fail(" is truncated or corrupt: its index [" + std::to_string(h.index_offset) + ", +" +
               std::to_string(h.index_bytes) + ") lies outside the file's " + std::to_string(size) +
               " bytes");
  }
  if (h.index_bytes > kMaxPackedIndexBytes) {
    throw fail(": " + over_limit("its index's size", h.index_bytes, kMaxPackedIndexBytes,
                                 "kMaxPackedIndexBytes"));
  }
  if (h.feature_dim < 1 || h.feature_dim > std::uint64_t(std::numeric_limits<int>::max()))
    throw fail(": header feature dim " + std::to_string(h.feature_dim) + " is not a positive int");
  const std::string_view text(reinterpret_cast<const char*>(bytes) + h.index_offset, h.index_bytes);
  if (sha256_hex(text) != h.index_sha256)
    throw fail(": the index is corrupt (SHA-256 mismatch); re-pack it");
  cache->index_sha256_ = h.index_sha256;
  cache->dtype_ = h.dtype == 1 ? "f16" : "f32";
  cache->feature_dim_ = int(h.feature_dim);
  const std::uint64_t element = h.dtype == 1 ? 2 : 4;
  try {
    const nlohmann::json index = parse_json_bounded(text, "packed cache '" + path + "' index",
                                                    kMaxPackedIndexBytes, "kMaxPackedIndexBytes");
    cache->source_ = index.at("source");
    for (const auto& j : index.at("slides")) {
      PackedSlide s;
      s.id = j.at("id").get<std::string>();
      s.instances = j.at("instances").get<int64_t>();
      s.offset = j.at("offset").get<std::uint64_t>();
      s.bytes = j.at("bytes").get<std::uint64_t>();
      s.sha256 = j.at("sha256").get<std::string>();
      s.source_file = j.at("source_file").get<std::string>();
      s.source_sha256 = j.at("source_sha256").get<std::string>();
      if (j.contains("coords_offset")) s.coords_offset = j.at("coords_offset").get<std::uint64_t>();
      cache->slides_.push_back(std::move(s));
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(": the index is not valid: " + std::string(e.what()));
  }
  if (cache->slides_.size() != h.slide_count) {
    throw fail(": the header counts " + std::to_string(h.slide_count) +
               " slides, the index lists " + std::to_string(cache->slides_.size()));
  }
  std::vector<std::string> cut;  // slides whose bytes run past the end of a truncated file
  for (const PackedSlide& s : cache->slides_) {
    const std::string slide = ": slide '" + s.id + "'";
    // Every sum and product is checked for overflow: a wrapped end would pass the bounds check
    // and let a view read outside the mapping.
    std::uint64_t expected = 0, features_end = 0, coords_bytes = 0, end = 0;
    const bool consistent =
        s.instances >= 1 &&
        !__builtin_mul_overflow(std::uint64_t(s.instances), h.feature_dim * element, &expected) &&
        s.bytes == expected && s.offset % kAlignment == 0 &&
        s.offset >= h.index_offset + h.index_bytes &&
        !__builtin_add_overflow(s.offset, s.bytes, &features_end) &&
        (s.coords_offset == 0 ||
         (s.coords_offset % kAlignment == 0 && s.coords_offset >= features_end &&
          !__builtin_mul_overflow(std::uint64_t(s.instances), 16, &coords_bytes) &&
          !__builtin_add_overflow(s.coords_offset, coords_bytes, &end)));
    if (!consistent) {
      throw fail(slide + " has an inconsistent index entry (offset " + std::to_string(s.offset) +
                 ", " + std::to_string(s.bytes) + " bytes for " + std::to_string(s.instances) +
                 " x " + std::to_string(h.feature_dim) + ", coords offset " +
                 std::to_string(s.coords_offset) + ")");
    }
    if (s.coords_offset == 0) end = features_end;
    if (end > size) cut.push_back(s.id);
  }
  if (!cut.empty() || size != h.file_bytes) {
    std::string which;
    for (std::size_t i = 0; i < cut.size() && i < 5; ++i)
      which += (which.empty() ? "" : ", ") + ("'" + cut[i] + "'");
    if (cut.size() > 5) which += " and " + std::to_string(cut.size() - 5) + " more";
    throw fail(" is truncated or was modified: " + std::to_string(size) +
               " bytes, its header says " + std::to_string(h.file_bytes) +
               (cut.empty() ? "" : "; slide(s) " + which + " lie past the end") +
               "; re-pack it with mhim pack");
  }
  return cache;
}

std::uint64_t PackedCache::file_bytes() const { return mapping_->length; }

int PackedCache::find(const std::string& id) const {
  for (std::size_t i = 0; i < slides_.size(); ++i) {
    if (slides_[i].id == id) return int(i);
  }
  return -1;
}

const std::uint8_t* PackedCache::raw(std::size_t i) const {
  return mapping_->base + slides_.at(i).offset;
}

at::Tensor PackedCache::features(std::size_t i) const {
  const PackedSlide& s = slides_.at(i);
  std::shared_ptr<Mapping> keep = mapping_;
  void* data = mapping_->base + s.offset;
  if (dtype_ == "f32") {
    return at::from_blob(
        data, {s.instances, feature_dim_}, [keep](void*) {}, at::TensorOptions().dtype(at::kFloat));
  }
  return at::from_blob(data, {s.instances, feature_dim_}, at::TensorOptions().dtype(at::kHalf))
      .to(at::kFloat);
}

at::Tensor PackedCache::coords(std::size_t i) const {
  const PackedSlide& s = slides_.at(i);
  if (s.coords_offset == 0) return at::Tensor();
  std::shared_ptr<Mapping> keep = mapping_;
  return at::from_blob(
      mapping_->base + s.coords_offset, {s.instances, 2}, [keep](void*) {},
      at::TensorOptions().dtype(at::kLong));
}

void PackedCache::verify(std::size_t i) const {
  const PackedSlide& s = slides_.at(i);
  const std::string actual =
      sha256_hex(std::string_view(reinterpret_cast<const char*>(raw(i)), s.bytes));
  if (actual != s.sha256) {
    throw std::runtime_error("packed cache '" + path_ + "': slide '" + s.id +
                             "' is corrupt: its bytes hash to " + actual.substr(0, 16) +
                             "..., the index says " + s.sha256.substr(0, 16) +
                             "...; re-pack it with mhim pack");
  }
}

}  // namespace mil
