#include "orchestrator/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "mil/durable_file.h"
#include "orchestrator/results_store.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// Longest error text shown in a Markdown cell; leaderboard.json keeps the whole message.
constexpr std::size_t kMaxErrorChars = 160;

/// A row being built: the values of every metric, and the spec flattened to dotted keys.
struct RowBuilder {
  LeaderboardRow row;
  std::map<std::string, std::vector<double>> test, val;
  std::map<std::string, std::map<std::string, std::vector<double>>> test_by_replicate;
  std::map<std::string, json> settings;
};

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

std::map<std::string, json> config_settings(const JobSpec& spec) {
  std::map<std::string, json> out;
  flatten(spec.config_json(), "", out);
  return out;
}

void collect(const json& metrics, const char* split,
             std::map<std::string, std::vector<double>>& out) {
  const auto it = metrics.find(split);
  if (it == metrics.end() || !it->is_object()) return;
  for (const auto& item : it->items()) {
    if (item.value().is_number()) out[item.key()].push_back(item.value().get<double>());
  }
}

MetricSummary summarise(const std::vector<double>& values) {
  MetricSummary s;
  s.count = static_cast<int>(values.size());
  if (values.empty()) return s;
  for (double v : values) s.mean += v;
  s.mean /= s.count;
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(squares / s.count);
  return s;
}

std::string label_value(const json* value) {
  if (value == nullptr) return "unset";
  return value->is_string() ? value->get<std::string>() : value->dump();
}

/// Sets config_label on every builder: the settings whose values differ among configs that share
/// (dataset, model).
void label_configs(std::vector<RowBuilder>& builders) {
  std::map<std::pair<std::string, std::string>, std::vector<RowBuilder*>> siblings;
  for (auto& b : builders) siblings[{b.row.dataset, b.row.model}].push_back(&b);
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

/// Sort key: test AUC, or the C-index for survival rows; rows without either go last.
double test_auc(const LeaderboardRow& row) {
  for (const char* key : {"auc", "c_index"}) {
    const auto it = row.test.find(key);
    if (it != row.test.end() && it->second.count > 0) return it->second.mean;
  }
  return -INFINITY;
}

std::string cell(const std::map<std::string, MetricSummary>& metrics, const std::string& key) {
  const auto it = metrics.find(key);
  if (it == metrics.end() || it->second.count == 0) return "–";
  char text[64];
  std::snprintf(text, sizeof(text), "%.3f ± %.3f", it->second.mean, it->second.std);
  return text;
}

/// Text safe inside a Markdown table cell.
std::string escape(std::string text, std::size_t max_chars = std::string::npos) {
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else {
      out += (c == '\n' || c == '\r') ? ' ' : c;
    }
  }
  return out;
}

}  // namespace

Leaderboard build_leaderboard(const std::vector<JobResult>& results,
                              const std::vector<JobSpec>& expected) {
  std::map<std::string, const JobResult*> ok_by_id, failed_by_id;
  for (const auto& r : results) (r.ok() ? ok_by_id : failed_by_id)[r.job_id] = &r;

  std::vector<RowBuilder> builders;
  std::map<std::string, std::size_t> builder_of_config;
  for (const auto& [id, r] : ok_by_id) {
    auto [it, inserted] = builder_of_config.emplace(r->config_id, builders.size());
    if (inserted) {
      RowBuilder b;
      b.row.dataset = r->spec.dataset.name;
      b.row.model = r->spec.model.name;
      b.row.config_id = r->config_id;
      b.settings = config_settings(r->spec);
      builders.push_back(std::move(b));
    }
    RowBuilder& b = builders[it->second];
    ++b.row.runs;
    collect(r->metrics, "test", b.test);
    collect(r->metrics, "val", b.val);
    collect(r->metrics, "test", b.test_by_replicate[r->spec.replicate_key()]);
  }
  label_configs(builders);

  Leaderboard board;
  for (auto& b : builders) {
    for (const auto& [key, values] : b.test) b.row.test[key] = summarise(values);
    for (const auto& [key, values] : b.val) b.row.val[key] = summarise(values);
    b.row.replicates = int(b.test_by_replicate.size());
    std::map<std::string, std::vector<double>> replicate_means;
    for (const auto& [replicate, metrics] : b.test_by_replicate) {
      for (const auto& [key, values] : metrics) replicate_means[key].push_back(summarise(values).mean);
    }
    for (const auto& [key, means] : replicate_means) b.row.test_replicate_means[key] = summarise(means);
    board.rows.push_back(std::move(b.row));
  }
  std::sort(
      board.rows.begin(), board.rows.end(), [](const LeaderboardRow& a, const LeaderboardRow& b) {
        return std::make_tuple(a.dataset, -test_auc(a), a.model, a.config_label, a.config_id) <
               std::make_tuple(b.dataset, -test_auc(b), b.model, b.config_label, b.config_id);
      });

  auto missing = [](const JobSpec& spec, const std::string& id, const JobResult* failed) {
    return MissingJob{id,
                      spec.dataset.name,
                      spec.model.name,
                      failed ? "failed" : "not run",
                      failed ? failed->error : "",
                      spec.split.fold_index,
                      spec.seed};
  };
  std::set<std::string> expected_ids;
  for (const auto& spec : expected) {
    const std::string id = spec.id();
    if (!expected_ids.insert(id).second || ok_by_id.count(id) > 0) continue;
    const auto failed = failed_by_id.find(id);
    board.missing.push_back(
        missing(spec, id, failed == failed_by_id.end() ? nullptr : failed->second));
  }
  for (const auto& [id, r] : failed_by_id) {
    if (expected_ids.count(id) == 0 && ok_by_id.count(id) == 0) {
      board.missing.push_back(missing(r->spec, id, r));
    }
  }
  return board;
}

std::string to_markdown(const Leaderboard& board, const std::string& title) {
  std::string md = "# " + title + "\n\n";
  if (board.rows.empty()) md += "No ok results yet.\n\n";
  std::string dataset;
  bool replicated = false;  // the current dataset's table has a column of replicate means
  bool survival = false;    // the current dataset reports C-indices instead of classification metrics
  bool any_replicated = false;
  for (std::size_t i = 0; i < board.rows.size(); ++i) {
    const LeaderboardRow& row = board.rows[i];
    if (i == 0 || row.dataset != dataset) {
      dataset = row.dataset;
      const auto any_row = [&](auto predicate) {
        return std::any_of(board.rows.begin(), board.rows.end(),
                           [&](const LeaderboardRow& r) { return r.dataset == dataset && predicate(r); });
      };
      replicated = any_row([](const LeaderboardRow& r) { return r.replicates > 1; });
      survival = any_row([](const LeaderboardRow& r) { return r.test.count("c_index") > 0; });
      any_replicated |= replicated;
      md += std::string(i == 0 ? "" : "\n") + "## " + escape(dataset) + "\n\n";
      md += survival ? "| Model | Config | Runs | Test C-index | Val C-index |"
                     : "| Model | Config | Runs | Test AUC | Test Acc | Test Bal.Acc | Val AUC |";
      md += replicated ? (survival ? " Reps | Test C-index over reps |\n" : " Reps | Test Acc over reps |\n") : "\n";
      md += survival ? "|---|---|---:|---:|---:|" : "|---|---|---:|---:|---:|---:|---:|";
      md += replicated ? "---:|---:|\n" : "\n";
    }
    md += "| " + escape(row.model) + " | " + (row.config_label.empty() ? "–" : escape(row.config_label)) + " | " +
          std::to_string(row.runs) + " | ";
    md += survival ? cell(row.test, "c_index") + " | " + cell(row.val, "c_index") + " |"
                   : cell(row.test, "auc") + " | " + cell(row.test, "accuracy") + " | " +
                         cell(row.test, "balanced_accuracy") + " | " + cell(row.val, "auc") + " |";
    md += replicated ? " " + std::to_string(row.replicates) + " | " +
                           cell(row.test_replicate_means, survival ? "c_index" : "accuracy") + " |\n"
                     : "\n";
  }
  if (!board.rows.empty()) {
    md += "\nmean ± population std over all runs (folds × replicates)";
    md += any_replicated ? "; \"over reps\": mean ± population std of the per-replicate means "
                           "(replicate = seed, split seed, repetition)\n\n"
                         : "\n\n";
  }
  md += "## Missing\n\n";
  if (board.missing.empty()) return md + "none\n";
  md += "| Job | Dataset | Model | Fold | Seed | Status | Error |\n";
  md += "|---|---|---|---:|---:|---|---|\n";
  for (const auto& m : board.missing) {
    md += "| " + escape(m.job_id) + " | " + escape(m.dataset) + " | " + escape(m.model) + " | " +
          std::to_string(m.fold_index) + " | " + std::to_string(m.seed) + " | " + m.status + " | " +
          (m.error.empty() ? "" : escape(m.error, kMaxErrorChars)) + " |\n";
  }
  return md;
}

std::string write_leaderboard(const std::string& results_dir) {
  if (!fs::is_directory(results_dir)) {
    throw std::runtime_error("results dir '" + results_dir +
                             "' does not exist; run a sweep into it first");
  }
  const ResultsStore store(results_dir);
  const Leaderboard board = build_leaderboard(store.load_all(), store.load_manifest());
  std::string name = fs::path(results_dir).lexically_normal().filename().string();
  if (name.empty()) {
    name = fs::path(results_dir).lexically_normal().parent_path().filename().string();
  }
  const std::string md_path = (fs::path(results_dir) / "leaderboard.md").string();
  mil::write_file_atomic(md_path, to_markdown(board, "Leaderboard: " + name));
  mil::write_file_atomic(
      (fs::path(results_dir) / "leaderboard.json").string(),
      json(board).dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace) + "\n");
  return md_path;
}

void to_json(json& j, const MetricSummary& s) {
  j = json{{"mean", s.mean}, {"std", s.std}, {"count", s.count}};
}

void to_json(json& j, const LeaderboardRow& r) {
  j = json{{"dataset", r.dataset},
           {"model", r.model},
           {"config_id", r.config_id},
           {"config_label", r.config_label},
           {"runs", r.runs},
           {"replicates", r.replicates},
           {"test", r.test},
           {"test_replicate_means", r.test_replicate_means},
           {"val", r.val}};
}

void to_json(json& j, const MissingJob& m) {
  j = json{{"job_id", m.job_id}, {"dataset", m.dataset}, {"model", m.model},
           {"status", m.status}, {"error", m.error},     {"fold_index", m.fold_index},
           {"seed", m.seed}};
}

void to_json(json& j, const Leaderboard& b) { j = json{{"rows", b.rows}, {"missing", b.missing}}; }

}  // namespace mil::orch
