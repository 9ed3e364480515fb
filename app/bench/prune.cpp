// mhim bench prune: what successive halving would have cost and chosen, replayed on the committed
// results of a sweep that ran every job, side by side with that sweep; optionally checked against
// the results of a real pruning sweep of the same jobs.
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/args.h"
#include "app/commands.h"
#include "orchestrator/leaderboard/leaderboard.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/schedule/pruning.h"

namespace mil::app {
namespace {

constexpr const char* kHelp =
    R"(usage: mhim bench prune --full DIR [--pruned DIR] [--eta N] [--rungs LIST] [--metric M]

Replays successive halving (orchestrator/schedule/pruning.h) on the results of a sweep that ran every
job (--full, a `mhim sweep` results directory) and prints, side by side: jobs and CPU-seconds to a
complete leaderboard with and without pruning, and for each (dataset, method) that halving ranks, the
grid point chosen on validation by each leaderboard, its test metric, the difference, and the chosen
full-run point's fold-to-fold standard deviation of that metric. Jobs are deterministic (their id hashes
everything a result depends on), so a pruning sweep runs exactly the replayed jobs with the same
results; --pruned checks that against a real pruning sweep's results directory and adds its CPU-seconds.
CPU-seconds are the results' runtime.cpu_seconds (the job process's user + system time), or their
wall-clock runtime.seconds, said so, for results written before jobs recorded it.

options:
  --full DIR      results of the sweep without pruning (required)
  --pruned DIR    results of the same sweep with pruning, to check against the replay
  --eta N         keep the best ceil(n / N) points at each rung (default 3)
  --rungs LIST    cumulative fold counts that end the rungs, e.g. 1,3 (default: one fold per rung)
  --metric M      validation metric that ranks points (default auto: the benchmark's selection metric)

example:
  mhim bench prune --full results/full --pruned results/pruned --eta 3
)";

/// A job's CPU-seconds, and whether it is the wall-clock fallback.
double cost_of(const JobResult& r, bool& wall_fallback) {
  const auto cpu = r.runtime.find("cpu_seconds");
  if (cpu != r.runtime.end() && cpu->is_number()) return cpu->get<double>();
  wall_fallback = true;
  const auto wall = r.runtime.find("seconds");
  return wall != r.runtime.end() && wall->is_number() ? wall->get<double>() : 0.0;
}

/// The selected row of (dataset, method), or null.
const orch::LeaderboardRow* selected(const orch::Leaderboard& board, const std::string& dataset,
                                     const std::string& method) {
  for (const auto& row : board.rows) {
    if (row.dataset == dataset && row.method == method && row.selected) return &row;
  }
  return nullptr;
}

const orch::MetricSummary* test_of(const orch::LeaderboardRow* row) {
  if (row == nullptr) return nullptr;
  const auto it = row->test.find(row->metric);
  return it == row->test.end() || it->second.count == 0 ? nullptr : &it->second;
}

std::string fixed(double value, int digits = 4) {
  if (!std::isfinite(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

orch::PruneSpec spec_from(const Args& args) {
  orch::PruneSpec spec;
  spec.enabled = true;
  spec.eta = args.get_int("eta", 3);
  if (spec.eta < 2) throw UsageError("--eta must be at least 2");
  spec.metric = args.get("metric", "auto");
  std::stringstream list(args.get("rungs", ""));
  for (std::string item; std::getline(list, item, ',');) {
    try {
      spec.rungs.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw UsageError("--rungs: '" + item + "' is not a fold count");
    }
  }
  return spec;
}

/// Sums, per (dataset, method) bracket and in all: jobs and CPU-seconds of the full run and the
/// replay.
struct Costs {
  std::map<std::pair<std::string, std::string>, std::pair<int, int>> jobs;       ///< full, pruned
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> cpu;  ///< full, pruned
  int jobs_full = 0, jobs_pruned = 0;
  double cpu_full = 0, cpu_pruned = 0;
  bool wall_fallback = false;
};

Costs costs(const std::vector<JobResult>& results, const std::set<std::string>& ran) {
  Costs c;
  for (const JobResult& r : results) {
    if (!r.ok()) continue;
    const auto key = std::make_pair(
        r.spec.dataset.name, r.spec.model.method.empty() ? r.spec.model.name : r.spec.model.method);
    const double cpu = cost_of(r, c.wall_fallback);
    const bool kept = ran.count(r.job_id) > 0;
    c.jobs[key].first += 1;
    c.jobs[key].second += kept;
    c.cpu[key].first += cpu;
    c.cpu[key].second += kept ? cpu : 0.0;
    c.jobs_full += 1;
    c.jobs_pruned += kept;
    c.cpu_full += cpu;
    c.cpu_pruned += kept ? cpu : 0.0;
  }
  return c;
}

/// True when every job of `bracket` has an ok outcome in `outcomes`.
bool every_job_ok(const orch::PrunePlan& plan, const orch::PrunePlan::Bracket& bracket,
                  const std::map<std::string, orch::JobOutcome>& outcomes) {
  for (std::size_t p : bracket.points) {
    for (const auto& rung : plan.points[p].rungs) {
      for (std::size_t job : rung) {
        const auto outcome = outcomes.find(plan.job_ids[job]);
        if (outcome == outcomes.end() || !outcome->second.ok) return false;
      }
    }
  }
  return true;
}

/// Checks a real pruning sweep against the replay; prints what differs and returns its CPU-seconds.
double check_real_run(const std::string& dir, const std::vector<JobResult>& full,
                      const orch::HalvingReplay& replay) {
  const orch::ResultsStore store(dir);
  const std::vector<JobResult> real = store.load_all();
  std::map<std::string, const JobResult*> full_by_id;
  for (const auto& r : full) full_by_id[r.job_id] = &r;
  std::set<std::string> real_ok, replayed(replay.ran.begin(), replay.ran.end());
  int same_metrics = 0;
  bool wall = false;
  double cpu = 0;
  for (const auto& r : real) {
    if (!r.ok()) continue;
    real_ok.insert(r.job_id);
    cpu += cost_of(r, wall);
    const auto f = full_by_id.find(r.job_id);
    same_metrics += f != full_by_id.end() && f->second->metrics == r.metrics;
  }
  std::set<std::string> replay_pruned, real_pruned;
  for (const auto& p : replay.pruned) replay_pruned.insert(p.job_id);
  for (const auto& [id, detail] : orch::read_pruned(dir + "/journal.jsonl")) real_pruned.insert(id);
  std::printf(
      "\nreal pruning sweep %s: %zu ok jobs (replay: %zu), %s; pruned %zu (replay: %zu), %s; "
      "metrics identical "
      "to the full run's in %d of %zu; %.1f CPU-s%s\n",
      dir.c_str(), real_ok.size(), replayed.size(),
      real_ok == replayed ? "the same jobs" : "DIFFERENT jobs", real_pruned.size(),
      replay_pruned.size(), real_pruned == replay_pruned ? "the same" : "DIFFERENT", same_metrics,
      real_ok.size(), cpu, wall ? " (wall-clock: no cpu_seconds recorded)" : "");
  return cpu;
}

int run(const Args& args) {
  const std::string full_dir = args.require("full");
  const orch::PruneSpec spec = spec_from(args);
  const orch::ResultsStore store(full_dir);
  const std::vector<JobSpec> manifest = store.load_manifest();
  if (manifest.empty())
    throw std::runtime_error(full_dir +
                             ": no jobs.json manifest; is it a sweep's results directory?");
  const std::vector<JobResult> results = store.load_all();
  const orch::PrunePlan plan =
      orch::make_prune_plan(orch::schedule_with_dependencies(manifest), spec);

  std::map<std::string, orch::JobOutcome> outcomes;
  for (const auto& r : results) {
    if (r.ok() && plan.index_of.count(r.job_id) > 0)
      outcomes[r.job_id] = orch::plan_outcome(plan, r);
  }
  const orch::HalvingReplay replay = orch::replay_halving(plan, outcomes);
  const std::set<std::string> ran(replay.ran.begin(), replay.ran.end());

  std::vector<JobResult> kept;
  for (const auto& r : results) {
    if (ran.count(r.job_id) > 0) kept.push_back(r);
  }
  orch::LeaderboardOptions pruned_options;
  for (const auto& p : replay.pruned) pruned_options.pruned[p.job_id] = p.detail;
  const orch::Leaderboard full = orch::build_leaderboard(results, manifest);
  const orch::Leaderboard pruned = orch::build_leaderboard(kept, manifest, pruned_options);
  const Costs c = costs(results, ran);

  std::printf("mhim bench prune: successive halving (eta %d, %s) replayed on %s\n\n", spec.eta,
              spec.rungs.empty()
                  ? "one fold per rung"
                  : ("rungs ending after " + args.get("rungs", "") + " folds").c_str(),
              full_dir.c_str());
  std::printf(
      "jobs to a complete leaderboard: %d without pruning, %d with (%zu pruned, %zu still "
      "waiting)\n",
      c.jobs_full, c.jobs_pruned, replay.pruned.size(), replay.waiting.size());
  std::printf("CPU-seconds: %.1f without pruning, %.1f with: %.2fx less%s\n\n", c.cpu_full,
              c.cpu_pruned, c.cpu_pruned > 0 ? c.cpu_full / c.cpu_pruned : NAN,
              c.wall_fallback
                  ? " (some results have no cpu_seconds: their wall-clock seconds are counted)"
                  : "");
  std::printf("%-20s %-16s %9s %13s %-16s %-16s %4s %8s %8s %8s %8s %6s\n", "dataset", "method",
              "jobs", "CPU-s", "chosen (full)", "chosen (pruned)", "same", "test", "test", "diff",
              "fold sd", "within");
  std::printf("%-20s %-16s %9s %13s %-16s %-16s %4s %8s %8s %8s %8s %6s\n", "", "", "full/pr",
              "full/pruned", "", "", "", "full", "pruned", "", "(full)", "1 sd");
  int pairs = 0, same = 0, within = 0;
  int incomplete = 0;
  for (const auto& bracket : plan.brackets) {
    const auto key = std::make_pair(bracket.dataset, bracket.method);
    if (!every_job_ok(plan, bracket, outcomes)) {  // the full run's own choice is not final yet
      std::printf("%-20s %-16s (the full run has not finished every job of it: left out)\n",
                  bracket.dataset.c_str(), bracket.method.c_str());
      ++incomplete;
      continue;
    }
    const orch::LeaderboardRow* a = selected(full, bracket.dataset, bracket.method);
    const orch::LeaderboardRow* b = selected(pruned, bracket.dataset, bracket.method);
    const orch::MetricSummary* ta = test_of(a);
    const orch::MetricSummary* tb = test_of(b);
    const bool is_same = a != nullptr && b != nullptr && a->config_id == b->config_id;
    const double diff = ta != nullptr && tb != nullptr ? tb->mean - ta->mean : NAN;
    const bool is_within = is_same || (std::isfinite(diff) && std::fabs(diff) <= ta->std);
    ++pairs;
    same += is_same;
    within += is_within;
    const auto jobs = c.jobs.count(key) ? c.jobs.at(key) : std::make_pair(0, 0);
    const auto cpu = c.cpu.count(key) ? c.cpu.at(key) : std::make_pair(0.0, 0.0);
    std::printf("%-20s %-16s %4d/%-4d %6.0f/%-6.0f %-16s %-16s %4s %8s %8s %8s %8s %6s\n",
                bracket.dataset.c_str(), bracket.method.c_str(), jobs.first, jobs.second, cpu.first,
                cpu.second, a ? a->config_id.substr(0, 16).c_str() : "-",
                b ? b->config_id.substr(0, 16).c_str() : "-", is_same ? "yes" : "no",
                fixed(ta ? ta->mean : NAN).c_str(), fixed(tb ? tb->mean : NAN).c_str(),
                is_same ? "0" : fixed(diff).c_str(), fixed(ta ? ta->std : NAN).c_str(),
                is_within ? "yes" : "no");
  }
  std::printf(
      "\nsame config on validation in %d of %d (dataset, method) pairs; same or test metric within "
      "one fold sd in %d of %d (%.0f%%)%s\n",
      same, pairs, within, pairs, pairs ? 100.0 * within / pairs : 0.0,
      incomplete ? (", " + std::to_string(incomplete) + " unfinished pair(s) left out").c_str()
                 : "");
  if (args.has("pruned")) check_real_run(args.get("pruned", ""), results, replay);
  return 0;
}

}  // namespace

int cmd_bench_prune(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  try {
    return run(Args(tokens, {"full", "pruned", "eta", "rungs", "metric"}, {}));
  } catch (const UsageError& e) {
    return usage_failure("bench prune", e.what());
  }
}

}  // namespace mil::app
