#include <cstdio>

#include "app/args.h"
#include "app/commands.h"
#include "mil/synthetic/benchmarks.h"
#include "mil/synthetic/generator.h"

#include <chrono>
#include <filesystem>
#include <fstream>

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mhim synth --out DIR [options]
       mhim synth (--benchmark NAME | --all) --out DIR [--scale S --seed S --dim D --format pt|h5]

Writes a synthetic binary benchmark: DIR/labels.csv (slide_id,label), DIR/pt_files/<slide>.pt
(torch.save [N, D] float tensors), DIR/synthetic.json (the options) and DIR/dataset.json (what
`--dataset DIR` and sweeps read: label file, kind, classes). Negative bags hold Gaussian background
instances; positive bags also hold a few witness instances shifted along one hidden direction.
Each slide's instance truth (which instances are hard or easy witnesses) lies beside its features:
pt_files/<slide>.instance_labels.csv, or the `instance_labels` dataset of an .h5 (--format h5).

options:
  --out DIR                 output folder (created)
  --bags N                  number of bags (default 120)
  --dim D                   feature dimension (default 64)
  --min-instances N         smallest bag (default 20)
  --max-instances N         largest bag (default 200)
  --positive-fraction F     share of positive bags (default 0.5)
  --witness-min F           smallest witness share in a positive bag (default 0.05)
  --witness-max F           largest witness share (default 0.20)
  --signal S                witness shift in noise standard deviations (default 3.0)
  --easy-witnesses N        hard and easy witnesses (the setting MHIM masks for): in a share of the
                            positive bags, N more instances shifted by --easy-signal; the witnesses
                            above are then the hard ones, and the other positive bags hold only those
                            (default 0: off, and the data are what they were without these options)
  --easy-signal S           shift of an easy witness (default 8.0)
  --easy-bag-fraction F     share of positive bags that also hold easy witnesses (default 0.5)
  --seed S                  seed (default 7); the same options give identical files
  --task T                  classification (default) or survival: survival.csv (Study,ID,Event,
                            Status,WSI) where cases with witnesses have a higher hazard; use it with
                            dataset kind "survival" and class_count 4
  --hazard-ratio R          survival: hazard of cases with witnesses over the others (default 10)
  --format F                pt (default) or h5: h5_files/<slide>.h5 in the CLAM layout, with coords
                            on a patch grid where the witnesses form contiguous regions
  --test-bags N             a held-out test set of N more bags (test_0000..), same distribution but
                            for --test-easy-bag-fraction (default 0: none)
  --test-easy-bag-fraction F  share of the held-out positive bags with easy witnesses (default: as
                            --easy-bag-fraction; smaller = more hard-only slides at test time)
  --split-folds K           with --test-bags: splits/splits_{k}.csv (CLAM layout) for k < K, fold k
                            of the other bags validating, the rest training, all testing on the
                            held-out bags; use with split.protocol "file", split.dir "splits"
  --split-seed S            seed of those folds (default 2021)
  --options FILE            read the options above from a JSON file (a synthetic.json, or e.g.
                            sweeps/data/hard_witness.json); flags given as well override it

benchmark stand-ins (the 12 benchmarks' layout, counts and label files, with a planted signal):
  --benchmark NAME          one of camelyon, tcga-nsclc, tcga-brca, tcga-blca-surv, tcga-luad-surv,
                            tcga-lusc-surv, each with -r50 or -uni (e.g. camelyon-uni), into DIR
  --all                     all 12, into DIR/<name>/, plus DIR/datasets.json (sweep dataset entries)
  --scale S                 multiply bag and instance counts (default 1: the real sizes, e.g.
                            CAMELYON 398 slides of ~9,000 instances at D=1024, ~15 GB; 0.05 for a look)
  --seed S                  seed (default 2024); the same options give byte-identical files
  --dim D                   feature dimension (default 1024)
  --format F                pt (default: pt_files/*.pt) or h5 (h5_files/*.h5 with coords)
  --dry-run                 print the bags, slides, positives (label 1 or events), instances and
                            feature GB each would have, and write nothing
  Each folder gets dataset.json (its sweep dataset entry), truth.json and synthetic.json, and each
  slide its instance truth (as above; with --format h5, coords put tumour, easy and hard witnesses
  in contiguous regions).

examples:
  mhim synth --out data/synth --bags 200 --dim 128
  mhim synth --out data/hard --bags 200 --dim 32 --signal 1 --easy-witnesses 3 --easy-signal 6
  mhim synth --out data/hard-witness --options sweeps/data/hard_witness.json
  mhim synth --benchmark camelyon-r50 --out data/camelyon-r50 --scale 0.05
  mhim synth --all --out data/bench --scale 0.05
)";

int write_stand_ins(const Args& args) {
  for (const char* classic :
       {"bags", "min-instances", "max-instances", "positive-fraction", "witness-min", "witness-max",
        "signal", "task", "hazard-ratio", "easy-witnesses", "easy-signal", "easy-bag-fraction",
        "test-bags", "test-easy-bag-fraction", "split-folds", "split-seed", "options"}) {
    if (args.has(classic))
      throw UsageError("--" + std::string(classic) + " does not apply to --benchmark/--all");
  }
  if (args.has("benchmark") == args.has("all"))
    throw UsageError("give one of --benchmark NAME and --all");
  StandInOptions o;
  o.scale = args.get_double("scale", o.scale);
  o.seed = args.get_u64("seed", o.seed);
  o.feature_dim = args.get_int("dim", o.feature_dim);
  o.format = args.get("format", o.format);
  const std::string out = args.has("dry-run") ? args.get("out", "") : args.require("out");
  std::vector<std::string> names = args.has("all")
                                       ? benchmark_stand_in_names()
                                       : std::vector<std::string>{args.get("benchmark", "")};
  nlohmann::json datasets = nlohmann::json::array();
  if (args.has("dry-run")) {
    std::printf("%-20s %6s %6s %9s %13s %10s\n", "benchmark", "bags", "slides", "positive",
                "instances", "GB");
    for (const std::string& name : names) {
      nlohmann::json counts;
      try {
        counts = plan_benchmark_stand_in(name, o).at("counts");
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
      std::printf("%-20s %6d %6d %9d %13lld %10.2f\n", name.c_str(), counts.at("bags").get<int>(),
                  counts.at("slides").get<int>(), counts.at("positives").get<int>(),
                  counts.at("instances").get<long long>(),
                  counts.at("feature_bytes").get<double>() / 1e9);
    }
    return 0;
  }
  for (const std::string& name : names) {
    const std::string root = args.has("all") ? (std::filesystem::path(out) / name).string() : out;
    const auto start = std::chrono::steady_clock::now();
    nlohmann::json entry;
    try {
      entry = write_benchmark_stand_in(name, root, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::ifstream in(std::filesystem::path(root) / "synthetic.json");
    const nlohmann::json counts = nlohmann::json::parse(in).at("counts");
    std::printf("%-20s %5d bags %5d slides %10lld instances  -> %s (%.1f s)\n", name.c_str(),
                counts.at("bags").get<int>(), counts.at("slides").get<int>(),
                counts.at("instances").get<long long>(), root.c_str(), seconds);
    std::fflush(stdout);
    datasets.push_back(entry);
  }
  if (args.has("all"))
    std::ofstream(std::filesystem::path(out) / "datasets.json") << datasets.dump(2) << '\n';
  return 0;
}
}  // namespace

int cmd_synth(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  try {
    const Args args(tokens, {"out",           "bags",
                             "dim",           "min-instances",
                             "max-instances", "positive-fraction",
                             "witness-min",   "witness-max",
                             "signal",        "seed",
                             "task",          "hazard-ratio",
                             "benchmark",     "scale",
                             "format",        "easy-witnesses",
                             "easy-signal",   "easy-bag-fraction",
                             "test-bags",     "test-easy-bag-fraction",
                             "split-folds",   "split-seed",
                             "options"},
                    {"all", "dry-run"});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    if (args.has("benchmark") || args.has("all")) return write_stand_ins(args);
    if (args.has("scale")) throw UsageError("--scale goes with --benchmark or --all");
    SyntheticOptions o;
    if (args.has("options")) {
      const std::string file = args.get("options", "");
      std::ifstream in(file);
      if (!in) throw UsageError("--options: cannot open '" + file + "'");
      try {
        o = synthetic_options_from_json(nlohmann::json::parse(in));
      } catch (const std::exception& e) {
        throw UsageError("--options '" + file + "': " + e.what());
      }
    }
    const std::string out = args.require("out");
    o.bag_count = args.get_int("bags", o.bag_count);
    o.feature_dim = args.get_int("dim", o.feature_dim);
    o.min_instances = args.get_int("min-instances", o.min_instances);
    o.max_instances = args.get_int("max-instances", o.max_instances);
    o.positive_fraction = args.get_double("positive-fraction", o.positive_fraction);
    o.witness_fraction_min = args.get_double("witness-min", o.witness_fraction_min);
    o.witness_fraction_max = args.get_double("witness-max", o.witness_fraction_max);
    o.signal_strength = args.get_double("signal", o.signal_strength);
    o.seed = args.get_u64("seed", o.seed);
    o.task = args.get("task", o.task);
    o.hazard_ratio = args.get_double("hazard-ratio", o.hazard_ratio);
    o.easy_witnesses = args.get_int("easy-witnesses", o.easy_witnesses);
    o.easy_signal = args.get_double("easy-signal", o.easy_signal);
    o.easy_bag_fraction = args.get_double("easy-bag-fraction", o.easy_bag_fraction);
    o.format = args.get("format", o.format);
    o.test_bag_count = args.get_int("test-bags", o.test_bag_count);
    o.test_easy_bag_fraction = args.get_double("test-easy-bag-fraction", o.test_easy_bag_fraction);
    o.split_folds = args.get_int("split-folds", o.split_folds);
    o.split_seed = args.get_u64("split-seed", o.split_seed);
    try {
      write_synthetic_benchmark(out, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    std::printf("wrote %d bags (D=%d) to %s", o.bag_count, o.feature_dim, out.c_str());
    if (o.test_bag_count > 0) std::printf(", plus %d held-out test bags", o.test_bag_count);
    std::printf("\n");
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("synth", e.what());
  }
}

}  // namespace mil::app
