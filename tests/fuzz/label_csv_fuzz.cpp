// Fuzz target: the label CSV readers in every layout (classification with or without a header,
// with a label map; survival), with and without a ProblemLog. Contract: with a log they report
// problems instead of throwing.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "mil/data/label_csv.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = mil::fuzz::write_scratch("labels.csv", mil::fuzz::as_text(data, size));
  mil::DatasetSpec numbered;
  numbered.class_count = 3;
  mil::DatasetSpec mapped;
  mapped.class_count = 2;
  mapped.label_map = {{"normal", 0}, {"tumor", 1}};
  for (const mil::DatasetSpec* spec : {&numbered, &mapped}) {
    try {
      for (const mil::LabelRow& row : mil::read_label_csv(path, *spec))
        MIL_FUZZ_CHECK(!row.id.empty() && row.label >= 0 && row.label < spec->class_count);
    } catch (const std::exception&) {
    }
    mil::ProblemLog log;
    mil::read_label_csv(path, *spec, &log);  // must not throw
  }
  try {
    for (const mil::SurvivalCase& c : mil::read_survival_csv(path))
      MIL_FUZZ_CHECK(!c.slides.empty() && c.time >= 0 && (c.status == 0 || c.status == 1));
  } catch (const std::exception&) {
  }
  mil::ProblemLog log;
  mil::read_survival_csv(path, &log);  // must not throw
  return 0;
}
