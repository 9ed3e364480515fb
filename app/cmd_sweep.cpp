#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>

#include <unistd.h>

#include "app/args.h"
#include "app/commands.h"
#include "app/cost_setup.h"
#include "comm/mpi_env.h"
#include "comm/protocol.h"
#include "mil/core/durable_file.h"
#include "mil/core/runtime_info.h"
#include "orchestrator/leaderboard/leaderboard.h"
#include "orchestrator/orchestrator_loop.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/cost_estimate.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/status/board.h"
#include "orchestrator/status/launcher_terminal.h"
#include "orchestrator/status/progress_line.h"
#include "orchestrator/status/server.h"
#include "orchestrator/sweep/sweep.h"
#include "worker/device_placement.h"
#include "worker/supervise/orphan_guard.h"
#include "worker/worker_loop.h"

namespace mil::app {
namespace {
constexpr const char* kHelp =
    R"(usage: mpirun -n R mhim sweep SWEEP.yaml|SWEEP.json --results DIR [options]

Runs every job of a sweep file (datasets x models x grid/zip/random points x seeds x folds; YAML for
.yaml/.yml, else JSON; format: sweeps/README.md) over R-1 worker ranks;
rank 0 hands out jobs, writes one result file per job (DIR/results/<job id>.json, atomically) and a
journal (DIR/journal.jsonl), then writes DIR/leaderboard.md. Each job checkpoints every epoch in
DIR/work/<job id>/. Rerunning the same command skips jobs that already have a successful result and
resumes killed jobs from their last checkpoint. SIGTERM, SIGINT or SIGUSR1 (mpirun forwards SIGUSR1
to every rank) stops cleanly: no new jobs, running jobs checkpoint, exit status 75 (resumable).

Each job runs in a child process (`mhim train --job`, output in DIR/work/<job id>/train.log) that its
worker rank watches: a crash or kill fails only that attempt, and a job whose heartbeat stops is killed
as hung. A failed attempt is retried (resuming from its checkpoint) up to --max-attempts times; a job
that fails the same way every time is "quarantined": its result says so, the leaderboard lists it, and
reruns skip it unless --retry-failed. Jobs that failed with differing errors are rerun by every rerun.
A job with train.ranks R > 1 (data-parallel; a model entry's `ranks`, or --set train.ranks=R) waits
until R workers are idle and runs on all of them, inside the worker ranks (not in child processes).
A job inside worker ranks (a group job, or any job with --in-process) that stops beating cannot be
killed alone: rank 0 journals the hung attempt and ends the sweep (exit 75, resumable); a rerun retries
it, and a job that hung --max-attempts times is quarantined when the next run starts.
Jobs go out longest-predicted-first (the cost model: docs/scheduling.md), teacher
baselines ahead of the jobs they gate; each finished job calibrates the predictions of its model and
dataset, and a rerun starts from what the results folder's finished jobs taught.
Exit status: 0 all ok, 3 some jobs failed or are quarantined, 75 stopped on request or by a hung
job inside worker ranks (rerun to resume).

options:
  --results DIR       results directory (created)
  --set KEY=VALUE     override a sweep field; repeatable. KEY is a dotted path, array elements are
                      picked by name, e.g. --set train.epochs=5 --set datasets.synth.root=/data/synth
  --threads N         LibTorch threads per worker (default: cores / ranks on the node)
  --array             array mode, no MPI: this process is one of any number of standalone workers
                      (e.g. Slurm array tasks) that share DIR through lock files (DIR/locks/); each
                      exits 0 when every job has a result (3 with failures, 75 when stopped)
  --lock-timeout S    array mode: a lock whose heartbeat is older than S seconds is taken over (600)
  --max-attempts N    attempts per job before it counts as failed or quarantined (default 2)
  --retry-failed      also rerun jobs quarantined by an earlier run
  --heartbeat-timeout S  seconds without progress before a job's child is killed as hung, or a job inside
                      worker ranks ends the run as hung (default 600; a dataset load beats once, so
                      keep it above the longest load)
  --in-process        run jobs inside the worker ranks (no child processes: a crash takes down the
                      sweep, as before supervision; faster for tiny jobs, shares loaded datasets)
  --child-start HOW   fork (default): each rank starts one `mhim zygote` that forks every job's child,
                      so LibTorch's start-up (~1 s) is paid once per rank, not per job; exec: posix_spawn
                      and exec `mhim train` per job. fork falls back to exec when the zygote is lost
  --dry-run           print the job count, the predicted seconds per (dataset, method) and in all
                      (from label CSV rows and file sizes, no feature is read, and the cost table;
                      with --results, calibrated by its finished jobs) and the first jobs, then exit
                      (no MPI needed; predictions assume --threads, default 1)
  --order O           cost (default): longest predicted job first, baselines ahead of the jobs they
                      gate, calibrated as jobs finish; file: the sweep file's order (every job cost 1;
                      no predictions recorded), for comparisons
  --device D          where jobs train: auto (default: a GPU when the worker rank sees one), cpu, cuda
  --jobs-per-gpu K    worker ranks per GPU (default: the sweep's jobs_per_gpu, else 1): the workers of a
                      node take its GPUs in order, K each (CUDA_VISIBLE_DEVICES respected; rank 0 takes
                      none), and a job waits while its predicted memory does not fit beside the jobs on
                      its worker's GPU
  --status-port P     MPI mode: serve the live status over HTTP on port P: a page at / and JSON at
                      /status.json (read-only). Default 0: a free port, logged and written to
                      DIR/status.url; "off": no server
  --status-bind ADDR  address the status server listens on (default 127.0.0.1, this machine only;
                      e.g. 0.0.0.0 exposes job names, errors and host names to the network)
  --progress MODE     auto (default): one progress line rewritten in place when rank 0's stderr reaches
                      a terminal (under mpirun/mpiexec/srun: when the launcher's own stderr is one,
                      found by walking up from the rank), else log lines; bar: always the line;
                      plain: log lines only

examples:
  mhim sweep sweeps/quickstart.yaml --dry-run
  mpirun -n 3 mhim sweep sweeps/quickstart.yaml --results results/qs
  mpirun -n 3 mhim sweep sweeps/quickstart.yaml --results results/qs --status-port 8080 --progress bar
                      (then open http://127.0.0.1:8080/, through ssh -L 8080:127.0.0.1:8080 from afar)
  mhim sweep sweeps/quickstart.yaml --results results/qs --array   (run it in as many processes as you like)
  (as root, or with more ranks than cores, Open MPI also needs --allow-run-as-root --oversubscribe)
)";

/// "HH:MM:SS [rank R] line".
std::string stamped(int rank, const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  return std::string(stamp) + " [rank " + std::to_string(rank) + "] " + line;
}

/// Prints a stamped log line on stderr; `over_progress`: first erase the line the cursor is on
/// (rank 0's progress line, when workers share its terminal), which rank 0 redraws within a second.
void log_line(int rank, const std::string& line, bool over_progress = false) {
  std::fprintf(stderr, "%s%s\n", over_progress ? "\r\033[K" : "", stamped(rank, line).c_str());
  std::fflush(stderr);
}

/// How rank 0 shows a running sweep to people.
struct WatchOptions {
  int status_port = 0;                    ///< -1: no status server; 0: a free port.
  std::string status_bind = "127.0.0.1";  ///< Listen address of the status server.
  bool progress_bar = false;              ///< One line rewritten in place instead of log lines.
};

WatchOptions parse_watch_options(const Args& args) {
  WatchOptions w;
  const std::string port = args.get("status-port", "0");
  if (port == "off") {
    w.status_port = -1;
  } else {
    w.status_port = args.get_int("status-port", 0);
    if (w.status_port < 0 || w.status_port > 65535)
      throw UsageError("--status-port must be 0-65535 or off");
  }
  w.status_bind = args.get("status-bind", w.status_bind);
  const std::string progress = args.get("progress", "auto");
  if (progress != "auto" && progress != "bar" && progress != "plain") {
    throw UsageError("--progress must be auto, bar or plain, not '" + progress + "'");
  }
  w.progress_bar = progress == "bar" || (progress == "auto" && orch::stderr_reaches_a_terminal());
  return w;
}

/// The status server of `board`, or null (when disabled, or when it cannot listen: the sweep runs
/// on).
std::unique_ptr<orch::StatusServer> start_status_server(
    const WatchOptions& watch, const orch::StatusBoard& board, const std::string& results_dir,
    const std::function<void(const std::string&)>& log) {
  if (watch.status_port < 0) return nullptr;
  try {
    orch::StatusServerOptions options;
    options.bind_address = watch.status_bind;
    options.port = static_cast<unsigned short>(watch.status_port);
    options.logger = log;
    auto server = std::make_unique<orch::StatusServer>(
        [&board] { return orch::to_status_json(board.snapshot()); }, options);
    if (!orch::is_loopback_address(watch.status_bind)) {
      log("warning: the status server listens on " + watch.status_bind +
          ", not loopback: whoever reaches this "
          "host can read the sweep's status (job names, errors, host names)");
    }
    write_file_atomic(results_dir + "/status.url", server->url() + "\n");
    log("status: " + server->url() + " (also in " + results_dir + "/status.url)");
    return server;
  } catch (const std::exception& e) {
    log(std::string("warning: no status server: ") + e.what());
    return nullptr;
  }
}

/// MHIM_TEST_PAUSE_BEFORE_PRUNING=PATH (end-to-end tests only): the first time durable results
/// change halving's decisions, rank 0 creates PATH and then waits for ever, before it acts on them,
/// so that a test can kill the sweep between a rung's last result and its decision.
std::function<void()> test_pause_before_pruning() {
  const char* path = std::getenv("MHIM_TEST_PAUSE_BEFORE_PRUNING");
  if (path == nullptr || *path == '\0') return nullptr;
  return [marker = std::string(path)] {
    write_file_atomic(marker, "paused before acting on a halving decision\n");
    for (;;) ::pause();
  };
}

int dry_run(const orch::SweepSpec& sweep, const std::vector<JobSpec>& jobs,
            const orch::RunContext& context, const std::string& results_dir) {
  std::printf("sweep '%s': %zu jobs (dry run: nothing is run)\n\n", sweep.name.c_str(),
              jobs.size());
  std::fputs(orch::format_cost(orch::estimate_cost(jobs)).c_str(), stdout);
  std::vector<JobResult> finished;
  if (!results_dir.empty() && std::filesystem::is_directory(results_dir)) {
    finished = orch::ResultsStore(results_dir).load_all();
  }
  std::unique_ptr<orch::SweepCosts> costs;
  const std::vector<orch::ScheduledJob> scheduled =
      costed_jobs(jobs, make_cost_model(context), finished, costs);
  std::printf(
      "\npredicted seconds (cost table x instances x expected epochs, %s, %d thread(s) per "
      "job%s):\n",
      context.device.c_str(), context.threads,
      costs->calibrator().count() > 0
          ? (", calibrated by " + std::to_string(costs->calibrator().count()) + " finished jobs")
                .c_str()
          : "");
  std::fputs(orch::format_predicted_groups(orch::predicted_groups(scheduled, *costs)).c_str(),
             stdout);
  std::printf(
      "  jobs go out longest first (teacher baselines ahead of their jobs); `mhim plan` predicts "
      "the\n"
      "  wall time on a cluster\n");
  const std::size_t shown = std::min<std::size_t>(jobs.size(), 10);
  std::printf("\nfirst %zu jobs (job id, config id, dataset, method, fold, seed):\n", shown);
  for (std::size_t i = 0; i < shown; ++i) {
    const JobSpec& j = jobs[i];
    std::printf("  %s  %s  %s  %s  fold %d/%d  seed %llu\n", j.id().c_str(), j.config_id().c_str(),
                j.dataset.name.c_str(),
                (j.model.method.empty() ? j.model.name : j.model.method).c_str(),
                j.split.fold_index, j.split.fold_count, static_cast<unsigned long long>(j.seed));
  }
  if (shown < jobs.size()) std::printf("  ... %zu more\n", jobs.size() - shown);
  return 0;
}

double sum(const std::vector<double>& values) {
  double total = 0;
  for (double v : values) total += v;
  return total;
}

/// True when jobs train on GPUs: --device cuda, or auto on a machine whose ranks see a GPU.
bool uses_gpus(const std::string& device) {
  return device == "cuda" || (device == "auto" && worker::visible_cuda_devices() > 0);
}

/// The GPU of this worker rank (K per GPU: --jobs-per-gpu, else the sweep's key, else 1), or the
/// CPU.
worker::WorkerDevice place_worker_rank(const comm::MpiEnvironment& mpi,
                                       const std::string& sweep_path,
                                       const std::vector<std::string>& overrides,
                                       const std::string& device, int jobs_per_gpu,
                                       const std::function<void(const std::string&)>& log) {
  const int devices = device == "cpu" ? 0 : worker::visible_cuda_devices();
  if (device == "cuda" && devices == 0) {
    throw std::runtime_error(
        "--device cuda: this rank sees no CUDA device (driver, CUDA_VISIBLE_DEVICES?)");
  }
  if (devices == 0) return {};
  const int k = jobs_per_gpu > 0
                    ? jobs_per_gpu
                    : std::max(1, orch::load_sweep(sweep_path, overrides).jobs_per_gpu);
  const worker::WorkerDevice placed =
      worker::place_worker(mpi.local_rank(), mpi.rank0_local_rank(), k, devices, mil::host_name());
  log("trains on " + placed.slot.device_name() + " (GPU " + placed.slot.physical + ", " +
      std::to_string(k) + " worker(s) per GPU" +
      (placed.slot.oversubscribed ? "; this node has more workers than GPU slots" : "") + ")");
  return placed;
}
}  // namespace

int cmd_sweep(const Tokens& tokens, int& argc, char**& argv) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  std::string sweep_path, results_dir;
  std::vector<std::string> overrides;
  int requested_threads = 0;
  bool dry = false, in_process = false;
  bool array = false;
  double lock_timeout = 600.0;
  orch::OrchestratorOptions orchestrator_options;
  double heartbeat_timeout_s = 600;
  worker::ChildStart child_start = worker::ChildStart::kFork;
  WatchOptions watch;
  std::string device = "auto";
  int jobs_per_gpu = 0;  // 0: the sweep's jobs_per_gpu, else 1
  bool cost_order = true;
  try {
    const Args args(tokens,
                    {"results", "set", "threads", "lock-timeout", "max-attempts",
                     "heartbeat-timeout", "status-port", "status-bind", "progress", "child-start",
                     "device", "jobs-per-gpu", "order"},
                    {"dry-run", "array", "retry-failed", "in-process"});
    if (args.positional().size() != 1) throw UsageError("expected exactly one sweep file");
    sweep_path = args.positional()[0];
    overrides = args.get_all("set");
    requested_threads = args.get_int("threads", 0);
    dry = args.has("dry-run");
    array = args.has("array");
    lock_timeout = args.get_double("lock-timeout", lock_timeout);
    if (!(lock_timeout > 0)) throw UsageError("--lock-timeout must be > 0 seconds");
    in_process = args.has("in-process");
    const std::string how = args.get("child-start", "fork");
    if (how != "fork" && how != "exec")
      throw UsageError("--child-start must be fork or exec, not '" + how + "'");
    child_start = worker::parse_child_start(how);
    orchestrator_options.max_attempts = args.get_int("max-attempts", orch::kDefaultMaxAttempts);
    if (orchestrator_options.max_attempts < 1)
      throw UsageError("--max-attempts must be at least 1");
    orchestrator_options.retry_quarantined = args.has("retry-failed");
    heartbeat_timeout_s = args.get_double("heartbeat-timeout", heartbeat_timeout_s);
    if (!(heartbeat_timeout_s > 0))
      throw UsageError("--heartbeat-timeout must be a positive number of seconds");
    watch = parse_watch_options(args);
    device = args.get("device", device);
    if (device != "auto" && device != "cpu" && device != "cuda") {
      throw UsageError("--device must be auto, cpu or cuda, not '" + device + "'");
    }
    const std::string order = args.get("order", "cost");
    if (order != "cost" && order != "file")
      throw UsageError("--order must be cost or file, not '" + order + "'");
    cost_order = order == "cost";
    jobs_per_gpu = args.get_int("jobs-per-gpu", 0);
    if (args.has("jobs-per-gpu") && jobs_per_gpu < 1)
      throw UsageError("--jobs-per-gpu must be >= 1");
    if (!dry) results_dir = args.require("results");
    if (dry) results_dir = args.get("results", "");
  } catch (const UsageError& e) {
    return usage_failure("sweep", e.what());
  }
  if (dry) {
    const orch::SweepSpec sweep = orch::load_sweep(sweep_path, overrides);
    orch::RunContext context;
    context.device = device == "cuda" ? "cuda" : "cpu";
    context.threads = std::max(1, requested_threads);
    return dry_run(sweep, orch::with_teacher_baselines(orch::expand(sweep)), context, results_dir);
  }
  if (array)
    return run_sweep_array(sweep_path, overrides, results_dir, requested_threads, lock_timeout);

  comm::MpiEnvironment mpi(argc, argv);
  const int rank = mpi.rank();
  const std::atomic<bool>* stop_requested = install_stop_handlers();
  const bool over_progress = watch.progress_bar;  // every rank parses the same options
  const auto log = [rank, over_progress](const std::string& line) {
    log_line(rank, line, over_progress);
  };
  const worker::OrphanGuard orphan_guard(log);  // a killed mpirun must not leave this rank running
  if (rank != comm::kOrchestratorRank) {
    try {
      const int threads = configure_threads(requested_threads, mpi.local_size());
      worker::SupervisionOptions supervision;
      supervision.threads = threads;
      supervision.heartbeat_timeout =
          std::chrono::milliseconds(static_cast<long long>(heartbeat_timeout_s * 1000));
      supervision.child_start = child_start;
      log("worker ready, " + std::to_string(threads) + " LibTorch threads, jobs " +
          (in_process                                 ? "in this process"
           : child_start == worker::ChildStart::kFork ? "in child processes forked by a zygote"
                                                      : "in exec'd child processes"));
      const worker::WorkerDevice placed =
          place_worker_rank(mpi, sweep_path, overrides, device, jobs_per_gpu, log);
      const int jobs = worker::run_worker(mpi.comm(), log, results_dir + "/work", stop_requested,
                                          in_process ? nullptr : &supervision, {}, placed);
      log("worker done after " + std::to_string(jobs) + " jobs");
      return 0;
    } catch (const std::exception& e) {
      log(std::string("worker error: ") + e.what());
      mpi.abort_all(1);
    }
  }
  try {
    configure_threads(1, 1);
    const auto start = std::chrono::steady_clock::now();
    const orch::SweepSpec sweep = orch::load_sweep(sweep_path, overrides);
    const std::vector<JobSpec> jobs = orch::with_teacher_baselines(orch::expand(sweep));
    orch::ResultsStore store(results_dir);
    store.write_manifest(jobs);
    orch::write_sweep_name(results_dir, sweep.name);  // the leaderboard's title
    orch::StatusBoardOptions board_options;
    board_options.sweep_name = sweep.name;
    board_options.expect_heartbeats = true;  // every worker rank beats while it runs a job
    orch::StatusBoard status(board_options);
    std::unique_ptr<orch::ProgressLine> bar;
    if (watch.progress_bar) bar = std::make_unique<orch::ProgressLine>(status, stderr);
    const auto log0 = [&bar, rank](const std::string& line) {
      if (bar) return bar->print(stamped(rank, line));
      log_line(rank, line);
    };
    auto server = start_status_server(watch, status, results_dir, log0);
    orchestrator_options.board = &status;
    orchestrator_options.hang_timeout =
        std::chrono::milliseconds(static_cast<long long>(heartbeat_timeout_s * 1000));
    orchestrator_options.jobs_in_worker_ranks = in_process;
    orch::RunContext context;
    context.device = uses_gpus(device) ? "cuda" : "cpu";
    context.threads =
        requested_threads > 0 ? requested_threads : default_worker_threads(mpi.local_size());
    std::unique_ptr<orch::SweepCosts> costs;
    costed_jobs(jobs, make_cost_model(context), store.load_all(), costs);
    if (cost_order) orchestrator_options.costs = costs.get();
    orch::DeviceMemoryGuard guard;
    if (context.device == "cuda") orchestrator_options.device_memory = &guard;
    log0(std::string(cost_order ? "cost order" : "file order (--order file)") + ": " +
         std::to_string(int(sum(costs->all_seconds()))) + " s of job time predicted (" +
         context.device + ", " + std::to_string(context.threads) +
         " thread(s) per job), calibrated by " + std::to_string(costs->calibrator().count()) +
         " finished job(s)");
    orchestrator_options.prune = sweep.prune;
    orchestrator_options.before_pruning = test_pause_before_pruning();
    const orch::SweepOutcome outcome =
        orch::run_orchestrator(mpi.comm(), jobs, store, log0, stop_requested, orchestrator_options);
    if (server) {
      server.reset();
      std::error_code ignored;
      std::filesystem::remove(results_dir + "/status.url",
                              ignored);  // nobody answers there any more
    }
    bar.reset();
    const std::string board = orch::write_leaderboard(results_dir);
    if (!outcome.hung_job.empty()) {
      // Its ranks are stuck inside the job: only ending the MPI world frees them (no fault-tolerant
      // MPI).
      log0("sweep '" + sweep.name + "' ends early: job " + outcome.hung_job + " " +
           outcome.hung_error +
           "; every result received is durable and running jobs resume from their checkpoints: "
           "rerun the same "
           "command to resume (exit " +
           std::to_string(kExitInterrupted) + ", resumable)");
      std::printf("leaderboard: %s\n", board.c_str());
      std::fflush(stdout);
      std::fflush(stderr);
      mpi.abort_all(kExitInterrupted);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log("sweep '" + sweep.name + "' finished in " + std::to_string(int(seconds)) +
        " s: " + std::to_string(outcome.ran_ok) + " ok, " + std::to_string(outcome.failed) +
        " failed, " + std::to_string(outcome.quarantined) + " quarantined, " +
        (outcome.pruned ? std::to_string(outcome.pruned) + " pruned (never run), " : "") +
        std::to_string(outcome.retries) + " retried attempts, " + std::to_string(outcome.skipped) +
        " skipped (done earlier)" +
        (outcome.held_back
             ? ", " + std::to_string(outcome.held_back) + " quarantined earlier (not rerun)"
             : "") +
        ", " + std::to_string(outcome.heartbeats) + " heartbeats" +
        (outcome.stopped ? ", " + std::to_string(outcome.interrupted) +
                               " interrupted; stopped on request, rerun to resume"
                         : ""));
    std::printf("leaderboard: %s\n", board.c_str());
    std::fflush(stdout);
    if (outcome.stopped) return kExitInterrupted;
    return outcome.failed + outcome.quarantined + outcome.held_back == 0 ? 0 : 3;
  } catch (const std::exception& e) {
    // Workers wait on rank 0; leaving them blocked would hang the job, so take the world down.
    log(std::string("orchestrator error: ") + e.what());
    mpi.abort_all(1);
  }
}

}  // namespace mil::app
