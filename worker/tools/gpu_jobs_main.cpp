// mhim_gpu_jobs: runs training jobs on one device without MPI, for scripts/gpu_packing_bench.sh,
// which starts K of these processes on one GPU at once to measure jobs per hour with K jobs per GPU
// (what `mhim sweep --jobs-per-gpu K` does with worker ranks). Built in every configuration,
// MIL_CORE_ONLY included: a GPU machine with a CUDA LibTorch but no MPI builds it too.
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/data/packed_cache.h"
#include "mil/synthetic/generator.h"
#include "worker/job_runner.h"

namespace {

constexpr const char* kHelp =
    R"(usage: mhim_gpu_jobs synth --out DIR [--bags 270] [--min-instances 7000] [--max-instances 9000] [--dim 1024]
       mhim_gpu_jobs run --dataset DIR --model NAME [--options JSON] [--epochs 3] [--device cuda:0]
                         [--jobs 1] [--seed 1] [--threads 4]

synth: writes a CAMELYON-sized stand-in (mil/synthetic/generator.h: bags of uniform size, a planted
signal) and packs it into DIR/packed.milpack as float16, as `mhim pack --dtype f16` does.
run: trains --jobs jobs one after another (seeds --seed, --seed+1, ...; fold 0 of 5, no validation)
of --model on the packed stand-in and prints one JSON line per job: its wall seconds, every epoch's
seconds and the device.
)";

/// --name value pairs after the subcommand.
std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> values;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0)
      throw std::runtime_error("expected --name value, got '" + key + "'");
    values[key.substr(2)] = argv[i + 1];
  }
  return values;
}

std::string get(const std::map<std::string, std::string>& v, const std::string& key,
                const std::string& fallback) {
  const auto it = v.find(key);
  return it == v.end() ? fallback : it->second;
}

int synth(const std::map<std::string, std::string>& v) {
  mil::SyntheticOptions o;
  o.bag_count = std::stoi(get(v, "bags", "270"));
  o.min_instances = std::stoi(get(v, "min-instances", "7000"));
  o.max_instances = std::stoi(get(v, "max-instances", "9000"));
  o.feature_dim = std::stoi(get(v, "dim", "1024"));
  const std::string out = get(v, "out", "");
  if (out.empty()) throw std::runtime_error("synth needs --out DIR");
  mil::write_synthetic_benchmark(out, o);
  mil::PackOptions pack;
  pack.dtype = "f16";
  const mil::PackSummary s =
      mil::pack_feature_folder(out + "/pt_files", /*h5=*/false, out + "/packed.milpack", pack);
  std::printf("{\"slides\": %zu, \"instances\": %lld, \"file_bytes\": %llu}\n", s.slides,
              static_cast<long long>(s.instances), static_cast<unsigned long long>(s.file_bytes));
  return 0;
}

int run(const std::map<std::string, std::string>& v) {
  mil::JobSpec spec;
  spec.dataset.name = "gpu-bench";
  spec.dataset.root = get(v, "dataset", "");
  spec.dataset.features = "packed";
  if (spec.dataset.root.empty()) throw std::runtime_error("run needs --dataset DIR");
  spec.model.name = get(v, "model", "abmil");
  spec.model.options = nlohmann::json::parse(get(v, "options", "{}"));
  spec.train.epochs = std::stoi(get(v, "epochs", "3"));
  spec.train.early_stopping = false;
  at::set_num_threads(std::stoi(get(v, "threads", "4")));
  mil::worker::RunOptions options;
  options.device = c10::Device(get(v, "device", "cuda:0"));
  mil::worker::DatasetCache cache;  // the bags load once per process, as in a sweep's worker rank
  const int jobs = std::stoi(get(v, "jobs", "1"));
  const int seed = std::stoi(get(v, "seed", "1"));
  for (int j = 0; j < jobs; ++j) {
    spec.seed = std::uint64_t(seed + j);
    const auto start = std::chrono::steady_clock::now();
    const mil::JobResult r = mil::worker::run_job(spec, options, cache);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& e : r.history) epochs.push_back(e.value("seconds", 0.0));
    std::printf("%s\n", nlohmann::json{{"model", spec.model.name},
                                       {"options", spec.model.options},
                                       {"status", r.status},
                                       {"error", r.error},
                                       {"seconds", seconds},
                                       {"epoch_seconds", epochs},
                                       {"device", options.device.str()}}
                            .dump()
                            .c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help")
    return std::fputs(kHelp, stdout), argc < 2 ? 2 : 0;
  try {
    const auto values = parse(argc, argv);
    if (std::string(argv[1]) == "synth") return synth(values);
    if (std::string(argv[1]) == "run") return run(values);
    std::fprintf(stderr, "mhim_gpu_jobs: unknown subcommand '%s'\n%s", argv[1], kHelp);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mhim_gpu_jobs: %s\n", e.what());
    return 1;
  }
}
