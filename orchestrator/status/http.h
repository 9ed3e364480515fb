#pragma once
// The pure request handler of the status server: a request in, a response out, no sockets. The
// server (status/server.h) does the plumbing; tests call this directly too.
#include <functional>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

namespace mil::orch {

/// Returns the current status JSON document (GET /status.json); may throw (answered with 500).
using StatusSource = std::function<std::string()>;

using StatusRequest = boost::beast::http::request<boost::beast::http::string_body>;
using StatusResponse = boost::beast::http::response<boost::beast::http::string_body>;

/// GET or HEAD on "/" (the page) or "/status.json" (the snapshot from `source`; a query string is
/// ignored): 200. Another method: 405 with "Allow: GET, HEAD". Another target: 404. A throwing
/// `source`: 500. HEAD answers with GET's headers and Content-Length but no body. Never throws.
StatusResponse handle_status_request(const StatusRequest& request, const StatusSource& source);

/// A plain-text error response (`status`, the reason as body) for `version` (11 or 10).
StatusResponse status_error_response(boost::beast::http::status status, unsigned version,
                                     bool keep_alive);

}  // namespace mil::orch
