#pragma once
// The status page served at "/" by the status server.
#include <string>

namespace mil::orch {

/// The self-contained HTML page served at "/": no external resources; its script fetches
/// /status.json every 2 s and shows counts, a progress bar, running jobs, workers and failures.
const std::string& status_page_html();

}  // namespace mil::orch
