#pragma once
// A small, strict command-line parser for the subcommands: unknown options are errors that name
// them.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mil::app {

/// Usage error: the message is shown with the command's --help hint.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  /// Parses `tokens` ("--name value", "--name=value", "--flag", positionals). `value_options` take
  /// a value (repeatable ones keep every value); `flag_options` take none. Anything else is a
  /// UsageError.
  Args(const std::vector<std::string>& tokens, const std::vector<std::string>& value_options,
       const std::vector<std::string>& flag_options);

  bool has(const std::string& name) const;  ///< Given at least once (flag or option).
  std::string get(const std::string& name,
                  const std::string& fallback) const;  ///< Last value given.
  std::string require(const std::string& name) const;  ///< Last value; UsageError when absent.
  int get_int(const std::string& name, int fallback) const;
  double get_double(const std::string& name, double fallback) const;
  std::uint64_t get_u64(const std::string& name, std::uint64_t fallback) const;
  std::vector<std::string> get_all(const std::string& name) const;  ///< Every value, in order.
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace mil::app
