#pragma once
// Limits of the readers of files that other people (or other processes) made, core layer: JSON
// documents read from files. Every limit is checked before the memory it guards is allocated, and
// a file over it is refused with an error naming the file, the limit's value and its name here.
// The data layer's limits are in mil/data/reader_limits.h, the orchestrator's in
// orchestrator/reader_limits.h; docs/fuzzing-and-sanitizers.md lists them all.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mil {

/// Largest JSON document read from a file (a result, a job spec, a heartbeat, a lock file, a
/// manifest): a result with a long training history is ~100 KB and a 100,000-job manifest ~60 MB;
/// nlohmann's in-memory form is ~10x the text.
constexpr std::size_t kMaxJsonDocumentBytes = std::size_t{256} << 20;

/// Deepest nesting of JSON arrays and objects: our documents nest at most 6 levels, and nlohmann's
/// copy, comparison and dump recurse once per level, so a file of a million '[' would overflow the
/// stack.
constexpr int kMaxJsonDepth = 64;

/// The end of a limit error, after the file's name: "<what> exceeds the limit of <limit>
/// (<name>)".
inline std::string over_limit(const std::string& what, std::uint64_t limit, const char* name) {
  return what + " exceeds the limit of " + std::to_string(limit) + " (" + name + ")";
}

/// The same with the value found: "<what> (<actual>) exceeds the limit of <limit> (<name>)".
inline std::string over_limit(const std::string& what, std::uint64_t actual, std::uint64_t limit,
                              const char* name) {
  return over_limit(what + " (" + std::to_string(actual) + ")", limit, name);
}

}  // namespace mil
