#pragma once
// The heartbeat file of a supervised job: `mhim train --heartbeat FILE` rewrites it from the
// training loop (at most once a second, and at every stage change); the worker rank reads it to
// tell a slow job from a hung one and to report progress to rank 0. A job that stops calling
// on_progress (a hung computation) stops beating.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/job_progress.h"

namespace mil::worker {

/// One beat, as written to the file (JSON object with these keys).
struct Heartbeat {
  std::string job_id;      ///< The job the writer runs.
  std::string stage;       ///< JobProgress::stage.
  int epoch = 0;           ///< JobProgress::epoch.
  int epochs = 0;          ///< JobProgress::epochs.
  int bags_done = 0;       ///< JobProgress::bags_done.
  int bags_total = 0;      ///< JobProgress::bags_total.
  double eta_s = -1;       ///< Estimated seconds of training left; -1 = not known yet.
  double time = 0;         ///< Unix time of the beat (seconds).
  std::uint64_t beat = 0;  ///< Increases with every write; a reader compares it to see progress.
  long pid = 0;            ///< The writing process.
  long parent_pid =
      0;  ///< Its parent: the supervising worker rank, or with --child-start fork its zygote.
};

void to_json(nlohmann::json& j, const Heartbeat& h);
void from_json(const nlohmann::json& j, Heartbeat& h);

/// The heartbeat at `path`, or nothing when the file is missing or unreadable (not written yet).
std::optional<Heartbeat> read_heartbeat(const std::string& path);

/// Seconds of training left, extrapolated from the share of bag-steps done since `start_fraction`
/// (the share done when timing started) over `elapsed_s`; -1 while nothing has been timed.
double eta_seconds(const JobProgress& progress, double start_fraction, double elapsed_s);

/// Share of the job's training bag-steps done, in [0, 1].
double fraction_done(const JobProgress& progress);

/// Rewrites a heartbeat file from JobProgress, rate-limited. Writes are atomic (rename) but not
/// fsynced: the file is only meaningful while its writer lives.
class HeartbeatWriter {
 public:
  /// Beats go to `path`; at most one per `min_interval` unless the stage changes.
  HeartbeatWriter(std::string path, std::string job_id,
                  std::chrono::milliseconds min_interval = std::chrono::milliseconds(1000));
  /// Records `progress`; writes the file when due. Never throws (a full disk must not fail a job).
  void update(const JobProgress& progress);

 private:
  std::string path_;
  std::string job_id_;
  std::chrono::milliseconds min_interval_;
  std::chrono::steady_clock::time_point last_write_{};
  std::chrono::steady_clock::time_point timing_start_{};
  double start_fraction_ = -1;  ///< fraction_done() when training was first seen; -1 before.
  std::string last_stage_;
  std::uint64_t beat_ = 0;
};

}  // namespace mil::worker
