#pragma once
// The label CSVs of the reference's layouts (its datasets/dataset_csv/): classification files with
// or without a header, and survival files `Study,ID,Event,Status,WSI`. Every problem names the file
// and line; with a ProblemLog the readers collect all of them and skip the bad rows instead of
// throwing the first.
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "mil/data/data_problem.h"

namespace mil {

/// Reads a CSV file line by line within kMaxCsvFileBytes, kMaxCsvLineBytes and kMaxCsvLines
/// (mil/core/reader_limits.h): a line over a limit is refused before it is stored, with an error
/// naming the file, the line and the limit.
class CsvLineReader {
 public:
  /// Opens `path`; is_open() says whether that worked.
  explicit CsvLineReader(const std::string& path);
  bool is_open() const { return in_.is_open(); }
  /// The next line without its '\n' (a '\r' before it stays); false at the end of the file.
  bool next(std::string& line);
  /// 1-based number of the line next() returned last.
  int line_number() const { return line_number_; }

 private:
  std::string path_;
  std::ifstream in_;
  int line_number_ = 0;
  std::uint64_t size_ = 0;   ///< The file's size when it is a regular file (checked up front).
  std::uint64_t bytes_ = 0;  ///< Bytes read so far.
};

/// Splits one CSV line at commas (no quoting, as the reference's files need none); "a," gives 2
/// fields.
std::vector<std::string> split_csv_line(const std::string& line);

/// `text` without leading and trailing whitespace.
std::string trim_copy(std::string text);

/// Reads a CSV whose first line must start with `header_prefix`; calls `row(fields, "path:line")`
/// for every non-empty data line. Throws naming the path (and line 1 for a wrong header).
void for_each_csv_row(
    const std::string& path, const std::vector<std::string>& header_prefix,
    const std::function<void(const std::vector<std::string>&, const std::string&)>& row);

/// One labelled row of a classification CSV.
struct LabelRow {
  std::string case_id;  ///< The Case column, else the ID.
  std::string id;       ///< Slide (or case) id to look up.
  int label = 0;
  std::string where;  ///< file:line, for errors.
};

/// Reads a classification CSV in any reference layout: with a header naming its columns
/// (slide_id/id/slide, label, optional case_id/case), or headerless as ID,Label / ID,Label,Split /
/// Case,ID,Label,Split. Labels are integers in [0, class_count), or text mapped through label_map.
/// An id listed twice is an error.
std::vector<LabelRow> read_label_csv(const std::string& path, const DatasetSpec& spec,
                                     ProblemLog* log = nullptr);

/// One case of a survival CSV: all its rows (slides) share ID, Event and Status.
struct SurvivalCase {
  std::string id;
  double time = 0.0;                ///< Event: months to event or censoring.
  int status = 0;                   ///< 1 = event observed.
  std::vector<std::string> slides;  ///< WSI column (the ID when empty), in file order.
  std::string where;                ///< file:line of its first row.
};

/// Reads `Study,ID,Event,Status,WSI` (header required), grouping rows by ID in order of first
/// appearance.
std::vector<SurvivalCase> read_survival_csv(const std::string& path, ProblemLog* log = nullptr);

}  // namespace mil
