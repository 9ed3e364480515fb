#include "orchestrator/sweep.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <utility>

namespace mil::orch {
namespace {

using nlohmann::json;

/// Top-level keys a sweep file may contain.
const std::vector<std::string> kSweepKeys = {"name",  "datasets", "models", "train",
                                             "split", "grid",     "seeds",  "folds"};
/// First segments a grid key may start with (the JobSpec sections a grid may vary).
const std::vector<std::string> kGridRoots = {"dataset", "model", "train", "split"};

/// One grid point: (dotted key, value) pairs in sorted key order.
using GridPoint = std::vector<std::pair<std::string, json>>;

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    segments.push_back(
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (segments.back().empty()) throw std::runtime_error("key '" + key + "': empty path segment");
    if (dot == std::string::npos) return segments;
    start = dot + 1;
  }
}

bool is_index(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// The element of `array` whose "name" is `segment` (else, for a decimal segment, that index).
json& select_element(json& array, const std::string& segment, const std::string& key,
                     const std::string& where) {
  json* found = nullptr;
  int matches = 0;
  std::string names;
  for (json& element : array) {
    const auto name = element.is_object() ? element.find("name") : element.end();
    if (!element.is_object() || name == element.end() || !name->is_string()) continue;
    names += (names.empty() ? "" : ", ") + name->get<std::string>();
    if (*name == segment) {
      found = &element;
      ++matches;
    }
  }
  if (matches > 1) {
    throw std::runtime_error("key '" + key + "': " + std::to_string(matches) + " elements of '" +
                             where + "' are named '" + segment + "'; select one by index");
  }
  if (found != nullptr) return *found;
  if (is_index(segment) && std::stoul(segment) < array.size()) return array[std::stoul(segment)];
  throw std::runtime_error("key '" + key + "': no element of '" + where + "' is named '" + segment +
                           "' (names: " + (names.empty() ? "none" : names) + ")");
}

/// Sets `value` at dotted `key` under `root`, creating missing objects; arrays select by name.
void set_path(json& root, const std::string& key, const json& value) {
  const std::vector<std::string> segments = split_key(key);
  json* node = &root;
  std::string where;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = segments[i];
    const bool last = i + 1 == segments.size();
    if (node->is_array()) {
      json& element = select_element(*node, segment, key, where);
      if (last) {
        element = value;
        return;
      }
      node = &element;
    } else if (node->is_object()) {
      if (last) {
        (*node)[segment] = value;
        return;
      }
      auto it = node->find(segment);
      if (it == node->end()) it = node->emplace(segment, json::object()).first;
      node = &*it;
    } else {
      throw std::runtime_error("key '" + key + "': '" + (where.empty() ? "<root>" : where) +
                               "' is a " + node->type_name() + ", not an object");
    }
    where += (where.empty() ? "" : ".") + segment;
  }
}

void require_unique_names(const std::vector<std::string>& names, const std::string& what) {
  std::set<std::string> seen;
  for (const auto& name : names) {
    if (!seen.insert(name).second) {
      throw std::runtime_error(what + ": name '" + name + "' appears twice");
    }
  }
}

void validate_grid(const json& grid) {
  if (!grid.is_object()) {
    throw std::runtime_error("grid: expected a JSON object, got " + std::string(grid.type_name()));
  }
  for (const auto& item : grid.items()) {
    const std::string& key = item.key();
    const std::string root = split_key(key).front();
    if (std::find(kGridRoots.begin(), kGridRoots.end(), root) == kGridRoots.end()) {
      throw std::runtime_error("grid key '" + key +
                               "': must start with dataset, model, train or split" +
                               " (seeds and folds have their own top-level keys)");
    }
    if (key == "split.fold_index") {
      throw std::runtime_error(
          "grid key 'split.fold_index': list test folds in the top-level 'folds' instead");
    }
    if (!item.value().is_array() || item.value().empty()) {
      throw std::runtime_error("grid key '" + key + "': expected a non-empty array of values");
    }
  }
}

/// Cartesian product of the grid in sorted key order, the last key varying fastest.
std::vector<GridPoint> grid_points(const json& grid) {
  std::vector<std::pair<std::string, const json*>> axes;
  for (const auto& item : grid.items()) axes.emplace_back(item.key(), &item.value());
  std::vector<GridPoint> points;
  std::vector<std::size_t> odometer(axes.size(), 0);
  while (true) {
    GridPoint point;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      point.emplace_back(axes[a].first, (*axes[a].second)[odometer[a]]);
    }
    points.push_back(std::move(point));
    std::size_t a = axes.size();
    while (a > 0 && ++odometer[a - 1] == axes[a - 1].second->size()) odometer[--a] = 0;
    if (a == 0) return points;
  }
}

/// The folds to run for one resolved split, checked against its fold_count.
std::vector<int> folds_for(const SweepSpec& sweep, const SplitSpec& split) {
  std::vector<int> folds = sweep.folds;
  if (folds.empty()) {
    for (int f = 0; f < split.fold_count; ++f) folds.push_back(f);
  }
  for (int f : folds) {
    if (f < 0 || f >= split.fold_count) {
      throw std::runtime_error("folds: fold " + std::to_string(f) + " is outside [0, " +
                               std::to_string(split.fold_count) + ")");
    }
  }
  return folds;
}

std::string describe(const JobSpec& job) {
  return "dataset '" + job.dataset.name + "', model '" + job.model.name + "', seed " +
         std::to_string(job.seed) + ", fold " + std::to_string(job.split.fold_index);
}

/// A typed sub-object of the sweep file, with the key prefixed to any error.
template <typename T>
T parse_field(const json& j, const std::string& key) {
  try {
    return j.get<T>();
  } catch (const std::exception& e) {
    throw std::runtime_error(key + ": " + e.what());
  }
}

template <typename T>
std::vector<T> parse_list(const json& j, const char* key) {
  const json& list = j.at(key);
  if (!list.is_array() || list.empty()) {
    throw std::runtime_error(std::string(key) + ": expected a non-empty array");
  }
  std::vector<T> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(parse_field<T>(list[i], std::string(key) + "[" + std::to_string(i) + "]"));
  }
  return out;
}

SweepSpec parse_body(const json& j) {
  for (const char* key : {"name", "datasets", "models"}) {
    if (!j.contains(key)) {
      throw std::runtime_error(std::string("missing required key '") + key + "'");
    }
  }
  SweepSpec sweep;
  if (!j.at("name").is_string() || j.at("name").get<std::string>().empty()) {
    throw std::runtime_error("name: expected a non-empty string");
  }
  sweep.name = j.at("name").get<std::string>();
  sweep.datasets = parse_list<DatasetSpec>(j, "datasets");
  sweep.models = parse_list<ModelSpec>(j, "models");
  if (j.contains("train")) sweep.train = parse_field<TrainSpec>(j.at("train"), "train");
  if (j.contains("split")) {
    if (j.at("split").is_object() && j.at("split").contains("fold_index")) {
      throw std::runtime_error(
          "split.fold_index: set per job; list test folds in the top-level 'folds' instead");
    }
    sweep.split = parse_field<SplitSpec>(j.at("split"), "split");
  }
  if (j.contains("grid")) sweep.grid = j.at("grid");
  if (j.contains("seeds")) {
    const json& seeds = j.at("seeds");
    if (!seeds.is_array() || seeds.empty()) {
      throw std::runtime_error("seeds: expected a non-empty array");
    }
    sweep.seeds.clear();
    for (const json& seed : seeds) {
      if (!seed.is_number_unsigned()) {
        throw std::runtime_error("seeds: " + seed.dump() + " is not a non-negative integer");
      }
      sweep.seeds.push_back(seed.get<std::uint64_t>());
    }
  }
  if (j.contains("folds")) {
    const json& folds = j.at("folds");
    if (!folds.is_array()) throw std::runtime_error("folds: expected an array of fold indices");
    for (const json& fold : folds) {
      if (!fold.is_number_integer()) {
        throw std::runtime_error("folds: " + fold.dump() + " is not an integer");
      }
      sweep.folds.push_back(fold.get<int>());
    }
  }
  // A parsed sweep always expands: bad grid values and folds are reported with the file name.
  expand(sweep);
  return sweep;
}

}  // namespace

SweepSpec parse_sweep(const json& j, const std::string& source) {
  require_known_keys(j, kSweepKeys, source);
  try {
    return parse_body(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
}

SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(path + ": cannot open sweep file (" + std::strerror(errno) + ")");
  }
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  for (const auto& assignment : overrides) {
    try {
      apply_override(j, assignment);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  return parse_sweep(j, path);
}

void apply_override(json& sweep_json, const std::string& assignment) {
  const std::size_t eq = assignment.find('=');
  try {
    if (eq == std::string::npos) throw std::runtime_error("expected key.path=value");
    const std::string text = assignment.substr(eq + 1);
    json value = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;
    const std::string key = assignment.substr(0, eq);
    if (key.rfind("grid.", 0) == 0 && sweep_json.is_object()) {
      // Grid keys are themselves dotted ("train.lr"), so everything after "grid." is one key.
      json& grid = sweep_json["grid"];
      if (grid.is_null()) grid = json::object();
      if (!grid.is_object()) {
        throw std::runtime_error("key '" + key + "': 'grid' is a " + grid.type_name() +
                                 ", not an object");
      }
      grid[key.substr(5)] = value;
      return;
    }
    set_path(sweep_json, key, value);
  } catch (const std::exception& e) {
    throw std::runtime_error("override '" + assignment + "': " + e.what());
  }
}

std::vector<JobSpec> expand(const SweepSpec& sweep) {
  if (sweep.datasets.empty()) {
    throw std::runtime_error("datasets: at least one dataset is required");
  }
  if (sweep.models.empty()) throw std::runtime_error("models: at least one model is required");
  if (sweep.seeds.empty()) throw std::runtime_error("seeds: at least one seed is required");
  std::vector<std::string> names;
  for (const auto& d : sweep.datasets) names.push_back(d.name);
  require_unique_names(names, "datasets");
  if (std::set<std::uint64_t>(sweep.seeds.begin(), sweep.seeds.end()).size() !=
      sweep.seeds.size()) {
    throw std::runtime_error("seeds: a seed appears twice");
  }
  if (std::set<int>(sweep.folds.begin(), sweep.folds.end()).size() != sweep.folds.size()) {
    throw std::runtime_error("folds: a fold appears twice");
  }
  validate_grid(sweep.grid);
  const std::vector<GridPoint> points = grid_points(sweep.grid);

  std::vector<JobSpec> jobs;
  std::set<std::string> ids;
  for (const auto& dataset : sweep.datasets) {
    for (const auto& model : sweep.models) {
      for (const auto& point : points) {
        JobSpec base{dataset, model, sweep.train, sweep.split, sweep.seeds.front()};
        base.split.fold_index = 0;
        json j = base;
        try {
          base = j.get<JobSpec>();  // Validates specs built in code, not only those from files.
        } catch (const std::exception& e) {
          throw std::runtime_error("dataset '" + dataset.name + "', model '" + model.name +
                                   "': " + e.what());
        }
        for (const auto& [key, value] : point) {
          try {
            set_path(j, key, value);
            base = j.get<JobSpec>();
          } catch (const std::exception& e) {
            throw std::runtime_error("grid key '" + key + "' = " + value.dump() + ": " + e.what());
          }
        }
        for (std::uint64_t seed : sweep.seeds) {
          for (int fold : folds_for(sweep, base.split)) {
            JobSpec job = base;
            job.seed = seed;
            job.split.fold_index = fold;
            if (!ids.insert(job.id()).second) {
              throw std::runtime_error("two sweep entries resolve to the same job (" +
                                       describe(job) +
                                       "); remove the duplicate model or grid value");
            }
            jobs.push_back(std::move(job));
          }
        }
      }
    }
  }
  return jobs;
}

}  // namespace mil::orch
