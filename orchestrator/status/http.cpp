#include "orchestrator/status/http.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

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

http::status status_for_parse_error(const boost::beast::error_code& ec) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  return http::status::bad_request;
}

std::optional<StatusResponse> answer_status_bytes(std::string_view bytes,
                                                  const StatusSource& source,
                                                  std::size_t header_limit,
                                                  std::size_t body_limit) {
  try {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(header_limit));
    parser.body_limit(body_limit);
    parser.eager(true);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!parser.is_done() && used < bytes.size()) {
      const std::size_t n =
          parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (ec == http::error::need_more) return std::nullopt;  // the server would read more
      if (ec) return status_error_response(status_for_parse_error(ec), 11, /*keep_alive=*/false);
      if (n == 0) return std::nullopt;
    }
    if (!parser.is_done()) return std::nullopt;
    return handle_status_request(parser.get(), source);
  } catch (...) {
    return std::nullopt;  // out of memory: the server would drop the connection
  }
}

}  // namespace mil::orch
