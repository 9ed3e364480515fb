// Fuzz target: a supervised job's heartbeat file, as its worker rank reads it. Contract: a
// heartbeat or nothing, never an exception.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_support.h"
#include "worker/supervise/heartbeat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path =
      mil::fuzz::write_scratch("heartbeat.json", mil::fuzz::as_text(data, size));
  const auto beat = mil::worker::read_heartbeat(path);
  if (beat) {
    static volatile double sink;
    sink = beat->time + double(beat->beat);
  }
  return 0;
}
