#include <cstdio>

#include "app/args.h"
#include "app/commands.h"
#include "mil/synthetic.h"

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mhim synth --out DIR [options]

Writes a synthetic binary benchmark: DIR/labels.csv (slide_id,label), DIR/pt_files/<slide>.pt
(torch.save [N, D] float tensors) and DIR/synthetic.json. Negative bags hold Gaussian background
instances; positive bags also hold a few witness instances shifted along one hidden direction.

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
  --seed S                  seed (default 7); the same options give identical files
  --task T                  classification (default) or survival: survival.csv (Study,ID,Event,
                            Status,WSI) where cases with witnesses have a higher hazard; use it with
                            dataset kind "survival" and class_count 4
  --hazard-ratio R          survival: hazard of cases with witnesses over the others (default 10)

example:
  mhim synth --out data/synth --bags 200 --dim 128
)";
}  // namespace

int cmd_synth(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  try {
    const Args args(tokens,
                    {"out", "bags", "dim", "min-instances", "max-instances", "positive-fraction", "witness-min",
                     "witness-max", "signal", "seed", "task", "hazard-ratio"},
                    {});
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    SyntheticOptions o;
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
    write_synthetic_benchmark(out, o);
    std::printf("wrote %d bags (D=%d) to %s\n", o.bag_count, o.feature_dim, out.c_str());
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("synth", e.what());
  }
}

}  // namespace mil::app
