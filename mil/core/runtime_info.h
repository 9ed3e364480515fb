#pragma once
// Where and when a job ran, as results and journals record it.
#include <string>

namespace mil {

/// Current UTC time as ISO 8601, e.g. "2026-11-25T16:09:36Z".
std::string utc_timestamp();

/// This machine's host name, or "unknown".
std::string host_name();

/// True while process `pid` of this host runs (a zombie, dead but not yet reaped, does not count).
bool process_exists(long pid);

/// CPU seconds (user + system, all threads) this process has used so far.
double process_cpu_seconds();

}  // namespace mil
