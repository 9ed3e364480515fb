// mhim check-data: every problem of a dataset in one pass, before a sweep trips over them one by
// one.
#include <unistd.h>

#include <cstdio>
#include <map>

#include "app/args.h"
#include "app/commands.h"
#include "app/dataset_args.h"
#include "mil/data/data_check.h"

namespace mil::app {
namespace {
constexpr const char* kHelp =
    R"(usage: mhim check-data (--root DIR | --sweep FILE --dataset NAME) [options]

Reads the label file and every slide once (one slide in memory at a time) and lists every problem,
grouped by class: missing_file, unreadable_pt (truncated, legacy or not a torch.save file),
unreadable_h5, bad_content (not an [N, D] float tensor), empty_bag, feature_dim (slides whose D
differs from the most common one), non_finite (NaN/Inf), duplicate_id, label_conflict,
unknown_label, csv_fields (rows with the wrong number of fields, by line), csv_value, packed_cache
(a cache that is truncated or whose slide bytes no longer match their SHA-256), dataset.

exit status: 0 clean, 1 problems found, 2 usage

)";
}  // namespace

int cmd_check_data(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(kHelp, stdout);
    std::fputs(kDatasetOptionsHelp, stdout);
    std::fputs(
        "\nexamples:\n  mhim check-data --root data/tcga-nsclc-uni --label-map '{\"LUAD\": 0, "
        "\"LUSC\": 1}' "
        "--labels label_tcga_nsclc.csv --slide-match substring\n"
        "  mhim check-data --sweep sweeps/quickstart.yaml --dataset synth-easy\n",
        stdout);
    return 0;
  }
  DatasetSpec spec;
  try {
    const Args args(tokens, dataset_option_names(), {});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    spec = dataset_from_args(args);
  } catch (const UsageError& e) {
    return usage_failure("check-data", e.what());
  }
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const DataCheckReport report =
      check_dataset(spec, [terminal](std::size_t done, std::size_t total) {
        if (terminal && done % 100 == 0)
          std::fprintf(stderr, "\rchecked %zu/%zu slides", done, total);
      });
  if (terminal) std::fprintf(stderr, "\r\033[K");
  std::map<std::string, int> per_kind;
  for (const DataProblem& p : report.problems) {
    std::printf("%-15s %s: %s\n", p.kind.c_str(), p.where.c_str(), p.message.c_str());
    ++per_kind[p.kind];
  }
  std::string labels;
  for (const auto& [label, count] : report.bags_per_label) {
    labels += (labels.empty() ? "" : ", ") + std::to_string(label) + ": " + std::to_string(count);
  }
  std::printf(
      "%s '%s' (%s, %s): %zu slides read, %lld instances, D = %d, %s {%s}, %zu slides not in the "
      "labels\n",
      report.clean() ? "clean:" : "problems:", spec.name.c_str(), spec.kind.c_str(),
      report.source.c_str(), report.slides_read, static_cast<long long>(report.instances),
      report.feature_dim, spec.kind == "survival" ? "cases per status" : "rows per label",
      labels.c_str(), report.unlisted_slides);
  if (!report.clean()) {
    std::string summary;
    for (const auto& [kind, count] : per_kind)
      summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + kind;
    std::printf("%zu problem(s): %s\n", report.problems.size(), summary.c_str());
  }
  return report.clean() ? 0 : 1;
}

}  // namespace mil::app
