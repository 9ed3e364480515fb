#include "mil/data/split_protocol.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "mil/core/sha256.h"
#include "mil/data/label_csv.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string text) {
  text = trim_copy(text);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return text;
}

/// "train", "val" or "test" for a Split cell, or "" when it is none of them.
std::string part_name(const std::string& cell) {
  const std::string p = lower(cell);
  if (p == "train" || p == "training") return "train";
  if (p == "val" || p == "valid" || p == "validation") return "val";
  if (p == "test" || p == "testing") return "test";
  return "";
}

std::vector<std::pair<int, std::vector<std::string>>> read_lines(const std::string& path) {
  CsvLineReader in(path);
  if (!in.is_open()) throw std::runtime_error("cannot open split file '" + path + "'");
  std::vector<std::pair<int, std::vector<std::string>>> lines;
  std::string line;
  while (in.next(line)) {
    if (!trim_copy(line).empty())
      lines.emplace_back(in.line_number(), split_csv_line(trim_copy(line)));
  }
  if (lines.empty()) throw std::runtime_error(path + ": empty split file");
  return lines;
}

/// CLAM: a column per part, ids down each column, shorter columns padded with empty cells.
SplitFile read_clam_splits(const std::string& path) {
  const auto lines = read_lines(path);
  std::map<int, std::string> part_of_column;
  const auto& header = lines.front().second;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string part = part_name(header[c]);
    if (!part.empty()) part_of_column[int(c)] = part;
  }
  if (part_of_column.empty() || std::none_of(part_of_column.begin(), part_of_column.end(),
                                             [](const auto& p) { return p.second == "test"; })) {
    throw std::runtime_error(path + ":1: expected CLAM columns train, val, test");
  }
  SplitFile file{path, {}};
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto& [number, fields] = lines[i];
    if (fields.size() > header.size()) {
      throw std::runtime_error(path + ":" + std::to_string(number) + ": " +
                               std::to_string(fields.size()) + " fields, the header has " +
                               std::to_string(header.size()));
    }
    for (const auto& [column, part] : part_of_column) {
      if (column < int(fields.size()) && !trim_copy(fields[column]).empty()) {
        file.entries.emplace_back(trim_copy(fields[column]), part);
      }
    }
  }
  return file;
}

/// Reference: one row per slide or case with a Split column.
SplitFile read_fold_file(const std::string& path) {
  const auto lines = read_lines(path);
  const auto& header = lines.front().second;
  int id_col = -1, split_col = -1, case_col = -1;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string h = lower(header[c]);
    if (h == "split") split_col = int(c);
    if (h == "slide_id" || h == "id" || h == "slide") id_col = int(c);
    if (h == "case_id" || h == "case") case_col = int(c);
  }
  std::size_t first = 1;
  if (split_col < 0) {  // headerless: ID,Label,Split or Case,ID,Label,Split
    first = 0;
    if (header.size() == 3) id_col = 0, split_col = 2;
    if (header.size() == 4) id_col = 1, split_col = 3;
    if (split_col < 0)
      throw std::runtime_error(path + ":1: no Split column (expected a header or ID,Label,Split)");
  }
  if (id_col < 0) id_col = case_col;
  if (id_col < 0)
    throw std::runtime_error(path + ":1: the header names a Split column but no ID column");
  SplitFile file{path, {}};
  for (std::size_t i = first; i < lines.size(); ++i) {
    const auto& [number, fields] = lines[i];
    const std::string where = path + ":" + std::to_string(number);
    if (fields.size() != header.size()) {
      throw std::runtime_error(where + ": " + std::to_string(fields.size()) +
                               " fields, the file has " + std::to_string(header.size()));
    }
    const std::string part = part_name(fields[split_col]);
    if (part.empty())
      throw std::runtime_error(where + ": Split '" + fields[split_col] +
                               "' is not train, val or test");
    file.entries.emplace_back(trim_copy(fields[id_col]), part);
  }
  return file;
}

fs::path split_dir_of(const DatasetSpec& dataset, const SplitSpec& split) {
  const fs::path dir(split.dir);
  return dir.is_absolute() ? dir : fs::path(dataset.root) / dir;
}

/// Throws unless every fold 0..fold_count-1 has exactly one split file in `dir`.
void require_split_files(const fs::path& dir, int fold_count) {
  std::vector<std::string> missing;
  for (int k = 0; k < fold_count; ++k) {
    const bool clam = fs::exists(dir / ("splits_" + std::to_string(k) + ".csv"));
    const bool reference = fs::exists(dir / ("fold_" + std::to_string(k) + ".csv"));
    if (clam && reference) {
      throw std::runtime_error(dir.string() + " holds both splits_" + std::to_string(k) +
                               ".csv and fold_" + std::to_string(k) + ".csv; keep one layout");
    }
    if (!clam && !reference) missing.push_back(std::to_string(k));
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& k : missing) list += (list.empty() ? "" : ", ") + k;
    throw std::runtime_error("split.fold_count is " + std::to_string(fold_count) + " but " +
                             dir.string() +
                             " has no splits_{k}.csv or fold_{k}.csv for k = " + list);
  }
}

/// Each bag's parts as a split file names them (by slide id, or by case id for all its slides).
std::vector<std::set<std::string>> parts_of_bags(const BagDataset& data, const SplitFile& file) {
  std::map<std::string, std::vector<int>> by_slide, by_case;
  const std::vector<std::string> groups = data.groups();
  for (int i = 0; i < int(data.bags.size()); ++i) {
    by_slide[data.bags[std::size_t(i)].slide_id].push_back(i);
    by_case[groups[std::size_t(i)]].push_back(i);
  }
  std::vector<std::set<std::string>> parts(data.bags.size());
  std::vector<std::string> unknown;
  for (const auto& [id, part] : file.entries) {
    const std::vector<int>* bags = nullptr;
    if (auto it = by_slide.find(id); it != by_slide.end())
      bags = &it->second;
    else if (auto c = by_case.find(id); c != by_case.end())
      bags = &c->second;
    if (bags == nullptr) {
      unknown.push_back(id);
      continue;
    }
    for (int bag : *bags) parts[std::size_t(bag)].insert(part);
  }
  if (!unknown.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unknown.size() && i < 10; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 10) list += " and " + std::to_string(unknown.size() - 10) + " more";
    throw std::runtime_error(file.path + ": " + std::to_string(unknown.size()) +
                             " id(s) match no slide or case of the dataset: " + list);
  }
  return parts;
}

/// Problems that let test data leak into training or model selection, described; empty when none.
std::vector<std::string> leaks(const Split& s, const BagDataset& data,
                               std::vector<std::string>& flags) {
  std::vector<std::string> found;
  const std::set<int> train(s.train.begin(), s.train.end()), val(s.val.begin(), s.val.end()),
      test(s.test.begin(), s.test.end());
  if (!val.empty() && val == test) {
    found.push_back("validation equals test (" + std::to_string(val.size()) + " bags)");
    flags.push_back("val_equals_test");
  }
  const std::vector<std::string> groups = data.groups();
  std::map<std::string, std::set<std::string>> parts_of_case;
  const auto note = [&](const std::set<int>& bags, const char* part) {
    for (int b : bags) parts_of_case[groups[std::size_t(b)]].insert(part);
  };
  note(train, "train");
  if (val != test) note(val, "val");  // val == test is reported above, not once per case again
  note(test, "test");
  std::vector<std::string> cases;
  for (const auto& [c, parts] : parts_of_case) {
    if (parts.size() > 1) {
      std::string list;
      for (const auto& p : parts) list += (list.empty() ? "" : "+") + p;
      cases.push_back("'" + c + "' (" + list + ")");
    }
  }
  if (!cases.empty()) {
    std::string list;
    for (std::size_t i = 0; i < cases.size() && i < 5; ++i) list += (i ? ", " : "") + cases[i];
    if (cases.size() > 5) list += " and " + std::to_string(cases.size() - 5) + " more";
    found.push_back(std::to_string(cases.size()) + " case(s) in two parts: " + list);
    flags.push_back("case_in_two_parts");
  }
  return found;
}

nlohmann::json ids_of(const BagDataset& data, const std::vector<int>& bags) {
  nlohmann::json ids = nlohmann::json::array();
  for (int b : bags) ids.push_back(data.bags[std::size_t(b)].slide_id);
  return ids;
}

}  // namespace

SplitFile read_split_file(const std::string& dir, int fold_index) {
  const fs::path clam = fs::path(dir) / ("splits_" + std::to_string(fold_index) + ".csv");
  const fs::path reference = fs::path(dir) / ("fold_" + std::to_string(fold_index) + ".csv");
  if (fs::exists(clam)) return read_clam_splits(clam.string());
  if (fs::exists(reference)) return read_fold_file(reference.string());
  throw std::runtime_error("no " + clam.string() + " or " + reference.string());
}

ResolvedSplit resolve_split(const BagDataset& data, const DatasetSpec& dataset,
                            const SplitSpec& spec) {
  ResolvedSplit out;
  const bool legacy = spec.protocol == "legacy";
  const std::vector<int> labels = data.labels();
  const std::vector<std::string> groups = data.groups();
  std::string source;
  std::size_t unassigned = 0;
  if (!spec.dir.empty() && spec.protocol == "kfold") {
    throw std::runtime_error(
        "split.dir is set but split.protocol is kfold; use protocol file (or legacy) to read it");
  }
  if (!spec.dir.empty()) {  // protocol file or legacy, from split files
    const fs::path dir = split_dir_of(dataset, spec);
    require_split_files(dir, spec.fold_count);
    const SplitFile file = read_split_file(dir.string(), spec.fold_index);
    source = file.path;
    out.split_file = {{"path", file.path}, {"sha256", sha256_file(file.path)}};
    const auto parts = parts_of_bags(data, file);
    for (int b = 0; b < int(parts.size()); ++b) {
      const auto& p = parts[std::size_t(b)];
      if (p.empty()) ++unassigned;
      if (p.count("train")) out.split.train.push_back(b);
      if (p.count("val")) out.split.val.push_back(b);
      if (p.count("test"))
        out.split.test.push_back(b);  // a bag in two parts is a leak, refused below
    }
    if (out.split.test.empty()) throw std::runtime_error(file.path + ": no test ids");
    if (out.split.train.empty()) throw std::runtime_error(file.path + ": no train ids");
    if (out.split.val.empty() &&
        spec.val_ratio > 0) {  // carve validation cases from train: test = fold 0
      std::vector<int> bags = out.split.test, fold;
      bags.insert(bags.end(), out.split.train.begin(), out.split.train.end());
      std::vector<int> sub_labels;
      std::vector<std::string> sub_groups;
      for (std::size_t i = 0; i < bags.size(); ++i) {
        sub_labels.push_back(labels[std::size_t(bags[i])]);
        sub_groups.push_back(groups[std::size_t(bags[i])]);
        fold.push_back(i < out.split.test.size() ? 0 : 1);
      }
      const Split carved =
          make_split(sub_labels, fold, 0, spec.val_ratio, spec.split_seed, sub_groups);
      const auto back = [&](const std::vector<int>& sub) {
        std::vector<int> original;
        for (int i : sub) original.push_back(bags[std::size_t(i)]);
        std::sort(original.begin(), original.end());
        return original;
      };
      out.split = Split{back(carved.train), back(carved.val), back(carved.test)};
    }
  } else if (spec.protocol == "file") {
    if (data.file_fold_of_bag.empty()) {
      throw std::runtime_error(
          "split.protocol 'file' needs split.dir (a folder of splits_{k}.csv or fold_{k}.csv): "
          "dataset '" +
          dataset.name + "' ships no fold file");
    }
    if (data.file_fold_count != spec.fold_count) {
      throw std::runtime_error("fold file has " + std::to_string(data.file_fold_count) +
                               " folds, split.fold_count is " + std::to_string(spec.fold_count));
    }
    source = "dataset fold file";
    out.split = make_split(labels, data.file_fold_of_bag, spec.fold_index, spec.val_ratio,
                           spec.split_seed, groups);
  } else {  // kfold, or legacy without files
    source = "stratified group k-fold, split_seed " + std::to_string(spec.split_seed);
    const std::vector<int> folds =
        stratified_group_fold_assignment(labels, groups, spec.fold_count, spec.split_seed);
    out.split = make_split(labels, folds, spec.fold_index, legacy ? 0.0 : spec.val_ratio,
                           spec.split_seed, groups);
  }
  if (legacy && out.split.val.empty())
    out.split.val = out.split.test;  // the reference's val := test

  const std::vector<std::string> found = leaks(out.split, data, out.flags);
  if (!found.empty() && !legacy) {
    std::string list;
    for (const auto& f : found) list += (list.empty() ? "" : "; ") + f;
    throw std::runtime_error(
        "split.protocol '" + spec.protocol + "' (" + source + ", fold " +
        std::to_string(spec.fold_index) + ") leaks test data: " + list +
        ". Fix the split, or set split.protocol legacy to reproduce the reference on purpose "
        "(its results are flagged)");
  }
  const nlohmann::json parts = {{"train", ids_of(data, out.split.train)},
                                {"val", ids_of(data, out.split.val)},
                                {"test", ids_of(data, out.split.test)}};
  out.sha256 = sha256_hex(parts.dump());
  out.record = parts;
  out.record["protocol"] = spec.protocol;
  out.record["fold_index"] = spec.fold_index;
  out.record["fold_count"] = spec.fold_count;
  out.record["source"] = source;
  out.record["unassigned"] = unassigned;
  out.record["flags"] = out.flags;
  out.record["sha256"] = out.sha256;
  return out;
}

}  // namespace mil
