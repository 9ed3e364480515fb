// mhim bench train: training throughput of the aggregators beside the machine's fp32 matmul peak.
// mhim bench models (per-bag cost by bag size) lives in models.cpp, mhim bench load in
// load.cpp.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <torch/nn/modules/linear.h>
#include "app/args.h"
#include "app/bench/common.h"
#include "app/commands.h"
#include "mil/core/runtime_info.h"

#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/runtime/process_memory.h"
#include "mil/train/trainer.h"

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mhim bench train [options]
       mhim bench models [options]   (per-bag cost by bag size; see mhim bench models --help)
       mhim bench load --root DIR [options]   (cache vs read() vs .pt loading; see mhim bench load --help)
       mpirun -n R mhim bench sync [options]  (gradient allreduce bandwidth, 1 -> R rank epoch scaling)
       mhim bench orchestrator [options]   (jobs/s of the sweep loop; see mhim bench orchestrator --help)
       mhim bench prune --full DIR [options]   (successive halving replayed on a full sweep's results)

Trains each model for a few epochs on random in-memory bags and prints epoch time, instances/s,
achieved GFLOP/s, resident memory (after the first and last epoch, and the peak of the model's run)
and the share of the machine's fp32 matmul peak, measured first as a torch mm of [mean N x D]·[D x 512].
FLOPs are counted analytically: for every per-instance Linear(in, out), 2·N·in·out forward and the
same again for each gradient it needs (weights; inputs except for the first layer), plus attention
pooling. Resident memory is read after every epoch, to show it does not grow. Timings are medians;
the first epoch is a warm-up and is left out when epochs >= 2.
"CPU s/T" is the process CPU time of an epoch divided by the thread count, and "CPU %pk" the share of
the matmul peak measured the same way: on a machine shared with other work the wall-clock columns
drop with the load, the CPU-time ones much less.

options:
  --bags N            bags per epoch (default 60)
  --min-instances N   smallest bag (default 500)
  --max-instances N   largest bag (default 3000)
  --dim D             feature dimension (default 1024)
  --epochs E          epochs per model (default 3)
  --threads T         LibTorch threads (default 2)
  --models LIST       comma-separated (default abmil,gabmil); "mhim" trains MHIM(attn) with the v2
                      README setting (mask_ratio_h 0.03, GRN keeping 0.8 plus 5 tokens) and a
                      teacher pass per bag; list "mhim_pure" before it to get its cost ratio;
                      NAME:AGG picks the MHIM aggregator, e.g. mhim_pure:selfattn,mhim:selfattn
                      for MHIM(TransMIL)
  --precision LIST    comma-separated fp32,bf16 (default fp32,bf16)
  --seed S            seed of the random bags (default 1)
  --model-options J   JSON options for every model, e.g. '{"dropout": 0}'

examples:
  mhim bench train --threads 2 --epochs 3
  mhim bench train --models mhim_pure,mhim --precision fp32
  mhim bench train --models mhim_pure:selfattn,mhim:selfattn --epochs 2
)";

double resident_megabytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return double(pages_resident) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

/// Resets the kernel's peak-resident mark of this process (Linux >= 4.0), so that VmHWM measures
/// what follows.
void reset_peak_resident() { std::ofstream("/proc/self/clear_refs") << "5"; }

/// VmHWM: the largest resident set since the last reset_peak_resident(), in MB (0 when unreadable).
double peak_resident_megabytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

/// The fp32 rate of [rows x dim]·[dim x 512], median of 20 after 3 warm-ups, per wall second and
/// per CPU second times the thread count. On a shared machine the wall rate drops with the load;
/// the CPU-time rate, and training measured the same way, mostly do not, so their ratio stays
/// meaningful.
struct MatmulPeak {
  double wall_gflops = 0.0;  ///< GFLOP per wall second
  double cpu_gflops = 0.0;   ///< GFLOP per (CPU second / threads)
};

MatmulPeak matmul_peak(int64_t rows, int64_t dim, int threads) {
  const at::Tensor a = at::randn({rows, dim}), b = at::randn({dim, 512});
  std::vector<double> seconds, cpu_seconds;
  for (int i = 0; i < 23; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = process_cpu_seconds();
    const at::Tensor c = a.mm(b);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= 3) {
      seconds.push_back(s);
      cpu_seconds.push_back((process_cpu_seconds() - cpu_start) / threads);
    }
  }
  const double flop = 2.0 * double(rows) * double(dim) * 512.0;
  return MatmulPeak{flop / median(seconds) / 1e9, flop / median(cpu_seconds) / 1e9};
}

/// Training FLOPs of one bag of n instances (see the help text for the rule).
double training_flops(const MilModelImpl& model, int64_t n, int64_t dim) {
  double flops = 0.0;
  for (const auto& item : model.named_modules()) {
    const auto* linear = item.value()->as<torch::nn::Linear>();
    if (!linear || item.key().rfind("classifier", 0) == 0) continue;
    const double layer = 2.0 * double(n) * double(linear->options.in_features()) *
                         double(linear->options.out_features());
    const bool first_layer = linear->options.in_features() == dim;
    flops += layer * (first_layer ? 2.0 : 3.0);
  }
  return flops + 3.0 * 2.0 * double(n) * 512.0;  // attention pooling, forward and backward
}
}  // namespace

int cmd_bench(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "models")
    return cmd_bench_models(Tokens(tokens.begin() + 1, tokens.end()));
  if (!tokens.empty() && tokens[0] == "load")
    return cmd_bench_load(Tokens(tokens.begin() + 1, tokens.end()));
  if (!tokens.empty() && tokens[0] == "sync")
    return cmd_bench_sync(Tokens(tokens.begin() + 1, tokens.end()));
  if (!tokens.empty() && tokens[0] == "prune")
    return cmd_bench_prune(Tokens(tokens.begin() + 1, tokens.end()));
  if (tokens.empty() || tokens[0] == "--help" || tokens[0] != "train") {
    std::fputs(kHelp, stdout);
    return tokens.empty() || tokens[0] != "--help" ? 2 : 0;
  }
  try {
    const Args args(Tokens(tokens.begin() + 1, tokens.end()),
                    {"bags", "min-instances", "max-instances", "dim", "epochs", "threads", "models",
                     "precision", "seed", "model-options"},
                    {});
    const int bag_count = args.get_int("bags", 60);
    const int min_n = args.get_int("min-instances", 500),
              max_n = args.get_int("max-instances", 3000);
    const int dim = args.get_int("dim", 1024), epochs = args.get_int("epochs", 3);
    const int threads = configure_threads(args.get_int("threads", 2), 1);
    if (bag_count < 2 || min_n < 1 || max_n < min_n || dim < 1 || epochs < 1)
      throw UsageError("invalid sizes");

    at::manual_seed(args.get_u64("seed", 1));
    std::vector<Bag> bags;
    std::vector<int> indices;
    int64_t instances = 0;
    for (int i = 0; i < bag_count; ++i) {
      const int64_t n = min_n + at::randint(max_n - min_n + 1, {1}).item<int64_t>();
      bags.push_back(Bag{"b" + std::to_string(i), at::randn({n, dim}), i % 2});
      indices.push_back(i);
      instances += n;
    }
    const int64_t mean_n = instances / bag_count;
    const MatmulPeak peak = matmul_peak(mean_n, dim, threads);
    std::printf(
        "fp32 matmul peak: [%lld x %d]·[%d x 512] %.1f GFLOP/s wall, %.1f per CPU second/thread "
        "(medians of 20), "
        "%d threads\n",
        static_cast<long long>(mean_n), dim, dim, peak.wall_gflops, peak.cpu_gflops, threads);
    // A forced OpenBLAS kernel family moves the fp32 peak (on our AMD VMs Haswell's AVX2 kernels
    // give about half of what the AVX-512 ones give); both the peak and the models use it, so the
    // ratios hold, the seconds do not.
    if (const char* core = std::getenv("OPENBLAS_CORETYPE")) {
      std::printf("OpenBLAS kernels forced by OPENBLAS_CORETYPE=%s in the environment\n", core);
    }
    std::printf("bench train: %d bags, %d-%d instances (mean %lld), D=%d, %d epochs; %s; %s\n\n",
                bag_count, min_n, max_n, static_cast<long long>(mean_n), dim, epochs,
                keep_freed_buffers_for_reuse().c_str(), keep_compiled_kernels_for_reuse().c_str());
    std::printf("%-18s %-5s %9s %9s %10s %9s %8s %8s %14s %8s %10s\n", "model", "prec", "epoch s",
                "CPU s/T", "inst/s", "GFLOP/s", "% peak", "CPU %pk", "RSS MB", "peak MB",
                "vs fp32");
    std::fflush(stdout);
    std::map<std::string, double>
        mhim_pure_seconds;  // precision -> epoch time, for the MHIM overhead ratio
    for (const std::string& listed : split_list(args.get("models", "abmil,gabmil"))) {
      // "mhim:selfattn" = model mhim with aggregator (option "baseline") selfattn, i.e.
      // MHIM(TransMIL).
      const std::size_t colon = listed.find(':');
      const std::string model_name = listed.substr(0, colon);
      const std::string aggregator = colon == std::string::npos ? "attn" : listed.substr(colon + 1);
      double fp32_seconds = 0.0;
      for (const std::string& precision : split_list(args.get("precision", "fp32,bf16"))) {
        seed_torch(1);
        nlohmann::json model_options = nlohmann::json::parse(args.get("model-options", "{}"));
        if (colon != std::string::npos) model_options["baseline"] = aggregator;
        const bool mhim = model_name == "mhim";
        if (mhim) {
          // The v2 README setting (middle of its grid) with a teacher from the student's init: the
          // cost of MHIM training does not depend on where the teacher's weights came from.
          const nlohmann::json readme_setting = {
              {"mask_ratio_h", 0.03}, {"merge", true},    {"merge_ratio", 0.8},      {"merge_k", 5},
              {"merge_mm", 0.9999},   {"aux_alpha", 0.5}, {"teacher_init", "random"}};
          for (const auto& [key, value] : readme_setting.items()) {
            if (!model_options.contains(key)) model_options[key] = value;
          }
        }
        const ModelSpec model_spec{model_name, model_options};
        auto model = make_model(model_spec, dim, 2);
        ObjectiveSetup setup;
        setup.total_steps = int64_t(epochs) * bag_count;
        const auto objective = make_training_objective(model_spec, *model, setup);
        TrainSpec spec;
        spec.epochs = epochs;
        spec.early_stopping = false;
        spec.precision = precision;
        nlohmann::json(spec).get<TrainSpec>();  // validates the precision name
        std::vector<double> rss, cpu_marks{process_cpu_seconds()};
        FitOptions options;
        options.on_epoch = [&](const EpochRecord&) {
          cpu_marks.push_back(process_cpu_seconds());
          rss.push_back(resident_megabytes());
        };
        options.objective = objective.get();
        reset_peak_resident();
        const FitResult result = fit(*model, spec, bags, indices, {}, 1, options);
        const double peak_megabytes = peak_resident_megabytes();
        std::vector<double> seconds;
        for (std::size_t e = epochs >= 2 ? 1 : 0; e < result.history.size(); ++e)
          seconds.push_back(result.history[e].seconds);
        const double epoch_seconds = median(seconds);
        std::vector<double> cpu_seconds;  // per epoch, divided by the thread count
        for (std::size_t e = epochs >= 2 ? 1 : 0; e + 1 < cpu_marks.size(); ++e) {
          cpu_seconds.push_back((cpu_marks[e + 1] - cpu_marks[e]) / threads);
        }
        const double epoch_cpu_seconds = median(cpu_seconds);
        double flops = 0.0;
        for (const Bag& b : bags) flops += training_flops(*model, b.features.size(0), dim);
        const double gflops = flops / epoch_seconds / 1e9;
        if (precision == "fp32") fp32_seconds = epoch_seconds;
        char ratio[48] = "-";
        if (precision != "fp32" && fp32_seconds > 0)
          std::snprintf(ratio, sizeof ratio, "%.2fx", fp32_seconds / epoch_seconds);
        if (mhim_pure_seconds.count(aggregator + precision) && mhim) {
          std::snprintf(ratio, sizeof ratio, "%.2fx pure",
                        epoch_seconds / mhim_pure_seconds.at(aggregator + precision));
        }
        if (model_name == "mhim_pure") mhim_pure_seconds[aggregator + precision] = epoch_seconds;
        char memory[48];
        std::snprintf(memory, sizeof memory, "%.0f->%.0f", rss.front(), rss.back());
        if (mhim) {  // FLOPs of masked, recycled training have no clean count; time and memory tell
                     // the story
          std::printf("%-18s %-5s %9.3f %9.3f %10.0f %9s %8s %8s %14s %8.0f %10s\n", listed.c_str(),
                      precision.c_str(), epoch_seconds, epoch_cpu_seconds,
                      double(instances) / epoch_seconds, "-", "-", "-", memory, peak_megabytes,
                      ratio);
        } else {
          const double cpu_gflops = flops / epoch_cpu_seconds / 1e9;
          std::printf("%-18s %-5s %9.3f %9.3f %10.0f %9.1f %7.1f%% %7.1f%% %14s %8.0f %10s\n",
                      listed.c_str(), precision.c_str(), epoch_seconds, epoch_cpu_seconds,
                      double(instances) / epoch_seconds, gflops, 100.0 * gflops / peak.wall_gflops,
                      100.0 * cpu_gflops / peak.cpu_gflops, memory, peak_megabytes, ratio);
        }
        std::fflush(stdout);  // one line per model as it finishes; bf16 runs can be slow
      }
    }
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("bench", e.what());
  }
}

}  // namespace mil::app
