// Fuzz target: JobSpec and JobResult from JSON (what job.json, result files and workers' reports
// hold), through the bounded JSON reader. A spec or result that reads must survive a round trip:
// written back and read again, it is the same job.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "mil/core/json_reader.h"
#include "mil/core/specs.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json j;
  try {
    j = mil::parse_json_bounded(mil::fuzz::as_text(data, size), "fuzz.json");
  } catch (const std::exception&) {
    return 0;
  }
  try {
    const mil::JobSpec spec = j.get<mil::JobSpec>();
    const mil::JobSpec again = nlohmann::json(spec).get<mil::JobSpec>();
    MIL_FUZZ_CHECK(again.id() == spec.id());
  } catch (const std::exception&) {
  }
  try {
    const mil::JobResult result = j.get<mil::JobResult>();
    const mil::JobResult again = nlohmann::json(result).get<mil::JobResult>();
    MIL_FUZZ_CHECK(again.job_id == result.job_id && again.status == result.status);
    MIL_FUZZ_CHECK(again.spec.id() == result.spec.id());
  } catch (const std::exception&) {
  }
  try {
    mil::result_from_json_without_spec(j, mil::JobSpec{});
  } catch (const std::exception&) {
  }
  return 0;
}
