#pragma once
// clang-format off
// The rank-0 <-> worker protocol. Payloads are JSON text (JobSpec, JobResult); tags say what they are.
// Each side sends what the other lacks: a job comes with its id (the worker does not hash the spec
// again), a result comes without its spec (rank 0 has it).
//
//   1. worker -> 0   kRequestJob  {"rank": r, "host": "...",       a worker is idle; with "stopping"
//                                 "pid": p, ["stopping": true]}     it was told to stop and wants kStop
//                                                                   (pid: rank 0 checks on a stop whether
//                                                                   the rank died, orchestrator_loop.cpp)
//                                 ["device": "host:gpu",            a GPU-packed sweep (--jobs-per-gpu): the
//                                  "device_memory": bytes]          worker's GPU and its memory, for rank 0's
//                                                                   memory guard (schedule/device_memory.h)
//   2. 0 -> worker   kJob         {"job_id": id, "spec": JobSpec}   run it (JobTicket, job_messages.h)
//                                 or {"spec": JobSpec, "group_      run it on a group of R > 1 workers
//                                 ranks": [r...], "group_tag": t}   (job_messages.h): every member builds the
//                                                                   group's communicator with
//                                                                   MPI_Comm_create_group(tag t), trains
//                                                                   in its own process, and reports
//                    kWait        {"retry_ms": t}                   nothing ready yet; ask again after t ms
//                    kStop        {}                                the sweep is over; exit the loop
//   3. worker -> 0   kHeartbeat   {"job_id": id, "epoch": e,        zero or more while the job of step 2
//                                  "epochs": n, "eta_s": s}         runs, about every 2 s (eta_s -1 =
//                                                                   unknown); never answered
//   4. worker -> 0   kResult      JobResult JSON without "spec"     after every kJob: ok, failed, or
//                                                                   interrupted (stop requested; resumable);
//                                                                   then the worker goes back to step 1
//
// Asking ahead. A worker whose last job was short (a sweep of tiny jobs, where the round trip would
// idle both sides) may send, right after a one-rank kJob and before running it, up to D more
//      worker -> 0   kRequestJob  {"rank", "host", "pid", "ahead": true}
// where D (1 to 16, worker_loop.cpp) grows as its last job was shorter, so rank 0's answers travel while
// the worker runs what it holds. Rank 0 answers each with kJob (a one-rank job: it never holds an
// asking-ahead worker for a group, and no job is taken ahead while a group forms) or kWait (nothing
// ahead; once it has no job left the worker asks again as usual, ignoring retry_ms), never kStop. The
// worker runs the jobs it holds in the order received and reports each with one kResult, in that
// order, except those it gives back unstarted (its current job runs long, or a stop was requested):
//      worker -> 0   kReturnJob   {"job_id": id}                    back to pending; no attempt used
// A worker holds at most D + 1 jobs, counting ahead requests not yet answered.
//
// A stop request (SIGTERM, SIGINT or SIGUSR1 on any rank; mpirun forwards SIGUSR1 to every rank) makes
// rank 0 answer every further kRequestJob with kStop.
//
// Rank 0 may answer a kRequestJob late: a worker held for a group job (scheduler.h) gets its kJob
// when enough workers are idle, or kStop when a stop is requested meanwhile. Every member of a group
// sends its own kResult; rank 0 records the job once, from the group's first rank (or from the first
// member that reports a failure), and every member is free again once it has reported.
//
// Rank 0 answers every kRequestJob exactly once, and every worker sends exactly one kResult per kJob,
// so neither side ever waits for a message that will not come while both are alive (a kReturnJob stands
// in for the kResult of a job given back). Rank 0 receives
// with any tag and records a kHeartbeat whenever it comes (it needs no job bookkeeping; a beat naming
// a job the worker no longer holds is only logged). A worker's frames arrive in the order sent (MPI
// non-overtaking), so all its heartbeats precede its kResult and none is left unread after kStop.
// clang-format on

namespace mil::comm {

enum class MsgTag : int {
  kRequestJob = 1,
  kJob = 2,
  kWait = 3,
  kStop = 4,
  kResult = 5,
  kHeartbeat = 6,
  kReturnJob = 7,
};

/// Rank that runs the orchestrator in every sweep.
constexpr int kOrchestratorRank = 0;

}  // namespace mil::comm
