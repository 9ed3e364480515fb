// The orchestrator's limits (mil/core/reader_limits.h): sweep files, YAML, sweep expansion,
// the journal and status requests; each refused before the memory it guards is allocated, with an
// error naming the file (or an HTTP status) and the limit.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "mil/core/reader_limits.h"
#include "orchestrator/results/store.h"
#include "orchestrator/status/http.h"
#include "orchestrator/sweep/file.h"
#include "orchestrator/sweep/sweep.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

/// A valid YAML sweep, with `extra` appended (more top-level keys).
std::string sweep_yaml(const std::string& extra = "") {
  return "name: s\ndatasets: [{name: d, root: /data/d}]\nmodels: [{name: abmil}]\n" + extra;
}

}  // namespace

TEST(SweepLimits, RefusesAFileOverKMaxSweepFileBytes) {
  testing::TempDir dir;
  const std::string path =
      write_text(dir / "big.yaml", sweep_yaml("# " + std::string(kMaxSweepFileBytes, 'x') + "\n"));
  MIL_EXPECT_THROW_WITH(load_sweep(path), "exceeds the limit of 4194304 (kMaxSweepFileBytes)");
  MIL_EXPECT_THROW_WITH(load_sweep(path), path + ": cannot read the sweep file");
}

TEST(SweepLimits, RefusesYamlNestedDeeperThanKMaxYamlDepthNamingTheLine) {
  const std::string deep =
      std::string(kMaxYamlDepth + 1, '[') + std::string(kMaxYamlDepth + 1, ']');
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep(sweep_yaml("grid: {train.lr: " + deep + "}"), "s.yaml"),
                        "s.yaml:4: the nesting of YAML sequences and mappings exceeds the limit of "
                        "16 (kMaxYamlDepth)");
}

TEST(SweepLimits, RefusesAliasesThatExpandPastKMaxYamlNodes) {
  // "Billion laughs": each level repeats the one before ten times; 6 levels are 10^6 nodes.
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 6; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int k = 1; k < 10; ++k) laughs += ", " + prev;
    laughs += "]\n";
  }
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep(laughs, "laughs.yaml"),
                        "exceeds the limit of 20000 (kMaxYamlNodes)");
}

TEST(SweepLimits, RefusesAKeyLongerThanKMaxYamlKeyBytes) {
  MIL_EXPECT_THROW_WITH(
      parse_yaml_sweep(sweep_yaml(std::string(kMaxYamlKeyBytes + 1, 'k') + ": 1\n"), "s.yaml"),
      "s.yaml:4: a mapping key's length (257) exceeds the limit of 256 (kMaxYamlKeyBytes)");
}

TEST(SweepLimits, AMegabyteOfDigitsIsAnOutOfRangeIntegerNotAStackOverflow) {
  // The core-schema matchers used std::regex, which recursed once per character.
  MIL_EXPECT_THROW_WITH(
      parse_yaml_sweep(sweep_yaml("seeds: [" + std::string(1 << 20, '7') + "]\n"), "s.yaml"),
      "is out of range");
  const SweepDocument text = parse_yaml_sweep("x: " + std::string(1 << 20, 'x'), "s.yaml");
  EXPECT_EQ(text.value.at("x").get<std::string>().size(), std::size_t{1} << 20);
}

TEST(SweepLimits, RefusesJsonNestedDeeperThanKMaxJsonDepth) {
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  MIL_EXPECT_THROW_WITH(parse_json_sweep("{\"grid\": " + deep + "}", "s.json"),
                        "s.json: the nesting of JSON arrays and objects exceeds the limit of 64 "
                        "(kMaxJsonDepth)");
  nlohmann::json doc = nlohmann::json::object();
  MIL_EXPECT_THROW_WITH(apply_override(doc, "grid.train.lr=" + deep), "(kMaxJsonDepth)");
}

TEST(SweepLimits, RefusesASweepOfMoreThanKMaxSweepJobsBeforeBuildingThem) {
  // 20^4 = 160,000 grid points, each at least one job.
  std::string values = "[";
  for (int i = 0; i < 20; ++i) values += (i ? ", " : "") + std::to_string(i + 1);
  values += "]";
  const std::string grid = "grid: {train.epochs: " + values + ", train.patience: " + values +
                           ", train.warmup_epochs: " + values + ", train.stop_epoch: " + values +
                           "}\n";
  const SweepDocument doc = parse_yaml_sweep(sweep_yaml(grid), "big.yaml");
  MIL_EXPECT_THROW_WITH(parse_sweep(doc.value, doc.path, doc.lines),
                        "big.yaml: the number of jobs the sweep expands to exceeds the limit of "
                        "100000 (kMaxSweepJobs)");
  const SweepDocument folds =
      parse_yaml_sweep(sweep_yaml("split: {fold_count: 1000000000}\n"), "f.yaml");
  MIL_EXPECT_THROW_WITH(parse_sweep(folds.value, folds.path, folds.lines),
                        "f.yaml:4: split.fold_count (1000000000) exceeds the limit of 100000 "
                        "(kMaxSweepJobs)");
}

TEST(JournalLimits, RefusesALineOverKMaxJournalLineBytesNamingTheLine) {
  testing::TempDir dir;
  const std::string path =
      write_text(dir / "journal.jsonl", "{\"job_id\": \"a\", \"status\": \"ok\"}\n{\"detail\": \"" +
                                            std::string(kMaxJournalLineBytes, 'x') + "\"}\n");
  MIL_EXPECT_THROW_WITH(replay_journal(path), path +
                                                  ":2: the line's length exceeds the limit of "
                                                  "1048576 (kMaxJournalLineBytes)");
}

TEST(JournalLimits, RefusesALineNestedDeeperThanKMaxJsonDepthAndStillSkipsATornLastLine) {
  testing::TempDir dir;
  const std::string deep = dir / "deep.jsonl";
  write_text(deep, std::string(kMaxJsonDepth + 1, '[') + "\n");
  MIL_EXPECT_THROW_WITH(replay_journal(deep), deep + ":1: the nesting of JSON arrays and objects");
  const std::string torn = write_text(
      dir / "torn.jsonl", "{\"job_id\": \"a\", \"status\": \"ok\"}\n{\"job_id\": \"b\", \"st");
  std::size_t skipped = 0;
  const auto entries = replay_journal(torn, &skipped);
  EXPECT_EQ(entries.size(), 1u);
  EXPECT_EQ(skipped, 1u);
}

TEST(StatusRequestLimits, AnswersRequestsAsTheServerDoes) {
  const StatusSource source = [] { return std::string("{\"jobs\": 3}"); };
  const auto ok = answer_status_bytes("GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n", source);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->result_int(), 200u);
  EXPECT_EQ(ok->body(), "{\"jobs\": 3}");
  EXPECT_FALSE(answer_status_bytes("GET /status.json HTTP/1.1\r\nHo", source).has_value());
  EXPECT_EQ(answer_status_bytes("\x01\x02 garbage\r\n\r\n", source)->result_int(), 400u);
}

TEST(StatusRequestLimits, HeadersOverKStatusHeaderLimitBytesAre431AndBodiesOverTheBodyLimit413) {
  const StatusSource source = [] { return std::string("{}"); };
  const std::string big_header =
      "GET / HTTP/1.1\r\nX-Big: " + std::string(kStatusHeaderLimitBytes, 'a') + "\r\n\r\n";
  EXPECT_EQ(answer_status_bytes(big_header, source)->result_int(), 431u);
  const std::string big_body =
      "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(kStatusBodyLimitBytes + 1) +
      "\r\n\r\n";
  EXPECT_EQ(answer_status_bytes(big_body, source)->result_int(), 413u);
}

}  // namespace mil::orch
