// Runs under mpiexec -n 2 (ctest does this): data-parallel training over the MPI backend.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "comm/mpi_env.h"
#include "mil/data/splits.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/synthetic/generator.h"
#include "mil/train/trainer.h"
#include "tests/support/mpi_gtest.h"
#include "tests/support/temp_dir.h"
#include "worker/job_runner.h"
#include "worker/sync/mpi_gradient_sync.h"

namespace mil::worker {
namespace {
MPI_Comm g_comm = MPI_COMM_NULL;  // set in main() from the MpiEnvironment; tests only read it

/// The smallest and largest value of `x` over the ranks.
std::pair<double, double> range_over_ranks(double x) {
  double lo = 0.0, hi = 0.0;
  MIL_MPI_CHECK(MPI_Allreduce(&x, &lo, 1, MPI_DOUBLE, MPI_MIN, g_comm));
  MIL_MPI_CHECK(MPI_Allreduce(&x, &hi, 1, MPI_DOUBLE, MPI_MAX, g_comm));
  return {lo, hi};
}

/// A fingerprint of every weight that differs when any weight differs (almost surely).
double weight_fingerprint(MilModelImpl& model) {
  double f = 0.0;
  int64_t i = 0;
  for (const auto& p : model.parameters())
    f += p.detach().to(at::kDouble).mul(double(++i)).sum().item<double>() * 1e-3;
  return f;
}

struct Fixture {
  mil::testing::TempDir dir;
  BagDataset data;
  Split split;
  Fixture() {
    SyntheticOptions o;
    o.bag_count = 60;
    o.feature_dim = 16;
    o.min_instances = 8;
    o.max_instances = 30;
    write_synthetic_benchmark(dir / "s", o);
    data = load_dataset(DatasetSpec{"s", "bags", dir / "s", 2, false});
    split = make_split(data.labels(), stratified_fold_assignment(data.labels(), 3, 1), 0,
                       /*val_ratio=*/0.25, 1);
  }
};

std::shared_ptr<MilModelImpl> abmil_without_dropout(const Fixture& f, std::uint64_t seed) {
  seed_torch(seed);  // dropout would draw from each rank's own generator: no bitwise equality then
  return make_model(ModelSpec{"abmil", {{"dropout", 0.0}}}, f.data.feature_dim, 2);
}

TrainSpec short_spec(int epochs, int accumulation) {
  TrainSpec spec;
  spec.epochs = epochs;
  spec.lr = 5e-4;
  spec.accumulation = accumulation;
  spec.early_stopping = false;
  return spec;
}
}  // namespace

TEST(MpiGradientSync, BroadcastMakesEveryRanksInitialWeightsRankZeros) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  seed_torch(100 + std::uint64_t(rank));  // a different init on every rank
  auto model = make_model(ModelSpec{"abmil", nlohmann::json::object()}, 16, 2);
  const auto before = range_over_ranks(weight_fingerprint(*model));
  ASSERT_NE(before.first, before.second) << "the ranks started equal; the test proves nothing";
  MpiGradientSync sync(g_comm);
  std::vector<at::Tensor> tensors = model->parameters();
  sync.broadcast_parameters(tensors);
  const auto after = range_over_ranks(weight_fingerprint(*model));
  EXPECT_EQ(after.first, after.second);
  seed_torch(100);
  auto rank_zero = make_model(ModelSpec{"abmil", nlohmann::json::object()}, 16, 2);
  EXPECT_EQ(weight_fingerprint(*model), weight_fingerprint(*rank_zero));
}

TEST(MpiGradientSync, AveragesGradientsAndSumsScalarsOverRanks) {
  int rank = 0, size = 1;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  MpiGradientSync sync(g_comm);
  sync.set_bucket_bytes(64);  // several buckets
  std::vector<at::Tensor> params;
  for (int i = 0; i < 5; ++i) {
    at::Tensor p = at::zeros({7 + i}).set_requires_grad(true);
    p.mutable_grad() = at::full({7 + i}, double(rank + 1) * (i + 1));
    params.push_back(p);
  }
  sync.allreduce_gradients(params);
  const double mean_rank = (size + 1) / 2.0;  // mean of 1..size
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(at::allclose(params[i].grad(), at::full({7 + i}, mean_rank * (i + 1))))
        << "parameter " << i;
  }
  EXPECT_GT(sync.buffer_collectives(), 1u);
  std::vector<double> values{1.0, double(rank)};
  sync.allreduce_sum(values);
  EXPECT_EQ(values[0], double(size));
  EXPECT_EQ(values[1], size * (size - 1) / 2.0);
}

TEST(DataParallelFit, TwoRanksComputeWhatOneRankComputesWithAccumulationOverTheSameBags) {
  int size = 1;
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  ASSERT_EQ(size, 2) << "run under mpiexec -n 2";
  Fixture f;
  MpiGradientSync sync(g_comm);
  FitOptions parallel_options;
  parallel_options.sync = &sync;
  auto parallel = abmil_without_dropout(f, 5);
  const FitResult p = fit(*parallel, short_spec(3, 1), f.data.bags, f.split.train, f.split.val, 9,
                          parallel_options);

  auto single =
      abmil_without_dropout(f, 5);  // every rank also trains alone, accumulating 2 bags per step
  const FitResult s = fit(*single, short_spec(3, 2), f.data.bags, f.split.train, f.split.val, 9);

  const auto pp = parallel->parameters(), sp = single->parameters();
  double max_error = 0.0;
  for (std::size_t i = 0; i < pp.size(); ++i)
    max_error = std::max(max_error, (pp[i] - sp[i]).abs().max().item<double>());
  EXPECT_LE(max_error, 1e-6);
  // Dividing by two ranks is exact and a two-term sum is order-free, so the bits match too.
  for (std::size_t i = 0; i < pp.size(); ++i)
    EXPECT_TRUE(at::equal(pp[i], sp[i])) << "parameter " << i;
  ASSERT_EQ(p.history.size(), s.history.size());
  for (std::size_t e = 0; e < p.history.size(); ++e) {
    EXPECT_DOUBLE_EQ(p.history[e].val.at("auc"), s.history[e].val.at("auc")) << "epoch " << e;
    EXPECT_NEAR(p.history[e].mean_loss, s.history[e].mean_loss, 1e-6) << "epoch " << e;
  }
  EXPECT_EQ(p.best_epoch, s.best_epoch);
}

TEST(DataParallelFit, EveryRankTakesTheSameValidationDecisionsAndWeights) {
  Fixture f;
  MpiGradientSync sync(g_comm);
  FitOptions options;
  options.sync = &sync;
  auto model = abmil_without_dropout(f, 3);
  TrainSpec spec = short_spec(4, 1);
  spec.early_stopping = true;
  spec.patience = 1;
  spec.stop_epoch = 1;
  const FitResult r = fit(*model, spec, f.data.bags, f.split.train, f.split.val, 4, options);
  const auto epochs = range_over_ranks(double(r.history.size()));
  EXPECT_EQ(epochs.first, epochs.second);
  const auto best = range_over_ranks(r.best_score);
  EXPECT_EQ(best.first, best.second);
  const auto loss = range_over_ranks(r.history.back().mean_loss);
  EXPECT_EQ(loss.first, loss.second);
  const auto weights = range_over_ranks(weight_fingerprint(*model));
  EXPECT_EQ(weights.first, weights.second);
}

TEST(DataParallelJob, ARankThatFailsWhilePreparingFailsTheJobOnEveryRankWithItsErrorAndNoAbort) {
  int rank = 0, size = 1;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  if (size < 2) GTEST_SKIP() << "needs two ranks";
  mil::testing::TempDir dir;
  SyntheticOptions o;
  o.bag_count = 30;
  o.feature_dim = 8;
  write_synthetic_benchmark(dir / "s", o);
  JobSpec spec;
  // The last rank cannot load its data; the others could and would wait for it in the first
  // collective.
  spec.dataset = DatasetSpec{"s", "bags", dir / (rank == size - 1 ? "missing" : "s"), 2, false};
  spec.train.epochs = 2;
  MpiGradientSync sync(g_comm);
  RunOptions options;
  options.sync = &sync;
  DatasetCache cache;
  const JobResult r = run_job(spec, options, cache);  // an abort would end this process here
  EXPECT_EQ(r.status, "failed");
  const std::string expected = "rank " + std::to_string(size - 1) + " of the job's " +
                               std::to_string(size) +
                               "-rank group failed while preparing: loading data";
  EXPECT_NE(r.error.find(expected), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("missing"), std::string::npos) << r.error;
  const auto length = range_over_ranks(double(r.error.size()));  // one text on every rank
  EXPECT_EQ(length.first, length.second);
}

/// Runs the failure tests' two-rank job (small, several bags per rank and epoch) over g_comm, with
/// `hooks` setting this rank's callbacks; returns this rank's result.
JobResult run_small_group_job(const std::function<void(int rank, RunOptions&)>& hooks) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  mil::testing::TempDir dir;
  SyntheticOptions o;
  o.bag_count = 30;
  o.feature_dim = 8;
  o.min_instances = 5;
  o.max_instances = 10;
  write_synthetic_benchmark(dir / "s", o);
  JobSpec spec;
  spec.dataset = DatasetSpec{"s", "bags", dir / "s", 2, false};
  spec.train.epochs = 4;
  MpiGradientSync sync(g_comm);
  RunOptions options;
  options.sync = &sync;
  hooks(rank, options);
  DatasetCache cache;
  return run_job(spec, options, cache);  // an abort would end this process here
}

// Before: rank 1's exception left rank 0 waiting in the next collective and the group was aborted,
// which in a sweep ends the MPI world. Now the ranks agree on the failure at the end of the step.
TEST(DataParallelJob, ARankThatFailsMidEpochFailsTheJobOnEveryRankWithItsErrorAndNoAbort) {
  const JobResult r = run_small_group_job([](int rank, RunOptions& options) {
    options.on_progress = [rank](const JobProgress& p) {
      if (rank == 1 && p.stage == "training" && p.epoch == 1 && p.bags_done >= 3) {
        throw std::runtime_error("injected failure mid-epoch");
      }
    };
  });
  EXPECT_EQ(r.status, "failed");
  // Rank 1 sees bag 3 of epoch 2 (its second bag there) and fails; the step ends at bag 4 (2
  // ranks).
  const std::string expected = "rank 1 of the job's 2-rank group failed in epoch 2 at bag 4 of ";
  EXPECT_NE(r.error.find(expected), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(": injected failure mid-epoch"), std::string::npos) << r.error;
  const auto length = range_over_ranks(double(r.error.size()));  // one text on every rank
  EXPECT_EQ(length.first, length.second);
  EXPECT_EQ(r.history.size(), 0u) << "a failed job reports no history";
}

TEST(DataParallelJob, ARankThatFailsAtTheEndOfAnEpochFailsTheJobOnEveryRank) {
  int epochs_seen = 0;
  const JobResult r = run_small_group_job([&](int rank, RunOptions& options) {
    options.on_epoch = [&epochs_seen, rank](const EpochRecord& record, int) {
      ++epochs_seen;
      if (rank == 0 && record.epoch == 1)
        throw std::runtime_error("injected failure in the epoch hook");
    };
  });
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("rank 0 of the job's 2-rank group failed at the end of epoch 2: injected "
                         "failure in the epoch hook"),
            std::string::npos)
      << r.error;
  EXPECT_EQ(epochs_seen, 2) << "no rank goes on into epoch 3";
}

TEST(DataParallelFit, ACheckpointTheFirstRankCannotWriteFailsTheFitOnEveryRank) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  Fixture f;
  MpiGradientSync sync(g_comm);
  FitOptions options;
  options.sync = &sync;
  // Only group rank 0 writes checkpoints; its folder does not exist.
  options.checkpoint_path = (f.dir.path() / "no-such-folder" / "checkpoint.pt").string();
  auto model = abmil_without_dropout(f, 3);
  try {
    fit(*model, short_spec(2, 1), f.data.bags, f.split.train, f.split.val, 4, options);
    ADD_FAILURE() << "fit returned although rank 0 could not write its checkpoint";
  } catch (const GroupFailure& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "rank 0 of the job's 2-rank group failed while writing the checkpoint"),
              std::string::npos)
        << e.what();
  }
}

TEST(DataParallelFit,
     RanksThatWouldResumeAtDifferentStepsFailTogetherInsteadOfMismatchingCollectives) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  Fixture f;  // every rank has its own folder, as nodes without a shared results folder would
  MpiGradientSync sync(g_comm);
  FitOptions options;
  options.sync = &sync;
  options.checkpoint_path = f.dir / "checkpoint.pt";
  auto model = abmil_without_dropout(f, 3);
  fit(*model, short_spec(1, 1), f.data.bags, f.split.train, f.split.val, 4,
      options);  // rank 0 writes one
  EXPECT_EQ(std::filesystem::exists(options.checkpoint_path), rank == 0);
  try {
    fit(*model, short_spec(2, 1), f.data.bags, f.split.train, f.split.val, 4, options);
    ADD_FAILURE() << "fit returned although rank 0 would resume at epoch 1 and rank 1 at epoch 0";
  } catch (const GroupFailure& e) {
    EXPECT_NE(std::string(e.what()).find("the job's 2 ranks would resume at different steps"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace mil::worker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::comm::MpiEnvironment mpi(argc, argv);
  at::set_num_threads(1);
  mil::worker::g_comm = mpi.comm();
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
