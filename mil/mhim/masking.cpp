#include "mil/mhim/masking.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace mil {

MaskCount mask_count(int64_t n, double ratio, double random_ratio) {
  if (!(random_ratio > 0.0))
    throw std::invalid_argument("mask random ratio must be > 0 (the reference divides by it)");
  MaskCount count;
  double r = ratio / random_ratio;
  count.random_ratio = random_ratio;
  if (r > 1.0) {
    count.random_ratio = ratio;
    r = 1.0;
  }
  count.candidates = static_cast<int64_t>(std::ceil(static_cast<double>(n) * r));
  count.masked = count.random_ratio < 1.0
                     ? static_cast<int64_t>(
                           std::ceil(static_cast<double>(count.candidates) * count.random_ratio))
                     : count.candidates;
  return count;
}

MaskSelection select_mask(const at::Tensor& scores, bool largest, double ratio, double random_ratio,
                          const MaskSelection* previous, const SubsetDraw& draw) {
  TORCH_CHECK(scores.dim() == 1 || scores.dim() == 2,
              "select_mask expects scores [N] or [H, N], got ", scores.sizes());
  const int64_t n = scores.size(-1);
  std::set<int64_t> masked;
  if (previous) masked.insert(previous->masked.begin(), previous->masked.end());
  if (ratio > 0.0 && n > 0) {
    const MaskCount count = mask_count(n, ratio, random_ratio);
    const int64_t k = std::min(count.candidates, n);
    // On the CPU whatever the scores' device: N floats, and the random subset then draws from the
    // CPU generator, as on a CPU run.
    const at::Tensor s = scores.detach().to(at::kCPU, at::kFloat);
    at::Tensor candidates;
    if (s.dim() == 1) {
      candidates = std::get<1>(s.topk(k, 0, largest));
    } else {
      // Vote (the reference's multi-head fusion): each head nominates its top-k; the k instances
      // with most nominations win.
      const at::Tensor nominated = std::get<1>(s.topk(k, 1, largest));  // [H, k]
      const at::Tensor votes = at::zeros_like(s).scatter_(1, nominated, 1.0).sum(0);
      candidates = std::get<1>(votes.topk(k, 0, /*largest=*/true));
    }
    if (count.random_ratio < 1.0) {
      const int64_t wanted = std::min(count.masked, k);
      if (draw) {
        candidates = draw(candidates, wanted);
        TORCH_CHECK(candidates.numel() == wanted, "mask subset draw returned ", candidates.numel(),
                    " instances, wanted ", wanted);
      } else {
        candidates = candidates.index_select(
            0, at::randperm(candidates.size(0), at::kLong).narrow(0, 0, wanted));
      }
    }
    const at::Tensor c = candidates.to(at::kLong).contiguous();
    masked.insert(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  }
  MaskSelection out;
  out.masked.assign(masked.begin(), masked.end());
  out.kept.reserve(static_cast<std::size_t>(n) - out.masked.size());
  auto next = out.masked.begin();
  for (int64_t i = 0; i < n; ++i) {
    if (next != out.masked.end() && *next == i) {
      ++next;
    } else {
      out.kept.push_back(i);
    }
  }
  return out;
}

MaskSelection apply_mask_plan(const at::Tensor& scores, const MaskPlan& plan,
                              const SubsetDraw& draw) {
  MaskSelection selection = select_mask(scores, /*largest=*/false, plan.random_ratio,
                                        /*random_ratio=*/0.001, nullptr, draw);
  selection = select_mask(scores, /*largest=*/false, plan.low_ratio, 1.0, &selection, draw);
  selection = select_mask(scores, /*largest=*/true, plan.high_ratio, plan.high_random_ratio,
                          &selection, draw);
  if (selection.kept.empty() && !selection.masked.empty()) {
    // Give back the lowest-scored masked instance, the least "hard" one.
    const at::Tensor cpu = scores.detach().to(at::kCPU, at::kFloat);
    const at::Tensor s = cpu.dim() == 2 ? cpu.mean(0) : cpu;
    int64_t keep = selection.masked.front();
    for (int64_t i : selection.masked) {
      if (s[i].item<float>() < s[keep].item<float>()) keep = i;
    }
    selection.masked.erase(std::find(selection.masked.begin(), selection.masked.end(), keep));
    selection.kept.push_back(keep);
  }
  return selection;
}

double cosine_schedule(double base, double final_value, int64_t step, int64_t total) {
  constexpr double kPi = 3.14159265358979323846;
  if (total <= 0) return base;
  return final_value +
         0.5 * (base - final_value) * (1.0 + std::cos(kPi * static_cast<double>(step) / total));
}

}  // namespace mil
