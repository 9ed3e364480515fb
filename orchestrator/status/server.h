#pragma once
// A read-only HTTP status server for a running sweep (GET / and /status.json), Boost.Beast over
// Asio on one background thread with its own io_context. The request handling is the pure
// handle_status_request (status/http.h); this is only the plumbing. Nothing here throws into the
// caller after construction: errors on the server's thread are caught and logged once.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "mil/core/reader_limits.h"

namespace mil::orch {

/// Returns the current status JSON document; called on the server's thread.
using StatusSource = std::function<std::string()>;

/// Where and how a StatusServer listens.
struct StatusServerOptions {
  std::string bind_address =
      "127.0.0.1";          ///< IPv4 or IPv6 literal; anything but loopback exposes the sweep.
  unsigned short port = 0;  ///< 0: an ephemeral port (see StatusServer::port()).
  /// A connection that has not sent a whole request this long after connecting (or after its last
  /// response) is closed, so slow or idle clients cannot hold it.
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};      ///< Same for sending a response.
  std::size_t header_limit = kStatusHeaderLimitBytes;  ///< Request line + headers; larger: 431.
  std::size_t body_limit = kStatusBodyLimitBytes;      ///< Request body, bytes; larger: 413.
  /// Receives the server's log lines (its first internal error, once); may be empty.
  std::function<void(const std::string&)> logger;
};

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_address(const std::string& address);

/// Listens from construction to destruction.
class StatusServer {
 public:
  /// Binds and listens on options.bind_address:options.port, then serves on a new thread. Throws
  /// std::runtime_error naming the address when it cannot bind (before any thread starts).
  StatusServer(StatusSource source, StatusServerOptions options);
  /// Stops serving, closes every connection and joins the thread.
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  /// The port it listens on (the ephemeral one when options.port was 0).
  unsigned short port() const;
  /// "http://ADDRESS:PORT/" (IPv6 addresses in brackets).
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mil::orch
