#pragma once
// Limits of the orchestrator's readers: sweep files (YAML or JSON) and their expansion, the
// journal, and HTTP requests to the status server. Each is checked before the memory it guards is
// allocated, and an input over one is refused with an error naming the file (or answered with an
// HTTP error status) and the limit. JSON documents in general: mil/core/reader_limits.h.
#include <cstddef>
#include <cstdint>

#include "mil/core/reader_limits.h"

namespace mil::orch {

/// Largest sweep file: the shipped sweeps are under 10 KB.
constexpr std::size_t kMaxSweepFileBytes = std::size_t{4} << 20;
/// Deepest nesting of YAML sequences and mappings: sweeps nest 5 levels (models, a model's grid,
/// a key's list of values, a list value); the converter recurses once per level.
constexpr int kMaxYamlDepth = 16;
/// Most YAML nodes converted: a sweep holds a few hundred, but aliases can repeat a subtree
/// exponentially ("billion laughs": 10 aliases of 10 aliases ... are 10^n nodes from n lines), and
/// every node also costs its JSON pointer (up to kMaxYamlDepth keys) in the line table.
constexpr std::size_t kMaxYamlNodes = 20000;
/// Longest mapping key: sweep keys are option names (< 100 bytes); each node's JSON pointer repeats
/// the keys above it.
constexpr std::size_t kMaxYamlKeyBytes = 256;
/// Most jobs one sweep may expand to, checked from the axis sizes before any job is built: the
/// shipped MHIM grid is 3,420 jobs; rank 0 keeps every job's spec and bookkeeping in memory.
constexpr std::uint64_t kMaxSweepJobs = 100000;
/// Longest journal line: ours are < 1 KB (a job id, a status and a one-line detail).
constexpr std::size_t kMaxJournalLineBytes = std::size_t{1} << 20;
/// Largest HTTP request line plus headers the status server reads; larger is answered 431. Browsers
/// send ~1 KB.
constexpr std::size_t kStatusHeaderLimitBytes = 8192;
/// Largest HTTP request body; larger is answered 413. GET and HEAD, the only methods served, have
/// none.
constexpr std::size_t kStatusBodyLimitBytes = 16384;

}  // namespace mil::orch
