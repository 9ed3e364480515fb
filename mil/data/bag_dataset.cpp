#include "mil/data/bag_dataset.h"

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

#include "mil/core/sha256.h"
#include "mil/data/feature_io.h"
#include "mil/data/label_csv.h"
#include "mil/data/packed_cache.h"
#include "mil/data/slide_source.h"
#include "mil/train/survival.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

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

void check_label(int label, int class_count, const std::string& where) {
  if (label < 0 || label >= class_count) {
    throw std::runtime_error(where + ": label " + std::to_string(label) + " is outside [0, " +
                             std::to_string(class_count) + ")");
  }
}

constexpr double kBytesPerGigabyte = 1e9;

std::string gigabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GB", bytes / kBytesPerGigabyte);
  return text;
}

/// Reads slides into bags while hashing every one: the combined hash is SHA-256 over
/// "slide:sha256\n" in load order, so it changes with any byte of any file. Also enforces the
/// dataset's RAM budget on the memory the bags hold (views into an f32 cache hold none).
class SlideReader {
 public:
  explicit SlideReader(const DatasetSpec& spec)
      : spec_(spec), source_(SlideSource::for_dataset(spec)) {}
  const SlideSource& source() const { return source_; }
  /// Fails early, before anything is read, when the files to be preloaded are already over the
  /// budget.
  void check_budget_before_loading(const std::vector<std::string>& slides) const {
    if (spec_.ram_budget_gb <= 0 || source_.kind() != "pt") return;
    double bytes = 0;  // a float32 .pt holds its values plus a few hundred bytes of archive
    for (const std::string& slide : slides) bytes += double(fs::file_size(source_.path_of(slide)));
    if (bytes > spec_.ram_budget_gb * kBytesPerGigabyte)
      throw over_budget("at least " + gigabytes(bytes));
  }
  /// Features [N, D] of `slide` (and its coords when the source has them).
  SlideData read(const std::string& slide, int& feature_dim) {
    SlideData data = source_.read(slide);
    bytes_ += data.bytes;
    ++files_;
    combined_.update(slide + ":" + data.sha256 + "\n");
    combined_source_.update(slide + ":" + data.source_sha256 + "\n");
    if (data.instance_labels.defined()) {
      ++truth_files_;
      truth_combined_.update(slide + ":" + data.instance_labels_sha256 + "\n");
    }
    const at::Tensor& x = data.features;
    const std::string path = source_.path_of(slide);
    if (feature_dim == 0) feature_dim = int(x.size(1));
    if (x.size(1) != feature_dim) {
      throw std::runtime_error("'" + path + "': feature dim " + std::to_string(x.size(1)) +
                               " differs from " + std::to_string(feature_dim) +
                               " of the first slide");
    }
    // A cache holds only finite values (mhim pack refuses others); checking would read every page.
    if (!source_.cache() && !at::isfinite(x).all().item<bool>()) {
      throw std::runtime_error("'" + path + "': features hold NaN or Inf");
    }
    if (!source_.zero_copy()) resident_ += double(x.nbytes());
    if (spec_.ram_budget_gb > 0 && resident_ > spec_.ram_budget_gb * kBytesPerGigabyte) {
      throw over_budget("more than " + gigabytes(resident_) + " (" + std::to_string(files_) +
                        " slides in)");
    }
    return data;
  }
  nlohmann::json summary() {
    nlohmann::json j = {{"directory", source_.location()},
                        {"files", files_},
                        {"bytes", bytes_},
                        {"sha256", combined_.hex_digest()}};
    if (const PackedCache* cache = source_.cache()) {
      j.erase("directory");
      j["cache"] = source_.location();
      j["dtype"] = cache->dtype();
      j["index_sha256"] = cache->index_sha256();
      j["source_sha256"] = combined_source_.hex_digest();  // equals "sha256" of the unpacked files
    }
    return j;
  }
  /// The slides with instance truth and the hash of their .pt sidecars (an .h5's truth is in the
  /// file's own hash); null when no slide has truth, so datasets without it record what they did.
  nlohmann::json truth_summary() {
    if (truth_files_ == 0) return nullptr;
    return {{"slides", truth_files_}, {"sha256", truth_combined_.hex_digest()}};
  }

 private:
  std::runtime_error over_budget(const std::string& need) const {
    return std::runtime_error(
        "preloading the features needs " + need +
        " of RAM, over ram_budget_gb = " + std::to_string(spec_.ram_budget_gb) +
        ". Pack them once (mhim pack --root " + spec_.root + " --features " + source_.kind() +
        " --dtype f32) and set \"features\": \"packed\": bags are then views into a memory-mapped "
        "file and the OS page cache bounds what stays in RAM");
  }
  const DatasetSpec& spec_;
  SlideSource source_;
  Sha256 combined_, combined_source_, truth_combined_;
  std::uintmax_t truth_files_ = 0;
  std::uintmax_t bytes_ = 0;
  std::uintmax_t files_ = 0;
  double resident_ = 0;
};

/// Throws one error listing every missing slide file (up to a screenful), not just the first.
void require_all_present(const std::vector<std::string>& missing, const std::string& what) {
  if (missing.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < missing.size() && i < 20; ++i) list += "\n  " + missing[i];
  if (missing.size() > 20) list += "\n  ... and " + std::to_string(missing.size() - 20) + " more";
  throw std::runtime_error(std::to_string(missing.size()) + " " + what + " missing:" + list);
}

BagDataset load_bags_folder(const DatasetSpec& spec) {
  BagDataset data;
  data.class_count = spec.class_count;
  const std::string labels_path =
      (fs::path(spec.root) / (spec.labels.empty() ? "labels.csv" : spec.labels)).string();
  const std::vector<LabelRow> rows = read_label_csv(labels_path, spec);
  SlideReader reader(spec);
  std::vector<std::string> missing;
  const std::vector<SlideOfRow> entries =
      match_slides(rows, spec.slide_match, reader.source(), missing);
  require_all_present(missing, "slide file(s)");
  std::vector<std::string> slides;
  for (const SlideOfRow& e : entries) slides.push_back(e.slide);
  reader.check_budget_before_loading(slides);
  for (const SlideOfRow& e : entries) {
    SlideData slide = reader.read(e.slide, data.feature_dim);
    Bag bag;
    bag.slide_id = e.slide;
    bag.case_id = e.row->case_id;
    bag.features = slide.features;
    bag.coords = slide.coords;
    bag.instance_labels = slide.instance_labels;
    bag.label = e.row->label;
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", labels_path}, {"sha256", sha256_file(labels_path)}}},
                 {"features", reader.summary()}};
  if (nlohmann::json truth = reader.truth_summary(); !truth.is_null())
    data.inputs["instance_labels"] = truth;
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
                     if (!inserted && it->second != label)
                       throw std::runtime_error(where + ": bag label changes within bag");
                     std::vector<float> values;
                     values.reserve(f.size() - 3);
                     for (std::size_t k = 3; k < f.size(); ++k) {
                       char* end = nullptr;
                       values.push_back(std::strtof(f[k].c_str(), &end));
                       if (end == f[k].c_str())
                         throw std::runtime_error(where + ": column " + std::to_string(k + 1) +
                                                  " is not a number");
                     }
                     if (data.feature_dim == 0) data.feature_dim = int(values.size());
                     if (int(values.size()) != data.feature_dim)
                       throw std::runtime_error(where + ": wrong number of features");
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
  for_each_csv_row(folds_path, {"rep", "bag_id", "test_fold"},
                   [&](const std::vector<std::string>& f, const std::string& where) {
                     if (f.size() < 3)
                       throw std::runtime_error(where + ": expected 'rep,bag_id,test_fold'");
                     if (parse_int(f[0], where) != repetition) return;
                     const int bag = parse_int(f[1], where);
                     const int fold = parse_int(f[2], where);
                     auto it = bag_position.find(bag);
                     if (it == bag_position.end())
                       throw std::runtime_error(where + ": unknown bag " + std::to_string(bag));
                     data.file_fold_of_bag[it->second] = fold;
                     data.file_fold_count = std::max(data.file_fold_count, fold + 1);
                   });
  for (std::size_t i = 0; i < data.bags.size(); ++i) {
    if (data.file_fold_of_bag[i] < 0) {
      throw std::runtime_error(folds_path + ": bag " + data.bags[i].slide_id +
                               " has no fold in repetition " + std::to_string(repetition));
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
  const std::string csv_path =
      (fs::path(spec.root) / (spec.labels.empty() ? "survival.csv" : spec.labels)).string();
  const std::vector<SurvivalCase> cases = read_survival_csv(csv_path);
  if (cases.size() < 2) throw std::runtime_error(csv_path + ": fewer than 2 cases");
  std::vector<double> times;
  std::vector<int> events;
  for (const SurvivalCase& c : cases) times.push_back(c.time), events.push_back(c.status);
  data.bin_edges = survival_bin_edges(times, events, spec.class_count);

  SlideReader reader(spec);
  std::vector<std::string> missing, slides;
  for (const SurvivalCase& c : cases) {
    for (const std::string& slide : c.slides) {
      if (!reader.source().contains(slide))
        missing.push_back(reader.source().path_of(slide) + " (case " + c.id + ")");
      slides.push_back(slide);
    }
  }
  require_all_present(missing, "slide file(s)");
  reader.check_budget_before_loading(slides);
  for (const SurvivalCase& c : cases) {
    std::vector<at::Tensor> parts, coords, truth;
    for (const std::string& slide : c.slides) {
      SlideData slide_data = reader.read(slide, data.feature_dim);
      parts.push_back(slide_data.features);
      if (slide_data.coords.defined()) coords.push_back(slide_data.coords);
      if (slide_data.instance_labels.defined()) truth.push_back(slide_data.instance_labels);
    }
    Bag bag;
    bag.slide_id = c.id;
    bag.case_id = c.id;
    bag.features = parts.size() == 1 ? parts.front() : at::cat(parts, 0);
    if (coords.size() == parts.size())
      bag.coords = coords.size() == 1 ? coords.front() : at::cat(coords, 0);
    if (truth.size() == parts.size())
      bag.instance_labels = truth.size() == 1 ? truth.front() : at::cat(truth, 0);
    bag.label = survival_bin(c.time, data.bin_edges);
    bag.event_time = c.time;
    bag.censored = c.status == 0;
    data.bags.push_back(std::move(bag));
  }
  data.inputs = {{"labels", {{"path", csv_path}, {"sha256", sha256_file(csv_path)}}},
                 {"features", reader.summary()},
                 {"bin_edges", data.bin_edges}};
  if (nlohmann::json truth = reader.truth_summary(); !truth.is_null())
    data.inputs["instance_labels"] = truth;
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
    if (spec.kind == "musk") {
      if (spec.features == "packed")
        throw std::runtime_error("features 'packed' is for kinds bags and survival, not musk");
      return load_musk(spec, repetition);
    }
    if (spec.kind == "survival") return load_survival(spec);
    throw std::runtime_error("unknown dataset kind '" + spec.kind + "'");
  } catch (const std::exception& e) {
    throw std::runtime_error("loading dataset '" + spec.name + "': " + e.what());
  }
}

std::vector<Bag> standardize_with(const std::vector<Bag>& bags,
                                  const std::vector<int>& statistics_indices) {
  if (statistics_indices.empty())
    throw std::invalid_argument("standardize_with: no bags to take statistics from");
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
