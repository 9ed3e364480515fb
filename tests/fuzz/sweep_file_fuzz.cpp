// Fuzz target: the sweep file parser, YAML and JSON, with `--set` overrides, then validation and
// expansion into jobs. The input is the file's text, then each override ("key.path=value") after a
// NUL byte; the text is parsed both as YAML and as JSON.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "mil/core/reader_limits.h"
#include "orchestrator/sweep/file.h"
#include "orchestrator/sweep/sweep.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void parse(mil::orch::SweepDocument doc, const std::vector<std::string>& parts) {
  for (std::size_t i = 1; i < parts.size(); ++i) mil::orch::apply_override(doc.value, parts[i]);
  const mil::orch::SweepSpec sweep = mil::orch::parse_sweep(doc.value, doc.path, doc.lines);
  MIL_FUZZ_CHECK(!sweep.datasets.empty() && !sweep.models.empty() && !sweep.seeds.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> parts = mil::fuzz::split_at_nul(mil::fuzz::as_text(data, size));
  try {
    parse(mil::orch::parse_yaml_sweep(parts[0], "fuzz.yaml"), parts);
  } catch (const std::exception&) {
  }
  try {
    parse(mil::orch::parse_json_sweep(parts[0], "fuzz.json"), parts);
  } catch (const std::exception&) {
  }
  return 0;
}
