#include "orchestrator/sweep/sweep.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>
#include <utility>

#include "mil/core/json_reader.h"
#include "mil/core/reader_limits.h"
#include "orchestrator/sweep/axes.h"

namespace mil::orch {
namespace {

using nlohmann::json;

/// Top-level keys a sweep file may contain.
const std::vector<std::string> kSweepKeys = {"name",  "datasets", "models", "train",
                                             "split", "grid",     "zip",    "random",
                                             "seeds", "folds",    "prune",  "jobs_per_gpu"};

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

/// The folds to run for one resolved split, checked against its fold_count.
std::vector<int> folds_for(const SweepSpec& sweep, const SplitSpec& split) {
  std::vector<int> folds = sweep.folds;
  if (folds.empty()) {
    if (std::uint64_t(split.fold_count) > kMaxSweepJobs) {
      throw SweepError("/split/fold_count",
                       over_limit("split.fold_count", std::uint64_t(split.fold_count),
                                  kMaxSweepJobs, "kMaxSweepJobs"));
    }
    for (int f = 0; f < split.fold_count; ++f) folds.push_back(f);
  }
  for (int f : folds) {
    if (f < 0 || f >= split.fold_count) {
      throw SweepError("/folds", "folds: fold " + std::to_string(f) + " is outside [0, " +
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
T parse_field(const json& j, const std::string& key, const std::string& pointer) {
  try {
    return j.get<T>();
  } catch (const std::exception& e) {
    throw SweepError(pointer, key + ": " + e.what());
  }
}

template <typename T>
std::vector<T> parse_list(const json& j, const std::string& key) {
  const json& list = j.at(key);
  if (!list.is_array() || list.empty()) {
    throw SweepError("/" + key, key + ": expected a non-empty array");
  }
  std::vector<T> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string index = std::to_string(i);
    out.push_back(parse_field<T>(list[i], key + "[" + index + "]", "/" + key + "/" + index));
  }
  return out;
}

/// The keys `spec` serialises to: what a sweep section of that type may contain.
std::vector<std::string> keys_of(const json& spec) {
  std::vector<std::string> keys;
  for (const auto& item : spec.items()) keys.push_back(item.key());
  return keys;
}

/// Throws SweepError at the first key of object `j` not in `allowed`; non-objects are left to the
/// typed parsers, which say what they expected.
void check_keys(const json& j, const std::vector<std::string>& allowed, const std::string& pointer,
                const std::string& context) {
  if (!j.is_object()) return;
  for (const auto& item : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw SweepError(pointer_append(pointer, item.key()), (context.empty() ? "" : context + ": ") +
                                                              "unknown key '" + item.key() +
                                                              "' (allowed: " + list + ")");
  }
}

/// A model entry's keys: the ModelSpec's, plus its own `grid` and `ranks`.
std::vector<std::string> model_keys_with_grid(const ModelSpec& model) {
  std::vector<std::string> keys = keys_of(json(model));
  keys.push_back("grid");
  keys.push_back("ranks");
  return keys;
}

/// Unknown keys anywhere in the fixed parts of a sweep, reported with the key's own pointer so the
/// error can name its line. Model options are the model's business (checked when it is built).
void check_sweep_keys(const json& j) {
  if (!j.is_object()) {
    throw SweepError("", "expected an object at the top level, got " + std::string(j.type_name()));
  }
  check_keys(j, kSweepKeys, "", "");
  ModelSpec model_with_every_key;
  model_with_every_key.method = "label";  // serialised only when set
  DatasetSpec dataset_with_every_key;
  dataset_with_every_key.ram_budget_gb = 1;  // serialised only when set
  const std::pair<const char*, std::vector<std::string>> lists[] = {
      {"datasets", keys_of(json(dataset_with_every_key))},
      {"models", model_keys_with_grid(model_with_every_key)}};
  for (const auto& [key, allowed] : lists) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_array()) continue;
    for (std::size_t i = 0; i < it->size(); ++i) {
      check_keys((*it)[i], allowed, std::string("/") + key + "/" + std::to_string(i),
                 std::string(key) + "[" + std::to_string(i) + "]");
    }
  }
  TrainSpec train_with_every_key;
  train_with_every_key.ranks = 2;  // serialised only when not 1
  if (j.contains("train"))
    check_keys(j.at("train"), keys_of(json(train_with_every_key)), "/train", "train");
  SplitSpec split_with_every_key;
  split_with_every_key.dir = "splits";  // serialised only when set
  if (j.contains("split"))
    check_keys(j.at("split"), keys_of(json(split_with_every_key)), "/split", "split");
}

SweepSpec parse_body(const json& j) {
  for (const char* key : {"name", "datasets", "models"}) {
    if (!j.contains(key)) {
      throw std::runtime_error(std::string("missing required key '") + key + "'");
    }
  }
  SweepSpec sweep;
  if (!j.at("name").is_string() || j.at("name").get<std::string>().empty()) {
    throw SweepError("/name", "name: expected a non-empty string");
  }
  sweep.name = j.at("name").get<std::string>();
  sweep.datasets = parse_list<DatasetSpec>(j, "datasets");
  {
    // A model's own grid is sweep structure, not part of the ModelSpec that jobs carry.
    json models_only = j;
    for (auto& entry : models_only.at("models")) {
      if (entry.is_object() && entry.contains("grid")) {
        sweep.model_grids.push_back(entry.at("grid"));
        entry.erase("grid");
      } else {
        sweep.model_grids.push_back(json());
      }
      int ranks = 0;
      if (entry.is_object() && entry.contains("ranks")) {
        // Where the job runs (how many workers), so it lives beside the model, not in its options.
        const json& value = entry.at("ranks");
        const std::string index = std::to_string(sweep.model_ranks.size());
        if (!value.is_number_integer() || value.get<long long>() < 1 ||
            value.get<long long>() > 1000000) {
          throw SweepError("/models/" + index + "/ranks",
                           "models[" + index +
                               "].ranks: expected an integer >= 1 (workers per job), got " +
                               value.dump());
        }
        ranks = value.get<int>();
        entry.erase("ranks");
      }
      sweep.model_ranks.push_back(ranks);
    }
    sweep.models = parse_list<ModelSpec>(models_only, "models");
  }
  if (j.contains("train")) sweep.train = parse_field<TrainSpec>(j.at("train"), "train", "/train");
  if (j.contains("split")) {
    if (j.at("split").is_object() && j.at("split").contains("fold_index")) {
      throw SweepError(
          "/split/fold_index",
          "split.fold_index: set per job; list test folds in the top-level 'folds' instead");
    }
    sweep.split = parse_field<SplitSpec>(j.at("split"), "split", "/split");
  }
  if (j.contains("grid") && !j.at("grid").is_null()) sweep.grid = j.at("grid");
  if (j.contains("zip")) sweep.zip = j.at("zip");
  if (j.contains("random")) sweep.random = j.at("random");
  if (j.contains("seeds")) {
    const json& seeds = j.at("seeds");
    if (!seeds.is_array() || seeds.empty()) {
      throw SweepError("/seeds", "seeds: expected a non-empty array");
    }
    sweep.seeds.clear();
    for (const json& seed : seeds) {
      if (!seed.is_number_unsigned()) {
        throw SweepError("/seeds", "seeds: " + seed.dump() + " is not a non-negative integer");
      }
      sweep.seeds.push_back(seed.get<std::uint64_t>());
    }
  }
  if (j.contains("folds")) {
    const json& folds = j.at("folds");
    if (!folds.is_array()) throw SweepError("/folds", "folds: expected an array of fold indices");
    for (const json& fold : folds) {
      if (!fold.is_number_integer()) {
        throw SweepError("/folds", "folds: " + fold.dump() + " is not an integer");
      }
      sweep.folds.push_back(fold.get<int>());
    }
  }
  if (j.contains("jobs_per_gpu")) {
    const json& k = j.at("jobs_per_gpu");
    if (!k.is_number_integer() || k.get<int>() < 1) {
      throw SweepError("/jobs_per_gpu", "jobs_per_gpu: " + k.dump() + " is not an integer >= 1");
    }
    sweep.jobs_per_gpu = k.get<int>();
  }
  if (j.contains("prune")) sweep.prune = prune_spec_from_json(j.at("prune"));
  // A parsed sweep always expands: bad grid values and folds are reported with the file name.
  const std::vector<JobSpec> jobs = expand(sweep);
  check_prune_spec(sweep.prune, jobs);
  return sweep;
}

}  // namespace

SweepSpec parse_sweep(const json& j, const std::string& source, const SourceLines& lines) {
  try {
    check_sweep_keys(j);
    return parse_body(j);
  } catch (const SweepError& e) {
    throw SweepError(e.pointer(), source_location(source, lines, e.pointer()) + ": " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
}

SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  SweepDocument doc = read_sweep_document(path);
  for (const auto& assignment : overrides) {
    try {
      apply_override(doc.value, assignment);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  return parse_sweep(doc.value, path, doc.lines);
}

void apply_override(json& sweep_json, const std::string& assignment) {
  const std::size_t eq = assignment.find('=');
  try {
    if (eq == std::string::npos) throw std::runtime_error("expected key.path=value");
    const std::string text = assignment.substr(eq + 1);
    if (json_nests_deeper_than(text, kMaxJsonDepth)) {
      throw std::runtime_error(
          over_limit("the value's nesting of arrays and objects", kMaxJsonDepth, "kMaxJsonDepth"));
    }
    json value = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;
    const std::string key = assignment.substr(0, eq);
    // Swept keys are themselves dotted ("train.lr"), so everything after the section's prefix is
    // one key: grid.<key>, zip.<key> (a zip object) and random.space.<key>.
    for (const char* section : {"grid", "zip", "random.space"}) {
      const std::string prefix = std::string(section) + ".";
      if (key.rfind(prefix, 0) != 0 || key.size() == prefix.size() || !sweep_json.is_object())
        continue;
      json* holder = &sweep_json;
      for (const std::string& part : split_key(section)) {
        if (!holder->is_object()) break;
        json& child = (*holder)[part];
        if (child.is_null()) child = json::object();
        holder = &child;
      }
      if (!holder->is_object()) {
        throw std::runtime_error("key '" + key + "': '" + section + "' is a " +
                                 holder->type_name() + ", not an object");
      }
      (*holder)[key.substr(prefix.size())] = value;
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
  // Each model crosses the sweep's axes with its own grid keys.
  std::vector<std::vector<SweepPoint>> points_of_model;
  std::uint64_t planned = 0;  // a lower bound of the job count, summed over models
  for (std::size_t m = 0; m < sweep.models.size(); ++m) {
    json grid = sweep.grid.is_null() ? json::object() : sweep.grid;
    const json own = m < sweep.model_grids.size() ? sweep.model_grids[m] : json();
    if (!own.is_null()) {
      if (!own.is_object()) {
        throw SweepError("/models/" + std::to_string(m) + "/grid",
                         "models[" + std::to_string(m) + "].grid: expected an object");
      }
      for (const auto& [key, values] : own.items()) {
        if (grid.contains(key)) {
          throw SweepError(
              "/models/" + std::to_string(m) + "/grid",
              "models[" + std::to_string(m) + "].grid key '" + key + "' is also a sweep grid key");
        }
        grid[key] = values;
      }
    }
    const std::vector<SweepAxis> axes = sweep_axes(grid, sweep.zip, sweep.random);
    // Every point is at least one job per dataset and seed: refuse before building them.
    std::uint64_t points = 1;
    bool overflow = false;
    for (const SweepAxis& axis : axes)
      overflow |= __builtin_mul_overflow(points, axis.points.size(), &points);
    overflow |= __builtin_mul_overflow(points, sweep.datasets.size() * sweep.seeds.size(), &points);
    overflow |= __builtin_add_overflow(planned, points, &planned);
    if (overflow || planned > kMaxSweepJobs) {
      throw std::runtime_error(
          over_limit("the number of jobs the sweep expands to", kMaxSweepJobs, "kMaxSweepJobs") +
          "; split it into several sweeps");
    }
    points_of_model.push_back(cross(axes));
  }

  std::vector<JobSpec> jobs;
  std::set<std::string> ids;
  for (const auto& dataset : sweep.datasets) {
    for (std::size_t m = 0; m < sweep.models.size(); ++m) {
      const ModelSpec& model = sweep.models[m];
      for (const auto& point : points_of_model[m]) {
        JobSpec base{dataset, model, sweep.train, sweep.split, sweep.seeds.front()};
        base.split.fold_index = 0;
        if (m < sweep.model_ranks.size() && sweep.model_ranks[m] > 0)
          base.train.ranks = sweep.model_ranks[m];
        json j = base;
        try {
          base = j.get<JobSpec>();  // Validates specs built in code, not only those from files.
        } catch (const std::exception& e) {
          throw std::runtime_error("dataset '" + dataset.name + "', model '" + model.name +
                                   "': " + e.what());
        }
        for (const AxisSetting& setting : point) {
          try {
            set_path(j, setting.key, setting.value);
            base = j.get<JobSpec>();
          } catch (const std::exception& e) {
            throw SweepError(setting.pointer,
                             setting.origin + " = " + setting.value.dump() + ": " + e.what());
          }
        }
        const std::vector<int> folds = folds_for(sweep, base.split);
        if (jobs.size() + sweep.seeds.size() * folds.size() > kMaxSweepJobs) {
          throw std::runtime_error(over_limit("the number of jobs the sweep expands to",
                                              kMaxSweepJobs, "kMaxSweepJobs") +
                                   "; split it into several sweeps");
        }
        for (std::uint64_t seed : sweep.seeds) {
          for (int fold : folds) {
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
