#include "mil/data/label_csv.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "mil/core/reader_limits.h"

namespace mil {

CsvLineReader::CsvLineReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (!ec) size_ = size;  // a pipe or a missing file has none; bytes_ still counts what is read
}

bool CsvLineReader::next(std::string& line) {
  line.clear();
  if (size_ > kMaxCsvFileBytes) {
    throw std::runtime_error(path_ + ": " +
                             over_limit("its size", size_, kMaxCsvFileBytes, "kMaxCsvFileBytes"));
  }
  std::streambuf* buffer = in_.rdbuf();
  int c = buffer->sbumpc();
  if (c == std::char_traits<char>::eof()) return false;
  if (std::size_t(line_number_) >= kMaxCsvLines) {
    throw std::runtime_error(path_ + ": " +
                             over_limit("its line count", kMaxCsvLines, "kMaxCsvLines"));
  }
  ++line_number_;
  for (; c != std::char_traits<char>::eof() && c != '\n'; c = buffer->sbumpc()) {
    if (line.size() >= kMaxCsvLineBytes) {
      throw std::runtime_error(
          path_ + ":" + std::to_string(line_number_) + ": " +
          over_limit("the line's length", kMaxCsvLineBytes, "kMaxCsvLineBytes"));
    }
    line.push_back(char(c));
  }
  bytes_ += line.size() + 1;
  if (bytes_ > kMaxCsvFileBytes) {
    throw std::runtime_error(path_ + ": " +
                             over_limit("its size", kMaxCsvFileBytes, "kMaxCsvFileBytes"));
  }
  return true;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::string trim_copy(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

void for_each_csv_row(
    const std::string& path, const std::vector<std::string>& header_prefix,
    const std::function<void(const std::vector<std::string>&, const std::string&)>& row) {
  CsvLineReader in(path);
  if (!in.is_open()) throw std::runtime_error("cannot open '" + path + "'");
  std::string line;
  if (!in.next(line)) throw std::runtime_error(path + ": empty file, expected a header line");
  const auto header = split_csv_line(trim_copy(line));
  for (std::size_t i = 0; i < header_prefix.size(); ++i) {
    if (i >= header.size() || trim_copy(header[i]) != header_prefix[i]) {
      throw std::runtime_error(path + ":1: header column " + std::to_string(i + 1) +
                               " should be '" + header_prefix[i] + "'");
    }
  }
  while (in.next(line)) {
    line = trim_copy(line);
    if (line.empty()) continue;
    row(split_csv_line(line), path + ":" + std::to_string(in.line_number()));
  }
}

namespace {

/// `text` as an integer, or nothing.
bool parse_int(const std::string& text, int& out) {
  try {
    std::size_t used = 0;
    out = std::stoi(text, &used);
    return used == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

std::string lower(std::string t) {
  t = trim_copy(t);
  std::transform(t.begin(), t.end(), t.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return t;
}

/// The class of one label cell, or false after reporting why it has none.
bool parse_label(const std::string& label, const DatasetSpec& spec, const std::string& where,
                 ProblemLog* log, int& out) {
  if (!spec.label_map.empty()) {
    if (!spec.label_map.contains(label)) {
      std::string keys;
      for (const auto& item : spec.label_map.items())
        keys += (keys.empty() ? "" : ", ") + item.key();
      report_problem(log, "unknown_label", where,
                     "label '" + label + "' is not in label_map (" + keys + ")");
      return false;
    }
    out = spec.label_map.at(label).get<int>();
  } else if (!parse_int(label, out)) {
    report_problem(log, "unknown_label", where, "'" + label + "' is not an integer");
    return false;
  }
  if (out < 0 || out >= spec.class_count) {
    report_problem(log, "unknown_label", where,
                   "label " + std::to_string(out) + " is outside [0, " +
                       std::to_string(spec.class_count) + ")");
    return false;
  }
  return true;
}

}  // namespace

std::vector<LabelRow> read_label_csv(const std::string& path, const DatasetSpec& spec,
                                     ProblemLog* log) {
  CsvLineReader in(path);
  if (!in.is_open()) {
    report_problem(log, "missing_file", path, "cannot open the label file");
    return {};
  }
  std::vector<std::pair<int, std::vector<std::string>>> lines;
  std::string line;
  try {
    while (in.next(line)) {
      line = trim_copy(line);
      if (!line.empty()) lines.emplace_back(in.line_number(), split_csv_line(line));
    }
  } catch (const std::runtime_error& e) {  // a limit: the file cannot be used at all
    if (log == nullptr) throw;
    log->add(DataProblem{"csv_fields", path, e.what()});
    return {};
  }
  if (lines.empty()) {
    report_problem(log, "csv_fields", path, "empty label file");
    return {};
  }
  int id_col = -1, label_col = -1, case_col = -1;
  std::size_t first = 0;
  const std::vector<std::string>& head = lines.front().second;
  const std::size_t width = head.size();
  for (std::size_t c = 0; c < head.size(); ++c) {
    const std::string h = lower(head[c]);
    if (h == "slide_id" || h == "id" || h == "slide") id_col = int(c);
    if (h == "label") label_col = int(c);
    if (h == "case_id" || h == "case") case_col = int(c);
  }
  if (label_col >= 0 || id_col >= 0) {  // a header row
    if (label_col < 0 || id_col < 0) {
      report_problem(log, "csv_fields", path + ":1", "the header needs an id and a label column");
      return {};
    }
    first = 1;
  } else if (width == 2 || width == 3) {
    id_col = 0, label_col = 1;
  } else if (width == 4) {
    case_col = 0, id_col = 1, label_col = 2;
  } else {
    report_problem(
        log, "csv_fields", path + ":1",
        std::to_string(width) +
            " columns without a header; expected ID,Label[,Split] or Case,ID,Label,Split");
    return {};
  }
  std::vector<LabelRow> rows;
  std::map<std::string, std::string> first_listed;  // id -> file:line
  for (std::size_t i = first; i < lines.size(); ++i) {
    const auto& [number, f] = lines[i];
    const std::string where = path + ":" + std::to_string(number);
    if (f.size() != width) {
      report_problem(log, "csv_fields", where,
                     std::to_string(f.size()) + " fields, the file has " + std::to_string(width));
      continue;
    }
    LabelRow row;
    row.where = where;
    row.id = trim_copy(f[id_col]);
    row.case_id = case_col >= 0 ? trim_copy(f[case_col]) : row.id;
    if (row.id.empty()) {
      report_problem(log, "csv_value", where, "empty id");
      continue;
    }
    if (!parse_label(trim_copy(f[label_col]), spec, where, log, row.label)) continue;
    if (auto [it, inserted] = first_listed.emplace(row.id, where); !inserted) {
      report_problem(log, "duplicate_id", where,
                     "id '" + row.id + "' is already listed at " + it->second);
      continue;
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty() && log == nullptr) throw std::runtime_error(path + ": no bags listed");
  return rows;
}

std::vector<SurvivalCase> read_survival_csv(const std::string& path, ProblemLog* log) {
  std::vector<SurvivalCase> cases;
  std::map<std::string, std::size_t> case_index;
  const auto read_row = [&](const std::vector<std::string>& f, const std::string& where) {
    if (f.size() < 4) {
      report_problem(log, "csv_fields", where,
                     std::to_string(f.size()) + " fields, expected 'Study,ID,Event,Status,WSI'");
      return;
    }
    const std::string id = trim_copy(f[1]);
    char* end = nullptr;
    const std::string event = trim_copy(f[2]);
    const double time = std::strtod(event.c_str(), &end);
    if (id.empty()) return report_problem(log, "csv_value", where, "empty ID");
    if (end == event.c_str() || *end != '\0' || !(time >= 0)) {
      return report_problem(log, "csv_value", where,
                            "Event '" + f[2] + "' is not a non-negative time");
    }
    int status = 0;
    if (!parse_int(trim_copy(f[3]), status) || (status != 0 && status != 1)) {
      return report_problem(log, "csv_value", where, "Status must be 0 or 1, got '" + f[3] + "'");
    }
    const std::string slide = f.size() > 4 && !trim_copy(f[4]).empty() ? trim_copy(f[4]) : id;
    auto [it, inserted] = case_index.emplace(id, cases.size());
    if (inserted) cases.push_back(SurvivalCase{id, time, status, {}, where});
    SurvivalCase& c = cases[it->second];
    if (c.time != time || c.status != status) {
      return report_problem(log, "label_conflict", where,
                            "case '" + id + "' has a different Event/Status at " + c.where);
    }
    if (std::find(c.slides.begin(), c.slides.end(), slide) != c.slides.end()) {
      return report_problem(log, "duplicate_id", where,
                            "slide '" + slide + "' of case '" + id + "' is listed twice");
    }
    c.slides.push_back(slide);
  };
  if (log == nullptr) {
    for_each_csv_row(path, {"Study", "ID", "Event", "Status", "WSI"}, read_row);
    return cases;
  }
  if (!std::ifstream(path)) {
    report_problem(log, "missing_file", path, "cannot open the survival file");
    return cases;
  }
  try {
    for_each_csv_row(path, {"Study", "ID", "Event", "Status", "WSI"}, read_row);
  } catch (const std::exception& e) {  // the file or its header: nothing more to read
    log->add(DataProblem{"csv_fields", path, e.what()});
  }
  return cases;
}

}  // namespace mil
