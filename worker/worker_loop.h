#pragma once
// The loop a worker rank runs during a sweep: ask rank 0 for a job, run it, send the result, repeat
// until told to stop (protocol.h).
// run_worker is the whole interface; its stages are the methods of the class WorkerLoop, private
// to worker_loop.cpp.
#include <atomic>
#include <functional>
#include <string>

#include <mpi.h>

#include "mil/core/specs.h"
#include "worker/device_placement.h"
#include "worker/supervise/supervised_job.h"

namespace mil::worker {

/// Runs jobs from the orchestrator on `comm` until it sends kStop. Returns the number of jobs run.
/// `log` receives progress lines and may be empty. Each job keeps its checkpoint and best model in
/// `<work_root>/<job id>/` (none when work_root is empty), so a rerun resumes a job that was
/// killed. Once `stop_requested` is set, the running job checkpoints and reports "interrupted", and
/// the worker tells rank 0 it is stopping instead of asking for more work. With `supervision`,
/// every job runs in a child process (supervised_job.h; work_root must then be set), else in this
/// process. Either way rank 0 gets a kHeartbeat about every report_interval while a job trains.
/// After a job shorter than 50 ms the worker asks for its next one ahead (protocol.h), and gives
/// that one back unstarted if the job before it runs for more than 0.5 s or a stop is requested.
/// Runs one job given its work folder ("" without a work root) and returns its result; replaces the
/// built-in body (run_job or run_supervised_job), e.g. with a no-op for `mhim bench orchestrator`.
/// A body that runs for long should call `still_running` now and then (it may give back a job taken
/// ahead). It may leave the result's job_id empty: the worker fills in the id rank 0 sent with the
/// job.
using JobBody = std::function<JobResult(const JobSpec& spec, const std::string& work_dir,
                                        const std::function<void()>& still_running)>;

/// `device`: the GPU this rank's jobs train on (device_placement.h; default the CPU), named in its
/// requests to rank 0 (protocol.h step 1) and given to every job (in a child: `--device`).
int run_worker(MPI_Comm comm, const std::function<void(const std::string&)>& log,
               const std::string& work_root, const std::atomic<bool>* stop_requested = nullptr,
               const SupervisionOptions* supervision = nullptr, const JobBody& body = {},
               const WorkerDevice& device = {});

}  // namespace mil::worker
