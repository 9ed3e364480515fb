#pragma once
// The small halving sweep the pruning tests play (schedule/prune_gate.h, rank 0 under MPI): four
// grid points x three folds of one (dataset, method), eta 2, where each job's validation AUC comes
// from a table and its test AUC is the reverse (1 - validation), so a decision that read the test
// metric would keep the other points. Fold 0 keeps points 1 and 3; their means over folds 0-1 are
// 0.75 and 0.85, so point 3 alone runs fold 2: 7 jobs run, 5 are pruned.
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/pruning.h"

namespace mil::testing::halving {

constexpr int kPoints = 4;  ///< Grid points (learning rates 1e-4 * (p + 1)).
constexpr int kFolds = 3;   ///< Folds of each point, one per rung.
/// Validation AUC of point p on fold f.
constexpr double kValidation[kPoints][kFolds] = {
    {0.60, 0.95, 0.95}, {0.90, 0.60, 0.50}, {0.70, 0.95, 0.95}, {0.80, 0.90, 0.50}};

/// Successive halving with eta 2, one fold per rung.
inline orch::PruneSpec prune_spec() {
  orch::PruneSpec spec;
  spec.enabled = true;
  spec.eta = 2;
  return spec;
}

/// The job of point `point` on fold `fold`, with a validation split.
inline JobSpec job_spec(int point, int fold) {
  JobSpec spec;
  spec.dataset.name = "d";
  spec.dataset.root = "/data/d";
  spec.model.method = "abmil";
  spec.train.lr = 1e-4 * (point + 1);
  spec.split.fold_count = kFolds;
  spec.split.fold_index = fold;
  spec.split.val_ratio = 0.15;
  spec.seed = 2021;
  return spec;
}

/// Every job, points outermost (sweep order).
inline std::vector<JobSpec> sweep_jobs() {
  std::vector<JobSpec> jobs;
  for (int p = 0; p < kPoints; ++p) {
    for (int f = 0; f < kFolds; ++f) jobs.push_back(job_spec(p, f));
  }
  return jobs;
}

/// What a job reports: ok, validation AUC from kValidation, test AUC its reverse.
inline JobResult result_of(const JobSpec& spec) {
  const int point = static_cast<int>(std::lround(spec.train.lr * 1e4)) - 1;
  const double val = kValidation[point][spec.split.fold_index];
  JobResult result;
  result.job_id = spec.id();
  result.config_id = spec.config_id();
  result.spec = spec;
  result.status = "ok";
  result.metrics = {{"val", {{"auc", val}}}, {"test", {{"auc", 1.0 - val}}}};
  result.runtime = nlohmann::json::object();
  return result;
}

/// The jobs halving must prune: points 0 and 2 after fold 0, point 1 after fold 1.
inline std::set<std::string> expected_pruned() {
  return {job_spec(0, 1).id(), job_spec(0, 2).id(), job_spec(2, 1).id(), job_spec(2, 2).id(),
          job_spec(1, 2).id()};
}

}  // namespace mil::testing::halving
