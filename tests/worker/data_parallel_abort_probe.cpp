// Not a gtest: a two-rank data-parallel job in which rank 1 fails in the middle of training (after
// the ranks agreed they were ready; a failure while preparing is shared instead, see
// DataParallelJob in data_parallel_test.cpp). Rank 0 waits in the next collective and would wait there
// forever; rank 1's failed job must abort the group instead.
// ctest passes when mpiexec exits non-zero well before its timeout (see tests/CMakeLists.txt).
#include <ATen/Parallel.h>

#include <cstdio>
#include <stdexcept>

#include "mil/synthetic.h"
#include "tests/support/temp_dir.h"
#include "worker/job_runner.h"
#include "worker/mpi_env.h"
#include "worker/mpi_gradient_sync.h"

int main(int argc, char** argv) {
  mil::worker::MpiEnvironment mpi(argc, argv);
  at::set_num_threads(1);
  mil::testing::TempDir dir;
  mil::SyntheticOptions o;
  o.bag_count = 30;
  o.feature_dim = 8;
  o.min_instances = 5;
  o.max_instances = 10;
  mil::write_synthetic_benchmark(dir / "s", o);
  mil::JobSpec spec;
  spec.dataset = mil::DatasetSpec{"s", "bags", dir / "s", 2, false};
  spec.train.epochs = 50;
  mil::worker::MpiGradientSync sync(mpi.comm());
  mil::worker::RunOptions options;
  options.sync = &sync;
  options.log = [&mpi](const std::string& line) { std::fprintf(stderr, "[rank %d] %s\n", mpi.rank(), line.c_str()); };
  options.on_progress = [&mpi](const mil::worker::JobProgress& p) {
    if (mpi.rank() == 1 && p.stage == "training" && p.bags_done >= 2) throw std::runtime_error("injected failure mid-epoch");
  };
  mil::worker::DatasetCache cache;
  const mil::JobResult result = mil::worker::run_job(spec, options, cache);
  // Reached only if the abort did not happen (or on rank 0 after a complete run, which is a failure too).
  std::fprintf(stderr, "[rank %d] job ended with status %s: the group was not aborted\n", mpi.rank(), result.status.c_str());
  return 0;
}
