#include "mil/core/json_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mil {

std::string read_file_limited(const std::string& path, std::size_t max_bytes,
                              const char* limit_name) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat '" + path + "': " + std::strerror(error));
  }
  if (S_ISREG(info.st_mode) && std::uint64_t(info.st_size) > max_bytes) {
    ::close(fd);
    throw std::runtime_error(
        "'" + path +
        "': " + over_limit("its size", std::uint64_t(info.st_size), max_bytes, limit_name));
  }
  // Read to the end rather than trusting the size: the file may grow, or be a pipe.
  std::string text;
  text.resize(S_ISREG(info.st_mode) ? std::size_t(info.st_size) : 0);
  std::size_t used = 0;
  while (true) {
    if (used == text.size()) {
      if (text.size() > max_bytes) {
        ::close(fd);
        throw std::runtime_error("'" + path +
                                 "': " + over_limit("its size", max_bytes, limit_name));
      }
      text.resize(std::min(max_bytes + 1, std::max<std::size_t>(4096, text.size() * 2)));
    }
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error("cannot read '" + path + "': " + std::strerror(error));
    }
    if (n == 0) break;
    used += std::size_t(n);
  }
  ::close(fd);
  if (used > max_bytes)
    throw std::runtime_error("'" + path + "': " + over_limit("its size", max_bytes, limit_name));
  text.resize(used);
  return text;
}

bool json_nests_deeper_than(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

nlohmann::json parse_json_bounded(std::string_view text, const std::string& origin,
                                  std::size_t max_bytes, const char* limit_name) {
  if (text.size() > max_bytes) {
    throw std::runtime_error(
        origin + ": " + over_limit("the JSON document's size", text.size(), max_bytes, limit_name));
  }
  if (json_nests_deeper_than(text, kMaxJsonDepth)) {
    throw std::runtime_error(
        origin + ": " +
        over_limit("the nesting of JSON arrays and objects", kMaxJsonDepth, "kMaxJsonDepth"));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(origin + ": invalid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::string& path) {
  return parse_json_bounded(read_file_limited(path, kMaxJsonDocumentBytes, "kMaxJsonDocumentBytes"),
                            path);
}

}  // namespace mil
