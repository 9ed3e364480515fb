// mhim bench models: per-bag forward and forward+backward cost of every model by bag size, with
// peak memory and achieved GFLOP/s beside a plain matmul of the same size.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "app/args.h"
#include "app/bench/common.h"
#include "app/commands.h"
#include "mil/models/mil_model.h"
#include "mil/runtime/allocation_meter.h"
#include "mil/train/trainer.h"

namespace mil::app {
namespace {

constexpr const char* kHelp = R"(usage: mhim bench models [options]

For each model and bag size N, times one bag [N x D] through the model: the forward pass in eval mode
without autograd, and forward + cross-entropy + backward in train mode (dropout on). Prints medians of
the timed repeats (one untimed warm-up first), peak memory and achieved GFLOP/s.

Memory, measured on the warm-up pass:
  alloc MB  peak bytes of live tensors handed out by LibTorch's CPU allocator during the pass (exact;
            excludes the input bag and the weights, and BLAS's own scratch)
  RSS+ MB   rise of the process's resident high-water mark during the pass (Linux clear_refs): what the
            OS saw, including allocator slack, but low when memory freed by an earlier pass is reused
FLOPs are counted analytically (multiply-adds x 2 of every matmul and convolution; backward = twice the
forward, less the gradient of the bag itself). The peak is a plain [N x D]·[D x 512] fp32 matmul on the
same threads (the instance embedding, the largest matmul of most models).

On a machine shared with other work, OpenMP threads that spin at barriers lose whole scheduler slices:
there OMP_WAIT_POLICY=PASSIVE can make small batched matmuls (TransMIL's) ten times faster. The header
line shows the setting.

options:
  --sizes LIST     bag sizes N (default 1000,10000,50000)
  --dim D          feature dimension (default 1024)
  --classes C      classes (default 2)
  --models LIST    comma-separated (default: every reference model name make_model knows)
  --repeats R      timed repeats per measurement (default 5)
  --threads T      LibTorch threads (default 2)
  --model-options J  JSON options for every model, e.g. '{"dropout": 0}'

example:
  mhim bench models --sizes 1000,10000 --models abmil,transmil --repeats 3
)";

/// The reference zoo's model names (its `--model` choices); the default run benchmarks those
/// make_model builds.
const std::vector<std::string> kReferenceModels{"abmil",   "gabmil",  "transmil", "dsmil",
                                                "clam_sb", "clam_mb", "dtfd",     "rrtmil",
                                                "meanmil", "maxmil"};

/// Width of the instance embedding of every reference model.
constexpr double kWidth = 512;

/// Forward FLOPs of one bag of n instances for the models whose arithmetic we wrote down; nullopt
/// otherwise.
std::optional<double> forward_flops(const std::string& model, int64_t n, int64_t dim) {
  const double N = double(n), D = double(dim), E = kWidth;
  const double embed = 2 * N * D * E;
  if (model == "abmil") return embed + 2 * N * E * 128 + 2 * N * 128 + 2 * N * E;
  if (model == "gabmil") return embed + 2 * (2 * N * E * 384) + N * 384 + 2 * N * 384 + 2 * N * E;
  if (model == "transmil") {
    const double H = 8, dh = 64, m = 256, iterations = 6, kernel = 33;
    const int64_t side = static_cast<int64_t>(std::ceil(std::sqrt(double(n))));
    const double grid = double(side * side), seq = grid + 1;
    const double padded = std::ceil(seq / m) * m;
    const double layer = 2 * padded * E * 3 * E                // q, k, v
                         + 2 * H * seq * m * dh                // kernel 1 (real rows)
                         + 2 * H * m * m * dh                  // kernel 2
                         + 2 * H * m * padded * dh             // kernel 3
                         + iterations * 4 * 2 * H * m * m * m  // pseudo-inverse
                         + 2 * H * seq * m * m                 // kernel 1 · pinv
                         + 2 * H * m * padded * dh             // kernel 3 · v
                         + 2 * H * seq * m * dh                // (..) · (..)
                         + 2 * H * padded * dh * kernel        // residual convolution
                         + 2 * seq * E * E;                    // output projection
    return embed + 2 * layer + 2 * grid * E * (49 + 25 + 9);
  }
  return std::nullopt;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Resets the kernel's resident high-water mark to the current RSS; false where not allowed.
bool reset_resident_peak() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

/// VmRSS or VmHWM from /proc/self/status, in MB; negative when unreadable.
double status_megabytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  return -1;
}

struct Measurement {
  double median_ms = 0;
  double alloc_mb = 0;
  double rss_rise_mb = -1;  ///< Negative when the high-water mark could not be reset.
};

template <typename Pass>
Measurement measure(Pass&& pass, int repeats) {
  Measurement result;
  {
    const bool reset = reset_resident_peak();
    const double before = status_megabytes("VmRSS");
    AllocationMeter meter;
    pass();
    result.alloc_mb = double(meter.peak_bytes()) / (1 << 20);
    if (reset && before >= 0) result.rss_rise_mb = status_megabytes("VmHWM") - before;
  }
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    ms.push_back(1e3 * seconds_since(start));
  }
  result.median_ms = median(ms);
  return result;
}

/// fp32 GFLOP/s of [rows x dim]·[dim x 512], median of `repeats` after one warm-up.
double matmul_gflops(int64_t rows, int64_t dim, int repeats) {
  const at::Tensor a = at::randn({rows, dim}), b = at::randn({dim, int64_t(kWidth)});
  const Measurement m = measure([&] { a.mm(b); }, repeats);
  return 2.0 * double(rows) * double(dim) * kWidth / (m.median_ms / 1e3) / 1e9;
}

std::string gflops_cell(std::optional<double> flops, double ms, double peak) {
  if (!flops) return "        -      -";
  const double gflops = *flops / (ms / 1e3) / 1e9;
  char cell[32];
  std::snprintf(cell, sizeof cell, "%9.1f %5.0f%%", gflops, 100.0 * gflops / peak);
  return cell;
}

}  // namespace

int cmd_bench_models(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  try {
    const Args args(
        tokens, {"sizes", "dim", "classes", "models", "repeats", "threads", "model-options"}, {});
    const int dim = args.get_int("dim", 1024), classes = args.get_int("classes", 2);
    const int repeats = args.get_int("repeats", 5);
    const int threads = configure_threads(args.get_int("threads", 2), 1);
    if (dim < 1 || classes < 2 || repeats < 1)
      throw UsageError("need --dim >= 1, --classes >= 2, --repeats >= 1");
    std::vector<int64_t> sizes;
    for (const std::string& s : split_list(args.get("sizes", "1000,10000,50000"))) {
      sizes.push_back(std::stoll(s));
      if (sizes.back() < 1) throw UsageError("bag sizes must be >= 1, got " + s);
    }
    const nlohmann::json model_options = nlohmann::json::parse(args.get("model-options", "{}"));
    const bool explicit_models = args.has("models");
    const std::vector<std::string> names =
        explicit_models ? split_list(args.get("models", "")) : kReferenceModels;

    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    std::printf(
        "bench models: D=%d, C=%d, %d threads (OMP_WAIT_POLICY %s), medians of %d timed repeats "
        "after a warm-up\n",
        dim, classes, threads, wait_policy ? wait_policy : "unset", repeats);
    std::vector<double> peaks;
    for (int64_t n : sizes) {
      peaks.push_back(matmul_gflops(n, dim, repeats));
      std::printf("fp32 matmul peak [%lld x %d]·[%d x 512]: %.1f GFLOP/s\n",
                  static_cast<long long>(n), dim, dim, peaks.back());
    }
    std::printf("\n%-9s %6s | %10s %9s %6s %9s | %10s %9s %6s %9s %8s\n", "model", "N", "fwd ms",
                "GFLOP/s", "%peak", "alloc MB", "f+b ms", "GFLOP/s", "%peak", "alloc MB",
                "RSS+ MB");
    std::fflush(stdout);
    for (const std::string& name : names) {
      std::shared_ptr<MilModelImpl> model;
      try {
        seed_torch(1);
        model = make_model(ModelSpec{name, model_options}, dim, classes);
      } catch (const std::exception& e) {
        if (explicit_models) throw UsageError(e.what());
        continue;  // a reference model this build does not have yet
      }
      for (std::size_t s = 0; s < sizes.size(); ++s) {
        const int64_t n = sizes[s];
        const at::Tensor bag = at::randn({n, dim});
        const at::Tensor label = at::ones({1}, at::kLong);
        model->eval();
        const Measurement forward = measure(
            [&] {
              torch::NoGradGuard no_grad;
              model->forward(bag);
            },
            repeats);
        model->train();
        const Measurement training = measure(
            [&] {
              const MilOutput out = model->forward(bag);
              at::Tensor loss = at::cross_entropy_loss(out.logits, label);
              const at::Tensor auxiliary = model->auxiliary_loss(out, 1);
              if (auxiliary.defined()) loss = loss + auxiliary;
              loss.backward();
              for (auto& p : model->parameters()) p.mutable_grad() = at::Tensor();
            },
            repeats);
        const std::optional<double> flops = forward_flops(name, n, dim);
        const std::optional<double> training_flops =
            flops ? std::optional<double>(3 * *flops - 2.0 * double(n) * dim * kWidth)
                  : std::nullopt;
        char rss[16] = "-";
        if (training.rss_rise_mb >= 0) std::snprintf(rss, sizeof rss, "%.0f", training.rss_rise_mb);
        std::printf("%-9s %6lld | %10.1f %s %9.1f | %10.1f %s %9.1f %8s\n", name.c_str(),
                    static_cast<long long>(n), forward.median_ms,
                    gflops_cell(flops, forward.median_ms, peaks[s]).c_str(), forward.alloc_mb,
                    training.median_ms,
                    gflops_cell(training_flops, training.median_ms, peaks[s]).c_str(),
                    training.alloc_mb, rss);
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("bench models", e.what());
  } catch (const std::exception& e) {
    return usage_failure("bench models", e.what());
  }
}

}  // namespace mil::app
