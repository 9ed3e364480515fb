#include "orchestrator/sweep/file.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "mil/core/json_reader.h"
#include "mil/core/reader_limits.h"

namespace mil::orch {
namespace {

using nlohmann::json;

/// Index of the first non-digit of `t` at or after `i`.
std::size_t skip_digits(std::string_view t, std::size_t i) {
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  return i;
}
std::size_t skip_sign(std::string_view t) { return !t.empty() && (t[0] == '-' || t[0] == '+'); }

// The YAML 1.2 core schema's plain scalars that are not strings, matched by hand: std::regex
// recurses once per character and overflows the stack on a long scalar.

/// [-+]?[0-9]+
bool is_core_int(std::string_view t) {
  const std::size_t start = skip_sign(t);
  const std::size_t end = skip_digits(t, start);
  return end > start && end == t.size();
}

/// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_core_float(std::string_view t) {
  std::size_t i = skip_sign(t);
  if (i < t.size() && t[i] == '.') {
    const std::size_t end = skip_digits(t, i + 1);
    if (end == i + 1) return false;
    i = end;
  } else {
    const std::size_t end = skip_digits(t, i);
    if (end == i) return false;
    i = end;
    if (i < t.size() && t[i] == '.') i = skip_digits(t, i + 1);
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '-' || t[i] == '+')) ++i;
    const std::size_t end = skip_digits(t, i);
    if (end == i) return false;
    i = end;
  }
  return i == t.size();
}

/// [-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)
bool is_core_special_float(std::string_view t) {
  const std::string_view unsigned_part = t.substr(skip_sign(t));
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF") return true;
  return t == ".nan" || t == ".NaN" || t == ".NAN";
}

/// yaml-cpp's tag for an explicit `!!str`.
constexpr const char* kStrTag = "tag:yaml.org,2002:str";

/// Builds JSON from yaml-cpp nodes, recording the line of every key and element.
class YamlConverter {
 public:
  YamlConverter(const std::string& path, SourceLines* lines) : path_(path), lines_(lines) {}

  /// `depth`: how many sequences and mappings hold `node`.
  json convert(const YAML::Node& node, const std::string& pointer, int depth = 0) {
    if (++nodes_ > kMaxYamlNodes) {
      fail(node.Mark(), over_limit("the number of YAML nodes (an alias counts its whole subtree "
                                   "each time it is used)",
                                   kMaxYamlNodes, "kMaxYamlNodes"));
    }
    if (depth > kMaxYamlDepth) {
      fail(node.Mark(), over_limit("the nesting of YAML sequences and mappings", kMaxYamlDepth,
                                   "kMaxYamlDepth"));
    }
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        for (std::size_t i = 0; i < node.size(); ++i) {
          const std::string child = pointer_append(pointer, std::to_string(i));
          record(child, node[i].Mark());
          out.push_back(convert(node[i], child, depth + 1));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        std::map<std::string, int> first_line;
        for (auto it = node.begin(); it != node.end(); ++it) {
          const YAML::Node key = it->first;  // copies: `it->` yields a temporary pair
          if (!key.IsScalar()) fail(key.Mark(), "a mapping key must be a plain string");
          const std::string name = key.Scalar();
          if (name.size() > kMaxYamlKeyBytes) {
            fail(key.Mark(), over_limit("a mapping key's length", name.size(), kMaxYamlKeyBytes,
                                        "kMaxYamlKeyBytes"));
          }
          const int line = key.Mark().line + 1;
          if (!first_line.emplace(name, line).second) {
            fail(key.Mark(), "duplicate key '" + name + "' (first on line " +
                                 std::to_string(first_line[name]) + ")");
          }
          const std::string child = pointer_append(pointer, name);
          record(child, key.Mark());
          const YAML::Node value = it->second;
          out[name] = convert(value, child, depth + 1);
        }
        return out;
      }
    }
    return nullptr;
  }

 private:
  json scalar(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    // Quoted scalars ("!") and explicit !!str are strings; plain ones ("?") are typed by content.
    if (node.Tag() != "?") {
      if (node.Tag() == "!" || node.Tag() == kStrTag) return text;
      fail(node.Mark(), "tag '" + node.Tag() + "' is not supported (only !!str)");
    }
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    if (is_core_int(text)) {
      errno = 0;
      if (text[0] == '-') {
        const long long value = std::strtoll(text.c_str(), nullptr, 10);
        if (errno != ERANGE) return value;
      } else {
        const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
        if (errno != ERANGE) return value;  // non-negative integers stay unsigned, as in JSON
      }
      fail(node.Mark(), "integer " + text + " is out of range");
    }
    if (is_core_float(text)) return std::strtod(text.c_str(), nullptr);
    if (is_core_special_float(text)) {
      fail(node.Mark(), text + " is not a number a sweep can hold (JSON has no inf or nan)");
    }
    return text;
  }

  void record(const std::string& pointer, const YAML::Mark& mark) {
    if (lines_ != nullptr && !mark.is_null()) lines_->emplace(pointer, mark.line + 1);
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) {
    throw std::runtime_error(path_ + (mark.is_null() ? "" : ":" + std::to_string(mark.line + 1)) +
                             ": " + message);
  }

  std::string path_;
  SourceLines* lines_;
  std::size_t nodes_ = 0;  ///< Nodes converted so far (kMaxYamlNodes).
};

std::string read_text(const std::string& path) {
  try {
    return read_file_limited(path, kMaxSweepFileBytes, "kMaxSweepFileBytes");
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": cannot read the sweep file (" + e.what() + ")");
  }
}

void check_size(const std::string& text, const std::string& path) {
  if (text.size() > kMaxSweepFileBytes) {
    throw std::runtime_error(
        path + ": " +
        over_limit("the sweep file's size", text.size(), kMaxSweepFileBytes, "kMaxSweepFileBytes"));
  }
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string pointer_append(const std::string& pointer, const std::string& token) {
  std::string out = pointer + "/";
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string source_location(const std::string& path, const SourceLines& lines,
                            const std::string& pointer) {
  const auto it = lines.find(pointer);
  return it == lines.end() ? path : path + ":" + std::to_string(it->second);
}

SweepDocument parse_yaml_sweep(const std::string& text, const std::string& path) {
  SweepDocument doc;
  doc.path = path;
  check_size(text, path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw std::runtime_error(path + ":" + std::to_string(e.mark.line + 1) +
                             ": invalid YAML: " + e.msg);
  }
  doc.value = YamlConverter(path, &doc.lines).convert(root, "");
  return doc;
}

SweepDocument parse_json_sweep(const std::string& text, const std::string& path) {
  SweepDocument doc;
  doc.path = path;
  check_size(text, path);
  doc.value = parse_json_bounded(text, path, kMaxSweepFileBytes, "kMaxSweepFileBytes");
  // JSON is (nearly) YAML 1.2, so yaml-cpp can usually say where each key is. Only the lines are
  // kept; the values above are nlohmann's, so job ids do not depend on yaml-cpp's number parsing.
  try {
    SourceLines lines;
    YamlConverter(path, &lines).convert(YAML::Load(text), "");
    doc.lines = std::move(lines);
  } catch (const std::exception&) {
    doc.lines.clear();  // no line numbers, still a valid sweep
  }
  return doc;
}

SweepDocument read_sweep_document(const std::string& path) {
  const std::string text = read_text(path);
  if (ends_with(path, ".yaml") || ends_with(path, ".yml")) return parse_yaml_sweep(text, path);
  return parse_json_sweep(text, path);
}

}  // namespace mil::orch
