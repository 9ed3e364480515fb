// CUDA against CPU, and the NCCL backend on the GPUs present. Every test skips where LibTorch sees
// no CUDA device (a CPU LibTorch, or no GPU), so the suite runs everywhere; scripts/device_check.sh
// runs it on a GPU machine.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>

#include <cmath>
#include <cstdio>

#include "mil/data/splits.h"
#include "mil/mhim/mhim_network.h"
#include "mil/mhim/mhim_objective.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/runtime/autocast.h"
#include "mil/synthetic/generator.h"
#include "mil/train/trainer.h"
#include "tests/support/temp_dir.h"
#ifdef MIL_HAVE_NCCL
#include "worker/sync/nccl_communicator.h"
#include "worker/sync/nccl_gradient_sync.h"
#endif

namespace mil {
namespace {

#define SKIP_WITHOUT_CUDA()         \
  if (!torch::cuda::is_available()) \
  GTEST_SKIP() << "LibTorch sees no CUDA device (CPU build or no GPU)"

const c10::Device kGpu(c10::kCUDA, 0);

/// max |a - b| / max(max |b|, 1e-6): the error relative to the reference's scale.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.detach().to(at::kCPU, at::kDouble),
                   y = b.detach().to(at::kCPU, at::kDouble);
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-6);
}

std::vector<ModelSpec> zoo() {
  const nlohmann::json none = nlohmann::json::object();
  return {{"abmil", none},
          {"gabmil", none},
          {"dsmil", none},
          {"clam_sb", none},
          {"clam_mb", none},
          {"dtfd", none},
          {"meanmil", none},
          {"maxmil", none},
          {"transmil", none},
          {"mhim_pure", none},
          {"mhim_pure", {{"baseline", "selfattn"}}},
          {"mhim_pure", {{"baseline", "dsmil"}}}};
}

}  // namespace

TEST(CudaModels, ForwardAndGradientsMatchTheCpuForEveryModel) {
  SKIP_WITHOUT_CUDA();
  constexpr int64_t kDim = 64;
  const at::Tensor bag = at::randn({300, kDim}, at::TensorOptions().dtype(at::kFloat));
  for (const ModelSpec& spec : zoo()) {
    SCOPED_TRACE(spec.name + " " + spec.options.dump());
    seed_torch(3);
    auto cpu = make_model(spec, kDim, 2);
    seed_torch(3);
    auto gpu = make_model(spec, kDim, 2);
    gpu->to(kGpu);
    cpu->eval();  // no dropout: the two devices draw different masks
    gpu->eval();
    const MilOutput a = cpu->forward(bag);
    const MilOutput b = gpu->forward(bag.to(kGpu));
    ASSERT_TRUE(b.logits.is_cuda());
    const double forward_error = relative_error(b.logits, a.logits);
    at::Tensor loss_a = a.logits.sum(), loss_b = b.logits.sum();
    if (const at::Tensor aux = cpu->auxiliary_loss(a, 1); aux.defined()) loss_a = loss_a + aux;
    if (const at::Tensor aux = gpu->auxiliary_loss(b, 1); aux.defined()) loss_b = loss_b + aux;
    loss_a.backward();
    loss_b.backward();
    double gradient_error = 0.0;
    const auto pa = cpu->named_parameters(), pb = gpu->named_parameters();
    for (const auto& p : pa) {
      const at::Tensor& ga = p.value().grad();
      const at::Tensor& gb = pb[p.key()].grad();
      ASSERT_EQ(ga.defined(), gb.defined()) << p.key();
      if (ga.defined() && ga.abs().max().item<double>() > 1e-6)
        gradient_error = std::max(gradient_error, relative_error(gb, ga));
    }
    std::printf("  %-9s %-28s forward rel. error %.2e, gradient rel. error %.2e\n",
                spec.name.c_str(), spec.options.dump().c_str(), forward_error, gradient_error);
    EXPECT_LE(forward_error, 1e-4);
    EXPECT_LE(gradient_error, 1e-3);
  }
}

TEST(CudaModels, Bf16AutocastForwardStaysCloseToFp32) {
  SKIP_WITHOUT_CUDA();
  seed_torch(5);
  auto model = make_model(ModelSpec{"abmil", nlohmann::json::object()}, 256, 2);
  model->to(kGpu);
  model->eval();
  const at::Tensor bag = at::randn({2000, 256}, at::TensorOptions().device(kGpu));
  const at::Tensor fp32 = model->forward(bag).logits;
  at::Tensor bf16;
  {
    AutocastGuard autocast(c10::DeviceType::CUDA, true);
    bf16 = model->forward(bag).logits;
  }
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16) << "autocast did not run the classifier in bf16";
  EXPECT_LE(relative_error(bf16.to(at::kFloat), fp32), 5e-2);
}

TEST(CudaTrainer, FitsOnTheGpuWithTheCpuRunsLossesAndMetrics) {
  SKIP_WITHOUT_CUDA();
  testing::TempDir dir;
  SyntheticOptions o;
  o.bag_count = 60;
  o.feature_dim = 32;
  o.min_instances = 10;
  o.max_instances = 60;
  write_synthetic_benchmark(dir / "s", o);
  const BagDataset data = load_dataset(DatasetSpec{"s", "bags", dir / "s", 2, false});
  const Split split =
      make_split(data.labels(), stratified_fold_assignment(data.labels(), 3, 1), 0, 0.25, 1);
  TrainSpec spec;
  spec.epochs = 3;
  spec.lr = 5e-4;
  spec.early_stopping = false;
  const ModelSpec model_spec{"abmil", {{"dropout", 0.0}}};
  seed_torch(7);
  auto cpu = make_model(model_spec, 32, 2);
  const FitResult on_cpu = fit(*cpu, spec, data.bags, split.train, split.val, 11);
  seed_torch(7);
  auto gpu = make_model(model_spec, 32, 2);
  gpu->to(kGpu);
  FitOptions options;
  options.device = kGpu;
  const FitResult on_gpu = fit(*gpu, spec, data.bags, split.train, split.val, 11, options);
  ASSERT_EQ(on_gpu.history.size(), on_cpu.history.size());
  for (std::size_t e = 0; e < on_cpu.history.size(); ++e) {
    EXPECT_NEAR(on_gpu.history[e].mean_loss, on_cpu.history[e].mean_loss, 1e-4) << "epoch " << e;
    EXPECT_NEAR(on_gpu.history[e].val.at("auc"), on_cpu.history[e].val.at("auc"), 1e-9)
        << "epoch " << e;
  }
  for (const auto& p : gpu->parameters()) EXPECT_TRUE(p.is_cuda());
  const Predictions test = predict(*gpu, data.bags, split.test, kGpu);
  EXPECT_EQ(test.probabilities.size(), split.test.size());
}

TEST(CudaMhim, TrainsTheStudentWithItsTeacherOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  for (const char* baseline : {"attn", "selfattn", "dsmil"}) {
    SCOPED_TRACE(baseline);
    seed_torch(12);
    auto student = std::make_shared<MhimNetworkImpl>(mhim_network_options_from_json(
        {{"baseline", baseline}, {"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}}, 16, 2));
    student->to(kGpu);
    MhimOptions options =
        mhim_options_from_json({{"teacher_init", "random"}, {"mask_ratio_h", 0.05}});
    MhimObjective objective(*student, options, 0, 10);
    for (const auto& p : objective.teacher().parameters()) ASSERT_TRUE(p.is_cuda());
    student->train();
    Bag bag;
    bag.features = at::randn({80, 16}, at::TensorOptions().device(kGpu));
    bag.label = 1;
    const at::Tensor loss = objective.loss(bag, 0, [](const at::Tensor& logits) {
      return torch::nn::functional::cross_entropy(
          logits, at::full({1}, 1, at::TensorOptions().dtype(at::kLong).device(logits.device())));
    });
    loss.backward();
    objective.after_optimizer_step(0);
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
  }
}

#ifdef MIL_HAVE_NCCL
// One GPU can hold one NCCL rank (NCCL refuses two ranks on one device), so these check the whole
// NCCL path (id, communicator, buckets, collectives on device pointers) on as many GPUs as there
// are.
TEST(NcclCommunicator, AllreduceAndBroadcastOnOneRankAreTheIdentityOnDeviceBuffers) {
  SKIP_WITHOUT_CUDA();
  ASSERT_GE(worker::NcclCommunicator::visible_devices(), 1);
  worker::NcclCommunicator comm(worker::NcclCommunicator::make_id(), 0, 1, 0);
  std::printf("  NCCL %s\n", worker::NcclCommunicator::version().c_str());
  at::Tensor x = at::arange(1 << 20, at::TensorOptions().dtype(at::kFloat).device(kGpu));
  const at::Tensor expected = x.clone();
  comm.allreduce_sum(x.data_ptr(), std::size_t(x.numel()), worker::NcclDataType::kFloat32);
  EXPECT_TRUE(at::equal(x, expected));
  comm.broadcast(x.data_ptr(), std::size_t(x.numel()), worker::NcclDataType::kFloat32, 0);
  EXPECT_TRUE(at::equal(x, expected));
  std::vector<double> host{1.5, -2.0, 3.25};
  comm.allreduce_sum_host(host.data(), host.size());
  EXPECT_EQ(host, (std::vector<double>{1.5, -2.0, 3.25}));
}

TEST(NcclGradientSync, NamesItsBackendAndSumsHostScalarsOnOneRank) {
  SKIP_WITHOUT_CUDA();
  auto comm =
      std::make_unique<worker::NcclCommunicator>(worker::NcclCommunicator::make_id(), 0, 1, 0);
  worker::NcclGradientSync sync(std::move(comm));
  EXPECT_EQ(sync.name(), "nccl");
  EXPECT_EQ(sync.size(), 1);
  std::vector<double> values{2.0};
  sync.allreduce_sum(values);
  EXPECT_EQ(values[0], 2.0);
}
#endif

}  // namespace mil
