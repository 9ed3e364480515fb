#pragma once
// Files that survive a crash: a reader sees the old content or the new, never a torn mix, and what
// was written is on disk before the call returns (fsync of the file and of its folder).
#include <string>

namespace mil {

/// Writes `content` to a temporary file beside `path`, syncs it and renames it over `path`.
void write_file_atomic(const std::string& path, const std::string& content);

/// Makes an already written `temporary` file the new `path`: syncs it, renames it over `path` and
/// syncs the folder. Removes `temporary` when that fails. For writers that produce the file themselves.
void replace_file_atomic(const std::string& temporary, const std::string& path);

/// A temporary name beside `path` that folder readers skip (dot-prefixed, no .json/.pt extension).
std::string temporary_path_for(const std::string& path);

/// Creates `path`, which must not exist yet (throws naming it otherwise), writes `content` and syncs
/// the file, not its folder: for files that are then linked or renamed into place. A failed write
/// removes the partial file.
void write_new_file_synced(const std::string& path, const std::string& content);

/// Syncs the folder `dir`, making entries created, renamed or removed in it durable.
void sync_directory(const std::string& dir);

/// Appends `line` and a newline to `path` and syncs it; syncs the folder too when the file is new. A
/// last line torn by a crash (no newline) is ended first, so the new line stays readable.
void append_line_durably(const std::string& path, const std::string& line);

}  // namespace mil
