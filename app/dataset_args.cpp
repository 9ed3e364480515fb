#include "app/dataset_args.h"

#include "mil/data/dataset_folder.h"

#include "orchestrator/sweep/sweep.h"

namespace mil::app {

std::vector<std::string> dataset_option_names() {
  return {"root",    "kind", "features", "labels",  "label-map", "slide-match",
          "classes", "name", "sweep",    "dataset", "set"};
}

const char* const kDatasetOptionsHelp = R"(dataset (as in a sweep file; see sweeps/README.md):
  --root DIR            dataset folder (labels.csv + pt_files/ or h5_files/); a dataset.json in it
                        (mhim synth writes one) sets the options below, which flags override
  --kind K              bags (default) | survival | musk
  --features F          auto (default) | pt | h5 | packed
  --labels FILE         label CSV relative to the root (default labels.csv / survival.csv)
  --label-map JSON      e.g. '{"LUAD": 0, "LUSC": 1}'
  --slide-match M       exact (default) | substring
  --classes C           number of classes (default 2; 4 time bins for survival)
or:
  --sweep FILE --dataset NAME [--set KEY=VALUE ...]   the dataset NAME of a sweep file
)";

DatasetSpec dataset_from_args(const Args& args) {
  if (args.has("sweep") || args.has("dataset")) {
    if (args.has("root"))
      throw UsageError("give either --root or --sweep with --dataset, not both");
    const std::string name = args.require("dataset");
    const orch::SweepSpec sweep = orch::load_sweep(args.require("sweep"), args.get_all("set"));
    std::string names;
    for (const DatasetSpec& d : sweep.datasets) {
      if (d.name == name) return d;
      names += (names.empty() ? "" : ", ") + d.name;
    }
    throw UsageError("sweep '" + args.get("sweep", "") + "' has no dataset '" + name +
                     "' (datasets: " + names + ")");
  }
  // The folder's own dataset.json (mhim synth writes one) first; flags override its fields.
  nlohmann::json j = nlohmann::json::object();
  if (args.has("name")) j["name"] = args.get("name", "");
  if (args.has("kind")) j["kind"] = args.get("kind", "");
  if (args.has("features")) j["features"] = args.get("features", "");
  if (args.has("labels")) j["labels"] = args.get("labels", "");
  if (args.has("slide-match")) j["slide_match"] = args.get("slide-match", "");
  if (args.has("classes")) j["class_count"] = args.get_int("classes", 2);
  if (args.has("label-map")) {
    try {
      j["label_map"] = nlohmann::json::parse(args.get("label-map", ""));
    } catch (const nlohmann::json::exception& e) {
      throw UsageError("--label-map: not JSON: " + std::string(e.what()));
    }
  }
  try {
    return dataset_of_folder(args.require("root"), j);
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

}  // namespace mil::app
