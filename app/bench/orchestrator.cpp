// mhim bench orchestrator: jobs/s and per-job latency of the real MPI orchestrator loop with no-op
// jobs, in-process and in supervised child processes, and the time to replay a 100,000-line
// journal.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "app/args.h"
#include "app/bench/common.h"
#include "app/commands.h"
#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "comm/protocol.h"
#include "orchestrator/orchestrator_loop.h"
#include "orchestrator/results/store.h"
#include "worker/supervise/supervised_job.h"
#include "worker/worker_loop.h"

namespace mil::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kHelp = R"(usage: mhim bench orchestrator [options]
       mpirun -n R mhim bench orchestrator --mode in-process|child-fork|child-exec [options]
                                                                     (one measurement)

Dispatches no-op jobs through the real rank-0 orchestrator loop (protocol, scheduler, result files and
fsynced journal) and reports jobs/s and the time each job adds, at 2 and 4 ranks:
  in-process  the worker's job body returns at once: the cost of the protocol and the results store
  child-fork  every job runs as a supervised `mhim train --job` child that exits at once (its dataset does
              not exist, so it fails while loading; counted as done), forked by the rank's zygote
              (started once per rank, before the timing): fork + job.json/
              result.json round trip, i.e. what supervision adds per job in a sweep (--child-start fork)
  child-exec  the same child started by posix_spawn + exec: adds LibTorch's start-up per job
              (--child-start exec)
Also times replaying a synthetic journal.jsonl of --records lines. Without mpirun it relaunches
itself under mpirun for each rank count and mode, then prints medians and ratios.

options:
  --ranks LIST        rank counts (default 2,4; rank 0 orchestrates)
  --jobs N            no-op jobs per in-process run (default 20000)
  --child-jobs N      jobs per child-process run (default 24; 0 skips the child-process modes)
  --repeats R         runs per measurement, median reported (default 3)
  --records N         journal lines to replay (default 100000)
  --results DIR       where the runs write results (default: a fresh folder in /dev/shm, else /tmp;
                      put it on a disk to include real fsync costs)

examples:
  mhim bench orchestrator
  mhim bench orchestrator --ranks 4 --jobs 50000 --results /var/tmp/bench
)";

std::string scratch_root(const std::string& requested) {
  if (!requested.empty()) return requested;
  const fs::path base =
      fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  return (base / ("mhim-bench-orch-" + std::to_string(::getpid()))).string();
}

/// `count` distinct no-op jobs (they differ by seed) on a dataset that does not exist.
std::vector<JobSpec> noop_jobs(int count, const std::string& missing_root) {
  std::vector<JobSpec> jobs;
  jobs.reserve(count);
  for (int i = 0; i < count; ++i) {
    JobSpec spec;
    spec.dataset = DatasetSpec{"noop", "bags", missing_root, 2, false};
    spec.seed = std::uint64_t(i);
    jobs.push_back(spec);
  }
  return jobs;
}

/// What the smallest real job reports; its job_id is left to the worker, which has it from rank 0.
JobResult ok_result_for(const JobSpec& spec) {
  JobResult r;
  r.config_id = spec.config_id();
  r.status = "ok";
  return r;
}

/// One measurement under mpirun: prints "RESULT {json}" on rank 0.
int measure(const Args& args, int& argc, char**& argv) {
  const std::string mode = args.require("mode");
  if (mode != "in-process" && mode != "child-fork" && mode != "child-exec") {
    throw UsageError("--mode must be in-process, child-fork or child-exec");
  }
  const int repeats = args.get_int("repeats", 3);
  const bool child = mode != "in-process";
  const int jobs = child ? args.get_int("child-jobs", 24) : args.get_int("jobs", 20000);
  const std::string root = args.require("results");
  comm::MpiEnvironment mpi(argc, argv);
  // As run_worker does for a sweep: one zygote per worker rank, started before its first job (its
  // start-up, LibTorch's, is paid once per rank and is not timed here).
  std::optional<worker::ForkServer> zygote;
  if (mode == "child-fork" && mpi.rank() != comm::kOrchestratorRank) {
    zygote.emplace("/proc/self/exe",
                   [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    if (!zygote->wait_until_ready())
      throw std::runtime_error("bench: the zygote did not start; see above");
  }
  std::vector<double> seconds;
  for (int repeat = 0; repeat < repeats; ++repeat) {
    const std::string dir =
        root + "/run-" + std::to_string(mpi.size()) + "-" + mode + "-" + std::to_string(repeat);
    MIL_MPI_CHECK(MPI_Barrier(mpi.comm()));
    if (mpi.rank() == comm::kOrchestratorRank) {
      fs::remove_all(dir);
      orch::ResultsStore store(dir);
      const std::vector<JobSpec> specs = noop_jobs(jobs, dir + "/no-such-dataset");
      const auto start = Clock::now();
      const orch::SweepOutcome outcome = orch::run_orchestrator(mpi.comm(), specs, store, {});
      seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      if (outcome.ran_ok != std::size_t(jobs)) {
        throw std::runtime_error("bench: " + std::to_string(outcome.ran_ok) + " of " +
                                 std::to_string(jobs) + " jobs ok");
      }
      fs::remove_all(dir);
    } else {
      worker::SupervisionOptions supervision;
      supervision.executable = "/proc/self/exe";
      if (zygote) supervision.fork_server = &*zygote;
      const int rank = mpi.rank();
      const worker::JobBody body = [&](const JobSpec& spec, const std::string&,
                                       const std::function<void()>&) {
        if (mode == "in-process") return ok_result_for(spec);
        const std::string work = dir + "/work/" + spec.id();
        JobResult r = worker::run_supervised_job(spec, work, rank, supervision, nullptr, {});
        if (r.job_id != spec.id() || r.error.find("loading data") == std::string::npos) {
          throw std::runtime_error("bench: the child did not run as expected: " + r.error);
        }
        if (zygote && !zygote->alive())
          throw std::runtime_error("bench: the zygote was lost; see above");
        return ok_result_for(spec);
      };
      worker::run_worker(mpi.comm(), {}, dir + "/work", nullptr, nullptr, body);
    }
  }
  if (mpi.rank() == comm::kOrchestratorRank) {
    const nlohmann::json out = {
        {"ranks", mpi.size()}, {"mode", mode}, {"jobs", jobs}, {"seconds", seconds}};
    std::printf("RESULT %s\n", out.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

/// Seconds to replay a journal of `records` lines (median of `repeats`), written to `path` first.
double replay_seconds(const std::string& path, int records, int repeats) {
  {
    std::ofstream out(path);
    std::mt19937_64 rng(1);
    const char* statuses[] = {"ok", "ok", "ok", "retry", "failed", "interrupted"};
    for (int i = 0; i < records; ++i) {
      char id[17];
      std::snprintf(id, sizeof id, "%016llx",
                    static_cast<unsigned long long>(rng() % (records / 2 + 1)));
      const nlohmann::json line = {
          {"job_id", id},
          {"status", statuses[rng() % 6]},
          {"config_id", "0123456789abcdef"},
          {"detail", "attempt 1 of 2 failed on rank 3: killed (signal 9; out of memory?)"},
          {"time", "2026-12-04T12:00:00Z"}};
      out << line.dump() << '\n';
    }
  }
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    const auto entries = orch::replay_journal(path);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (entries.empty()) throw std::runtime_error("bench: replaying " + path + " found no job");
  }
  fs::remove(path);
  return median(seconds);
}

/// Runs every measurement under mpirun and prints the table.
int drive(const Args& args) {
  const std::string root = scratch_root(args.get("results", ""));
  fs::create_directories(root);
  const int repeats = args.get_int("repeats", 3);
  const int jobs = args.get_int("jobs", 20000), child_jobs = args.get_int("child-jobs", 24);
  const char* mpiexec = std::getenv("MIL_MPIEXEC");
  const std::string launcher = mpiexec ? mpiexec : "mpirun";
  std::printf(
      "mhim bench orchestrator: no-op jobs through the real orchestrator loop; results in %s\n",
      root.c_str());
  std::printf("%-6s %-11s %7s %10s %12s %16s\n", "ranks", "mode", "jobs", "median s", "jobs/s",
              "ms per job/worker");
  std::map<std::pair<int, std::string>, double> per_job_ms;
  for (const std::string& ranks_text : split_list(args.get("ranks", "2,4"))) {
    const int ranks = std::stoi(ranks_text);
    for (const std::string mode : {"in-process", "child-fork", "child-exec"}) {
      if (mode != "in-process" && child_jobs <= 0) continue;  // --child-jobs 0: in-process only
      const std::string command =
          launcher + " -n " + std::to_string(ranks) + " --oversubscribe --bind-to none /proc/" +
          std::to_string(::getpid()) + "/exe bench orchestrator --mode " + mode + " --jobs " +
          std::to_string(jobs) + " --child-jobs " + std::to_string(child_jobs) + " --repeats " +
          std::to_string(repeats) + " --results " + root + " 2>&1";
      FILE* pipe = ::popen(command.c_str(), "r");
      if (!pipe) throw std::runtime_error("bench: cannot run " + command);
      std::string output;
      char buffer[4096];
      while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
      const int status = ::pclose(pipe);
      const auto at = output.find("RESULT ");
      if (status != 0 || at == std::string::npos) {
        throw std::runtime_error("bench: `" + command + "` failed:\n" + output);
      }
      const auto result =
          nlohmann::json::parse(output.substr(at + 7, output.find('\n', at) - at - 7));
      const double s = median(result.at("seconds").get<std::vector<double>>());
      const int n = result.at("jobs").get<int>();
      // Each of the ranks-1 workers runs n/(ranks-1) jobs one after another: the time one job
      // occupies a worker.
      const double ms = 1000.0 * s * (ranks - 1) / n;
      per_job_ms[{ranks, mode}] = ms;
      std::printf("%-6d %-11s %7d %10.3f %12.0f %16.3f\n", ranks, mode.c_str(), n, s, n / s, ms);
      std::fflush(stdout);
    }
    if (child_jobs <= 0) continue;
    for (const std::string mode : {"child-fork", "child-exec"}) {
      std::printf("       %s overhead at %d ranks: %.1f ms per job (%.0fx the in-process cost)\n",
                  mode.c_str(), ranks,
                  per_job_ms[{ranks, mode}] - per_job_ms[{ranks, "in-process"}],
                  per_job_ms[{ranks, mode}] / per_job_ms[{ranks, "in-process"}]);
    }
    std::printf("       fork vs exec at %d ranks: %.1fx less time per child job\n", ranks,
                per_job_ms[{ranks, "child-exec"}] / per_job_ms[{ranks, "child-fork"}]);
  }
  const int records = args.get_int("records", 100000);
  const double replay = replay_seconds(root + "/journal.jsonl", records, std::max(3, repeats));
  std::printf("journal replay: %d records in %.3f s (median of %d), %.0f records/s\n", records,
              replay, std::max(3, repeats), records / replay);
  std::printf(
      "goals: >= 10,000 no-op jobs/s in-process; child overhead < 50 ms/job; 100k-record replay < "
      "1 s\n");
  fs::remove_all(root);
  return 0;
}

}  // namespace

int cmd_bench_orchestrator(const Tokens& tokens, int& argc, char**& argv) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  try {
    const Args args(tokens,
                    {"mode", "ranks", "jobs", "child-jobs", "repeats", "records", "results"}, {});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    if (args.has("mode")) return measure(args, argc, argv);
    return drive(args);
  } catch (const UsageError& e) {
    return usage_failure("bench orchestrator", e.what());
  }
}

}  // namespace mil::app
