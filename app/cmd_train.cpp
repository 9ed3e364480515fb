#include <cstdio>
#include <fstream>
#include <iostream>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <torch/cuda.h>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "app/args.h"
#include "app/commands.h"
#include "comm/mpi_env.h"
#include "mil/core/durable_file.h"
#include "mil/core/json_reader.h"
#include "mil/core/specs.h"
#include "mil/data/dataset_folder.h"
#include "mil/train/trainer.h"
#include "worker/job_runner.h"
#include "worker/supervise/heartbeat.h"
#include "worker/supervise/test_fault.h"
#include "worker/sync/gradient_sync_factory.h"

namespace mil::app {
namespace {
constexpr const char* kHelp =
    R"(usage: mhim train (--job FILE | --dataset DIR [options]) [--out FILE] [--threads N]

Trains and evaluates one fold of one configuration in this process (no MPI) and writes the same
result JSON a sweep writes (metrics, resolved config, input hashes, per-epoch history).

job:
  --job FILE            a JobSpec JSON (as in a sweep's results/<id>.json "spec")
or build one from flags:
  --dataset PATH        folder with labels.csv + pt_files/ (kind bags) or CSV prefix (kind musk); a
                        dataset.json in the folder (mhim synth writes one) sets the dataset options
                        below, and flags given override it
  --kind K              bags | survival | musk (default bags)
  --features F          auto | pt | h5 | packed (default auto; packed = <dir>/packed.milpack)
  --labels FILE         label CSV relative to the folder (default labels.csv / survival.csv)
  --label-map JSON      text labels to classes, e.g. '{"LUAD": 0, "LUSC": 1}'
  --slide-match M       exact (default) | substring (every slide whose name contains the id)
  --name NAME           benchmark name (default: the folder name)
  --classes C           number of classes (default 2)
  --standardize         z-score features with training-fold statistics
  --model M             the model (default abmil), one of:
                          @MODELS@
  --model-options JSON  e.g. '{"dropout": 0.0}'
  --protocol P          kfold | file | legacy (default kfold; file = the dataset's own folds or
                        --split-dir; legacy = the reference's validation on the test fold, flagged)
  --split-dir DIR       folder of splits_{k}.csv (CLAM) or fold_{k}.csv (reference), under the dataset
  --folds K             number of folds (default 5)
  --fold I              test fold (default 0)
  --repetition R        repetition of a repeated fold file (default 0)
  --split-seed S        fold assignment seed (default 2021)
  --val-ratio F         per-class share of training bags held out for validation (default 0)
  --seed S              model/bag-order seed (default 2021)
  --epochs E            (default 20)   --lr LR (default 2e-4)   --weight-decay W (default 1e-5)
output:
  --out FILE            write the result JSON here (default: print a summary only)
  --work-dir DIR        keep checkpoint.pt (every epoch; resumed when present), model_best.pt and
                        epochs.jsonl here; rerunning the same command after a crash continues
  --checkpoint-every N  epochs between checkpoints (default 1)
  --threads N           LibTorch intra-op threads (default: all cores; data-parallel: cores / ranks)
  --device D            cpu (default), cuda, cuda:N, or auto (cuda when a GPU is visible)
  --heartbeat FILE      rewrite FILE (JSON: stage, epoch, epochs, bags done, ETA, time) at least once a
                        second while training makes progress; sweeps use it to tell slow from hung
  --parent-pid PID      die with process PID (set by sweeps, which run each job in a child process)
data-parallel (one job over several ranks; launch under mpirun):
  --data-parallel       every rank of the MPI world trains the same job on its share of each epoch's
                        bags; gradients are averaged per step (NCCL for CUDA, MPI for CPU tensors), so
                        S ranks compute what one rank computes with S x accumulation. Rank 0 writes
                        --out and the work dir; on CUDA, rank r uses GPU (local rank mod GPUs). A rank
                        that fails aborts the whole group.

exit status: 0 ok, 1 failed, 2 usage, 75 interrupted by SIGTERM/SIGINT (checkpointed; rerun to resume)

examples:
  mhim train --dataset data/synth --fold 0 --folds 5 --epochs 20 --out result.json --work-dir runs/f0
  mhim train --dataset ../shared/data/mil-classic/musk1 --kind musk --protocol file --folds 10 --standardize
  mpirun -n 2 mhim train --job job.json --data-parallel --out result.json --work-dir runs/job
)";

/// The device named by --device; "auto" is CUDA when LibTorch sees a GPU.
c10::Device parse_device(const std::string& text, int local_rank) {
  if (text == "auto")
    return torch::cuda::is_available() ? parse_device("cuda", local_rank) : c10::Device(c10::kCPU);
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(text);
  } catch (const std::exception&) {
    throw UsageError("--device: '" + text + "' is not cpu, cuda, cuda:N or auto");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available())
      throw UsageError("--device " + text +
                       ": LibTorch sees no CUDA device (this LibTorch build or machine has none)");
    if (!device.has_index())
      device =
          c10::Device(c10::kCUDA, c10::DeviceIndex(local_rank % int(torch::cuda::device_count())));
  }
  if (!device.is_cpu() && !device.is_cuda())
    throw UsageError("--device: only cpu and cuda are supported, got '" + text + "'");
  return device;
}

/// "[#######.............] 7/20 epochs  loss 0.4123  ETA 1m05s"
std::string progress_bar(int done, int total, double elapsed_seconds, double loss) {
  constexpr int kWidth = 24;
  const int filled = total > 0 ? done * kWidth / total : 0;
  const double eta = done > 0 ? elapsed_seconds / done * (total - done) : 0.0;
  char text[160];
  std::snprintf(text, sizeof text, "[%s%s] %d/%d epochs  loss %.4f  ETA %dm%02ds",
                std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), done,
                total, loss, int(eta) / 60, int(eta) % 60);
  return text;
}

/// Makes this process die (SIGKILL) when process `parent` does, so that a sweep's child never
/// outlives its worker rank; exits at once when `parent` is already gone.
void die_with_parent(int parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {  // the parent died before prctl: nobody is left to signal us
    std::fprintf(stderr, "mhim train: parent process %d is gone; exiting\n", parent);
    std::_Exit(1);
  }
}

JobSpec spec_from_flags(const Args& args) {
  JobSpec spec;
  // The folder's dataset.json (mhim synth writes one) names its label file, kind and classes;
  // flags given override it.
  nlohmann::json dataset = nlohmann::json::object();
  if (args.has("kind")) dataset["kind"] = args.get("kind", "");
  if (args.has("name")) dataset["name"] = args.get("name", "");
  if (args.has("classes")) dataset["class_count"] = args.get_int("classes", 2);
  if (args.has("standardize")) dataset["standardize"] = true;
  if (args.has("features")) dataset["features"] = args.get("features", "");
  if (args.has("labels")) dataset["labels"] = args.get("labels", "");
  if (args.has("slide-match")) dataset["slide_match"] = args.get("slide-match", "");
  if (args.has("label-map")) {
    try {
      dataset["label_map"] = nlohmann::json::parse(args.get("label-map", ""));
    } catch (const nlohmann::json::exception& e) {
      throw UsageError("--label-map: not JSON: " + std::string(e.what()));
    }
  }
  try {
    spec.dataset = dataset_of_folder(args.require("dataset"), dataset);
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
  spec.model.name = args.get("model", spec.model.name);
  if (args.has("model-options"))
    spec.model.options = nlohmann::json::parse(args.get("model-options", "{}"));
  spec.split.protocol = args.get("protocol", spec.split.protocol);
  spec.split.dir = args.get("split-dir", spec.split.dir);
  spec.split.fold_count = args.get_int("folds", spec.split.fold_count);
  spec.split.fold_index = args.get_int("fold", spec.split.fold_index);
  spec.split.repetition = args.get_int("repetition", spec.split.repetition);
  spec.split.split_seed = args.get_u64("split-seed", spec.split.split_seed);
  spec.split.val_ratio = args.get_double("val-ratio", spec.split.val_ratio);
  spec.seed = args.get_u64("seed", spec.seed);
  spec.train.epochs = args.get_int("epochs", spec.train.epochs);
  spec.train.lr = args.get_double("lr", spec.train.lr);
  spec.train.weight_decay = args.get_double("weight-decay", spec.train.weight_decay);
  // Round-trip through JSON so flag values get the same validation as sweep files.
  return nlohmann::json(spec).get<JobSpec>();
}
}  // namespace

int cmd_train(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help")
    return std::fputs(with_model_list(kHelp).c_str(), stdout), 0;
  JobSpec spec;
  std::string out_path;
  worker::RunOptions options;
  int threads = 0;
  std::string heartbeat_path;
  int requested_threads = 0;
  bool data_parallel = false;
  std::string device_text;
  try {
    const Args args(
        tokens,
        {"job",           "dataset",    "kind",      "name",      "classes",          "model",
         "model-options", "protocol",   "folds",     "fold",      "repetition",       "split-seed",
         "val-ratio",     "features",   "split-dir", "seed",      "epochs",           "lr",
         "weight-decay",  "out",        "threads",   "work-dir",  "checkpoint-every", "device",
         "heartbeat",     "parent-pid", "labels",    "label-map", "slide-match"},
        {"standardize", "data-parallel"});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    if (args.has("parent-pid")) die_with_parent(args.get_int("parent-pid", 0));
    if (args.has("job") == args.has("dataset"))
      throw UsageError("give exactly one of --job and --dataset");
    if (args.has("job")) {
      const std::string job_path = args.get("job", "");
      if (!std::ifstream(job_path)) throw UsageError("cannot open job file '" + job_path + "'");
      spec = read_json_file(job_path).get<JobSpec>();
    } else {
      spec = spec_from_flags(args);
    }
    out_path = args.get("out", "");
    options.work_dir = args.get("work-dir", "");
    options.checkpoint_every = args.get_int("checkpoint-every", 1);
    heartbeat_path = args.get("heartbeat", "");
    data_parallel = args.has("data-parallel");
    device_text = args.get("device", "cpu");
    requested_threads = args.get_int("threads", 0);
    if (!data_parallel) {
      options.device = parse_device(device_text, 0);
      threads = configure_threads(requested_threads, 1);
    }
  } catch (const UsageError& e) {
    return usage_failure("train", e.what());
  }
  std::unique_ptr<comm::MpiEnvironment> mpi;
  std::unique_ptr<GradientSync> sync;
  if (data_parallel) {
    int no_argc = 0;
    char** no_argv = nullptr;
    mpi = std::make_unique<comm::MpiEnvironment>(no_argc, no_argv);
    try {
      options.device = parse_device(device_text, mpi->local_rank());
    } catch (const UsageError& e) {
      return usage_failure("train", e.what());
    }
    threads = configure_threads(requested_threads, mpi->local_size());
    options.rank = mpi->rank();
    const int rank = mpi->rank();
    sync = worker::make_gradient_sync(mpi->comm(), options.device, [rank](const std::string& line) {
      if (rank == 0) std::fprintf(stderr, "mhim train: %s\n", line.c_str());
    });
    options.sync = sync.get();
  }
  const bool primary = !mpi || mpi->rank() == 0;
  if (primary) {
    std::fprintf(stderr, "mhim train: job %s (%s, %s, fold %d/%d, seed %llu), %d threads, %s\n",
                 spec.id().c_str(), spec.dataset.name.c_str(), spec.model.name.c_str(),
                 spec.split.fold_index, spec.split.fold_count,
                 static_cast<unsigned long long>(spec.seed), threads, options.device.str().c_str());
  }
  worker::DatasetCache cache;
  // On a terminal: a progress bar with ETA that log lines clear first; otherwise plain lines only.
  const bool terminal = primary && ::isatty(STDERR_FILENO) == 1;
  options.log = [terminal, primary](const std::string& line) {
    if (primary) std::fprintf(stderr, terminal ? "\r\033[K%s\n" : "%s\n", line.c_str());
  };
  double elapsed = 0.0;
  if (terminal) {
    options.on_epoch = [&elapsed](const EpochRecord& r, int epochs) {
      elapsed += r.seconds;
      std::fputs(("\r\033[K" + progress_bar(r.epoch + 1, epochs, elapsed, r.mean_loss)).c_str(),
                 stderr);
      std::fflush(stderr);
    };
  }
  options.stop_requested = install_stop_handlers();
  std::optional<worker::HeartbeatWriter> heartbeat;
  if (!heartbeat_path.empty()) {
    heartbeat.emplace(heartbeat_path, spec.id());
    options.on_progress = [&heartbeat, &spec](const worker::JobProgress& p) {
      heartbeat->update(p);
      worker::inject_test_fault(spec, p);
    };
  }
  const JobResult result = worker::run_job(spec, options, cache);
  if (terminal) std::fputs("\r\033[K", stderr);
  if (!primary) return result.ok() ? 0 : result.status == "interrupted" ? kExitInterrupted : 1;
  if (!out_path.empty()) {
    // Atomic: a supervisor reading it after a kill sees the whole result or none.
    write_file_atomic(out_path, nlohmann::json(result).dump(2) + "\n");
  }
  if (result.status == "interrupted") {
    std::fprintf(stderr, "mhim train: %s\n", result.error.c_str());
    return kExitInterrupted;
  }
  if (!result.ok()) {
    std::fprintf(stderr, "mhim train: failed: %s\n", result.error.c_str());
    return 1;
  }
  std::cout << "test " << result.metrics.at("test").dump() << '\n';
  if (result.metrics.contains("val"))
    std::cout << "val  " << result.metrics.at("val").dump() << '\n';
  return 0;
}

}  // namespace mil::app
