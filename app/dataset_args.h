#pragma once
// The dataset description that pack, check-data and bench load share with sweeps: either flags
// (--root, --kind, --features, ...) or one dataset of a sweep file (--sweep FILE --dataset NAME).
#include <string>
#include <vector>

#include "app/args.h"
#include "mil/core/specs.h"

namespace mil::app {

/// Value options dataset_from_args reads; append them to a command's own.
std::vector<std::string> dataset_option_names();

/// Help text for those options, one per line, indented for a command's --help.
extern const char* const kDatasetOptionsHelp;

/// The dataset the flags describe, validated like a sweep's; UsageError when neither --root nor
/// --sweep/--dataset is given, or the sweep has no dataset of that name.
DatasetSpec dataset_from_args(const Args& args);

}  // namespace mil::app
