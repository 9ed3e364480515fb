#pragma once
// Reads a sweep file, YAML (.yaml/.yml) or JSON (anything else), into the one JSON structure the
// sweep parser takes, and remembers on which line every key and element stood so that errors can
// name "file:line". YAML scalars are typed by the YAML 1.2 core schema (see sweeps/README.md).
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace mil::orch {

/// JSON pointer (RFC 6901, e.g. "/datasets/1/root") -> 1-based line where that key or element
/// starts in the file.
using SourceLines = std::map<std::string, int>;

/// A sweep error that knows which part of the file it is about, so the caller can add the line.
class SweepError : public std::runtime_error {
 public:
  /// `pointer`: JSON pointer of the offending key or element, e.g. "/datasets/1/rot".
  SweepError(std::string pointer, const std::string& message)
      : std::runtime_error(message), pointer_(std::move(pointer)) {}
  /// Where the error is, as a JSON pointer into the sweep file.
  const std::string& pointer() const { return pointer_; }

 private:
  std::string pointer_;
};

/// A sweep file's content and where each part of it came from.
struct SweepDocument {
  std::string path;      ///< The file as given.
  nlohmann::json value;  ///< The whole file as JSON.
  SourceLines lines;     ///< May be empty (e.g. JSON yaml-cpp cannot read).
};

/// `pointer` with `token` appended, escaped per RFC 6901 ("~" -> "~0", "/" -> "~1").
std::string pointer_append(const std::string& pointer, const std::string& token);

/// "path:line" when `lines` knows `pointer` exactly, else "path".
std::string source_location(const std::string& path, const SourceLines& lines,
                            const std::string& pointer);

/// Parses YAML text. Throws naming `path` and the line for syntax errors, duplicate keys,
/// non-string keys, aliases to maps used as keys, and .inf/.nan (JSON has no such numbers).
SweepDocument parse_yaml_sweep(const std::string& text, const std::string& path);

/// Parses JSON text (nlohmann, so numbers and strings are exactly as JSON reads them); line
/// numbers come from a best-effort second read by yaml-cpp and are empty when it fails.
SweepDocument parse_json_sweep(const std::string& text, const std::string& path);

/// Reads `path`: YAML when it ends in .yaml or .yml, else JSON. Throws naming the path.
SweepDocument read_sweep_document(const std::string& path);

}  // namespace mil::orch
