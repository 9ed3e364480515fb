#pragma once
// `mhim check-data`: reads a dataset's label file and every slide once and reports every problem in
// one pass (the loader stops at the first), with the loader's own messages.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "mil/data/data_problem.h"

namespace mil {

/// What check_dataset found.
struct DataCheckReport {
  std::vector<DataProblem> problems;  ///< In the order found: label file first, then slides.
  std::string source;                 ///< Feature folder or cache that was read.
  std::size_t slides_read = 0;        ///< Slides whose features could be read.
  std::size_t unlisted_slides =
      0;                  ///< Slides in the source that no label row names (not a problem).
  int64_t instances = 0;  ///< Over the slides read.
  int feature_dim = 0;    ///< The most common D (0 when nothing was read).
  std::map<int, int> bags_per_label;  ///< Label (or survival status) -> listed bags.

  bool clean() const { return problems.empty(); }
};

/// Checks `spec` (kinds bags and survival; other kinds are loaded and any error reported as one
/// problem). Holds one slide in memory at a time; for a packed cache, also recomputes every slide's
/// SHA-256. `progress(done, total)` is called after each slide when given.
DataCheckReport check_dataset(const DatasetSpec& spec,
                              const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace mil
