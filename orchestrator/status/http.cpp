#include "orchestrator/status/http.h"

#include "orchestrator/status/page.h"

namespace mil::orch {
namespace http = boost::beast::http;

namespace {

StatusResponse make_response(http::status status, unsigned version, bool keep_alive,
                             const char* content_type, std::string body) {
  StatusResponse response{status, version};
  response.set(http::field::server, "mhim-status");
  response.set(http::field::content_type, content_type);
  response.set(http::field::cache_control, "no-store");
  response.set("X-Content-Type-Options", "nosniff");
  response.keep_alive(keep_alive);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

}  // namespace

StatusResponse status_error_response(http::status status, unsigned version, bool keep_alive) {
  return make_response(status, version, keep_alive, "text/plain; charset=utf-8",
                       std::to_string(static_cast<unsigned>(status)) + " " +
                           std::string(http::obsolete_reason(status)) + "\n");
}

StatusResponse handle_status_request(const StatusRequest& request, const StatusSource& source) {
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  try {
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const bool is_page = path == "/" || path == "/index.html";
    const bool is_status = path == "/status.json";
    if (!is_page && !is_status)
      return status_error_response(http::status::not_found, version, keep_alive);
    const http::verb method = request.method();
    if (method != http::verb::get && method != http::verb::head) {
      StatusResponse response =
          status_error_response(http::status::method_not_allowed, version, keep_alive);
      response.set(http::field::allow, "GET, HEAD");
      return response;
    }
    StatusResponse response = is_page
                                  ? make_response(http::status::ok, version, keep_alive,
                                                  "text/html; charset=utf-8", status_page_html())
                                  : make_response(http::status::ok, version, keep_alive,
                                                  "application/json", source ? source() : "{}");
    if (method == http::verb::head) {
      const std::size_t length = response.body().size();
      response.body().clear();
      response.content_length(length);  // what GET would send
    }
    return response;
  } catch (...) {
    try {
      return status_error_response(http::status::internal_server_error, version,
                                   /*keep_alive=*/false);
    } catch (...) {
      StatusResponse bare;  // out of memory: a bare 500 without headers or body
      bare.result(http::status::internal_server_error);
      return bare;
    }
  }
}

}  // namespace mil::orch
