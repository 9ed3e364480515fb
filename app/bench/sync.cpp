// `mhim bench sync`: allreduce bandwidth per gradient-sync backend, and how one job's epoch time
// scales from 1 to all ranks of the MPI world (data-parallel training, #9).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>

#include "app/args.h"
#include "app/bench/common.h"
#include "app/commands.h"
#include "comm/mpi_env.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/train/trainer.h"
#include "worker/sync/gradient_sync_factory.h"
#include "worker/sync/mpi_gradient_sync.h"

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mpirun -n R mhim bench sync [options]

Measures the data-parallel plumbing on the R ranks of the MPI world:
  1. allreduce of fp32 buffers from 1 MB to 64 MB, per backend (mpi on CPU tensors; nccl on the GPU
     when built with NCCL and LibTorch sees one): median time, algorithm bandwidth (bytes / time) and
     bus bandwidth (algbw x 2(R-1)/R, the nccl-tests convention);
  2. the epoch time of one ABMIL job on the #5 bench shape (random bags, 500-3,000 instances, D=1024)
     trained by rank 0 alone and then by all R ranks (each with --threads threads), and the speedup.

options:
  --sizes-mb LIST     buffer sizes in MB (default 1,4,16,64)
  --repeats N         timed allreduces per size (default 20, after 3 warm-ups)
  --bags N            bags of the epoch-scaling run (default 60; 0 skips it)
  --min-instances N   (default 500)   --max-instances N (default 3000)   --dim D (default 1024)
  --epochs E          epochs per run (default 2; the first is a warm-up when E >= 2)
  --threads T         LibTorch threads per rank (default 1)

example:
  mpirun -n 2 --bind-to none mhim bench sync --threads 1
)";

/// Median seconds of one gradient allreduce of `buffer` (a single bucket: the caller raises the
/// bucket limit), every rank starting together.
double seconds_per_allreduce(GradientSync& sync, at::Tensor buffer, int repeats, MPI_Comm comm) {
  buffer.set_requires_grad(true);
  std::vector<double> seconds;
  for (int i = 0; i < repeats + 3; ++i) {
    buffer.mutable_grad() = at::ones_like(buffer);
    MIL_MPI_CHECK(MPI_Barrier(comm));
    const auto start = std::chrono::steady_clock::now();
    sync.allreduce_gradients({buffer});
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= 3) seconds.push_back(s);
  }
  return median(seconds);
}

double epoch_seconds(const FitResult& result) {
  std::vector<double> s;
  for (std::size_t e = result.history.size() >= 2 ? 1 : 0; e < result.history.size(); ++e)
    s.push_back(result.history[e].seconds);
  return median(s);
}
}  // namespace

int cmd_bench_sync(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  std::vector<std::string> sizes;
  int repeats = 20, bag_count = 60, min_n = 500, max_n = 3000, dim = 1024, epochs = 2, threads = 1;
  try {
    const Args args(tokens,
                    {"sizes-mb", "repeats", "bags", "min-instances", "max-instances", "dim",
                     "epochs", "threads"},
                    {});
    sizes = split_list(args.get("sizes-mb", "1,4,16,64"));
    repeats = args.get_int("repeats", repeats);
    bag_count = args.get_int("bags", bag_count);
    min_n = args.get_int("min-instances", min_n);
    max_n = args.get_int("max-instances", max_n);
    dim = args.get_int("dim", dim);
    epochs = args.get_int("epochs", epochs);
    threads = args.get_int("threads", threads);
    if (repeats < 1 || epochs < 1 || threads < 1 || max_n < min_n || min_n < 1)
      throw UsageError("invalid sizes");
  } catch (const UsageError& e) {
    return usage_failure("bench", e.what());
  }
  int no_argc = 0;
  char** no_argv = nullptr;
  comm::MpiEnvironment mpi(no_argc, no_argv);
  at::set_num_threads(threads);
  const bool root = mpi.rank() == 0;
  const int ranks = mpi.size();
  if (root) {
    std::printf("bench sync: %d ranks, %d LibTorch threads each\n\n", ranks, threads);
    std::printf("%-6s %8s %12s %12s %12s\n", "backend", "MB", "median ms", "algbw GB/s",
                "busbw GB/s");
  }
  std::vector<std::pair<std::string, c10::Device>> backends{{"mpi", c10::Device(c10::kCPU)}};
  if (worker::nccl_built() && torch::cuda::is_available()) {
    backends.emplace_back(
        "nccl", c10::Device(c10::kCUDA,
                            c10::DeviceIndex(mpi.local_rank() % int(torch::cuda::device_count()))));
  }
  for (const auto& [name, device] : backends) {
    std::unique_ptr<GradientSync> sync = name == "mpi"
                                             ? std::make_unique<worker::MpiGradientSync>(mpi.comm())
                                             : worker::make_gradient_sync(mpi.comm(), device, {});
    sync->set_bucket_bytes(std::size_t{1} << 40);
    for (const std::string& mb : sizes) {
      const double megabytes = std::stod(mb);
      const auto count = int64_t(megabytes * 1e6 / 4.0);
      const double s = seconds_per_allreduce(
          *sync, at::zeros({count}, at::TensorOptions().dtype(at::kFloat).device(device)), repeats,
          mpi.comm());
      const double algbw = double(count) * 4.0 / s / 1e9;
      if (root) {
        std::printf("%-6s %8.0f %12.3f %12.2f %12.2f\n", name.c_str(), megabytes, s * 1e3, algbw,
                    ranks > 1 ? algbw * 2.0 * (ranks - 1) / ranks : 0.0);
        std::fflush(stdout);
      }
    }
  }
  if (bag_count == 0) return 0;

  // The same random bags on every rank (same seed), one ABMIL job, rank 0 alone and then all ranks.
  at::manual_seed(1);
  std::vector<Bag> bags;
  std::vector<int> indices;
  for (int i = 0; i < bag_count; ++i) {
    const int64_t n = min_n + at::randint(max_n - min_n + 1, {1}).item<int64_t>();
    bags.push_back(Bag{"b" + std::to_string(i), at::randn({n, dim}), i % 2});
    indices.push_back(i);
  }
  TrainSpec spec;
  spec.epochs = epochs;
  spec.early_stopping = false;
  double alone = 0.0;
  if (root) {
    seed_torch(1);
    auto model = make_model(ModelSpec{"abmil", nlohmann::json::object()}, dim, 2);
    alone = epoch_seconds(fit(*model, spec, bags, indices, {}, 1));
  }
  MIL_MPI_CHECK(MPI_Barrier(mpi.comm()));
  worker::MpiGradientSync sync(mpi.comm());
  FitOptions options;
  options.sync = &sync;
  seed_torch(1);
  auto model = make_model(ModelSpec{"abmil", nlohmann::json::object()}, dim, 2);
  const double together = epoch_seconds(fit(*model, spec, bags, indices, {}, 1, options));
  if (root) {
    std::printf(
        "\nepoch time, ABMIL, %d bags of %d-%d instances, D=%d, %d thread(s) per rank (median of "
        "epochs after the first):\n",
        bag_count, min_n, max_n, dim, threads);
    std::printf("  1 rank:  %8.3f s\n  %d ranks: %8.3f s   speedup %.2fx (ideal %dx)\n", alone,
                ranks, together, alone / together, ranks);
  }
  return 0;
}

}  // namespace mil::app
