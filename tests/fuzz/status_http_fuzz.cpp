// Fuzz target: the status server's request handling from raw bytes: Beast's parser within the
// server's header and body limits, then handle_status_request, as one connection's first request.
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/http/field.hpp>

#include "orchestrator/status/http.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace http = boost::beast::http;
  const auto response = mil::orch::answer_status_bytes(
      mil::fuzz::as_text(data, size), [] { return std::string("{\"jobs\": []}"); });
  if (!response) return 0;
  const unsigned code = response->result_int();
  MIL_FUZZ_CHECK(code == 200 || code == 400 || code == 404 || code == 405 || code == 413 ||
                 code == 431 || code == 500);
  // The body never holds more than Content-Length says (HEAD sends the length and no body).
  const auto length = response->find(http::field::content_length);
  MIL_FUZZ_CHECK(length != response->end());
  MIL_FUZZ_CHECK(response->body().empty() ||
                 std::to_string(response->body().size()) == std::string(length->value()));
  return 0;
}
