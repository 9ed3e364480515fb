// mhim: train and benchmark MIL models on WSI patch features. A thin dispatcher over the
// subcommands.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "app/cmd_heatmap.h"
#include "app/cmd_plan.h"
#include "app/commands.h"
#include "mil/core/fatal_signal_context.h"
#include "mil/runtime/process_memory.h"

namespace {
constexpr const char* kHelp = R"(mhim - Multiple Instance Learning sweeps (MHIM-MIL and baselines)

usage: mhim <command> [options]        mhim <command> --help

commands:
  synth        write a synthetic benchmark with a planted signal
  train        train and evaluate one fold of one config (no MPI needed)
  sweep        run a whole sweep under mpirun: rank 0 orchestrates, other ranks train
  leaderboard  rebuild the leaderboard of a results directory
  predict      run a trained model on bags: logits, probabilities, per-instance scores
  heatmap      draw a trained model's instance scores on the slide (PNG, SVG, an index page)
  pack         pack a dataset's feature files into one memory-mapped cache
  check-data   list every problem of a dataset (missing/truncated files, dims, NaN, labels) at once
  slurm        submit a sweep to Slurm (slurm submit): writes the batch script into the results dir
  plan         predict how long a sweep takes on N nodes x G GPUs (or R CPU ranks), before submitting
  bench        measure performance (bench train: training vs the matmul peak; bench load: cache vs files;
               bench orchestrator: jobs/s of the MPI loop, child-process overhead, journal replay;
               bench prune: successive halving replayed on a full sweep, compute and choices side by side)

examples:
  mhim synth --out data/synth --bags 120
  mhim synth --benchmark camelyon-r50 --out data/camelyon-r50 --scale 0.05
  mhim check-data --root data/synth
  mhim pack --root data/synth --verify
  mhim train --dataset data/synth --model abmil --fold 0 --folds 5 --epochs 20
  mhim sweep sweeps/quickstart.yaml --dry-run
  mpirun -n 3 mhim sweep sweeps/quickstart.yaml --results results/quickstart \
      --set datasets.synth-easy.root=data/synth
  mhim slurm submit sweeps/quickstart.yaml --results results/quickstart --dry-run
  mhim plan sweeps/mhim_v2_grid.yaml --nodes 4 --gpus-per-node 8 --stand-ins 1
  mhim leaderboard results/quickstart --baseline abmil
)";
/// Re-runs this program with OMP_WAIT_POLICY=PASSIVE when the environment does not choose a wait
/// policy, for the commands that train or score. libgomp reads the policy once, when it loads, so
/// it cannot be set from here. Its default spins ~300,000 times before a waiting thread sleeps;
/// on a core shared with anything else (another job, a build, a browser) the spinning threads
/// steal the time of the thread they wait for: measured here, ABMIL with 2 threads beside a
/// 2-job build ran 20 s per epoch by default and 1.5-4.8 s with PASSIVE (0.4 s on 1 thread). A
/// user with dedicated cores may export OMP_WAIT_POLICY=ACTIVE. Returns only if exec fails, and
/// then the command runs with libgomp's default.
void prefer_passive_openmp_threads(const std::string& command, char** argv) {
  if (command != "train" && command != "sweep" && command != "predict" && command != "heatmap")
    return;
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  prefer_passive_openmp_threads(command, argv);
  mil::report_file_on_fatal_signal();
  mil::keep_freed_buffers_for_reuse();
  mil::keep_compiled_kernels_for_reuse();
  const mil::app::Tokens tokens(argv + 2, argv + argc);
  try {
    if (command == "synth") return mil::app::cmd_synth(tokens);
    if (command == "train") return mil::app::cmd_train(tokens);
    if (command == "sweep") return mil::app::cmd_sweep(tokens, argc, argv);
    if (command == "leaderboard") return mil::app::cmd_leaderboard(tokens);
    if (command == "bench" && !tokens.empty() && tokens[0] == "orchestrator") {
      return mil::app::cmd_bench_orchestrator(mil::app::Tokens(tokens.begin() + 1, tokens.end()),
                                              argc, argv);
    }
    if (command == "bench") return mil::app::cmd_bench(tokens);
    if (command == "predict") return mil::app::cmd_predict(tokens);
    if (command == "heatmap") return mil::app::cmd_heatmap(tokens);
    if (command == "pack") return mil::app::cmd_pack(tokens);
    if (command == "check-data") return mil::app::cmd_check_data(tokens);
    if (command == "slurm") return mil::app::cmd_slurm(tokens);
    if (command == "plan") return mil::app::cmd_plan(tokens);
    if (command == "zygote") return mil::app::cmd_zygote(tokens);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mhim %s: error: %s\n", command.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "mhim: unknown command '%s'\n\n%s", command.c_str(), kHelp);
  return 2;
}
