#pragma once
// MHIM's instance masking (the reference's modules/mhim_modules/masking.py): which instances the
// student does not see, chosen from the teacher's scores with the reference's exact counting rule,
// and the cosine schedules of the mask ratio (decay to 0) and of the teacher's momentum (ramp to 1)
// over the nominal run.
#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

/// Candidate count and final masked count of one selection, as the reference counts them:
/// r' = ratio / random_ratio in IEEE double; when r' > 1, random_ratio := ratio and r' := 1;
/// candidates = ceil(n · r'); masked = ceil(candidates · random_ratio) when random_ratio < 1.
/// So n = 100, ratio = 0.07 gives 8 (100 · 0.07 = 7.000000000000001), as the reference.
struct MaskCount {
  int64_t candidates = 0;  ///< Highest- (or lowest-) scored instances considered.
  int64_t masked = 0;  ///< Of those, how many are masked (a random subset when random_ratio < 1).
  double random_ratio = 1;  ///< The random ratio after the r' > 1 override.
};
MaskCount mask_count(int64_t n, double ratio, double random_ratio);

/// The outcome of masking a bag of n instances.
struct MaskSelection {
  std::vector<int64_t>
      kept;  ///< Instances the student sees, in ascending original order (the reference's
             ///< follow Python set iteration, which is ascending except after heavy masking).
  std::vector<int64_t> masked;  ///< Masked instances, ascending.
};

/// Chooses `count` of `candidates` ([k] instance ids) at random: the random part of a selection
/// (v1's random masking, R-HAM). Null means a uniform subset drawn from LibTorch's default
/// generator; a replay passes the subset a recorded run drew.
using SubsetDraw = std::function<at::Tensor(const at::Tensor& candidates, int64_t count)>;

/// One selection step: the `ratio`-share of instances with the largest (or smallest) `scores` ([N],
/// or [H, N] fused by a per-head vote: each head nominates its top-k, the k most nominated win),
/// optionally a random subset of them (`random_ratio` < 1, drawn from LibTorch's default
/// generator), united with `previous` (candidates are chosen among all N, so successive strategies
/// overlap). A ratio of 0 masks nothing.
MaskSelection select_mask(const at::Tensor& scores, bool largest, double ratio, double random_ratio,
                          const MaskSelection* previous = nullptr,
                          const SubsetDraw& draw = nullptr);

/// The MHIM mask strategies, applied in the reference's order: random (v1 "RM"), low-score (v1
/// "L-HAM"), high-score ("HAM", v2's only one; "R-HAM" with high_random_ratio < 1).
struct MaskPlan {
  double random_ratio = 0.0;  ///< `mask_ratio`: a uniformly random share of the bag.
  double low_ratio = 0.0;     ///< `mask_ratio_l`: the lowest-scored share.
  double high_ratio = 0.0;    ///< `mask_ratio_h` (after its schedule): the highest-scored share.
  double high_random_ratio =
      1.0;  ///< `mask_ratio_hr`: share of the high candidates actually masked.
};

/// Applies `plan` to a bag with teacher `scores` ([N] or [H, N]). At least one instance is always
/// kept (the reference would crash on an empty student bag); a plan of zeros keeps everything.
MaskSelection apply_mask_plan(const at::Tensor& scores, const MaskPlan& plan,
                              const SubsetDraw& draw = nullptr);

/// Cosine decay of a value from `base` to `final_value` over `total` steps (the reference's sched
/// helper): final + ½(base − final)(1 + cos(π·step/total)). Used for the high-mask ratio (final 0)
/// and the teacher momentum ramp (final 1).
double cosine_schedule(double base, double final_value, int64_t step, int64_t total);

}  // namespace mil
