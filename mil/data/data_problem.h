#pragma once
// Problems found in a dataset's files. Loaders throw at the first one; `mhim check-data` passes a
// ProblemLog to the same readers and collects every one, so both report identical messages.
#include <stdexcept>
#include <string>
#include <vector>

namespace mil {

/// One problem, with its class so reports can group them.
struct DataProblem {
  /// "missing_file", "feature_dim", "non_finite", "empty_bag", "duplicate_id", "unknown_label",
  /// "unreadable_h5", "unreadable_pt", "bad_content", "csv_fields", "csv_value", "label_conflict",
  /// "packed_cache" or "dataset".
  std::string kind;
  std::string where;    ///< File, file:line or slide.
  std::string message;  ///< What is wrong, without `where`.
};

/// Where readers send problems. A null log means "throw the first problem".
class ProblemLog {
 public:
  void add(DataProblem problem) { problems_.push_back(std::move(problem)); }
  const std::vector<DataProblem>& problems() const { return problems_; }

 private:
  std::vector<DataProblem> problems_;
};

/// Records `where: message` in `log`, or throws it as std::runtime_error when `log` is null.
inline void report_problem(ProblemLog* log, const std::string& kind, const std::string& where,
                           const std::string& message) {
  if (log == nullptr) throw std::runtime_error(where + ": " + message);
  log->add(DataProblem{kind, where, message});
}

}  // namespace mil
