#include "orchestrator/results/store.h"

#include "mil/core/durable_file.h"
#include "mil/core/json_reader.h"
#include "mil/core/reader_limits.h"
#include "mil/core/runtime_info.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json parse_file(const std::string& path) { return read_json_file(path); }

/// JSON text that never throws on invalid UTF-8 (error messages may carry raw bytes from paths).
std::string dump(const json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

JobResult load_result(const std::string& path) {
  JobResult result;
  try {
    result = parse_file(path).get<JobResult>();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw std::runtime_error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
  if (result.job_id != fs::path(path).stem().string()) {
    throw std::runtime_error(path + ": job_id '" + result.job_id +
                             "' does not match the file name");
  }
  return result;
}

/// A name beside `path` that no other process, thread or host picks, and that folder readers skip.
std::string unique_sibling(const std::string& path, const std::string& kind) {
  std::random_device entropy;
  const fs::path target(path);
  return (target.parent_path() /
          ("." + target.filename().string() + "." + kind + "." + mil::host_name() + "." +
           std::to_string(::getpid()) + "." + std::to_string(entropy())))
      .string();
}

}  // namespace

JobResult dependency_failed_result(const JobSpec& spec, const std::string& job_id,
                                   const std::string& dependency) {
  JobResult failed;
  failed.job_id = job_id;
  failed.config_id = spec.config_id();
  failed.spec = spec;
  failed.status = "failed";
  failed.error = "not run: the job it depends on (" + dependency + ", its teacher baseline) failed";
  failed.runtime = {{"finished_at", mil::utc_timestamp()}};
  return failed;
}

ResultsStore::ResultsStore(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) throw std::runtime_error("results store: the directory name is empty");
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / "results", ec);
  if (ec) {
    throw std::runtime_error("results store '" + dir_ + "': cannot create " + dir_ +
                             "/results: " + ec.message());
  }
}

const std::string& ResultsStore::dir() const { return dir_; }

std::string ResultsStore::result_path(const std::string& job_id) const {
  if (job_id.empty() || job_id.front() == '.' || job_id.find_first_of("/\\") != std::string::npos ||
      job_id.find('\0') != std::string::npos) {
    throw std::runtime_error("results store '" + dir_ + "': job id '" + job_id +
                             "' cannot be a file name");
  }
  return (fs::path(dir_) / "results" / (job_id + ".json")).string();
}

StoreRecord StoreRecord::of_result(JobResult result) {
  StoreRecord record;
  record.is_result = true;
  record.result = std::move(result);
  return record;
}

StoreRecord StoreRecord::of_note(std::string job_id, std::string status, std::string detail) {
  StoreRecord record;
  record.job_id = std::move(job_id);
  record.status = std::move(status);
  record.detail = std::move(detail);
  return record;
}

void ResultsStore::set_crash_hook(std::function<void(CommitStage)> hook) {
  crash_hook_ = std::move(hook);
}

void ResultsStore::write(const JobResult& result) { write_batch({StoreRecord::of_result(result)}); }

void ResultsStore::write_batch(const std::vector<StoreRecord>& records) {
  const auto reached = [this](CommitStage stage) {
    if (crash_hook_) crash_hook_(stage);
  };
  // Check everything first, so a bad record fails the batch before any file changes.
  std::vector<std::string> finals, temps, contents, lines;
  std::set<std::string> batch_ids;
  const std::string timestamp = mil::utc_timestamp();
  for (const StoreRecord& record : records) {
    if (!record.is_result) {
      result_path(record.job_id);  // checks the id
      lines.push_back(dump(json{{"job_id", record.job_id},
                                {"status", record.status},
                                {"detail", record.detail},
                                {"time", timestamp}},
                           /*indent=*/-1));
      continue;
    }
    const JobResult& result = record.result;
    const std::string path = result_path(result.job_id);
    if (result.status != "ok" && result.status != "failed" && result.status != "quarantined") {
      throw std::runtime_error(path + ": status '" + result.status +
                               "' is not one of ok, failed, quarantined");
    }
    if (!batch_ids.insert(result.job_id).second) {
      throw std::runtime_error(path + ": job " + result.job_id + " has two results in one batch");
    }
    if (fs::exists(path) && load_result(path).ok()) {
      throw std::runtime_error(path + ": job " + result.job_id +
                               " already has an ok result; refusing to overwrite it");
    }
    finals.push_back(path);
    temps.push_back(temporary_path_for(path));
    contents.push_back(dump(json(result), /*indent=*/2) + "\n");
    json line = {{"job_id", result.job_id},
                 {"status", result.status},
                 {"config_id", result.config_id},
                 {"time", timestamp}};
    if (!result.ok()) line["detail"] = result.error;
    lines.push_back(dump(line, /*indent=*/-1));
  }
  try {
    for (std::size_t i = 0; i < temps.size(); ++i) write_file_unsynced(temps[i], contents[i]);
    reached(CommitStage::kTempsWritten);
    sync_files(temps);
    reached(CommitStage::kTempsSynced);
    for (std::size_t i = 0; i < temps.size(); ++i) {
      if (::rename(temps[i].c_str(), finals[i].c_str()) != 0)
        throw_errno("cannot rename '" + temps[i] + "' to", finals[i]);
      reached(CommitStage::kRenamed);
    }
  } catch (...) {
    for (const auto& temp : temps) ::unlink(temp.c_str());  // those renamed already are gone: no-op
    throw;
  }
  if (!finals.empty()) sync_directory((fs::path(dir_) / "results").string());
  reached(CommitStage::kFolderSynced);
  append_lines_durably((fs::path(dir_) / "journal.jsonl").string(), lines);
  reached(CommitStage::kJournaled);
}

bool ResultsStore::write_exclusive(const JobResult& result) {
  const std::string path = result_path(result.job_id);
  if (result.status != "ok" && result.status != "failed") {
    throw std::runtime_error(path + ": status '" + result.status + "' is not one of ok, failed");
  }
  const std::string temp = unique_sibling(path, "new");
  write_new_file_synced(temp, dump(json(result), /*indent=*/2) + "\n");
  bool written = false;
  try {
    // link() creates `path` only when nothing is there, atomically also on NFS. A failed result in
    // the way is renamed aside first: only one racer's rename finds it, so at most one link can
    // follow it.
    constexpr int kMaxRaces = 16;  // each round is lost only to a writer that made progress
    for (int round = 0; round < kMaxRaces && !written; ++round) {
      if (::link(temp.c_str(), path.c_str()) == 0) {
        written = true;
        break;
      }
      if (errno != EEXIST) throw_errno("cannot link '" + temp + "' to", path);
      JobResult existing;
      try {
        existing = load_result(path);
      } catch (const std::exception&) {
        if (!fs::exists(path)) continue;  // moved aside by a racer between link() and the read
        throw;
      }
      if (existing.ok()) break;  // an ok result is final
      const std::string aside = unique_sibling(path, "replaced");
      if (::rename(path.c_str(), aside.c_str()) != 0) {
        if (errno == ENOENT) continue;  // a racer moved it first
        throw_errno("cannot move the failed result aside to '" + aside + "' from", path);
      }
      // Between the read and the rename a racer may have put an ok result there: put it back.
      if (parse_file(aside).value("status", "") == "ok") {
        if (::link(aside.c_str(), path.c_str()) != 0 && errno != EEXIST)
          throw_errno("cannot restore", path);
        ::unlink(aside.c_str());
        break;
      }
      ::unlink(aside.c_str());
    }
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  ::unlink(temp.c_str());
  if (!written) return false;
  sync_directory((fs::path(dir_) / "results").string());
  const json line = {{"job_id", result.job_id},
                     {"status", result.status},
                     {"config_id", result.config_id},
                     {"time", mil::utc_timestamp()}};
  append_line_durably((fs::path(dir_) / "journal.jsonl").string(), dump(line, /*indent=*/-1));
  return true;
}

void ResultsStore::note(const std::string& job_id, const std::string& status,
                        const std::string& detail) {
  write_batch({StoreRecord::of_note(job_id, status, detail)});
}

std::vector<JobResult> ResultsStore::load_all() const {
  const fs::path folder = fs::path(dir_) / "results";
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) {
    throw std::runtime_error("results store: cannot list '" + folder.string() +
                             "': " + ec.message());
  }
  std::vector<JobResult> results;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.front() == '.' || entry.path().extension() != ".json") {
      continue;
    }
    results.push_back(load_result(entry.path().string()));
  }
  std::sort(results.begin(), results.end(),
            [](const JobResult& a, const JobResult& b) { return a.job_id < b.job_id; });
  return results;
}

std::set<std::string> ResultsStore::completed_ids() const {
  std::set<std::string> ids;
  for (const auto& result : load_all()) {
    if (result.ok()) ids.insert(result.job_id);
  }
  return ids;
}

std::set<std::string> ResultsStore::quarantined_ids() const {
  std::set<std::string> ids;
  for (const auto& result : load_all()) {
    if (result.status == "quarantined") ids.insert(result.job_id);
  }
  return ids;
}

std::size_t for_each_journal_entry(const std::string& journal_path,
                                   const std::function<void(const json&)>& entry) {
  std::ifstream in(journal_path, std::ios::binary);
  std::size_t skipped = 0;
  std::string line;
  std::streambuf* buffer = in.rdbuf();
  const auto eof = std::char_traits<char>::eof();
  for (std::size_t number = 1; in.is_open(); ++number) {
    line.clear();
    int c = buffer->sbumpc();
    if (c == eof) break;
    for (; c != eof && c != '\n'; c = buffer->sbumpc()) {
      if (line.size() >= kMaxJournalLineBytes) {
        throw std::runtime_error(
            journal_path + ":" + std::to_string(number) + ": " +
            over_limit("the line's length", kMaxJournalLineBytes, "kMaxJournalLineBytes"));
      }
      line.push_back(char(c));
    }
    if (line.empty()) continue;
    if (json_nests_deeper_than(line, kMaxJsonDepth)) {
      throw std::runtime_error(
          journal_path + ":" + std::to_string(number) + ": " +
          over_limit("the nesting of JSON arrays and objects", kMaxJsonDepth, "kMaxJsonDepth"));
    }
    const json parsed = json::parse(line, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object()) {
      ++skipped;
      continue;
    }
    entry(parsed);
  }
  return skipped;
}

std::map<std::string, JournalEntry> replay_journal(const std::string& journal_path,
                                                   std::size_t* skipped_lines) {
  std::map<std::string, JournalEntry> entries;
  std::size_t skipped = for_each_journal_entry(journal_path, [&](const json& entry) {
    const auto id = entry.find("job_id");
    const auto status = entry.find("status");
    if (id == entry.end() || !id->is_string() || status == entry.end() || !status->is_string()) {
      ++skipped;
      return;
    }
    JournalEntry& e = entries[id->get<std::string>()];
    e.status = status->get<std::string>();
    const auto detail = entry.find("detail");
    e.detail =
        detail != entry.end() && detail->is_string() ? detail->get<std::string>() : std::string();
    ++e.lines;
    e.retries += e.status == "retry";
    e.ok_lines += e.status == "ok";
    if (e.status == "failed" || e.status == "quarantined") e.lost_attempts.clear();
    if (e.status == "hung" || e.status == "crashed") e.lost_attempts.push_back(e.detail);
  });
  if (skipped_lines != nullptr) *skipped_lines = skipped;
  return entries;
}

void ResultsStore::write_manifest(const std::vector<JobSpec>& jobs) {
  json manifest = json::array();
  for (const auto& job : jobs) manifest.push_back({{"id", job.id()}, {"spec", job}});
  write_file_atomic((fs::path(dir_) / "jobs.json").string(), dump(manifest, /*indent=*/2) + "\n");
}

std::vector<JobSpec> ResultsStore::load_manifest() const {
  const std::string path = (fs::path(dir_) / "jobs.json").string();
  if (!fs::exists(path)) return {};
  const json manifest = parse_file(path);
  if (!manifest.is_array()) {
    throw std::runtime_error(path + ": expected a JSON array of {id, spec}");
  }
  std::vector<JobSpec> jobs;
  for (std::size_t i = 0; i < manifest.size(); ++i) {
    const std::string where = path + "[" + std::to_string(i) + "]";
    try {
      require_known_keys(manifest[i], {"id", "spec"}, where);
      const std::string id = manifest[i].at("id").get<std::string>();
      JobSpec spec = manifest[i].at("spec").get<JobSpec>();
      if (spec.id() != id) {
        throw std::runtime_error(
            "id '" + id + "' does not match its spec (now '" + spec.id() +
            "'); it was written by another version: rerun the sweep to rewrite it");
      }
      jobs.push_back(std::move(spec));
    } catch (const std::exception& e) {
      const std::string what = e.what();
      throw std::runtime_error(what.rfind(where, 0) == 0 ? what : where + ": " + what);
    }
  }
  return jobs;
}

}  // namespace mil::orch
