#pragma once
// SHA-256 (FIPS 180-4), used for content-addressed job ids and input hashes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mil {

/// Incremental SHA-256. Call update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  /// Feeds `size` bytes; may be called repeatedly with arbitrary chunking.
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  /// Finishes the hash and returns 64 lowercase hex characters. The object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_;
  std::size_t buffer_size_ = 0;
  std::uint64_t total_bytes_ = 0;
};

/// SHA-256 of a byte string, as 64 lowercase hex characters.
std::string sha256_hex(std::string_view bytes);

/// SHA-256 of a whole file, read in chunks; throws std::runtime_error naming the path.
std::string sha256_file(const std::string& path);

}  // namespace mil
