#include "mil/core/durable_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace mil {
namespace {

namespace fs = std::filesystem;

/// Owns a POSIX file descriptor; close() reports errors, the destructor only cleans up.
class FileDescriptor {
 public:
  FileDescriptor(const std::string& path, int flags, mode_t mode = 0644) : path_(path) {
    do {
      fd_ = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw_errno("cannot open", path);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }

  void write_all(const std::string& data) {
    std::size_t offset = 0;
    while (offset < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + offset, data.size() - offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot write", path_);
      offset += static_cast<std::size_t>(n);
    }
  }
  /// Holds an exclusive flock until close: appenders on NFS, where O_APPEND alone is not atomic,
  /// queue.
  void lock_exclusive() {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw_errno("cannot lock", path_);
    }
  }
  void sync() {
    if (::fsync(fd_) != 0) throw_errno("cannot fsync", path_);
  }
  int get() const { return fd_; }
  void close() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_errno("cannot close", path_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

/// True when `path` is non-empty and its last byte is not a newline (a line torn by a crash).
bool ends_torn(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return false;
  in.seekg(-1, std::ios::end);
  return in.get() != '\n';
}

void append_lines_impl(const std::string& path, const std::string& lines) {
  const bool existed = fs::exists(path);
  FileDescriptor fd(path, O_WRONLY | O_CREAT | O_APPEND);
  fd.lock_exclusive();  // with O_APPEND and one line per write: whole lines, also from several
                        // hosts
  // After a crash mid-append, start on a fresh line so that only the torn line is lost, not this
  // one (checked under the lock, so another writer cannot be half-way through its line).
  const std::string prefix = existed && ends_torn(path) ? "\n" : "";
  fd.write_all(prefix + lines);
  fd.sync();
  fd.close();
  if (!existed) sync_directory(fs::path(path).parent_path().string());
}

std::string parent_of(const std::string& path) {
  const fs::path target(path);
  return target.has_parent_path() ? target.parent_path().string() : std::string(".");
}

}  // namespace

[[noreturn]] void throw_errno(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

std::string temporary_path_for(const std::string& path) {
  const fs::path target(path);
  return (fs::path(parent_of(path)) /
          ("." + target.filename().string() + ".tmp." + std::to_string(::getpid())))
      .string();
}

void replace_file_atomic(const std::string& temporary, const std::string& path) {
  try {
    FileDescriptor fd(temporary, O_RDONLY);
    fd.sync();
    fd.close();
    if (::rename(temporary.c_str(), path.c_str()) != 0)
      throw_errno("cannot rename '" + temporary + "' to", path);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  sync_directory(parent_of(path));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string temp = temporary_path_for(path);
  write_file_unsynced(temp, content);
  replace_file_atomic(temp, path);  // syncs the temporary file before the rename
}

void append_line_durably(const std::string& path, const std::string& line) {
  append_lines_impl(path, line + "\n");
}

void append_lines_durably(const std::string& path, const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  append_lines_impl(path, text);
}

void write_file_unsynced(const std::string& path, const std::string& content) {
  try {
    FileDescriptor fd(path, O_WRONLY | O_CREAT | O_TRUNC);
    fd.write_all(content);
    fd.close();
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

void sync_files(const std::vector<std::string>& paths) {
  if (paths.empty()) return;
  if (paths.size() <= kSyncEachMaxFiles) {
    for (const auto& path : paths) {
      FileDescriptor fd(path, O_RDONLY);
      fd.sync();
      fd.close();
    }
    return;
  }
  FileDescriptor fd(paths.front(), O_RDONLY);
  if (::syncfs(fd.get()) != 0) throw_errno("cannot syncfs the file system of", paths.front());
  fd.close();
}

void sync_directory(const std::string& dir) {
  FileDescriptor fd(dir, O_RDONLY | O_DIRECTORY);
  fd.sync();
}

void write_new_file_synced(const std::string& path, const std::string& content) {
  FileDescriptor fd(path, O_WRONLY | O_CREAT | O_EXCL);
  try {
    fd.write_all(content);
    fd.sync();
    fd.close();
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

}  // namespace mil
