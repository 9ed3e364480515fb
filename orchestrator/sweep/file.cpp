#include "orchestrator/sweep/file.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace mil::orch {
namespace {

using nlohmann::json;

/// The YAML 1.2 core schema's plain scalars that are not strings.
const std::regex kIntPattern("[-+]?[0-9]+");
const std::regex kFloatPattern("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
const std::regex kSpecialFloatPattern("[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");
/// yaml-cpp's tag for an explicit `!!str`.
constexpr const char* kStrTag = "tag:yaml.org,2002:str";

/// Builds JSON from yaml-cpp nodes, recording the line of every key and element.
class YamlConverter {
 public:
  YamlConverter(const std::string& path, SourceLines* lines) : path_(path), lines_(lines) {}

  json convert(const YAML::Node& node, const std::string& pointer) {
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
          out.push_back(convert(node[i], child));
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
          const int line = key.Mark().line + 1;
          if (!first_line.emplace(name, line).second) {
            fail(key.Mark(), "duplicate key '" + name + "' (first on line " +
                                 std::to_string(first_line[name]) + ")");
          }
          const std::string child = pointer_append(pointer, name);
          record(child, key.Mark());
          const YAML::Node value = it->second;
          out[name] = convert(value, child);
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
    if (std::regex_match(text, kIntPattern)) {
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
    if (std::regex_match(text, kFloatPattern)) return std::strtod(text.c_str(), nullptr);
    if (std::regex_match(text, kSpecialFloatPattern)) {
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
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(path + ": cannot open sweep file (" + std::strerror(errno) + ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
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
  try {
    doc.value = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
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
