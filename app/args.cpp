#include "app/args.h"

#include <algorithm>

namespace mil::app {
namespace {
bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

template <typename T, typename Parse>
T parse_number(const std::string& name, const std::string& text, Parse parse) {
  try {
    std::size_t used = 0;
    T value = parse(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UsageError("--" + name + ": '" + text + "' is not a valid number");
}
}  // namespace

Args::Args(const std::vector<std::string>& tokens, const std::vector<std::string>& value_options,
           const std::vector<std::string>& flag_options) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (token.rfind("--", 0) != 0 || token == "--") {
      positional_.push_back(token);
      continue;
    }
    std::string name = token.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    if (contains(flag_options, name)) {
      if (has_inline_value) throw UsageError("--" + name + " takes no value");
      values_[name].push_back("true");
    } else if (contains(value_options, name)) {
      if (!has_inline_value) {
        if (i + 1 >= tokens.size()) throw UsageError("--" + name + " needs a value");
        value = tokens[++i];
      }
      values_[name].push_back(value);
    } else {
      throw UsageError("unknown option --" + name);
    }
  }
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::require(const std::string& name) const {
  if (!has(name)) throw UsageError("--" + name + " is required");
  return get(name, "");
}

int Args::get_int(const std::string& name, int fallback) const {
  return has(name) ? parse_number<int>(
                         name, get(name, ""),
                         [](const std::string& s, std::size_t* u) { return std::stoi(s, u); })
                   : fallback;
}

double Args::get_double(const std::string& name, double fallback) const {
  return has(name) ? parse_number<double>(
                         name, get(name, ""),
                         [](const std::string& s, std::size_t* u) { return std::stod(s, u); })
                   : fallback;
}

std::uint64_t Args::get_u64(const std::string& name, std::uint64_t fallback) const {
  return has(name) ? parse_number<std::uint64_t>(
                         name, get(name, ""),
                         [](const std::string& s, std::size_t* u) { return std::stoull(s, u); })
                   : fallback;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace mil::app
