#pragma once
// How an MHIM job finds its teacher: with `teacher_init: "baseline"` the teacher is the `mhim_pure`
// model trained by the job with the same dataset, split, fold, training settings and seed, so fold
// k's teacher never saw fold k's test bags. Sweeps add that baseline job and run it first.
#include <optional>

#include "mil/core/specs.h"

namespace mil {

/// The option value that makes a `mhim` job take its teacher from its baseline job.
inline constexpr const char* kTeacherFromBaseline = "baseline";

/// The baseline job whose best model is `job`'s teacher: same everything, model `mhim_pure` with
/// the network options of `job` minus the GRN (merge*) and MHIM training keys, and the leaderboard
/// method "mhim_pure-<aggregator>". Empty unless `job` is a `mhim` job with teacher_init
/// "baseline".
std::optional<JobSpec> mhim_teacher_job(const JobSpec& job);

}  // namespace mil
