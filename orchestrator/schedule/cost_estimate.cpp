#include "orchestrator/schedule/cost_estimate.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
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

std::string human(double value) {
  char text[32];
  const char* units[] = {"", "k", "M", "G", "T", "P"};
  int u = 0;
  while (value >= 1000 && u < 5) value /= 1000, ++u;
  std::snprintf(text, sizeof text, value < 10 && u > 0 ? "%.2f%s" : "%.3g%s", value, units[u]);
  return text;
}

/// Total and largest regular-file size in `folder`; nullopt when it is not a folder.
std::optional<std::pair<double, double>> folder_bytes(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return std::nullopt;
  double bytes = 0, largest = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const double file = double(it->file_size(ec));
    bytes += file;
    largest = std::max(largest, file);
  }
  return std::make_pair(bytes, largest);
}

/// Instances per bag from a `mhim synth` provenance file: a stand-in's counts ("mhim synth
/// --benchmark": log-normal bags clamped at 4x the mean), or a generator's uniform [min, max].
void read_synthetic(const fs::path& root, DatasetSize& size) {
  if (!fs::exists(root / "synthetic.json")) {
    size.instances_source = "unknown: no file records instance counts";
    return;
  }
  try {
    const nlohmann::json j = read_json_file((root / "synthetic.json").string());
    if (j.contains("counts")) {
      const double instances = j.at("counts").at("instances").get<double>();
      const double bags = j.at("counts").at("bags").get<double>();
      size.instances_per_bag = instances / std::max(1.0, bags);
      size.largest_bag = 4 * *size.instances_per_bag;
      size.feature_dim = j.at("options").value("feature_dim", 0);
      size.instances_source = "synthetic.json counts (" + human(instances) + " instances)";
      return;
    }
    const double low = j.at("min_instances").get<double>(),
                 high = j.at("max_instances").get<double>();
    size.instances_per_bag = (low + high) / 2;
    size.largest_bag = high;
    size.feature_dim = j.value("dim", 0);
    size.instances_source =
        "synthetic.json (" + std::to_string(int(low)) + "-" + std::to_string(int(high)) + ")";
  } catch (const std::exception&) {
    size.instances_source = "unknown: synthetic.json has no instance counts";
  }
}

/// Instances per slide from a packed cache's index (mil/data/packed_cache.h: a 128-byte header
/// whose u64 at 16 is D, at 32 the index offset and at 40 its length; the index is JSON). Reads the
/// header and the index only, never a feature. False when there is no readable cache.
bool read_packed_index(const fs::path& path, double bags, DatasetSize& size) {
  std::ifstream in(path, std::ios::binary);
  char header[128];
  if (!in.read(header, sizeof header) || std::string(header, 7) != "MILPACK") return false;
  const auto u64 = [&](int at) {
    std::uint64_t value = 0;
    std::memcpy(&value, header + at, sizeof value);
    return value;
  };
  const std::uint64_t index_offset = u64(32), index_bytes = u64(40);
  if (index_bytes == 0 || index_bytes > (std::uint64_t(1) << 32)) return false;
  std::string text(index_bytes, '\0');
  if (!in.seekg(std::streamoff(index_offset)) ||
      !in.read(text.data(), std::streamsize(index_bytes))) {
    return false;
  }
  try {
    double instances = 0, largest = 0;
    const nlohmann::json index = nlohmann::json::parse(text);  // outlives the loop over its slides
    for (const auto& slide : index.at("slides")) {
      const double n = slide.at("instances").get<double>();
      instances += n;
      largest = std::max(largest, n);
    }
    size.instances_per_bag = instances / std::max(1.0, bags);
    size.largest_bag = largest;
    size.feature_dim = int(u64(16));
    size.instances_source = "packed cache index (" + human(instances) + " instances)";
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// D assumed for feature files when no file names it: the ResNet-50 (trunc.) and UNI features of
/// the 12 benchmarks are both 1024 wide.
constexpr int kAssumedFeatureDim = 1024;

/// Instances from feature file sizes: a .pt or .h5 file of N instances holds about N x D float32s
/// (.h5 also N x 2 int64 coordinates); the files' small headers are ignored.
void instances_from_bytes(double bags, double total_bytes, double largest_file, bool h5,
                          DatasetSize& size) {
  const int dim = size.feature_dim > 0 ? size.feature_dim : kAssumedFeatureDim;
  const double per_instance = 4.0 * dim + (h5 ? 16.0 : 0.0);
  size.instances_per_bag = total_bytes / per_instance / std::max(1.0, bags);
  size.largest_bag = largest_file / per_instance;
  size.instances_source = std::string("feature file sizes (f32, D=") + std::to_string(dim) +
                          (size.feature_dim > 0 ? ")" : " assumed)");
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
  read_synthetic(root, size);
  if (size.bags && read_packed_index(root / "packed.milpack", *size.bags, size)) {
    return size;  // exact counts; feature files, if any, are what was packed
  }
  bool h5 = false;
  auto bytes = folder_bytes(root / "pt_files");
  if (!bytes) bytes = folder_bytes(root / "h5_files"), h5 = true;
  if (bytes) size.feature_bytes = bytes->first;
  if (size.bags && bytes && bytes->first > 0 && !size.instances_per_bag) {
    instances_from_bytes(*size.bags, bytes->first, bytes->second, h5, size);
  }
  return size;
}

std::string model_aggregator(const ModelSpec& model) {
  if (model.name != "mhim" && model.name != "mhim_pure") return "";
  const auto it = model.options.find("baseline");
  return it != model.options.end() && it->is_string() ? it->get<std::string>() : "attn";
}

const std::vector<std::pair<std::string, std::string>>& mhim_aggregator_models() {
  static const std::vector<std::pair<std::string, std::string>> models = {
      {"attn", "abmil"}, {"selfattn", "transmil"}, {"dsmil", "dsmil"}};
  return models;
}

double model_cost_factor(const std::string& model, bool* known, const std::string& aggregator) {
  const auto factor_of = [](const std::string& name) {
    const ModelInfo* info = find_model(name);
    return info != nullptr ? info->cost_factor : 0.0;
  };
  double factor = factor_of(model);
  if (factor > 0 && (model == "mhim" || model == "mhim_pure") && !aggregator.empty() &&
      aggregator != "attn") {
    const auto& pairs = mhim_aggregator_models();
    const auto it = std::find_if(pairs.begin(), pairs.end(),
                                 [&](const auto& p) { return p.first == aggregator; });
    const double own = it == pairs.end() ? 0 : factor_of(it->second);
    const double abmil = factor_of("abmil");
    factor = own > 0 && abmil > 0 ? factor + own - abmil : 0;
  }
  if (known != nullptr) *known = factor > 0;
  return factor > 0 ? factor : 1.0;
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
      line.factor =
          model_cost_factor(job.model.name, &line.factor_known, model_aggregator(job.model));
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
