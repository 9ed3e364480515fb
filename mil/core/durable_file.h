#pragma once
// Files that survive a crash: a reader sees the old content or the new, never a torn mix, and what
// was written is on disk before the call returns (fsync of the file and of its folder).
#include <cstddef>
#include <string>
#include <vector>

namespace mil {

/// Throws std::runtime_error("<what> '<path>': <strerror(errno)>"): a failed system call on a
/// file, named.
[[noreturn]] void throw_errno(const std::string& what, const std::string& path);

/// Writes `content` to a temporary file beside `path`, syncs it and renames it over `path`.
void write_file_atomic(const std::string& path, const std::string& content);

/// Makes an already written `temporary` file the new `path`: syncs it, renames it over `path` and
/// syncs the folder. Removes `temporary` when that fails. For writers that produce the file
/// themselves.
void replace_file_atomic(const std::string& temporary, const std::string& path);

/// A temporary name beside `path` that folder readers skip (dot-prefixed, no .json/.pt extension).
std::string temporary_path_for(const std::string& path);

/// Creates `path`, which must not exist yet (throws naming it otherwise), writes `content` and
/// syncs the file, not its folder: for files that are then linked or renamed into place. A failed
/// write removes the partial file.
void write_new_file_synced(const std::string& path, const std::string& content);

/// Syncs the folder `dir`, making entries created, renamed or removed in it durable.
void sync_directory(const std::string& dir);

/// Appends `line` and a newline to `path` and syncs it; syncs the folder too when the file is new.
/// A last line torn by a crash (no newline) is ended first, so the new line stays readable.
void append_line_durably(const std::string& path, const std::string& line);

/// append_line_durably for several lines at once: one write and one sync (a crash may keep a prefix
/// of them; only the last kept line can be torn). No-op for no lines.
void append_lines_durably(const std::string& path, const std::vector<std::string>& lines);

/// Creates or truncates `path` and writes `content`, without syncing: the first step of a group
/// commit, whose caller then syncs many files at once (sync_files) before renaming them into place.
/// A failed write removes the partial file.
void write_file_unsynced(const std::string& path, const std::string& content);

/// Makes the content of every file of `paths` (all on the file system holding `paths[0]`) durable.
/// A few files are fsynced one by one; more than kSyncEachMaxFiles take one syncfs(2) of their file
/// system, which costs about one fsync however many there are (measured here: 32 files fsynced one
/// by one took 34 ms, one syncfs 1.3 ms), where N fsyncs cost N journal commits.
void sync_files(const std::vector<std::string>& paths);

/// Up to this many files sync_files fsyncs one by one: syncfs also flushes every other writer's
/// dirty data on the file system (e.g. checkpoints being written), which is not worth it for one
/// result.
constexpr std::size_t kSyncEachMaxFiles = 4;

}  // namespace mil
