#pragma once
// The pure request handler of the status server: a request in, a response out, no sockets. The
// server (status/server.h) does the plumbing; tests call this directly too.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "mil/core/reader_limits.h"

namespace mil::orch {

/// Returns the current status JSON document (GET /status.json); may throw (answered with 500).
using StatusSource = std::function<std::string()>;

using StatusRequest = boost::beast::http::request<boost::beast::http::string_body>;
using StatusResponse = boost::beast::http::response<boost::beast::http::string_body>;

/// GET or HEAD on "/" (the page) or "/status.json" (the snapshot from `source`; a query string is
/// ignored): 200. Another method: 405 with "Allow: GET, HEAD". Another target: 404. A throwing
/// `source`: 500. HEAD answers with GET's headers and Content-Length but no body. Never throws.
StatusResponse handle_status_request(const StatusRequest& request, const StatusSource& source);

/// The status answering a request that Beast's parser refused with `ec`: 431 when the request line
/// and headers exceed the header limit (or the read buffer), 413 when the body exceeds the body
/// limit, 400 for any other malformed request.
boost::beast::http::status status_for_parse_error(const boost::beast::error_code& ec);

/// Parses `bytes` as one request with Beast's parser, within `header_limit` and `body_limit`, and
/// answers it as the server does: handle_status_request for a whole request, an error response
/// (status_for_parse_error, connection closed) for a refused one, nothing when the bytes end
/// before the request does (the server waits for the rest). Never throws.
std::optional<StatusResponse> answer_status_bytes(
    std::string_view bytes, const StatusSource& source,
    std::size_t header_limit = kStatusHeaderLimitBytes,
    std::size_t body_limit = kStatusBodyLimitBytes);

/// A plain-text error response (`status`, the reason as body) for `version` (11 or 10).
StatusResponse status_error_response(boost::beast::http::status status, unsigned version,
                                     bool keep_alive);

}  // namespace mil::orch
