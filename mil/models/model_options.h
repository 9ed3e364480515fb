#pragma once
// Strict reading of one model option from a ModelSpec options object: the JSON type must match, so
// a config cannot pass 2.7 as an integer, 1 as a boolean or "0.5" as a number without an error.
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace mil {

/// j[key] as a T when present (nullopt when absent); a value of the wrong JSON type is an error
/// naming `context`.key and the value.
template <typename T>
std::optional<T> model_option(const nlohmann::json& j, const char* key,
                              const std::string& context) {
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  const auto reject = [&](const char* expected) {
    throw std::runtime_error(context + "." + key + ": expected " + expected + ", got " +
                             it->dump());
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) reject("true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) reject("an integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) reject("a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) reject("a string");
  }
  return it->get<T>();
}

}  // namespace mil
