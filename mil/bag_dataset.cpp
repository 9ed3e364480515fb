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

/// Where a dataset's per-slide feature files live and how to read them.
struct FeatureSource {
  fs::path directory;     ///< <root>/pt_files or <root>/h5_files.
  std::string extension;  ///< ".pt" or ".h5".
  bool h5 = false;
};

FeatureSource feature_source(const DatasetSpec& spec) {
  const fs::path pt = fs::path(spec.root) / "pt_files", h5 = fs::path(spec.root) / "h5_files";
  const bool use_h5 = spec.features == "h5" || (spec.features == "auto" && !fs::is_directory(pt) && fs::is_directory(h5));
  return use_h5 ? FeatureSource{h5, ".h5", true} : FeatureSource{pt, ".pt", false};
}

/// Reads slides into bags while hashing every file: the combined hash is SHA-256 over
/// "slide:sha256(file)\n" in load order, so it changes with any byte of any file.
class SlideReader {
 public:
  explicit SlideReader(FeatureSource source) : source_(std::move(source)) {}
  std::string path_of(const std::string& slide) const { return (source_.directory / (slide + source_.extension)).string(); }
  /// Features [N, D] of `slide` (and its coords for .h5, else undefined).
  std::pair<at::Tensor, at::Tensor> read(const std::string& slide, int& feature_dim) {
    const std::string path = path_of(slide);
    const std::vector<char> bytes = read_file_bytes(path);
    bytes_ += bytes.size();
    ++files_;
    combined_.update(slide + ":" + sha256_hex(std::string_view(bytes.data(), bytes.size())) + "\n");
    std::pair<at::Tensor, at::Tensor> out;
    if (source_.h5) {
      H5Slide h5 = read_h5_slide(path);
      out = {h5.features, h5.coords};
    } else {
      out.first = decode_feature_bytes(bytes, path);
    }
    if (feature_dim == 0) feature_dim = int(out.first.size(1));
    if (out.first.size(1) != feature_dim) {
      throw std::runtime_error("'" + path + "': feature dim " + std::to_string(out.first.size(1)) + " differs from " +
                               std::to_string(feature_dim) + " of the first slide");
    }
    if (!at::isfinite(out.first).all().item<bool>()) throw std::runtime_error("'" + path + "': features hold NaN or Inf");
    return out;
  }
  nlohmann::json summary() {
    return {{"directory", source_.directory.string()}, {"files", files_}, {"bytes", bytes_},
            {"sha256", combined_.hex_digest()}};
  }

 private:
  FeatureSource source_;
  Sha256 combined_;
  std::uintmax_t bytes_ = 0;
  std::uintmax_t files_ = 0;
};

/// Throws one error listing every missing slide file (up to a screenful), not just the first.
void require_all_present(const std::vector<std::string>& missing, const std::string& what) {
  if (missing.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < missing.size() && i < 20; ++i) list += "\n  " + missing[i];
  if (missing.size() > 20) list += "\n  ... and " + std::to_string(missing.size() - 20) + " more";
  throw std::runtime_error(std::to_string(missing.size()) + " " + what + " missing:" + list);
}

/// One labelled row of a classification CSV.
struct LabelRow {
  std::string case_id;  ///< The Case column, else the ID.
  std::string id;       ///< Slide (or case) id to look up.
  int label = 0;
  std::string where;    ///< file:line, for errors.
};

/// Reads a classification CSV in any reference layout (spec 5.2): with a header naming its columns
/// (slide_id/id/slide, label, optional case_id/case, split), or headerless as ID,Label / ID,Label,Split /
/// Case,ID,Label,Split. Labels are integers, or text mapped through `label_map`.
std::vector<LabelRow> read_label_csv(const std::string& path, const DatasetSpec& spec) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<std::pair<int, std::vector<std::string>>> lines;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line);
    if (!line.empty()) lines.emplace_back(number, split_csv_line(line));
  }
  if (lines.empty()) throw std::runtime_error(path + ": empty label file");
  const auto lower = [](std::string t) {
    t = trim(t);
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return t;
  };
  int id_col = -1, label_col = -1, case_col = -1;
  std::size_t first = 0, width = lines.front().second.size();
  const std::vector<std::string>& head = lines.front().second;
  for (std::size_t c = 0; c < head.size(); ++c) {
    const std::string h = lower(head[c]);
    if (h == "slide_id" || h == "id" || h == "slide") id_col = int(c);
    if (h == "label") label_col = int(c);
    if (h == "case_id" || h == "case") case_col = int(c);
  }
  if (label_col >= 0 || id_col >= 0) {  // a header row
    if (label_col < 0 || id_col < 0) throw std::runtime_error(path + ":1: the header needs an id and a label column");
    first = 1;
  } else if (width == 2 || width == 3) {
    id_col = 0, label_col = 1;
  } else if (width == 4) {
    case_col = 0, id_col = 1, label_col = 2;
  } else {
    throw std::runtime_error(path + ":1: " + std::to_string(width) +
                             " columns without a header; expected ID,Label[,Split] or Case,ID,Label,Split");
  }
  std::vector<LabelRow> rows;
  for (std::size_t i = first; i < lines.size(); ++i) {
    const auto& [number, f] = lines[i];
    const std::string where = path + ":" + std::to_string(number);
    if (f.size() != width) {
      throw std::runtime_error(where + ": " + std::to_string(f.size()) + " fields, the file has " + std::to_string(width));
    }
    LabelRow row;
    row.where = where;
    row.id = trim(f[id_col]);
    row.case_id = case_col >= 0 ? trim(f[case_col]) : row.id;
    const std::string label = trim(f[label_col]);
    if (!spec.label_map.empty()) {
      if (!spec.label_map.contains(label)) {
        std::string keys;
        for (const auto& item : spec.label_map.items()) keys += (keys.empty() ? "" : ", ") + item.key();
        throw std::runtime_error(where + ": label '" + label + "' is not in label_map (" + keys + ")");
      }
      row.label = spec.label_map.at(label).get<int>();
    } else {
      row.label = parse_int(label, where);
    }
    check_label(row.label, spec.class_count, where);
    if (row.id.empty()) throw std::runtime_error(where + ": empty id");
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw std::runtime_error(path + ": no bags listed");
  return rows;
}

BagDataset load_bags_folder(const DatasetSpec& spec) {
  BagDataset data;
  data.class_count = spec.class_count;
  const std::string labels_path = (fs::path(spec.root) / (spec.labels.empty() ? "labels.csv" : spec.labels)).string();
  const std::vector<LabelRow> rows = read_label_csv(labels_path, spec);
  const FeatureSource source = feature_source(spec);
  SlideReader reader(source);

  // Resolve every row to its slide files first, so all missing files are reported at once.
  struct Entry {
    const LabelRow* row;
    std::string slide;
  };
  std::vector<Entry> entries;
  std::vector<std::string> missing;
  std::vector<std::string> stems;  // for substring lookup: every file of the feature folder, sorted
  if (spec.slide_match == "substring") {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(source.directory, ec)) {
      if (e.path().extension() == source.extension) stems.push_back(e.path().stem().string());
    }
    if (ec) throw std::runtime_error("cannot list '" + source.directory.string() + "': " + ec.message());
    std::sort(stems.begin(), stems.end());
  }
  for (const LabelRow& row : rows) {
    if (spec.slide_match == "exact") {
      if (fs::exists(reader.path_of(row.id))) {
        entries.push_back({&row, row.id});
      } else {
        missing.push_back(reader.path_of(row.id) + " (" + row.where + ")");
      }
      continue;
    }
    const std::size_t before = entries.size();
    for (const std::string& stem : stems) {
      if (stem.find(row.id) != std::string::npos) entries.push_back({&row, stem});
    }
    if (entries.size() == before) missing.push_back("no file in " + source.directory.string() + " contains '" + row.id + "' (" + row.where + ")");
  }
  require_all_present(missing, "slide file(s)");

  std::map<std::string, const LabelRow*> owner;
  std::map<std::string, int> label_of_case;
  for (const Entry& e : entries) {
    auto [it, inserted] = owner.emplace(e.slide, e.row);
    if (!inserted) {
      throw std::runtime_error(e.row->where + ": slide '" + e.slide + "' is already listed at " + it->second->where);
    }
    auto [c, new_case] = label_of_case.emplace(e.row->case_id, e.row->label);
    if (!new_case && c->second != e.row->label) {
      throw std::runtime_error(e.row->where + ": case '" + e.row->case_id + "' has two different labels");
    }
  }
  for (const Entry& e : entries) {
    auto [features, coords] = reader.read(e.slide, data.feature_dim);
    Bag bag;
    bag.slide_id = e.slide;
    bag.case_id = e.row->case_id;
    bag.features = features;
    bag.coords = coords;
    bag.label = e.row->label;
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", labels_path}, {"sha256", sha256_file(labels_path)}}}, {"features", reader.summary()}};
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
  const std::string csv_path = (fs::path(spec.root) / (spec.labels.empty() ? "survival.csv" : spec.labels)).string();
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

  SlideReader reader(feature_source(spec));
  std::vector<std::string> missing;
  for (const Case& c : cases) {
    for (const std::string& slide : c.slides) {
      if (!fs::exists(reader.path_of(slide))) missing.push_back(reader.path_of(slide) + " (case " + c.id + ")");
    }
  }
  require_all_present(missing, "slide file(s)");
  for (const Case& c : cases) {
    std::vector<at::Tensor> parts;
    for (const std::string& slide : c.slides) parts.push_back(reader.read(slide, data.feature_dim).first);
    Bag bag;
    bag.slide_id = c.id;
    bag.case_id = c.id;
    bag.features = parts.size() == 1 ? parts.front() : at::cat(parts, 0);
    bag.label = survival_bin(c.time, data.bin_edges);
    bag.event_time = c.time;
    bag.censored = c.status == 0;
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", csv_path}, {"sha256", sha256_file(csv_path)}}},
                 {"features", reader.summary()},
                 {"bin_edges", data.bin_edges}};
  return data;
}

}  // namespace

std::vector<std::string> BagDataset::groups() const {
  std::vector<std::string> out;
  out.reserve(bags.size());
  for (const auto& b : bags) out.push_back(b.case_id.empty() ? b.slide_id : b.case_id);
  return out;
}

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
