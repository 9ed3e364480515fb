#include "mil/data/data_check.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <optional>
#include <set>

#include "mil/data/bag_dataset.h"
#include "mil/data/feature_io.h"
#include "mil/data/label_csv.h"
#include "mil/data/packed_cache.h"
#include "mil/data/slide_source.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

/// `message` without a leading "'<path>'" (and the ": " after it): the report prints the path as
/// `where`.
std::string without_path(const std::string& message, const std::string& path) {
  const std::string quoted = "'" + path + "'";
  if (message.rfind(quoted, 0) != 0) return message;
  std::string rest = message.substr(quoted.size());
  if (rest.rfind(": ", 0) == 0) rest = rest.substr(2);
  if (!rest.empty() && rest.front() == ' ') rest = rest.substr(1);
  return rest;
}

std::string problem_kind(FeatureFileError::Kind kind) {
  switch (kind) {
    case FeatureFileError::Kind::kUnreadablePt:
      return "unreadable_pt";
    case FeatureFileError::Kind::kUnreadableH5:
      return "unreadable_h5";
    case FeatureFileError::Kind::kBadContent:
      return "bad_content";
    case FeatureFileError::Kind::kEmptyBag:
      return "empty_bag";
  }
  return "bad_content";
}

/// Reads every slide once, one at a time, logging what is wrong with each.
class SlideChecker {
 public:
  SlideChecker(const SlideSource& source, DataCheckReport& report, ProblemLog& log)
      : source_(source), report_(report), log_(log) {}

  void check(const std::string& slide) {
    const std::string path = source_.path_of(slide);
    SlideData data;
    try {
      data = source_.read(slide);
    } catch (const FeatureFileError& e) {
      log_.add(DataProblem{problem_kind(e.kind()), path, without_path(e.what(), path)});
      return;
    } catch (const std::exception& e) {
      log_.add(DataProblem{source_.kind() == "h5" ? "unreadable_h5" : "unreadable_pt", path,
                           without_path(e.what(), path)});
      return;
    }
    if (const PackedCache* cache = source_.cache()) {
      try {
        cache->verify(std::size_t(cache->find(slide)));
      } catch (const std::exception& e) {
        log_.add(DataProblem{"packed_cache", path, e.what()});
      }
    }
    const at::Tensor& x = data.features;
    ++report_.slides_read;
    report_.instances += x.size(0);
    dims_[x.size(1)].push_back(path);
    const int64_t bad = (~at::isfinite(x)).sum().item<int64_t>();
    if (bad > 0) {
      const int64_t first_row = (~at::isfinite(x)).any(1).nonzero()[0][0].item<int64_t>();
      log_.add(DataProblem{"non_finite", path,
                           "features hold " + std::to_string(bad) +
                               " NaN or Inf value(s), the first in instance " +
                               std::to_string(first_row)});
    }
  }

  /// Reports every slide whose D differs from the most common one.
  void finish() {
    if (dims_.empty()) return;
    auto majority = dims_.begin();
    for (auto it = dims_.begin(); it != dims_.end(); ++it) {
      if (it->second.size() > majority->second.size()) majority = it;
    }
    report_.feature_dim = int(majority->first);
    for (const auto& [dim, paths] : dims_) {
      if (dim == majority->first) continue;
      for (const std::string& path : paths) {
        log_.add(DataProblem{"feature_dim", path,
                             "feature dim " + std::to_string(dim) + ", but " +
                                 std::to_string(majority->second.size()) + " slide(s) have " +
                                 std::to_string(majority->first)});
      }
    }
  }

 private:
  const SlideSource& source_;
  DataCheckReport& report_;
  ProblemLog& log_;
  std::map<int64_t, std::vector<std::string>> dims_;  // D -> slides with it
};

void check_slides(const std::vector<std::string>& slides, const SlideSource& source,
                  DataCheckReport& report, ProblemLog& log,
                  const std::function<void(std::size_t, std::size_t)>& progress) {
  SlideChecker checker(source, report, log);
  for (std::size_t i = 0; i < slides.size(); ++i) {
    checker.check(slides[i]);
    if (progress) progress(i + 1, slides.size());
  }
  checker.finish();
  std::set<std::string> listed(slides.begin(), slides.end());
  for (const std::string& id : source.slide_ids()) report.unlisted_slides += listed.count(id) == 0;
}

void log_missing(const std::vector<std::string>& missing, ProblemLog& log) {
  for (const std::string& m : missing) log.add(DataProblem{"missing_file", m, "no feature file"});
}

}  // namespace

DataCheckReport check_dataset(const DatasetSpec& spec,
                              const std::function<void(std::size_t, std::size_t)>& progress) {
  DataCheckReport report;
  ProblemLog log;
  if (spec.kind != "bags" && spec.kind != "survival") {
    try {
      const BagDataset data = load_dataset(spec);
      report.slides_read = data.bags.size();
      report.feature_dim = data.feature_dim;
      for (const Bag& b : data.bags)
        report.instances += b.features.size(0), ++report.bags_per_label[b.label];
    } catch (const std::exception& e) {
      log.add(DataProblem{"dataset", spec.root, e.what()});
    }
    report.problems = log.problems();
    return report;
  }
  const bool survival = spec.kind == "survival";
  const std::string labels =
      (fs::path(spec.root) /
       (spec.labels.empty() ? (survival ? "survival.csv" : "labels.csv") : spec.labels))
          .string();
  std::vector<LabelRow> rows;
  std::vector<SurvivalCase> cases;
  if (survival) {
    cases = read_survival_csv(labels, &log);
    for (const SurvivalCase& c : cases) ++report.bags_per_label[c.status];
    if (cases.size() < 2) log.add(DataProblem{"dataset", labels, "fewer than 2 cases"});
  } else {
    rows = read_label_csv(labels, spec, &log);
    for (const LabelRow& r : rows) ++report.bags_per_label[r.label];
  }
  std::optional<SlideSource> source;
  try {
    source = SlideSource::for_dataset(spec);
    report.source = source->location();
  } catch (const std::exception& e) {
    log.add(
        DataProblem{"packed_cache", (fs::path(spec.root) / kPackedCacheName).string(), e.what()});
    report.problems = log.problems();
    return report;
  }
  if (!source->cache() && !fs::is_directory(source->location())) {
    log.add(DataProblem{"missing_file", source->location(), "the feature folder does not exist"});
    report.problems = log.problems();
    return report;
  }
  std::vector<std::string> missing, slides;
  if (survival) {
    for (const SurvivalCase& c : cases) {
      for (const std::string& slide : c.slides) {
        if (source->contains(slide)) {
          slides.push_back(slide);
        } else {
          missing.push_back(source->path_of(slide) + " (case " + c.id + ", " + c.where + ")");
        }
      }
    }
  } else {
    for (const SlideOfRow& e : match_slides(rows, spec.slide_match, *source, missing, &log))
      slides.push_back(e.slide);
  }
  log_missing(missing, log);
  check_slides(slides, *source, report, log, progress);
  report.problems = log.problems();
  return report;
}

}  // namespace mil
