#pragma once
// The results directory of a sweep, written only by rank 0:
//   <dir>/results/<job_id>.json  one JobResult per job (authoritative; written atomically)
//   <dir>/journal.jsonl          one line per write, in order (an audit log; may lag a crash)
//   <dir>/jobs.json              the expected jobs of the current sweep (the manifest)
// write() is for one writer (rank 0); write_exclusive() is safe for several processes, on several
// hosts, sharing the directory (array mode, orchestrator/results/lock_queue.h).
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mil/core/specs.h"

namespace mil::orch {

/// The failed result of job `job_id` (`spec`), which never ran because `dependency`, its teacher
/// baseline, failed. Written in place of a result by the MPI orchestrator and by array workers.
JobResult dependency_failed_result(const JobSpec& spec, const std::string& job_id,
                                   const std::string& dependency);

/// One write of a group commit (ResultsStore::write_batch): a result (its file plus a journal
/// line), or a journal note alone (a state change with no result file: "retry", "interrupted").
struct StoreRecord {
  bool is_result = false;  ///< true: `result` is written; false: the note fields are journaled.
  JobResult result;        ///< The result (status ok, failed or quarantined) when is_result.
  std::string job_id;      ///< The note's job, when !is_result.
  std::string status;      ///< The note's status, when !is_result.
  std::string detail;      ///< The note's detail, when !is_result.

  static StoreRecord of_result(JobResult result);
  static StoreRecord of_note(std::string job_id, std::string status, std::string detail);
};

/// Where write_batch may stop early in tests that simulate a crash (ResultsStore::set_crash_hook).
enum class CommitStage {
  kTempsWritten,  ///< Every result's temp file is written, none synced.
  kTempsSynced,   ///< The temp files are durable, none renamed.
  kRenamed,       ///< One more result was renamed into place (called once per result).
  kFolderSynced,  ///< Every rename is durable; the journal lines are not appended yet.
  kJournaled,     ///< The journal lines are appended and synced: the batch is committed.
};

/// One sweep's results directory.
class ResultsStore {
 public:
  /// Creates `dir` and `dir`/results if missing; throws naming the path when it cannot.
  explicit ResultsStore(std::string dir);

  /// The directory given to the constructor.
  const std::string& dir() const;

  /// Atomically writes dir/results/<job_id>.json and appends {"job_id","status","config_id","time"}
  /// (and "detail": the error, unless ok) to dir/journal.jsonl (fsynced). Status must be ok, failed
  /// or quarantined. A failed or quarantined result may be replaced; an ok one never: throws.
  void write(const JobResult& result);
  /// Group commit: makes every record of `records` durable with a few syncs in all, not a few each.
  /// Writes each result to a temp file (dot-named: load_all skips it), syncs them all (sync_files),
  /// renames them into place, syncs the results folder once, then appends every record's journal
  /// line (in order) with one write and one sync. When it returns, all of them are durable; a crash
  /// before that leaves each result either absent or whole (never torn) and no journal line for any
  /// result not yet renamed, so a rerun runs the missing ones once. Same checks as write(); a
  /// failing check throws before anything is written. Not for several processes (write_exclusive
  /// is).
  void write_batch(const std::vector<StoreRecord>& records);
  /// For crash tests: called at each CommitStage of write_batch (may _exit the process). Empty =
  /// none.
  void set_crash_hook(std::function<void(CommitStage)> hook);
  /// Writes dir/results/<job_id>.json only when no result is there, atomically across processes and
  /// hosts: the file is written beside it and link()ed into place, which fails when one exists. A
  /// failed result is replaced by a newer one (moved aside first, so two racers cannot both win);
  /// an ok one never. Returns true and appends the journal line when this call wrote the result,
  /// false when another writer's result stays (nothing is journaled then).
  bool write_exclusive(const JobResult& result);
  /// Every dir/results/*.json (temp files ignored), sorted by job_id; a corrupt file throws naming
  /// it.
  std::vector<JobResult> load_all() const;
  /// Appends a journal line for a state change that has no result file, e.g. a job stopped on
  /// request
  /// ("interrupted": its checkpoint lives in the work dir and a rerun resumes it).
  void note(const std::string& job_id, const std::string& status, const std::string& detail);
  /// Ids of the results with status "ok".
  std::set<std::string> completed_ids() const;
  /// Ids of the results with status "quarantined".
  std::set<std::string> quarantined_ids() const;

  /// Atomically writes dir/jobs.json = [{"id": ..., "spec": ...}], the jobs the current sweep
  /// expects.
  void write_manifest(const std::vector<JobSpec>& jobs);
  /// The manifest's specs in order; empty when there is none. Throws when an id no longer matches
  /// its spec.
  std::vector<JobSpec> load_manifest() const;

 private:
  /// dir/results/<job_id>.json; throws when the id is not a plain file name.
  std::string result_path(const std::string& job_id) const;

  std::string dir_;                              ///< Root of the store.
  std::function<void(CommitStage)> crash_hook_;  ///< Tests only; see set_crash_hook.
};

/// What the journal says of one job, replayed line by line.
struct JournalEntry {
  std::string status;  ///< Status of its last line ("ok", "failed", "retry", "interrupted", ...).
  std::string detail;  ///< Detail (error) of its last line; empty when none.
  int lines = 0;       ///< Lines naming the job.
  int retries = 0;     ///< Lines with status "retry".
  int ok_lines = 0;    ///< Lines with status "ok" (more than 1 would mean a job finished twice).
  /// Details of the lines with status "hung" or "crashed" since its last "failed" or "quarantined"
  /// line: attempts lost inside worker ranks, each of which ended its run (orchestrator_loop.h), so
  /// they count across runs.
  std::vector<std::string> lost_attempts;
};

/// Calls `entry` with every line of the journal at `journal_path` that is a JSON object, in file
/// order, and returns how many other non-empty lines (torn by a crash, or malformed) it skipped. A
/// line longer than kMaxJournalLineBytes or nested deeper than kMaxJsonDepth is refused before it
/// is parsed, with an error naming the file, the line and the limit. A missing journal has no
/// lines.
std::size_t for_each_journal_entry(const std::string& journal_path,
                                   const std::function<void(const nlohmann::json&)>& entry);

/// Replays dir/journal.jsonl: job id -> its entry. A torn last line (crash mid-append) and
/// malformed lines are skipped and counted in `*skipped_lines` when given. Missing journal = empty
/// map.
std::map<std::string, JournalEntry> replay_journal(const std::string& journal_path,
                                                   std::size_t* skipped_lines = nullptr);

}  // namespace mil::orch
