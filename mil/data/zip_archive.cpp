#include "mil/data/zip_archive.h"

#include <array>
#include <cstring>
#include <stdexcept>

#include "mil/core/reader_limits.h"

namespace mil {
namespace {

// Record signatures and fixed sizes (PKWARE APPNOTE 6.3, sections 4.3.7, 4.3.12, 4.3.14-16).
constexpr std::uint32_t kLocalHeader = 0x04034b50;
constexpr std::uint32_t kCentralHeader = 0x02014b50;
constexpr std::uint32_t kEndOfDirectory = 0x06054b50;
constexpr std::uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::uint64_t kLocalHeaderBytes = 30;
constexpr std::uint64_t kCentralHeaderBytes = 46;
constexpr std::uint64_t kEndOfDirectoryBytes = 22;
constexpr std::uint64_t kZip64EndOfDirectoryBytes = 56;
constexpr std::uint64_t kZip64LocatorBytes = 20;
constexpr std::uint16_t kZip64ExtraId = 0x0001;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("zip archive: " + what);
}

/// Bounds-checked little-endian reads from the archive.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const { return bytes_.size(); }
  /// True when [offset, offset + length) lies inside the archive.
  bool holds(std::uint64_t offset, std::uint64_t length) const {
    return offset <= bytes_.size() && length <= bytes_.size() - offset;
  }
  template <typename T>
  T get(std::uint64_t offset, const char* what) const {
    if (!holds(offset, sizeof(T))) fail(std::string(what) + " lies past the end of the archive");
    T value = 0;
    for (std::size_t i = sizeof(T); i-- > 0;)
      value = T(value << 8) | T(static_cast<unsigned char>(bytes_[offset + i]));
    return value;
  }
  std::string_view slice(std::uint64_t offset, std::uint64_t length, const char* what) const {
    if (!holds(offset, length)) fail(std::string(what) + " lies past the end of the archive");
    return bytes_.substr(offset, length);
  }

 private:
  std::string_view bytes_;
};

/// Where the central directory is and how many entries it has.
struct Directory {
  std::uint64_t entries = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t end = 0;  ///< Where the records after the directory start.
};

Directory find_directory(const Reader& in) {
  if (in.size() < kEndOfDirectoryBytes) fail("too short to be a zip archive");
  // The end record is the last 22 bytes plus its comment (at most 65,535 bytes).
  std::uint64_t end_record = in.size();
  const std::uint64_t lowest =
      in.size() > kEndOfDirectoryBytes + 0xffff ? in.size() - kEndOfDirectoryBytes - 0xffff : 0;
  for (std::uint64_t at = in.size() - kEndOfDirectoryBytes + 1; at-- > lowest;) {
    if (in.get<std::uint32_t>(at, "end record") == kEndOfDirectory &&
        at + kEndOfDirectoryBytes + in.get<std::uint16_t>(at + 20, "comment length") == in.size()) {
      end_record = at;
      break;
    }
  }
  if (end_record == in.size()) fail("no end-of-central-directory record (truncated?)");
  Directory d;
  const auto disk = in.get<std::uint16_t>(end_record + 4, "end record");
  const auto directory_disk = in.get<std::uint16_t>(end_record + 6, "end record");
  d.entries = in.get<std::uint16_t>(end_record + 10, "end record");
  d.size = in.get<std::uint32_t>(end_record + 12, "end record");
  d.offset = in.get<std::uint32_t>(end_record + 16, "end record");
  d.end = end_record;
  if (disk != 0 || directory_disk != 0) fail("spans several disks");
  // A ZIP64 locator right before the end record points at the ZIP64 end record, whose 64-bit
  // fields replace the 16- and 32-bit ones (PyTorch's writer always writes both).
  if (end_record >= kZip64LocatorBytes &&
      in.get<std::uint32_t>(end_record - kZip64LocatorBytes, "ZIP64 locator") == kZip64Locator) {
    const std::uint64_t locator = end_record - kZip64LocatorBytes;
    const std::uint64_t record = in.get<std::uint64_t>(locator + 8, "ZIP64 locator");
    if (in.get<std::uint32_t>(locator + 4, "ZIP64 locator") != 0 ||
        in.get<std::uint32_t>(locator + 16, "ZIP64 locator") > 1) {
      fail("spans several disks");
    }
    if (record > locator || locator - record < kZip64EndOfDirectoryBytes ||
        in.get<std::uint32_t>(record, "ZIP64 end record") != kZip64EndOfDirectory) {
      fail("its ZIP64 locator points at no ZIP64 end record");
    }
    if (in.get<std::uint32_t>(record + 16, "ZIP64 end record") != 0 ||
        in.get<std::uint32_t>(record + 20, "ZIP64 end record") != 0) {
      fail("spans several disks");
    }
    d.entries = in.get<std::uint64_t>(record + 32, "ZIP64 end record");
    d.size = in.get<std::uint64_t>(record + 40, "ZIP64 end record");
    d.offset = in.get<std::uint64_t>(record + 48, "ZIP64 end record");
    d.end = record;
  }
  if (d.offset > d.end || d.size > d.end - d.offset) {
    fail("its central directory [" + std::to_string(d.offset) + ", +" + std::to_string(d.size) +
         ") lies outside the archive's " + std::to_string(in.size()) + " bytes");
  }
  if (d.entries > kMaxArchiveMembers) {
    fail(over_limit("its member count", d.entries, kMaxArchiveMembers, "kMaxArchiveMembers"));
  }
  if (d.entries > d.size / kCentralHeaderBytes) {
    fail("its central directory of " + std::to_string(d.size) + " bytes cannot hold " +
         std::to_string(d.entries) + " entries");
  }
  return d;
}

/// The ZIP64 extended-information field of a central header's `extra` bytes, which holds the
/// 64-bit values of the fields that are all ones in the header, in this order.
void apply_zip64_extra(std::string_view extra, std::uint64_t& size, std::uint64_t& compressed,
                       std::uint64_t& local_offset, std::uint32_t& disk, const std::string& name) {
  const Reader in(extra);
  for (std::uint64_t at = 0; at + 4 <= extra.size();) {
    const auto id = in.get<std::uint16_t>(at, "extra field");
    const auto length = in.get<std::uint16_t>(at + 2, "extra field");
    if (!in.holds(at + 4, length)) fail("member '" + name + "': an extra field is truncated");
    if (id == kZip64ExtraId) {
      std::uint64_t field = at + 4;
      const std::uint64_t field_end = field + length;
      const auto take64 = [&](std::uint64_t& value) {
        if (field + 8 > field_end) fail("member '" + name + "': its ZIP64 field is too short");
        value = in.get<std::uint64_t>(field, "ZIP64 field");
        field += 8;
      };
      if (size == 0xffffffffu) take64(size);
      if (compressed == 0xffffffffu) take64(compressed);
      if (local_offset == 0xffffffffu) take64(local_offset);
      if (disk == 0xffffu) {
        if (field + 4 > field_end) fail("member '" + name + "': its ZIP64 field is too short");
        disk = in.get<std::uint32_t>(field, "ZIP64 field");
      }
    }
    at += 4 + std::uint64_t(length);
  }
}

const std::array<std::array<std::uint32_t, 256>, 8>& crc_tables() {
  static const auto tables = [] {
    std::array<std::array<std::uint32_t, 256>, 8> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
      for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
    return t;
  }();
  return tables;
}

}  // namespace

std::uint32_t crc32_of(std::string_view bytes) {
  const auto& t = crc_tables();
  std::uint32_t crc = 0xffffffffu;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  // Slicing-by-8: eight table lookups per 8 bytes instead of one per byte.
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint32_t lo = crc ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                    std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; ++p, --n) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

ZipArchive::ZipArchive(std::string_view bytes) : bytes_(bytes) {
  const Reader in(bytes);
  const Directory directory = find_directory(in);
  members_.reserve(std::size_t(directory.entries));
  const std::uint64_t directory_end = directory.offset + directory.size;
  std::uint64_t at = directory.offset;
  for (std::uint64_t i = 0; i < directory.entries; ++i) {
    if (directory_end - at < kCentralHeaderBytes ||
        in.get<std::uint32_t>(at, "central header") != kCentralHeader) {
      fail("central directory entry " + std::to_string(i) + " is corrupt");
    }
    const auto flags = in.get<std::uint16_t>(at + 8, "central header");
    const auto method = in.get<std::uint16_t>(at + 10, "central header");
    const auto crc = in.get<std::uint32_t>(at + 16, "central header");
    std::uint64_t compressed = in.get<std::uint32_t>(at + 20, "central header");
    std::uint64_t size = in.get<std::uint32_t>(at + 24, "central header");
    const std::uint64_t name_length = in.get<std::uint16_t>(at + 28, "central header");
    const std::uint64_t extra_length = in.get<std::uint16_t>(at + 30, "central header");
    const std::uint64_t comment_length = in.get<std::uint16_t>(at + 32, "central header");
    std::uint32_t disk = in.get<std::uint16_t>(at + 34, "central header");
    std::uint64_t local = in.get<std::uint32_t>(at + 42, "central header");
    const std::uint64_t entry_bytes =
        kCentralHeaderBytes + name_length + extra_length + comment_length;
    if (directory_end - at < entry_bytes)
      fail("central directory entry " + std::to_string(i) + " runs past the directory");
    ZipMember member;
    member.name = std::string(in.slice(at + kCentralHeaderBytes, name_length, "member name"));
    apply_zip64_extra(in.slice(at + kCentralHeaderBytes + name_length, extra_length, "extra field"),
                      size, compressed, local, disk, member.name);
    at += entry_bytes;

    const std::string which = "member '" + member.name + "'";
    if (member.name.empty()) fail("member " + std::to_string(i) + " has no name");
    if (flags & 0x41) fail(which + " is encrypted");
    if (method != 0) {
      fail(which + " is compressed (method " + std::to_string(method) +
           "); torch.save stores members uncompressed");
    }
    if (compressed != size) {
      fail(which + " is stored with " + std::to_string(compressed) + " bytes but claims " +
           std::to_string(size));
    }
    if (disk != 0) fail("spans several disks");
    if (size > kMaxArchiveMemberBytes) {
      fail(which + ": " +
           over_limit("its size", size, kMaxArchiveMemberBytes, "kMaxArchiveMemberBytes"));
    }
    // The local header repeats the name; the data follows it and ends before the directory.
    if (local > directory.offset || directory.offset - local < kLocalHeaderBytes ||
        in.get<std::uint32_t>(local, "local header") != kLocalHeader) {
      fail(which + ": no local header at offset " + std::to_string(local));
    }
    const std::uint64_t local_name = in.get<std::uint16_t>(local + 26, "local header");
    const std::uint64_t local_extra = in.get<std::uint16_t>(local + 28, "local header");
    const std::uint64_t data = local + kLocalHeaderBytes + local_name + local_extra;
    if (data > directory.offset || size > directory.offset - data) {
      fail(which + ": its " + std::to_string(size) + " bytes at offset " + std::to_string(data) +
           " run past the central directory at " + std::to_string(directory.offset));
    }
    if (in.slice(local + kLocalHeaderBytes, local_name, "local name") != member.name)
      fail(which + ": its local header names another member");
    member.offset = data;
    member.size = size;
    member.crc32 = crc;
    if (!by_name_.emplace(member.name, members_.size()).second) fail(which + " appears twice");
    members_.push_back(std::move(member));
  }
  if (members_.empty()) fail("it has no members");
  const std::size_t slash = members_.front().name.find('/');
  if (slash == std::string::npos || slash == 0)
    fail("member '" + members_.front().name + "' is not in a folder, as torch.save writes");
  prefix_ = members_.front().name.substr(0, slash);
}

const ZipMember* ZipArchive::find(const std::string& record) const {
  const auto it = by_name_.find(prefix_ + "/" + record);
  return it == by_name_.end() ? nullptr : &members_[it->second];
}

std::string_view ZipArchive::data(const ZipMember& member) const {
  const std::string_view data = bytes_.substr(member.offset, member.size);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  if (crc32_of(data) != member.crc32)
    fail("member '" + member.name + "' is corrupt (CRC-32 mismatch)");
#endif
  return data;
}

}  // namespace mil
