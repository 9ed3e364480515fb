#include "orchestrator/leaderboard/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "mil/core/durable_file.h"
#include "orchestrator/leaderboard/html.h"
#include "orchestrator/leaderboard/report.h"
#include "orchestrator/leaderboard/run_time.h"
#include "orchestrator/leaderboard/stats.h"
#include "orchestrator/results/store.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// The flag of runs whose validation set is their test set: their validation cannot select.
constexpr const char* kValEqualsTest = "val_equals_test";

/// A row being built: the values of every metric, and the spec flattened to dotted keys.
struct RowBuilder {
  LeaderboardRow row;
  std::map<std::string, std::vector<double>> test, val, truth;
  std::map<std::string, std::map<std::string, std::vector<double>>> test_by_replicate;
  std::map<std::string, json> settings;
  std::vector<double> val_selection;
  int runs_without_val = 0;
  std::vector<std::vector<double>> curve;  ///< Per epoch, the runs' validation metric.
  std::set<std::string> flags;
};

std::string method_of(const JobSpec& spec) {
  return spec.model.method.empty() ? spec.model.name : spec.model.method;
}

std::string run_key(const JobSpec& spec) {
  return spec.replicate_key() + "|fold=" + std::to_string(spec.split.fold_index);
}

/// The selection metric the result reports (metrics.selection.metric), else the one the trainer
/// would use: C-index for survival, AUC for two classes, balanced accuracy otherwise.
std::string selection_metric_of(const JobResult& r) {
  const auto selection = r.metrics.find("selection");
  if (selection != r.metrics.end() && selection->is_object()) {
    const auto metric = selection->find("metric");
    if (metric != selection->end() && metric->is_string() && !metric->get<std::string>().empty()) {
      return metric->get<std::string>();
    }
  }
  const auto test = r.metrics.find("test");
  if (r.spec.dataset.kind == "survival" ||
      (test != r.metrics.end() && test->is_object() && test->contains("c_index"))) {
    return "c_index";
  }
  return r.spec.dataset.class_count == 2 ? "auc" : "balanced_accuracy";
}

/// A number at metrics[split][key], if there is one.
const json* number_at(const json& metrics, const char* split, const std::string& key) {
  const auto s = metrics.find(split);
  if (s == metrics.end() || !s->is_object()) return nullptr;
  const auto v = s->find(key);
  return v != s->end() && v->is_number() ? &*v : nullptr;
}

/// Nested objects become dotted keys; arrays and scalars are leaves; empty objects vanish.
void flatten(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (!j.is_object()) {
    out[prefix] = j;
    return;
  }
  for (const auto& item : j.items()) {
    flatten(item.value(), prefix.empty() ? item.key() : prefix + "." + item.key(), out);
  }
}

void collect(const json& metrics, const char* split,
             std::map<std::string, std::vector<double>>& out) {
  const auto it = metrics.find(split);
  if (it == metrics.end() || !it->is_object()) return;
  for (const auto& item : it->items()) {
    if (item.value().is_number()) out[item.key()].push_back(item.value().get<double>());
  }
}

/// The bootstrap seed of a config: its id read as hex (ids are 16 hex digits), else 0.
std::uint64_t seed_of(const std::string& config_id) {
  try {
    return std::stoull(config_id.substr(0, 16), nullptr, 16);
  } catch (const std::exception&) {
    return 0;
  }
}

MetricSummary summarise(const std::vector<double>& values, std::uint64_t seed) {
  MetricSummary s;
  s.count = int(values.size());
  if (values.empty()) return s;
  s.mean = stats::mean(values);
  s.std = stats::population_std(values);
  const stats::Interval ci = stats::bootstrap_mean_interval(values, seed);
  s.ci_low = ci.low;
  s.ci_high = ci.high;
  return s;
}

std::string label_value(const json* value) {
  if (value == nullptr) return "unset";
  return value->is_string() ? value->get<std::string>() : value->dump();
}

/// Sets config_label on every builder: the settings whose values differ among configs that share
/// (dataset, method).
void label_configs(std::vector<RowBuilder>& builders) {
  std::map<std::pair<std::string, std::string>, std::vector<RowBuilder*>> siblings;
  for (auto& b : builders) siblings[{b.row.dataset, b.row.method}].push_back(&b);
  for (auto& [group, members] : siblings) {
    if (members.size() < 2) continue;
    std::set<std::string> keys;
    for (const RowBuilder* b : members) {
      for (const auto& kv : b->settings) keys.insert(kv.first);
    }
    for (const std::string& key : keys) {
      std::vector<const json*> values;
      for (const RowBuilder* b : members) {
        const auto it = b->settings.find(key);
        values.push_back(it == b->settings.end() ? nullptr : &it->second);
      }
      const bool same = std::all_of(values.begin(), values.end(), [&](const json* v) {
        return (v == nullptr) == (values.front() == nullptr) &&
               (v == nullptr || *v == *values.front());
      });
      if (same) continue;
      for (std::size_t i = 0; i < members.size(); ++i) {
        std::string& label = members[i]->row.config_label;
        label += (label.empty() ? "" : ", ") + key + "=" + label_value(values[i]);
      }
    }
  }
}

/// A pruned grid point keeps its validation summaries and leaves out everything about test,
/// instance truth included (it is measured on the test slides).
void keep_validation_only(LeaderboardRow& row, const std::string& detail) {
  row.pruned = true;
  row.selectable = false;
  row.not_selectable = "pruned: " + detail;
  row.test.clear();
  row.test_replicate_means.clear();
  row.test_by_run.clear();
  row.test_train_ratio_by_run.clear();
  row.truth.clear();
  row.truth_by_run.clear();
}

LeaderboardRow finish_row(RowBuilder& b) {
  LeaderboardRow& row = b.row;
  const std::uint64_t seed = seed_of(row.config_id);
  for (const auto& [key, values] : b.test) row.test[key] = summarise(values, seed);
  for (const auto& [key, values] : b.val) row.val[key] = summarise(values, seed);
  for (const auto& [key, values] : b.truth) row.truth[key] = summarise(values, seed);
  row.val_selection = summarise(b.val_selection, seed);
  row.replicates = int(b.test_by_replicate.size());
  std::map<std::string, std::vector<double>> replicate_means;
  for (const auto& [replicate, metrics] : b.test_by_replicate) {
    for (const auto& [key, values] : metrics) replicate_means[key].push_back(stats::mean(values));
  }
  for (const auto& [key, means] : replicate_means)
    row.test_replicate_means[key] = summarise(means, seed);
  for (const auto& values : b.curve) {
    row.val_curve.push_back(values.empty() ? NAN : stats::mean(values));
    row.val_curve_runs.push_back(int(values.size()));
  }
  row.protocol_flags.assign(b.flags.begin(), b.flags.end());
  if (b.flags.count(kValEqualsTest) > 0) {
    row.not_selectable = "validation is the test set (val_equals_test): grid point not selectable";
  } else if (b.val_selection.empty()) {
    row.not_selectable = "no validation: grid point not selectable";
  } else if (b.runs_without_val > 0) {
    row.not_selectable = "validation " + row.metric + " missing in " +
                         std::to_string(b.runs_without_val) + " of " + std::to_string(row.runs) +
                         " runs: grid point not selectable";
  }
  row.selectable = row.not_selectable.empty();
  return std::move(row);
}

double test_mean(const LeaderboardRow& row) {
  const auto it = row.test.find(row.metric);
  return it == row.test.end() || it->second.count == 0 ? -INFINITY : it->second.mean;
}

/// The paired tests of `method` against `baseline` on the runs both have in `by_run` maps.
Comparison compare_runs(const std::map<std::string, double>& method_by_run,
                        const std::map<std::string, double>& baseline_by_run,
                        const LeaderboardRow& method) {
  Comparison c;
  std::vector<double> differences, ratios;
  for (const auto& [key, value] : method_by_run) {
    const auto other = baseline_by_run.find(key);
    if (other == baseline_by_run.end()) continue;
    differences.push_back(value - other->second);
    const auto ratio = method.test_train_ratio_by_run.find(key);
    if (ratio != method.test_train_ratio_by_run.end()) ratios.push_back(ratio->second);
  }
  c.pairs = int(differences.size());
  if (c.pairs == 0) return c;
  if (!ratios.empty() && ratios.size() == differences.size()) {
    c.test_train_ratio = stats::mean(ratios);
    c.ratio_source = "split sizes";
  } else {
    c.test_train_ratio = 1.0 / std::max(1, method.fold_count - 1);
    c.ratio_source = "1/(k-1)";
  }
  const stats::TTest t = stats::corrected_resampled_t_test(differences, c.test_train_ratio);
  c.mean_difference = t.mean_difference;
  c.t = t.t;
  c.t_p = t.p_value;
  const stats::Wilcoxon w = stats::wilcoxon_signed_rank(differences);
  c.wilcoxon_statistic = w.statistic;
  c.wilcoxon_p = w.p_value;
  c.wilcoxon_method = w.method;
  return c;
}

Comparison compare(const LeaderboardRow& method, const LeaderboardRow& baseline) {
  return compare_runs(method.test_by_run, baseline.test_by_run, method);
}

/// Picks each (benchmark, method)'s row: the best mean validation metric among selectable grid
/// points (ties: label, then id); a lone grid point is its method's row whatever its validation.
void select_rows(Leaderboard& board,
                 std::map<std::pair<std::string, std::string>, std::string>& notes) {
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < board.rows.size(); ++i)
    groups[{board.rows[i].dataset, board.rows[i].method}].push_back(i);
  for (const auto& [group, members] : groups) {
    if (members.size() == 1 && !board.rows[members[0]].pruned) {
      board.rows[members[0]].selected = true;
      board.rows[members[0]].selection = "only grid point";
      continue;
    }
    int best = -1, candidates = 0;
    for (std::size_t i : members) {
      const LeaderboardRow& row = board.rows[i];
      if (!row.selectable) continue;
      ++candidates;
      if (best < 0) {
        best = int(i);
        continue;
      }
      const LeaderboardRow& incumbent = board.rows[best];
      if (std::make_tuple(-row.val_selection.mean, row.config_label, row.config_id) <
          std::make_tuple(-incumbent.val_selection.mean, incumbent.config_label,
                          incumbent.config_id)) {
        best = int(i);
      }
    }
    if (best < 0) {
      notes[group] = "none of " + std::to_string(members.size()) + " grid points is selectable (" +
                     board.rows[members[0]].not_selectable + ")";
      continue;
    }
    board.rows[best].selected = true;
    board.rows[best].selection = "best validation " + board.rows[best].metric + " of " +
                                 std::to_string(candidates) + " grid points";
  }
}

std::string pick_baseline(const Leaderboard& board, const std::vector<JobSpec>& expected,
                          const std::string& requested) {
  std::set<std::string> methods;
  for (const auto& row : board.rows) methods.insert(row.method);
  if (!requested.empty()) {
    if (methods.count(requested) == 0 && !methods.empty()) {
      std::string list;
      for (const auto& m : methods) list += (list.empty() ? "" : ", ") + m;
      throw std::runtime_error("baseline '" + requested +
                               "' is not a method of these results (methods: " + list + ")");
    }
    return requested;
  }
  for (const auto& spec : expected) {
    if (methods.count(method_of(spec)) > 0) return method_of(spec);
  }
  return methods.empty() ? "" : *methods.begin();
}

void compare_benchmarks(Leaderboard& board, const std::string& baseline,
                        const std::map<std::pair<std::string, std::string>, std::string>& notes) {
  std::map<std::string, std::map<std::string, MethodResult>> by_dataset;
  for (std::size_t i = 0; i < board.rows.size(); ++i) {
    const LeaderboardRow& row = board.rows[i];
    MethodResult& m = by_dataset[row.dataset][row.method];
    m.method = row.method;
    m.is_baseline = row.method == baseline;
    if (row.selected) m.row = int(i);
  }
  for (auto& [dataset, methods] : by_dataset) {
    BenchmarkResult b;
    b.dataset = dataset;
    for (auto& [name, m] : methods) {
      if (m.row < 0) {
        const auto note = notes.find({dataset, name});
        m.note = note == notes.end() ? "no selected grid point" : note->second;
      }
      if (b.metric.empty() && m.row >= 0) b.metric = board.rows[m.row].metric;
    }
    const auto base = methods.find(baseline);
    const LeaderboardRow* base_row =
        base != methods.end() && base->second.row >= 0 ? &board.rows[base->second.row] : nullptr;
    if (base_row != nullptr) b.baseline = baseline;
    for (auto& [name, m] : methods) {
      if (base_row == nullptr || m.row < 0 || m.is_baseline) continue;
      m.comparison = compare(board.rows[m.row], *base_row);
      m.compared = m.comparison.pairs > 0;
      const LeaderboardRow& row = board.rows[m.row];
      for (const auto& [key, by_run] : row.truth_by_run) {
        const auto base_runs = base_row->truth_by_run.find(key);
        if (base_runs == base_row->truth_by_run.end()) continue;
        const Comparison c = compare_runs(by_run, base_runs->second, row);
        if (c.pairs > 0) m.truth_comparisons[key] = c;
      }
    }
    for (auto& entry : methods) b.methods.push_back(entry.second);
    std::stable_sort(b.methods.begin(), b.methods.end(),
                     [&](const MethodResult& x, const MethodResult& y) {
                       const double tx = x.row >= 0 ? test_mean(board.rows[x.row]) : -INFINITY;
                       const double ty = y.row >= 0 ? test_mean(board.rows[y.row]) : -INFINITY;
                       return std::make_tuple(x.row < 0, -tx, x.method) <
                              std::make_tuple(y.row < 0, -ty, y.method);
                     });
    board.benchmarks.push_back(std::move(b));
  }
}

void rank_methods(Leaderboard& board) {
  std::set<std::string> ranked;
  for (const auto& b : board.benchmarks) {
    for (const auto& m : b.methods) {
      if (m.row >= 0) ranked.insert(m.method);
    }
  }
  const std::vector<std::string> methods(ranked.begin(), ranked.end());
  std::vector<double> rank_sums(methods.size(), 0.0);
  RankSummary& r = board.ranks;
  for (const auto& b : board.benchmarks) {
    std::vector<double> scores;
    std::string absent;
    for (const auto& name : methods) {
      const auto it = std::find_if(b.methods.begin(), b.methods.end(),
                                   [&](const MethodResult& m) { return m.method == name; });
      if (it == b.methods.end() || it->row < 0 || test_mean(board.rows[it->row]) == -INFINITY) {
        absent += (absent.empty() ? "" : ", ") + name;
      } else {
        scores.push_back(test_mean(board.rows[it->row]));
      }
    }
    if (!absent.empty()) {
      r.skipped.push_back(b.dataset + ": no selected grid point with a test " +
                          (b.metric.empty() ? "metric" : b.metric) + " for " + absent);
      continue;
    }
    const std::vector<double> ranks = stats::average_ranks_descending(scores);
    for (std::size_t i = 0; i < ranks.size(); ++i) rank_sums[i] += ranks[i];
    r.benchmarks.push_back(b.dataset);
  }
  if (r.benchmarks.empty()) return;
  std::vector<std::pair<double, std::string>> order;
  for (std::size_t i = 0; i < methods.size(); ++i)
    order.emplace_back(rank_sums[i] / double(r.benchmarks.size()), methods[i]);
  std::sort(order.begin(), order.end());
  for (const auto& [rank, name] : order) {
    r.methods.push_back(name);
    r.average_ranks.push_back(rank);
  }
  const int k = int(methods.size());
  if (k >= 2 && k <= 50)
    r.critical_difference = stats::nemenyi_critical_difference(k, int(r.benchmarks.size()));
}

}  // namespace

std::vector<std::string> protocol_flags(const JobResult& result) {
  std::set<std::string> flags;
  const auto add_from = [&](const json& holder) {
    const auto it = holder.find("protocol_flags");
    if (it == holder.end() || !it->is_array()) return;
    for (const json& flag : *it) {
      if (flag.is_string()) flags.insert(flag.get<std::string>());
    }
  };
  if (result.metrics.is_object()) add_from(result.metrics);
  if (result.runtime.is_object()) add_from(result.runtime);
  add_from(json(result));  // a top-level field, should JobResult grow one
  if (result.spec.split.protocol == "legacy" && result.spec.split.val_ratio == 0)
    flags.insert(kValEqualsTest);
  return {flags.begin(), flags.end()};
}

Leaderboard build_leaderboard(const std::vector<JobResult>& results,
                              const std::vector<JobSpec>& expected,
                              const LeaderboardOptions& options) {
  std::map<std::string, const JobResult*> ok_by_id, failed_by_id;
  for (const auto& r : results) (r.ok() ? ok_by_id : failed_by_id)[r.job_id] = &r;

  // One selection metric per benchmark: the first that its results state.
  std::map<std::string, std::string> metric_of_dataset;
  for (const auto& [id, r] : ok_by_id)
    metric_of_dataset.emplace(r->spec.dataset.name, selection_metric_of(*r));
  std::map<std::string, int> expected_per_config;
  for (const auto& spec : expected) ++expected_per_config[spec.config_id()];

  std::vector<RowBuilder> builders;
  std::map<std::string, std::size_t> builder_of_config;
  for (const auto& [id, r] : ok_by_id) {
    auto [it, inserted] = builder_of_config.emplace(r->config_id, builders.size());
    if (inserted) {
      RowBuilder b;
      b.row.dataset = r->spec.dataset.name;
      b.row.model = r->spec.model.name;
      b.row.method = method_of(r->spec);
      b.row.config_id = r->config_id;
      b.row.metric = metric_of_dataset.at(b.row.dataset);
      b.row.fold_count = r->spec.split.fold_count;
      flatten(r->spec.config_json(), "", b.settings);
      const auto e = expected_per_config.find(r->config_id);
      b.row.expected_runs = e == expected_per_config.end() ? 0 : e->second;
      builders.push_back(std::move(b));
    }
    RowBuilder& b = builders[it->second];
    const std::string& metric = b.row.metric;
    const std::string key = run_key(r->spec);
    ++b.row.runs;
    collect(r->metrics, "test", b.test);
    collect(r->metrics, "val", b.val);
    collect(r->metrics, "test", b.test_by_replicate[r->spec.replicate_key()]);
    if (const json* v = number_at(r->metrics, "val", metric)) {
      b.val_selection.push_back(v->get<double>());
    } else {
      ++b.runs_without_val;
    }
    if (const json* t = number_at(r->metrics, "test", metric))
      b.row.test_by_run[key] = t->get<double>();
    for (const std::string& truth_key : truth_metric_keys()) {
      if (const json* t = number_at(r->metrics, "test_truth", truth_key)) {
        b.truth[truth_key].push_back(t->get<double>());
        b.row.truth_by_run[truth_key][key] = t->get<double>();
      }
    }
    const json* test_bags = number_at(r->metrics, "test", "bags");
    const json* train_bags = number_at(r->metrics, "train", "bags");
    if (test_bags != nullptr && train_bags != nullptr && train_bags->get<double>() > 0) {
      b.row.test_train_ratio_by_run[key] = test_bags->get<double>() / train_bags->get<double>();
    }
    if (r->history.is_array()) {
      for (std::size_t e = 0; e < r->history.size(); ++e) {
        const json& record = r->history[e];
        if (!record.is_object() || !record.contains("val")) continue;
        const json& val = record.at("val");
        if (!val.is_object() || !val.contains(metric) || !val.at(metric).is_number()) continue;
        if (b.curve.size() <= e) b.curve.resize(e + 1);
        b.curve[e].push_back(val.at(metric).get<double>());
      }
    }
    for (const auto& flag : protocol_flags(*r)) b.flags.insert(flag);
  }
  label_configs(builders);

  // Grid points halving stopped: by config, the detail of their first pruned job.
  std::map<std::string, std::string> pruned_configs;
  for (const auto& spec : expected) {
    const auto pruned = options.pruned.find(spec.id());
    if (pruned != options.pruned.end() && ok_by_id.count(pruned->first) == 0) {
      pruned_configs.emplace(spec.config_id(), pruned->second);
    }
  }
  Leaderboard board;
  board.ok_results = int(ok_by_id.size());
  for (auto& b : builders) {
    board.rows.push_back(finish_row(b));
    const auto pruned = pruned_configs.find(board.rows.back().config_id);
    if (pruned != pruned_configs.end()) keep_validation_only(board.rows.back(), pruned->second);
  }
  std::sort(board.rows.begin(), board.rows.end(),
            [](const LeaderboardRow& a, const LeaderboardRow& b) {
              const double va = a.val_selection.count > 0 ? a.val_selection.mean : -INFINITY;
              const double vb = b.val_selection.count > 0 ? b.val_selection.mean : -INFINITY;
              return std::make_tuple(a.dataset, a.method, -va, a.config_label, a.config_id) <
                     std::make_tuple(b.dataset, b.method, -vb, b.config_label, b.config_id);
            });
  std::map<std::pair<std::string, std::string>, std::string> notes;
  select_rows(board, notes);
  compare_benchmarks(board, pick_baseline(board, expected, options.baseline), notes);
  rank_methods(board);

  auto missing = [&](const JobSpec& spec, const std::string& id, const JobResult* failed) {
    const auto quarantined = options.quarantined.find(id);
    MissingJob m{id, spec.dataset.name,     method_of(spec), "not run",
                 "", spec.split.fold_index, spec.seed};
    if (quarantined != options.quarantined.end()) {
      m.status = "quarantined";
      m.error = quarantined->second;
    } else if (failed != nullptr) {
      m.status = failed->status == "quarantined" ? "quarantined" : "failed";
      m.error = failed->error;
    }
    return m;
  };
  std::set<std::string> expected_ids;
  for (const auto& spec : expected) {
    const std::string id = spec.id();
    if (!expected_ids.insert(id).second || ok_by_id.count(id) > 0) continue;
    if (options.pruned.count(id) > 0) {
      ++board.pruned_jobs;
      continue;
    }
    const auto failed = failed_by_id.find(id);
    board.missing.push_back(
        missing(spec, id, failed == failed_by_id.end() ? nullptr : failed->second));
  }
  for (const auto& [id, r] : failed_by_id) {
    if (expected_ids.count(id) == 0 && ok_by_id.count(id) == 0)
      board.missing.push_back(missing(r->spec, id, r));
  }
  return board;
}

std::map<std::string, std::string> read_quarantined(const std::string& journal_path) {
  std::map<std::string, std::string> out;
  for_each_journal_entry(journal_path, [&](const json& entry) {
    if (!entry.contains("job_id") || !entry.at("job_id").is_string()) return;
    const std::string id = entry.at("job_id").get<std::string>();
    const auto status = entry.find("status");
    if (status == entry.end() || !status->is_string()) return;
    if (*status == "quarantined") {
      const auto detail = entry.find("detail");
      out[id] =
          detail != entry.end() && detail->is_string() ? detail->get<std::string>() : "quarantined";
    } else if (*status == "ok" || *status == "failed") {
      out.erase(id);  // a later result (a rerun with --retry-failed) lifts it
    }
  });
  return out;
}

std::map<std::string, std::string> read_pruned(const std::string& journal_path) {
  std::map<std::string, std::string> out;
  for (const auto& [id, entry] : replay_journal(journal_path)) {
    if (entry.status == "pruned") out.emplace(id, entry.detail);
  }
  return out;
}

const std::vector<std::string>& truth_metric_keys() {
  static const std::vector<std::string> kKeys = {"auc_hard_only", "instance_auc",
                                                 "instance_auc_hard", "instance_auc_easy"};
  return kKeys;
}

void write_sweep_name(const std::string& results_dir, const std::string& name) {
  mil::write_file_atomic((fs::path(results_dir) / "sweep.json").string(),
                         json{{"name", name}}.dump() + "\n");
}

std::string read_sweep_name(const std::string& results_dir) {
  std::ifstream in(fs::path(results_dir) / "sweep.json");
  if (!in) return "";
  const json j = json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("name") && j.at("name").is_string()
             ? j.at("name").get<std::string>()
             : "";
}

std::string write_leaderboard(const std::string& results_dir, const LeaderboardOptions& options) {
  if (!fs::is_directory(results_dir)) {
    throw std::runtime_error("results dir '" + results_dir +
                             "' does not exist; run a sweep into it first");
  }
  const ResultsStore store(results_dir);
  LeaderboardOptions resolved = options;
  for (const auto& [id, detail] :
       read_quarantined((fs::path(results_dir) / "journal.jsonl").string())) {
    resolved.quarantined.emplace(id, detail);
  }
  for (const auto& [id, detail] : read_pruned((fs::path(results_dir) / "journal.jsonl").string())) {
    resolved.pruned.emplace(id, detail);
  }
  const std::vector<JobResult> results = store.load_all();
  const Leaderboard board = build_leaderboard(results, store.load_manifest(), resolved);
  const std::vector<RunTimeLine> run_time = run_time_lines(results);
  std::string name = read_sweep_name(results_dir);
  if (name.empty()) name = fs::path(results_dir).lexically_normal().filename().string();
  if (name.empty())
    name = fs::path(results_dir).lexically_normal().parent_path().filename().string();
  const std::string title = "Leaderboard: " + name;
  const fs::path dir(results_dir);
  const std::string md_path = (dir / "leaderboard.md").string();
  mil::write_file_atomic(md_path, to_markdown(board, title) + run_time_markdown(run_time));
  mil::write_file_atomic((dir / "leaderboard.csv").string(), to_csv(board));
  mil::write_file_atomic((dir / "leaderboard.html").string(), to_html(board, title));
  json everything = board;
  everything["run_time"] = run_time;  // predicted vs actual seconds per (dataset, method)
  mil::write_file_atomic(
      (dir / "leaderboard.json").string(),
      everything.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace) + "\n");
  return md_path;
}

namespace {
/// NaN and infinities as JSON null (nlohmann would write them as null anyway; this says so).
json number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }
}  // namespace

void to_json(json& j, const MetricSummary& s) {
  j = json{{"mean", number(s.mean)},
           {"std", number(s.std)},
           {"count", s.count},
           {"ci_low", number(s.ci_low)},
           {"ci_high", number(s.ci_high)}};
}

void to_json(json& j, const LeaderboardRow& r) {
  json curve = json::array();
  for (double v : r.val_curve) curve.push_back(number(v));
  j = json{{"dataset", r.dataset},
           {"model", r.model},
           {"method", r.method},
           {"config_id", r.config_id},
           {"config_label", r.config_label},
           {"runs", r.runs},
           {"expected_runs", r.expected_runs},
           {"replicates", r.replicates},
           {"metric", r.metric},
           {"val_selection", r.val_selection},
           {"selectable", r.selectable},
           {"not_selectable", r.not_selectable},
           {"pruned", r.pruned},
           {"selected", r.selected},
           {"selection", r.selection},
           {"protocol_flags", r.protocol_flags},
           {"test", r.test},
           {"test_replicate_means", r.test_replicate_means},
           {"val", r.val},
           {"test_by_run", r.test_by_run},
           {"test_train_ratio_by_run", r.test_train_ratio_by_run},
           {"val_curve", curve},
           {"val_curve_runs", r.val_curve_runs}};
  if (!r.truth.empty()) {  // only where results carry instance truth
    j["test_truth"] = r.truth;
    j["test_truth_by_run"] = r.truth_by_run;
  }
}

void to_json(json& j, const Comparison& c) {
  j = json{{"pairs", c.pairs},
           {"mean_difference", number(c.mean_difference)},
           {"test_train_ratio", number(c.test_train_ratio)},
           {"ratio_source", c.ratio_source},
           {"t", number(c.t)},
           {"t_p", number(c.t_p)},
           {"wilcoxon_statistic", number(c.wilcoxon_statistic)},
           {"wilcoxon_p", number(c.wilcoxon_p)},
           {"wilcoxon_method", c.wilcoxon_method}};
}

void to_json(json& j, const MethodResult& m) {
  j = json{{"method", m.method}, {"row", m.row}, {"note", m.note}, {"is_baseline", m.is_baseline}};
  if (m.compared) j["vs_baseline"] = m.comparison;
  if (!m.truth_comparisons.empty()) j["truth_vs_baseline"] = m.truth_comparisons;
}

void to_json(json& j, const BenchmarkResult& b) {
  j = json{{"dataset", b.dataset},
           {"metric", b.metric},
           {"baseline", b.baseline},
           {"methods", b.methods}};
}

void to_json(json& j, const RankSummary& r) {
  j = json{{"methods", r.methods},
           {"average_ranks", r.average_ranks},
           {"benchmarks", r.benchmarks},
           {"skipped", r.skipped},
           {"critical_difference", r.critical_difference},
           {"alpha", 0.05}};
}

void to_json(json& j, const MissingJob& m) {
  j = json{{"job_id", m.job_id}, {"dataset", m.dataset}, {"model", m.model},
           {"status", m.status}, {"error", m.error},     {"fold_index", m.fold_index},
           {"seed", m.seed}};
}

void to_json(json& j, const Leaderboard& b) {
  j = json{
      {"rows", b.rows},
      {"benchmarks", b.benchmarks},
      {"ranks", b.ranks},
      {"missing", b.missing},
      {"ok_results", b.ok_results},
      {"pruned_jobs", b.pruned_jobs},
      {"statistics",
       {{"cell", "mean and population std (ddof 0) over fold-runs (folds x seeds/replicates)"},
        {"interval",
         "percentile bootstrap 95% interval of the mean over fold-runs, 2000 resamples, seeded by "
         "the config id"},
        {"selection",
         "per benchmark and method, the grid point with the best mean validation selection metric; "
         "test never selects"},
        {"pruning",
         "grid points stopped by successive halving (on validation only) are listed with their "
         "partial validation results and never selected, compared or ranked"},
        {"t_test",
         "corrected resampled t-test (Nadeau & Bengio 2003), variance x (1/n + n_test/n_train), df "
         "n-1"},
        {"wilcoxon",
         "signed-rank, zero differences dropped (Wilcox), exact for n <= 25 without ties, else "
         "normal with tie correction"},
        {"critical_difference", "Nemenyi, alpha 0.05, q from the studentized range / sqrt(2)"}}}};
}

}  // namespace mil::orch
