// The status server over real TCP connections on 127.0.0.1 (a raw socket client, so the tests see
// exactly the bytes the server sends), and its pure request handler.
#include "orchestrator/status/server.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "orchestrator/status/board.h"
#include "orchestrator/status/http.h"
#include "orchestrator/status/page.h"

namespace mil::orch {
namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;

/// A connected TCP client socket, closed on destruction.
class Client {
 public:
  explicit Client(unsigned short port, const char* address = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, address, &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += std::size_t(n);
    }
  }
  /// Reads one response: headers, then Content-Length bytes of body (none when `head`), or until
  /// EOF. Gives up after `timeout`; returns what it has.
  std::string read_response(bool head = false, std::chrono::milliseconds timeout = 5000ms) {
    std::string data;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t length = 0;
        const std::size_t at = lower(data.substr(0, end)).find("content-length:");
        if (at != std::string::npos) length = std::stoul(data.substr(at + 15));
        if (head || data.size() >= end + 4 + length) return data;
      }
      if (!wait_readable(deadline)) return data;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return data;
      data.append(chunk, std::size_t(n));
    }
  }
  /// True when the server closed the connection (EOF or reset) within `timeout`.
  bool closed_by_server(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!wait_readable(deadline)) return false;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return true;
    }
  }

 private:
  static std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool wait_readable(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, int(left.count())) > 0;
  }
  int fd_ = -1;
  bool connected_ = false;
};

/// A parsed response: status code, lower-cased header names, body.
struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};

Reply parse(const std::string& raw) {
  Reply r;
  const std::size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  std::size_t line = raw.find("\r\n") + 2;
  while (line < end) {
    const std::size_t next = raw.find("\r\n", line);
    const std::string header = raw.substr(line, next - line);
    const std::size_t colon = header.find(':');
    std::string name = header.substr(0, colon);
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = header.substr(header.find_first_not_of(' ', colon + 1));
    line = next + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

Reply exchange(unsigned short port, const std::string& request, bool head = false) {
  Client client(port);
  EXPECT_TRUE(client.connected());
  client.send(request);
  return parse(client.read_response(head));
}

std::string get(const std::string& target, const std::string& method = "GET") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

/// A board with known counts: 7 jobs; 1 skipped, 2 done, 1 failed, 1 running, 2 pending.
std::unique_ptr<StatusBoard> known_board(const std::string& name = "server-test") {
  StatusBoardOptions o;
  o.sweep_name = name;
  auto board = std::make_unique<StatusBoard>(o);
  std::vector<StatusJobInfo> jobs;
  for (int i = 0; i < 7; ++i)
    jobs.push_back({"job" + std::to_string(i), "abmil", "synth", i % 5, 7});
  board->sweep_started(jobs, {"job0"});
  board->worker_seen(1, "node-a");
  board->worker_seen(2, "node-b");
  for (const char* id : {"job1", "job2", "job3"}) {
    board->job_assigned(id, 1);
    board->job_finished(id, std::string(id) == "job3" ? "failed" : "ok",
                        "loading fold 3: <b>missing</b> x.pt");
  }
  board->job_assigned("job4", 2);
  return board;
}

StatusServerOptions quick_options() {
  StatusServerOptions o;
  o.read_timeout = 300ms;
  return o;
}

/// The server and the board it shows.
struct Served {
  std::unique_ptr<StatusBoard> board = known_board();
  StatusServer server{[b = board.get()] { return to_status_json(b->snapshot()); }, quick_options()};
};

TEST(StatusServer, ServesStatusJsonWithJsonContentTypeAndTheBoardsCounts) {
  Served s;
  const Reply r = exchange(s.server.port(), get("/status.json"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("cache-control"), "no-store");
  EXPECT_EQ(std::stoul(r.headers.at("content-length")), r.body.size());
  const nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j.at("sweep").at("name"), "server-test");
  EXPECT_EQ(j.at("counts"), (nlohmann::json{{"total", 7},
                                            {"pending", 2},
                                            {"running", 1},
                                            {"committing", 0},
                                            {"done", 2},
                                            {"failed", 1},
                                            {"pruned", 0},
                                            {"quarantined", 0},
                                            {"skipped", 1}}));
  EXPECT_EQ(j.at("running")[0].at("host"), "node-b");
}

TEST(StatusServer, QueryStringIsIgnored) {
  Served s;
  EXPECT_EQ(exchange(s.server.port(), get("/status.json?t=123")).status, 200);
}

TEST(StatusServer, ServesSelfContainedHtmlPageAtRoot) {
  Served s;
  const Reply r = exchange(s.server.port(), get("/"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.body, status_page_html());
  EXPECT_NE(r.body.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_NE(r.body.find("fetch(\"status.json\""), std::string::npos);
  EXPECT_NE(r.body.find("setTimeout(tick, 2000)"), std::string::npos);
  // No external resources: nothing is loaded from another origin or file.
  for (const char* external : {"http://", "https://", "src=", "href=", "@import", "url("}) {
    EXPECT_EQ(r.body.find(external), std::string::npos) << external;
  }
}

TEST(StatusServer, HeadAnswersGetsHeadersWithoutBody) {
  Served s;
  const Reply full = exchange(s.server.port(), get("/"));
  const Reply head = exchange(s.server.port(), get("/", "HEAD"), /*head=*/true);
  ASSERT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(std::stoul(head.headers.at("content-length")), full.body.size());
  EXPECT_TRUE(head.body.empty());
  const Reply json_head = exchange(s.server.port(), get("/status.json", "HEAD"), /*head=*/true);
  EXPECT_EQ(json_head.status, 200);
  EXPECT_EQ(json_head.headers.at("content-type"), "application/json");
  EXPECT_GT(std::stoul(json_head.headers.at("content-length")), 100u);
  EXPECT_TRUE(json_head.body.empty());
}

TEST(StatusServer, UnknownTargetIs404) {
  Served s;
  EXPECT_EQ(exchange(s.server.port(), get("/admin")).status, 404);
  EXPECT_EQ(exchange(s.server.port(), get("/status.json/../../etc/passwd")).status, 404);
}

TEST(StatusServer, PostAndDeleteAre405WithAllowHeader) {
  Served s;
  const Reply post = exchange(
      s.server.port(),
      "POST /status.json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers.at("allow"), "GET, HEAD");
  EXPECT_EQ(exchange(s.server.port(), get("/", "DELETE")).status, 405);
}

TEST(StatusServer, GarbageIs400AndClosesTheConnection) {
  Served s;
  Client client(s.server.port());
  client.send("\x16\x03\x01 this is not http\r\n\r\n");
  const Reply r = parse(client.read_response());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers.at("connection"), "close");
  EXPECT_TRUE(client.closed_by_server(3000ms));
  EXPECT_EQ(exchange(s.server.port(), "GET / HTTP/1.1\r\nHost x\r\n\r\n").status,
            400);  // a header without ':'
}

TEST(StatusServer, OversizeHeaderIs431) {
  Served s;
  const std::string big(20000, 'a');
  const Reply r =
      exchange(s.server.port(), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  EXPECT_EQ(r.status, 431);
}

TEST(StatusServer, OversizeBodyIs413BeforeTheBodyIsSent) {
  Served s;
  const Reply r = exchange(
      s.server.port(), "POST /status.json HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
  EXPECT_EQ(r.status, 413);
}

TEST(StatusServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  Served s;
  Client client(s.server.port());
  for (int i = 0; i < 3; ++i) {
    client.send("GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n");
    const Reply r = parse(client.read_response());
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
  }
}

TEST(StatusServer, SlowClientIsDisconnectedAfterReadTimeout) {
  Served s;  // read_timeout 300 ms
  Client slow(s.server.port());
  slow.send("GET /status.json HTTP/1.1\r\nHo");  // and then nothing
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(slow.closed_by_server(5000ms));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 3000ms);
}

TEST(StatusServer, KeepsServingWhileAndAfterBadClientsMisbehave) {
  Served s;
  Client idle(s.server.port());  // holds a connection open without sending anything
  Client half(s.server.port());
  half.send("GET / HTTP/1.1\r\n");
  {
    Client rude(s.server.port());  // connects and leaves at once
  }
  EXPECT_EQ(exchange(s.server.port(), "NOT HTTP AT ALL\r\n\r\n").status, 400);
  EXPECT_EQ(exchange(s.server.port(), get("/status.json")).status,
            200);  // while idle and half wait
  EXPECT_TRUE(idle.closed_by_server(3000ms));
  EXPECT_EQ(exchange(s.server.port(), get("/")).status, 200);
}

TEST(StatusServer, ThrowingSourceGives500AndServerKeepsServing) {
  std::atomic<int> calls{0};
  StatusServer server(
      [&calls]() -> std::string {
        if (calls++ == 0) throw std::runtime_error("snapshot failed");
        return "{\"ok\":true}";
      },
      quick_options());
  EXPECT_EQ(exchange(server.port(), get("/status.json")).status, 500);
  const Reply r = exchange(server.port(), get("/status.json"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"ok\":true}");
}

TEST(StatusServer, BindsToLoopbackOnlyByDefault) {
  const StatusServerOptions defaults;
  EXPECT_EQ(defaults.bind_address, "127.0.0.1");
  Served s;
  EXPECT_EQ(s.server.url(), "http://127.0.0.1:" + std::to_string(s.server.port()) + "/");
  // This machine's own non-loopback IPv4 addresses must not reach it.
  ifaddrs* list = nullptr;
  ASSERT_EQ(::getifaddrs(&list), 0);
  int checked = 0;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    if (is_loopback_address(text)) continue;
    Client outside(s.server.port(), text);
    EXPECT_FALSE(outside.connected()) << "reachable on " << text;
    ++checked;
  }
  ::freeifaddrs(list);
  if (checked == 0)
    std::printf("no non-loopback IPv4 address here; only the bind address was checked\n");
}

TEST(StatusServer, PortInUseThrowsNamingTheAddress) {
  Served s;
  StatusServerOptions o;
  o.port = s.server.port();
  try {
    StatusServer second([] { return std::string("{}"); }, o);
    FAIL() << "expected a bind error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(o.port)), std::string::npos)
        << e.what();
  }
}

TEST(StatusServer, NonAddressBindIsRejected) {
  StatusServerOptions o;
  o.bind_address = "example.org";
  EXPECT_THROW(StatusServer([] { return std::string("{}"); }, o), std::runtime_error);
}

TEST(StatusServer, LoopbackAddressesAreRecognised) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.8.9.10"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("localhost"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0"));
  EXPECT_FALSE(is_loopback_address("10.1.2.3"));
  EXPECT_FALSE(is_loopback_address("::"));
  EXPECT_FALSE(is_loopback_address("not an address"));
}

TEST(StatusServer, AnswersManySequentialRequestsAndReportsRate) {
  // Bounded load on loopback: 300 requests, one connection each, against a 1,000-job board.
  StatusBoard board;
  std::vector<StatusJobInfo> jobs;
  for (int i = 0; i < 1000; ++i)
    jobs.push_back({"job" + std::to_string(i), "mhim", "camelyon", i % 5, 2021});
  board.sweep_started(jobs, {});
  StatusServer server([&board] { return to_status_json(board.snapshot()); }, quick_options());
  const int n = 300;
  int ok = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) ok += exchange(server.port(), get("/status.json")).status == 200;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ok, n);
  std::printf("%d GET /status.json (1,000 jobs) in %.2f s: %.0f requests/s\n", n, seconds,
              n / seconds);
  RecordProperty("requests_per_s", int(n / seconds));
}

TEST(StatusHandler, HttpTenRequestGetsHttpTenResponse) {
  StatusRequest request{http::verb::get, "/status.json", 10};
  const StatusResponse response = handle_status_request(request, [] { return std::string("{}"); });
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response.version(), 10u);
  EXPECT_EQ(response.body(), "{}");
}

}  // namespace
}  // namespace mil::orch
