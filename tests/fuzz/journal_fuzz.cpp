// Fuzz target: replaying a results journal (journal.jsonl), as rank 0 does when a sweep resumes.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "orchestrator/results/store.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path =
      mil::fuzz::write_scratch("journal.jsonl", mil::fuzz::as_text(data, size));
  try {
    std::size_t skipped = 0;
    for (const auto& [id, entry] : mil::orch::replay_journal(path, &skipped)) {
      MIL_FUZZ_CHECK(entry.lines >= 1 && entry.ok_lines <= entry.lines &&
                     entry.retries <= entry.lines);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
