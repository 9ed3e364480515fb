#include "orchestrator/schedule/cost_estimate.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "mil/core/json_reader.h"
#include "mil/core/model_catalog.h"
#include "mil/core/reader_limits.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;

std::string trim(std::string text) {
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), space));
  text.erase(std::find_if_not(text.rbegin(), text.rend(), space).base(), text.end());
  return text;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) fields.push_back(trim(field));
  return fields;
}

/// Non-empty lines of a CSV, split on commas; nullopt when it cannot be opened or is larger than
/// the label readers accept (kMaxCsvFileBytes): the estimate then says the count is unknown.
std::optional<std::vector<std::vector<std::string>>> read_rows(const std::string& path) {
  std::error_code ec;
  if (fs::file_size(path, ec) > mil::kMaxCsvFileBytes || ec) return std::nullopt;
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!trim(line).empty()) rows.push_back(fields_of(trim(line)));
  }
  return rows;
}

/// True when the first row names columns the way the label readers recognise a header.
bool is_header(const std::vector<std::string>& row) {
  for (std::string field : row) {
    std::transform(field.begin(), field.end(), field.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    if (field == "slide_id" || field == "id" || field == "slide" || field == "label") return true;
  }
  return false;
}

/// Distinct values of column `column` in rows[first..].
double distinct(const std::vector<std::vector<std::string>>& rows, std::size_t first,
                std::size_t column) {
  std::set<std::string> values;
  for (std::size_t i = first; i < rows.size(); ++i) {
    if (column < rows[i].size()) values.insert(rows[i][column]);
  }
  return double(values.size());
}

std::optional<double> folder_bytes(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return std::nullopt;
  double bytes = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += double(it->file_size(ec));
  }
  return bytes;
}

/// Mean instances per bag from a `mhim synth` provenance file (instances are uniform in [min,
/// max]).
void read_synthetic(const fs::path& root, DatasetSize& size) {
  if (!fs::exists(root / "synthetic.json")) {
    size.instances_source = "unknown: no file records instance counts";
    return;
  }
  try {
    const nlohmann::json j = read_json_file((root / "synthetic.json").string());
    const double low = j.at("min_instances").get<double>(),
                 high = j.at("max_instances").get<double>();
    size.instances_per_bag = (low + high) / 2;
    size.instances_source =
        "synthetic.json (" + std::to_string(int(low)) + "-" + std::to_string(int(high)) + ")";
  } catch (const std::exception&) {
    size.instances_source = "unknown: synthetic.json has no min/max_instances";
  }
}

std::string human(double value) {
  char text[32];
  const char* units[] = {"", "k", "M", "G", "T", "P"};
  int u = 0;
  while (value >= 1000 && u < 5) value /= 1000, ++u;
  std::snprintf(text, sizeof text, value < 10 && u > 0 ? "%.2f%s" : "%.3g%s", value, units[u]);
  return text;
}

}  // namespace

DatasetSize probe_dataset(const DatasetSpec& spec) {
  DatasetSize size;
  if (spec.kind == "musk") {
    const std::string path = spec.root + ".csv";
    const auto rows = read_rows(path);
    if (!rows || rows->size() < 2) {
      size.error = "cannot read " + path;
      return size;
    }
    size.bags = distinct(*rows, 1, 0);
    size.instances_per_bag = double(rows->size() - 1) / *size.bags;
    size.instances_source = "instance rows of " + fs::path(path).filename().string();
    return size;
  }
  const bool survival = spec.kind == "survival";
  const fs::path root(spec.root);
  const fs::path labels =
      root / (spec.labels.empty() ? (survival ? "survival.csv" : "labels.csv") : spec.labels);
  if (const auto rows = read_rows(labels.string()); !rows || rows->empty()) {
    size.error = "cannot read " + labels.string();
  } else if (survival) {
    size.bags = distinct(*rows, 1, 1);  // Study,ID,Event,Status,WSI: a case's slides form one bag
  } else {
    size.bags = double(rows->size() - (is_header(rows->front()) ? 1 : 0));
  }
  size.feature_bytes = folder_bytes(root / "pt_files");
  if (!size.feature_bytes) size.feature_bytes = folder_bytes(root / "h5_files");
  read_synthetic(root, size);
  return size;
}

double model_cost_factor(const std::string& model, bool* known) {
  const ModelInfo* info = find_model(model);
  const bool has_factor = info != nullptr && info->cost_factor > 0;
  if (known != nullptr) *known = has_factor;
  return has_factor ? info->cost_factor : 1.0;
}

CostEstimate estimate_cost(const std::vector<JobSpec>& jobs,
                           const std::function<DatasetSize(const DatasetSpec&)>& probe) {
  CostEstimate estimate;
  std::map<std::string, DatasetSize> sizes;  // by dataset JSON: probe each dataset once
  std::map<std::pair<std::string, std::string>, std::size_t> line_of;
  for (const JobSpec& job : jobs) {
    const std::string method = job.model.method.empty() ? job.model.name : job.model.method;
    const std::string dataset_key = nlohmann::json(job.dataset).dump();
    if (sizes.count(dataset_key) == 0) sizes.emplace(dataset_key, probe(job.dataset));
    const DatasetSize& size = sizes.at(dataset_key);
    const auto [it, inserted] =
        line_of.emplace(std::make_pair(job.dataset.name, method), estimate.lines.size());
    if (inserted) {
      CostLine line;
      line.dataset = job.dataset.name;
      line.method = method;
      line.size = size;
      line.factor = model_cost_factor(job.model.name, &line.factor_known);
      if (size.bags) line.bag_epochs = 0.0;
      if (size.bags && size.instances_per_bag) line.instance_epochs = 0.0;
      estimate.lines.push_back(line);
    }
    CostLine& line = estimate.lines[it->second];
    ++line.jobs;
    if (!size.bags) continue;
    // Every bag outside the test fold is seen each epoch (training, or validation).
    const double bags = *size.bags * (job.split.fold_count - 1) / job.split.fold_count;
    const double bag_epochs = job.train.epochs * bags * line.factor;
    *line.bag_epochs += bag_epochs;
    estimate.bag_epochs += bag_epochs;
    if (size.instances_per_bag) {
      *line.instance_epochs += bag_epochs * *size.instances_per_bag;
      estimate.instance_epochs += bag_epochs * *size.instances_per_bag;
    }
  }
  for (const CostLine& line : estimate.lines) estimate.complete &= line.instance_epochs.has_value();
  return estimate;
}

std::string format_cost(const CostEstimate& estimate) {
  std::string out =
      "estimated cost (an estimate from file sizes and row counts, no feature was read):\n"
      "  per job: epochs x bags outside the test fold x mean instances per bag x model factor\n";
  char row[512];
  std::snprintf(row, sizeof row, "  %-18s %-14s %5s %8s %10s %10s %7s %14s  %s\n", "dataset",
                "method", "jobs", "bags", "inst/bag", "features", "factor", "instance-ep.",
                "instances from");
  out += row;
  for (const CostLine& l : estimate.lines) {
    const std::string bags = l.size.bags ? human(*l.size.bags) : "?";
    const std::string per_bag = l.size.instances_per_bag ? human(*l.size.instances_per_bag) : "?";
    const std::string bytes = l.size.feature_bytes ? human(*l.size.feature_bytes) + "B" : "-";
    const std::string work = l.instance_epochs
                                 ? human(*l.instance_epochs)
                                 : (l.bag_epochs ? human(*l.bag_epochs) + " bag-ep." : "?");
    char factor[32];
    std::snprintf(factor, sizeof factor, "%.2f%s", l.factor, l.factor_known ? "" : "?");
    std::snprintf(row, sizeof row, "  %-18s %-14s %5d %8s %10s %10s %7s %14s  %s\n",
                  l.dataset.c_str(), l.method.c_str(), l.jobs, bags.c_str(), per_bag.c_str(),
                  bytes.c_str(), factor, work.c_str(),
                  l.size.error.empty() ? l.size.instances_source.c_str() : l.size.error.c_str());
    out += row;
  }
  out += "  total: " + human(estimate.instance_epochs) + " instance-epochs";
  if (!estimate.complete) {
    out +=
        " (only lines whose instances per bag are known; all lines: " + human(estimate.bag_epochs) +
        " bag-epochs)";
  }
  out += "\n";
  if (std::any_of(estimate.lines.begin(), estimate.lines.end(),
                  [](const CostLine& l) { return !l.factor_known; })) {
    out += "  factor \"1.00?\": a model without a known factor, counted as 1\n";
  }
  out +=
      "  to turn instance-epochs into time, divide by the instances/s `mhim bench train` "
      "measures\n";
  return out;
}

}  // namespace mil::orch
