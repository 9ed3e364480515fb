// `mhim slurm submit`: writes a batch script for a sweep into its results directory and submits it.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "app/args.h"
#include "app/commands.h"
#include "app/sbatch_body.h"  // generated from slurm/sweep_cpu.sbatch (app/CMakeLists.txt)
#include "mil/core/durable_file.h"
#include "orchestrator/sweep/sweep.h"

namespace mil::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp = R"(usage: mhim slurm submit SWEEP.yaml --results DIR [options]

Writes DIR/mhim-sweep.sbatch (the body of slurm/sweep_cpu.sbatch under your #SBATCH settings, with
the sweep, the results directory, the --set overrides and this mhim binary baked in), submits it
with `sbatch --parsable` and prints the job id and the file. Keep the file: `sbatch DIR/mhim-sweep.sbatch`
resubmits the same sweep, which skips finished jobs and resumes running ones. The job stops cleanly
120 s before its time limit and requeues itself until the sweep is done.

options:
  --results DIR        results directory (created); Slurm's output goes to DIR/slurm-<job id>.out
  --set KEY=VALUE      sweep override, passed on to mhim sweep; repeatable
  --nodes N            nodes (default 1)
  --gpus-per-node G    GPUs per node (default 0: CPU nodes)
  --jobs-per-gpu K     worker ranks per GPU (default 1): the script asks for nodes x G x K worker
                       ranks plus rank 0, which holds no GPU, and runs mhim sweep --jobs-per-gpu K
  --ntasks N           MPI ranks in all, rank 0 included (default: nodes x G x K + 1 on GPUs, else 3)
  --cpus-per-task C    CPUs per rank, also its LibTorch threads (default 8 / K with GPUs, else 1)
  --time T             time limit in a form sbatch takes, e.g. 04:00:00 or 2-00:00:00 (default 04:00:00)
  --partition P        Slurm partition (default: the cluster's default)
  --account A          Slurm account (default: yours)
  --array N            N array tasks, each a standalone worker (mhim sweep --array), instead of one
                       MPI job: for clusters where one MPI job cannot span nodes
  --dry-run            write and print the file, submit nothing

examples:
  mhim slurm submit sweeps/quickstart.yaml --results results/qs --ntasks 9 --cpus-per-task 4 --dry-run
  mhim slurm submit sweeps/benchmarks.yaml --results results/bench --nodes 2 --gpus-per-node 4 --time 1-00:00:00
  mhim slurm submit sweeps/mhim_v2_grid.yaml --results results/v2 --nodes 4 --gpus-per-node 8 --jobs-per-gpu 4
  mhim slurm submit sweeps/benchmarks.yaml --results results/bench --array 16 --cpus-per-task 4
  sbatch results/bench/mhim-sweep.sbatch     (resubmit later; finished jobs are skipped)
)";

/// What goes into the #SBATCH lines.
struct BatchSettings {
  std::string job_name;   ///< "mhim-<sweep name>".
  int nodes = 1;          ///< --nodes.
  int gpus_per_node = 0;  ///< 0 = CPU nodes.
  int jobs_per_gpu = 1;   ///< Worker ranks per GPU (mhim sweep --jobs-per-gpu).
  int ntasks = 0;         ///< 0 = derived (see the help).
  int cpus_per_task = 0;  ///< 0 = derived.
  std::string time = "04:00:00";
  std::string partition;  ///< Empty = the cluster's default.
  std::string account;    ///< Empty = the user's default.
  int array = 0;          ///< > 0: that many array tasks.
};

/// `text` as one single-quoted shell word.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string batch_script(const BatchSettings& s, const std::string& mhim,
                         const std::vector<std::string>& args, const std::string& results) {
  std::ostringstream out;
  const bool gpus = s.gpus_per_node > 0;
  const int cpus =
      s.cpus_per_task > 0 ? s.cpus_per_task : (gpus ? std::max(1, 8 / s.jobs_per_gpu) : 1);
  out << "#!/bin/bash\n"
      << "# Written by `mhim slurm submit`. Resubmit with: sbatch " << results
      << "/mhim-sweep.sbatch\n"
      << "# "
      << (s.array > 0 ? "Array mode: each task is one standalone worker (mhim sweep --array)."
                      : "MPI mode: rank 0 orchestrates, the other ranks train.")
      << " The body below is slurm/sweep_cpu.sbatch's.\n"
      << "#SBATCH --job-name=" << s.job_name << "\n";
  if (s.array > 0) {
    out << "#SBATCH --array=0-" << (s.array - 1) << "\n"
        << "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n";
    if (gpus) out << "#SBATCH --gpus-per-task=1\n";
  } else if (gpus) {
    out << "#SBATCH --nodes=" << s.nodes << "\n";
    // Every rank of a node sees all its GPUs; mhim sweep maps the node's worker ranks onto them, K
    // per GPU, and leaves rank 0 (one extra task, on the first node) without one.
    const int ntasks = s.ntasks > 0 ? s.ntasks : s.nodes * s.gpus_per_node * s.jobs_per_gpu + 1;
    out << "#SBATCH --ntasks=" << ntasks << "   # " << s.nodes << " x " << s.gpus_per_node
        << " GPUs x " << s.jobs_per_gpu << " worker(s) per GPU + rank 0 (no GPU)\n"
        << "#SBATCH --gpus-per-node=" << s.gpus_per_node << "\n";
  } else {
    out << "#SBATCH --nodes=" << s.nodes << "\n#SBATCH --ntasks=" << (s.ntasks > 0 ? s.ntasks : 3)
        << "\n";
  }
  out << "#SBATCH --cpus-per-task=" << cpus << "\n"
      << "#SBATCH --time=" << s.time << "\n";
  if (!s.partition.empty()) out << "#SBATCH --partition=" << s.partition << "\n";
  if (!s.account.empty()) out << "#SBATCH --account=" << s.account << "\n";
  out << "#SBATCH --signal=B:USR1@120\n"
      << "#SBATCH --requeue\n"
      << "#SBATCH --open-mode=append\n"
      << "#SBATCH --output=" << results << (s.array > 0 ? "/slurm-%A_%a.out" : "/slurm-%j.out")
      << "\n"
      << "export MHIM=${MHIM:-" << shell_quote(mhim) << "}\n"
      << "if (($# == 0)); then set --";
  for (const auto& arg : args) out << " " << shell_quote(arg);
  out << "; fi\n" << kSbatchBody;
  return out.str();
}

/// The path of `name` on PATH, or empty.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path == nullptr ? "" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

/// Runs `sbatch --parsable FILE`; returns the job id, throws with sbatch's message on failure.
std::string submit(const std::string& sbatch, const std::string& file) {
  const std::string command = shell_quote(sbatch) + " --parsable " + shell_quote(file) + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + sbatch);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (status != 0) throw std::runtime_error("sbatch refused " + file + ": " + output);
  const std::string last_line = output.substr(output.find_last_of('\n') + 1);
  return last_line.substr(0, last_line.find(';'));  // "<id>" or "<id>;<cluster>"
}

}  // namespace

int cmd_slurm(const Tokens& tokens) {
  if (tokens.empty() || tokens[0] == "--help" || tokens[0] == "-h") {
    std::fputs(kHelp, tokens.empty() ? stderr : stdout);
    return tokens.empty() ? 2 : 0;
  }
  if (tokens[0] != "submit")
    return usage_failure("slurm", "unknown subcommand '" + tokens[0] + "' (only: submit)");
  const Tokens rest(tokens.begin() + 1, tokens.end());
  if (!rest.empty() && rest[0] == "--help") return std::fputs(kHelp, stdout), 0;
  BatchSettings settings;
  std::string sweep_path, results;
  std::vector<std::string> overrides;
  bool dry = false;
  try {
    const Args args(rest,
                    {"results", "set", "nodes", "gpus-per-node", "jobs-per-gpu", "ntasks",
                     "cpus-per-task", "time", "partition", "account", "array"},
                    {"dry-run"});
    if (args.positional().size() != 1) throw UsageError("expected exactly one sweep file");
    sweep_path = args.positional()[0];
    results = args.require("results");
    overrides = args.get_all("set");
    settings.nodes = args.get_int("nodes", 1);
    settings.gpus_per_node = args.get_int("gpus-per-node", 0);
    settings.jobs_per_gpu = args.get_int("jobs-per-gpu", 1);
    if (settings.jobs_per_gpu < 1) throw UsageError("--jobs-per-gpu must be >= 1");
    settings.ntasks = args.get_int("ntasks", 0);
    settings.cpus_per_task = args.get_int("cpus-per-task", 0);
    settings.time = args.get("time", settings.time);
    settings.partition = args.get("partition", "");
    settings.account = args.get("account", "");
    settings.array = args.get_int("array", 0);
    if (args.has("jobs-per-gpu") && (settings.gpus_per_node == 0 || settings.array > 0)) {
      throw UsageError(
          "--jobs-per-gpu packs the worker ranks of an MPI job onto GPUs: give --gpus-per-node, "
          "not --array");
    }
    dry = args.has("dry-run");
    if (settings.nodes < 1) throw UsageError("--nodes must be >= 1");
    if (settings.gpus_per_node < 0 || settings.ntasks < 0 || settings.cpus_per_task < 0 ||
        settings.array < 0) {
      throw UsageError("--gpus-per-node, --ntasks, --cpus-per-task and --array must be >= 0");
    }
    if (settings.array == 0 && settings.ntasks == 1)
      throw UsageError("--ntasks 1 leaves no worker: rank 0 only orchestrates");
    if (settings.array > 0 && (args.has("ntasks") || settings.nodes != 1)) {
      throw UsageError(
          "--array runs one task per array element: --ntasks and --nodes do not apply");
    }
    if (settings.time.empty()) throw UsageError("--time is empty");
  } catch (const UsageError& e) {
    return usage_failure("slurm", e.what());
  }
  // Check the sweep now: a typo should fail here, not after the job waited in the queue.
  const orch::SweepSpec sweep = orch::load_sweep(sweep_path, overrides);
  settings.job_name = "mhim-" + sweep.name;
  const std::string results_abs = fs::absolute(results).lexically_normal().string();
  std::vector<std::string> args = {fs::absolute(sweep_path).lexically_normal().string(),
                                   results_abs};
  for (const auto& o : overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  if (settings.gpus_per_node > 0 && settings.array == 0) {
    args.push_back("--jobs-per-gpu");
    args.push_back(std::to_string(settings.jobs_per_gpu));
  }
  std::error_code ec;
  const std::string mhim = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec)
    throw std::runtime_error("cannot find this mhim binary through /proc/self/exe: " +
                             ec.message());
  fs::create_directories(results_abs, ec);
  if (ec)
    throw std::runtime_error("cannot create the results directory '" + results_abs +
                             "': " + ec.message());
  const std::string file = results_abs + "/mhim-sweep.sbatch";
  write_file_atomic(file, batch_script(settings, mhim, args, results_abs));
  fs::permissions(file, fs::perms::owner_exec, fs::perm_options::add, ec);

  if (dry) {
    std::fputs(batch_script(settings, mhim, args, results_abs).c_str(), stdout);
    std::printf("\nbatch script: %s (dry run: not submitted; submit it with: sbatch %s)\n",
                file.c_str(), file.c_str());
    return 0;
  }
  const std::string sbatch = find_on_path("sbatch");
  if (sbatch.empty()) {
    std::fprintf(
        stderr,
        "mhim slurm: sbatch is not on PATH: run this on a Slurm login node, or submit the written "
        "file from one: sbatch %s\n",
        file.c_str());
    return 1;
  }
  const std::string job_id = submit(sbatch, file);
  std::printf(
      "submitted job %s\nbatch script: %s\noutput: %s/slurm-%s.out\nwatch: squeue -j %s; tail -f "
      "%s/journal.jsonl\n",
      job_id.c_str(), file.c_str(), results_abs.c_str(),
      settings.array > 0 ? (job_id + "_<task>").c_str() : job_id.c_str(), job_id.c_str(),
      results_abs.c_str());
  return 0;
}

}  // namespace mil::app
