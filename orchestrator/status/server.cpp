#include "orchestrator/status/server.h"

#include <array>
#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "orchestrator/status/http.h"

namespace mil::orch {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// Bytes a session keeps for a request (headers and the start of a body) before parsing it.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
/// After an error response, how much of the rest of a bad request is read and dropped before
/// closing, so that the client reads the response instead of a reset caused by its unread bytes.
constexpr std::size_t kDrainBytes = 256 * 1024;
constexpr std::chrono::milliseconds kDrainTime{1000};  ///< The same, in time.

/// What every session needs; shared so that sessions outliving a request keep it alive.
struct ServerConfig {
  StatusSource source;
  StatusServerOptions options;
};

/// One connection: read a request, answer it, repeat while keep-alive; timeouts on every step.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const ServerConfig> config)
      : stream_(std::move(socket)), buffer_(kReadBufferBytes), config_(std::move(config)) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(config_->options.header_limit));
    parser_->body_limit(config_->options.body_limit);
    stream_.expires_after(config_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == beast::error::timeout) {
      return close();  // the client left, or was too slow: nobody to answer
    }
    if (ec) {
      if (ec.category() != http::make_error_code(http::error::bad_method).category())
        return close();  // socket errors
      return write(status_error_response(status_for_parse_error(ec), 11, /*keep_alive=*/false));
    }
    write(handle_status_request(parser_->get(), config_->source));
  }

  void write(StatusResponse response) {
    response_ = std::move(response);
    stream_.expires_after(config_->options.write_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!self->response_->keep_alive()) return self->linger_close();
                        self->response_.reset();
                        self->read();
                      });
  }

  /// Half-closes, then reads and drops what the client still sends (bounded) before closing.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDrainTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ >= kDrainBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<const ServerConfig> config_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<StatusResponse> response_;  ///< Alive until its write completes.
  std::array<char, 4096> drain_buffer_{};
  std::size_t drained_ = 0;
};

/// Accepts connections and starts a Session for each, until its acceptor is closed.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, tcp::acceptor acceptor, std::shared_ptr<const ServerConfig> config)
      : io_(io), acceptor_(std::move(acceptor)), config_(std::move(config)) {}

  void accept() {
    acceptor_.async_accept(
        io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
          if (!ec) std::make_shared<Session>(std::move(socket), self->config_)->start();
          self->accept();  // a failed accept (e.g. out of descriptors) must not stop the server
        });
  }

  void close() {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::shared_ptr<const ServerConfig> config_;
};

asio::ip::address parse_address(const std::string& text) {
  if (text == "localhost") return asio::ip::make_address("127.0.0.1");
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(text, ec);
  if (ec)
    throw std::runtime_error("status server: '" + text +
                             "' is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or ::1)");
  return address;
}

}  // namespace

bool is_loopback_address(const std::string& address) {
  if (address == "localhost") return true;
  beast::error_code ec;
  const asio::ip::address parsed = asio::ip::make_address(address, ec);
  return !ec && parsed.is_loopback();
}

struct StatusServer::Impl {
  asio::io_context io{1};
  std::shared_ptr<Listener> listener;
  tcp::endpoint endpoint;
  std::function<void(const std::string&)> logger;
  std::atomic<bool> logged{false};
  std::thread thread;

  void log_once(const std::string& what) {
    if (logged.exchange(true)) return;
    try {
      if (logger) logger("status server: internal error (further ones are not logged): " + what);
    } catch (...) {
    }
  }
};

StatusServer::StatusServer(StatusSource source, StatusServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->logger = options.logger;
  const tcp::endpoint wanted(parse_address(options.bind_address), options.port);
  tcp::acceptor acceptor(impl_->io);
  beast::error_code ec;
  const auto fail = [&](const char* step) {
    throw std::runtime_error(std::string("status server: cannot ") + step + " " +
                             options.bind_address + ":" + std::to_string(options.port) + ": " +
                             ec.message());
  };
  acceptor.open(wanted.protocol(), ec);
  if (ec) fail("open a socket for");
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("set options on");
  acceptor.bind(wanted, ec);
  if (ec) fail("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
  impl_->endpoint = acceptor.local_endpoint(ec);
  if (ec) fail("read the port of");
  auto config = std::make_shared<ServerConfig>(ServerConfig{std::move(source), std::move(options)});
  impl_->listener = std::make_shared<Listener>(impl_->io, std::move(acceptor), std::move(config));
  impl_->listener->accept();
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] {
    for (;;) {  // an exception escaping a handler must not end the thread, nor reach the sweep
      try {
        impl->io.run();
        return;  // stopped
      } catch (const std::exception& e) {
        impl->log_once(e.what());
      } catch (...) {
        impl->log_once("unknown exception");
      }
    }
  });
}

StatusServer::~StatusServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->listener->close();
  // Pending handlers (and with them the sessions and their sockets) go with the io_context.
}

unsigned short StatusServer::port() const { return impl_->endpoint.port(); }

std::string StatusServer::url() const {
  const asio::ip::address address = impl_->endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return "http://" + host + ":" + std::to_string(impl_->endpoint.port()) + "/";
}

}  // namespace mil::orch
