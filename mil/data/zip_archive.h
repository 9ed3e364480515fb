#pragma once
// The zip container of torch.save archives, read by us rather than by LibTorch's miniz reader,
// which allocates whatever size a member's header claims before reading it. Only what PyTorch's
// writer produces is accepted: stored (uncompressed) members, ZIP64 records, one disk.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mil {

/// One member of a zip archive, as its central directory and local header describe it.
struct ZipMember {
  std::string name;          ///< Full name, e.g. "archive/data/0".
  std::uint64_t offset = 0;  ///< Where its data starts in the archive.
  std::uint64_t size = 0;    ///< Its data's length (stored: compressed size == size).
  std::uint32_t crc32 = 0;   ///< CRC-32 of its data, as the central directory records it.
};

/// A view of a zip archive held in memory by the caller (who keeps the bytes alive); nothing is
/// copied. Construction checks the whole structure: every member lies inside the archive before
/// its central directory, no name repeats, no member is compressed or encrypted, and the
/// archive stays within kMaxArchiveMembers and kMaxArchiveMemberBytes.
class ZipArchive {
 public:
  /// Parses the central directory of `bytes`; throws std::runtime_error saying what is wrong (the
  /// caller adds the file's name).
  explicit ZipArchive(std::string_view bytes);

  /// Every member, in central-directory order.
  const std::vector<ZipMember>& members() const { return members_; }
  /// The folder the first member is in ("archive" for "archive/data.pkl"); torch.save puts every
  /// record there.
  const std::string& prefix() const { return prefix_; }
  /// The member named `prefix()/record`, or nullptr.
  const ZipMember* find(const std::string& record) const;
  /// The data of `member`, after checking its CRC-32 (not in fuzzing builds, whose mutated inputs
  /// never match it); throws std::runtime_error naming the member when it differs.
  std::string_view data(const ZipMember& member) const;

 private:
  std::string_view bytes_;
  std::vector<ZipMember> members_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::string prefix_;
};

/// CRC-32 (ISO-HDLC, as zip uses) of `bytes`.
std::uint32_t crc32_of(std::string_view bytes);

}  // namespace mil
