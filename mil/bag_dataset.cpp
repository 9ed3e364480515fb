#include "mil/bag_dataset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "mil/feature_io.h"
#include "mil/sha256.h"
#include "mil/survival.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

int parse_int(const std::string& text, const std::string& where) {
  try {
    std::size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return value;
  } catch (const std::exception&) {
    throw std::runtime_error(where + ": '" + text + "' is not an integer");
  }
}

/// Reads a CSV with a header line; calls `row(fields, where)` for each non-empty data line.
template <typename RowFn>
void for_each_csv_row(const std::string& path, const std::vector<std::string>& expected_header_prefix, RowFn row) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty file, expected a header line");
  const auto header = split_csv_line(trim(line));
  for (std::size_t i = 0; i < expected_header_prefix.size(); ++i) {
    if (i >= header.size() || trim(header[i]) != expected_header_prefix[i]) {
      throw std::runtime_error(path + ":1: header column " + std::to_string(i + 1) + " should be '" +
                               expected_header_prefix[i] + "'");
    }
  }
  for (int line_number = 2; std::getline(in, line); ++line_number) {
    line = trim(line);
    if (line.empty()) continue;
    row(split_csv_line(line), path + ":" + std::to_string(line_number));
  }
}

void check_label(int label, int class_count, const std::string& where) {
  if (label < 0 || label >= class_count) {
    throw std::runtime_error(where + ": label " + std::to_string(label) + " is outside [0, " +
                             std::to_string(class_count) + ")");
  }
}

BagDataset load_bags_folder(const DatasetSpec& spec) {
  BagDataset data;
  data.class_count = spec.class_count;
  const std::string labels_path = (fs::path(spec.root) / "labels.csv").string();
  std::vector<std::pair<std::string, int>> rows;
  std::set<std::string> seen;
  for_each_csv_row(labels_path, {"slide_id", "label"}, [&](const std::vector<std::string>& f, const std::string& where) {
    if (f.size() < 2) throw std::runtime_error(where + ": expected 'slide_id,label'");
    const std::string id = trim(f[0]);
    const int label = parse_int(trim(f[1]), where);
    check_label(label, spec.class_count, where);
    if (!seen.insert(id).second) throw std::runtime_error(where + ": slide '" + id + "' is listed twice");
    rows.emplace_back(id, label);
  });
  if (rows.empty()) throw std::runtime_error(labels_path + ": no bags listed");

  // Feature hash: SHA-256 over "id:sha256(file)\n" in label order, so it changes with any byte of any file.
  Sha256 combined;
  std::uintmax_t total_bytes = 0;
  for (const auto& [id, label] : rows) {
    const std::string path = (fs::path(spec.root) / "pt_files" / (id + ".pt")).string();
    const std::vector<char> bytes = read_file_bytes(path);
    total_bytes += bytes.size();
    combined.update(id + ":" + sha256_hex(std::string_view(bytes.data(), bytes.size())) + "\n");
    Bag bag{id, decode_feature_bytes(bytes, path), label};
    if (data.feature_dim == 0) data.feature_dim = int(bag.features.size(1));
    if (bag.features.size(1) != data.feature_dim) {
      throw std::runtime_error("'" + path + "': feature dim " + std::to_string(bag.features.size(1)) +
                               " differs from " + std::to_string(data.feature_dim) + " of the first bag");
    }
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", labels_path}, {"sha256", sha256_file(labels_path)}}},
                 {"features", {{"files", rows.size()}, {"bytes", total_bytes}, {"sha256", combined.hex_digest()}}}};
  return data;
}

BagDataset load_musk(const DatasetSpec& spec, int repetition) {
  BagDataset data;
  data.class_count = spec.class_count;
  const std::string instances_path = spec.root + ".csv";
  const std::string folds_path = spec.root + "_folds_5x10.csv";
  std::map<int, std::vector<std::vector<float>>> instances_by_bag;
  std::map<int, int> label_by_bag;
  for_each_csv_row(instances_path, {"bag_id", "bag_label", "instance_index"},
                   [&](const std::vector<std::string>& f, const std::string& where) {
                     if (f.size() < 4) throw std::runtime_error(where + ": no feature columns");
                     const int bag = parse_int(f[0], where);
                     const int label = parse_int(f[1], where);
                     check_label(label, spec.class_count, where);
                     auto [it, inserted] = label_by_bag.emplace(bag, label);
                     if (!inserted && it->second != label) throw std::runtime_error(where + ": bag label changes within bag");
                     std::vector<float> values;
                     values.reserve(f.size() - 3);
                     for (std::size_t k = 3; k < f.size(); ++k) {
                       char* end = nullptr;
                       values.push_back(std::strtof(f[k].c_str(), &end));
                       if (end == f[k].c_str()) throw std::runtime_error(where + ": column " + std::to_string(k + 1) + " is not a number");
                     }
                     if (data.feature_dim == 0) data.feature_dim = int(values.size());
                     if (int(values.size()) != data.feature_dim) throw std::runtime_error(where + ": wrong number of features");
                     instances_by_bag[bag].push_back(std::move(values));
                   });
  std::map<int, int> bag_position;
  for (const auto& [bag_id, rows] : instances_by_bag) {
    at::Tensor features = at::empty({int64_t(rows.size()), data.feature_dim}, at::kFloat);
    float* out = features.data_ptr<float>();
    for (const auto& r : rows) out = std::copy(r.begin(), r.end(), out);
    bag_position[bag_id] = int(data.bags.size());
    data.bags.push_back(Bag{"bag_" + std::to_string(bag_id), features, label_by_bag.at(bag_id)});
  }
  data.file_fold_of_bag.assign(data.bags.size(), -1);
  for_each_csv_row(folds_path, {"rep", "bag_id", "test_fold"}, [&](const std::vector<std::string>& f, const std::string& where) {
    if (f.size() < 3) throw std::runtime_error(where + ": expected 'rep,bag_id,test_fold'");
    if (parse_int(f[0], where) != repetition) return;
    const int bag = parse_int(f[1], where);
    const int fold = parse_int(f[2], where);
    auto it = bag_position.find(bag);
    if (it == bag_position.end()) throw std::runtime_error(where + ": unknown bag " + std::to_string(bag));
    data.file_fold_of_bag[it->second] = fold;
    data.file_fold_count = std::max(data.file_fold_count, fold + 1);
  });
  for (std::size_t i = 0; i < data.bags.size(); ++i) {
    if (data.file_fold_of_bag[i] < 0) {
      throw std::runtime_error(folds_path + ": bag " + data.bags[i].slide_id + " has no fold in repetition " +
                               std::to_string(repetition));
    }
  }
  data.inputs = {{"instances", {{"path", instances_path}, {"sha256", sha256_file(instances_path)}}},
                 {"folds", {{"path", folds_path}, {"sha256", sha256_file(folds_path)}}}};
  return data;
}

BagDataset load_survival(const DatasetSpec& spec) {
  BagDataset data;
  data.class_count = spec.class_count;
  data.survival = true;
  const std::string csv_path = (fs::path(spec.root) / "survival.csv").string();
  struct Case {
    std::string id;
    double time = 0.0;
    int status = 0;
    std::vector<std::string> slides;
  };
  std::vector<Case> cases;
  std::map<std::string, std::size_t> case_index;
  for_each_csv_row(csv_path, {"Study", "ID", "Event", "Status", "WSI"},
                   [&](const std::vector<std::string>& f, const std::string& where) {
                     if (f.size() < 4) throw std::runtime_error(where + ": expected 'Study,ID,Event,Status,WSI'");
                     const std::string id = trim(f[1]);
                     char* end = nullptr;
                     const double time = std::strtod(f[2].c_str(), &end);
                     if (end == f[2].c_str() || !(time >= 0)) {
                       throw std::runtime_error(where + ": Event '" + f[2] + "' is not a non-negative time");
                     }
                     const int status = parse_int(trim(f[3]), where);
                     if (status != 0 && status != 1) throw std::runtime_error(where + ": Status must be 0 or 1");
                     const std::string slide = f.size() > 4 && !trim(f[4]).empty() ? trim(f[4]) : id;
                     auto [it, inserted] = case_index.emplace(id, cases.size());
                     if (inserted) cases.push_back(Case{id, time, status, {}});
                     Case& c = cases[it->second];
                     if (c.time != time || c.status != status) {
                       throw std::runtime_error(where + ": case '" + id + "' has a different Event/Status on another row");
                     }
                     c.slides.push_back(slide);
                   });
  if (cases.size() < 2) throw std::runtime_error(csv_path + ": fewer than 2 cases");
  std::vector<double> times;
  std::vector<int> events;
  for (const Case& c : cases) times.push_back(c.time), events.push_back(c.status);
  data.bin_edges = survival_bin_edges(times, events, spec.class_count);

  Sha256 combined;
  std::uintmax_t total_bytes = 0, files = 0;
  for (const Case& c : cases) {
    std::vector<at::Tensor> parts;
    for (const std::string& slide : c.slides) {
      const std::string path = (fs::path(spec.root) / "pt_files" / (slide + ".pt")).string();
      const std::vector<char> bytes = read_file_bytes(path);
      total_bytes += bytes.size();
      ++files;
      combined.update(slide + ":" + sha256_hex(std::string_view(bytes.data(), bytes.size())) + "\n");
      parts.push_back(decode_feature_bytes(bytes, path));
      if (data.feature_dim == 0) data.feature_dim = int(parts.back().size(1));
      if (parts.back().size(1) != data.feature_dim) {
        throw std::runtime_error("'" + path + "': feature dim " + std::to_string(parts.back().size(1)) +
                                 " differs from " + std::to_string(data.feature_dim));
      }
    }
    Bag bag{c.id, parts.size() == 1 ? parts.front() : at::cat(parts, 0), survival_bin(c.time, data.bin_edges),
            c.time, c.status == 0};
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", csv_path}, {"sha256", sha256_file(csv_path)}}},
                 {"features", {{"files", files}, {"bytes", total_bytes}, {"sha256", combined.hex_digest()}}},
                 {"bin_edges", data.bin_edges}};
  return data;
}

}  // namespace

std::vector<int> BagDataset::labels() const {
  std::vector<int> out;
  out.reserve(bags.size());
  for (const auto& b : bags) out.push_back(b.label);
  return out;
}

BagDataset load_dataset(const DatasetSpec& spec, int repetition) {
  try {
    if (spec.kind == "bags") return load_bags_folder(spec);
    if (spec.kind == "musk") return load_musk(spec, repetition);
    if (spec.kind == "survival") return load_survival(spec);
    throw std::runtime_error("unknown dataset kind '" + spec.kind + "'");
  } catch (const std::exception& e) {
    throw std::runtime_error("loading dataset '" + spec.name + "': " + e.what());
  }
}

std::vector<Bag> standardize_with(const std::vector<Bag>& bags, const std::vector<int>& statistics_indices) {
  if (statistics_indices.empty()) throw std::invalid_argument("standardize_with: no bags to take statistics from");
  std::vector<at::Tensor> parts;
  for (int i : statistics_indices) parts.push_back(bags.at(i).features);
  const at::Tensor all = at::cat(parts, 0).to(at::kDouble);
  const at::Tensor mean = all.mean(0).to(at::kFloat);
  const at::Tensor std = all.std(0, /*unbiased=*/false).clamp_min(1e-6).to(at::kFloat);
  std::vector<Bag> out;
  out.reserve(bags.size());
  for (const auto& b : bags) {
    Bag scaled = b;
    scaled.features = ((b.features - mean) / std).contiguous();
    out.push_back(std::move(scaled));
  }
  return out;
}

}  // namespace mil
