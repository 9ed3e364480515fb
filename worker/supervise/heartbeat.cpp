#include "worker/supervise/heartbeat.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "mil/core/json_reader.h"

namespace mil::worker {

void to_json(nlohmann::json& j, const Heartbeat& h) {
  j = nlohmann::json{{"job_id", h.job_id},
                     {"stage", h.stage},
                     {"epoch", h.epoch},
                     {"epochs", h.epochs},
                     {"bags_done", h.bags_done},
                     {"bags_total", h.bags_total},
                     {"eta_s", h.eta_s},
                     {"time", h.time},
                     {"beat", h.beat},
                     {"pid", h.pid},
                     {"parent_pid", h.parent_pid}};
}

namespace {

/// Field `key` as an integer of type T: nlohmann's get<T>() casts any number, and a float beyond
/// T's range (e.g. a pid of 2.9e19, which JSON parses as a double) is undefined behaviour.
template <typename T>
T integer_field(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = j.at(key);
  const auto max = std::uint64_t(std::numeric_limits<T>::max());
  bool fits = false;
  if (v.is_number_unsigned()) {  // nlohmann's type for every integer >= 0
    fits = v.get<std::uint64_t>() <= max;
  } else if (v.is_number_integer()) {
    fits = v.get<std::int64_t>() >= std::int64_t(std::numeric_limits<T>::min());
  }
  if (!fits)
    throw std::runtime_error(std::string("heartbeat: '") + key + "' is not an integer in range");
  return v.get<T>();
}

double number_field(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number())
    throw std::runtime_error(std::string("heartbeat: '") + key + "' is not a number");
  return v.get<double>();
}

}  // namespace

void from_json(const nlohmann::json& j, Heartbeat& h) {
  j.at("job_id").get_to(h.job_id);
  j.at("stage").get_to(h.stage);
  h.epoch = integer_field<int>(j, "epoch");
  h.epochs = integer_field<int>(j, "epochs");
  h.bags_done = integer_field<int>(j, "bags_done");
  h.bags_total = integer_field<int>(j, "bags_total");
  h.eta_s = number_field(j, "eta_s");
  h.time = number_field(j, "time");
  h.beat = integer_field<std::uint64_t>(j, "beat");
  h.pid = integer_field<long>(j, "pid");
  h.parent_pid = integer_field<long>(j, "parent_pid");
}

std::optional<Heartbeat> read_heartbeat(const std::string& path) {
  try {
    return read_json_file(path).get<Heartbeat>();
  } catch (const std::exception&) {  // missing, unreadable, too large, or not a heartbeat
    return std::nullopt;
  }
}

double fraction_done(const JobProgress& p) {
  if (p.epochs <= 0) return 0.0;
  if (p.stage == "evaluating") return 1.0;
  if (p.bags_total <= 0) return 0.0;
  const double steps = double(p.epoch) * p.bags_total + p.bags_done;
  return std::min(1.0, steps / (double(p.epochs) * p.bags_total));
}

double eta_seconds(const JobProgress& p, double start_fraction, double elapsed_s) {
  const double done = fraction_done(p);
  if (start_fraction < 0 || done <= start_fraction || elapsed_s <= 0) return -1.0;
  return elapsed_s * (1.0 - done) / (done - start_fraction);
}

HeartbeatWriter::HeartbeatWriter(std::string path, std::string job_id,
                                 std::chrono::milliseconds min_interval)
    : path_(std::move(path)), job_id_(std::move(job_id)), min_interval_(min_interval) {}

void HeartbeatWriter::update(const JobProgress& progress) {
  const auto now = std::chrono::steady_clock::now();
  if (progress.stage == "training" && start_fraction_ < 0) {
    start_fraction_ = fraction_done(progress);
    timing_start_ = now;
  }
  if (progress.stage == last_stage_ && beat_ > 0 && now - last_write_ < min_interval_) return;
  last_stage_ = progress.stage;
  last_write_ = now;
  Heartbeat h;
  h.job_id = job_id_;
  h.stage = progress.stage;
  h.epoch = progress.epoch;
  h.epochs = progress.epochs;
  h.bags_done = progress.bags_done;
  h.bags_total = progress.bags_total;
  h.eta_s = eta_seconds(progress, start_fraction_,
                        std::chrono::duration<double>(now - timing_start_).count());
  h.time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  h.beat = ++beat_;
  h.pid = long(::getpid());
  h.parent_pid = long(::getppid());
  const std::string temporary = path_ + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << nlohmann::json(h).dump() << '\n';
    if (!out) return;
  }
  std::rename(temporary.c_str(), path_.c_str());
}

}  // namespace mil::worker
