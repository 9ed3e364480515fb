#pragma once
// JSON from files other processes wrote, read within the limits of mil/core/reader_limits.h: the
// size is checked before reading and the nesting depth before parsing, and every error names the
// file.
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mil/core/reader_limits.h"

namespace mil {

/// Reads the whole file at `path`, refusing (before allocating) a file larger than `max_bytes`,
/// named `limit_name` in the error. Throws std::runtime_error naming the path.
std::string read_file_limited(const std::string& path, std::size_t max_bytes,
                              const char* limit_name);

/// True when arrays and objects in `text` nest deeper than `max_depth` (brackets inside strings do
/// not count). Linear, and needs no parse.
bool json_nests_deeper_than(std::string_view text, int max_depth);

/// Parses `text` as one JSON document. Refuses text longer than `max_bytes` and nesting deeper
/// than kMaxJsonDepth before parsing; throws std::runtime_error starting with `origin` (a path,
/// or a path and line) for those and for syntax errors.
/// `limit_name` names `max_bytes` in the error.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& origin,
                                  std::size_t max_bytes = kMaxJsonDocumentBytes,
                                  const char* limit_name = "kMaxJsonDocumentBytes");

/// read_file_limited (kMaxJsonDocumentBytes) then parse_json_bounded.
nlohmann::json read_json_file(const std::string& path);

}  // namespace mil
