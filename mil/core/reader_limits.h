#pragma once
// The limits of every reader of files (and requests) that other people or other processes made,
// in one place: JSON documents, torch.save archives, .h5 feature files, packed caches, CSVs, sweep
// files, the journal and the status server's requests. Each is checked before the memory it guards
// is allocated, and an input over one is refused with an error naming the file (and line where
// there is one), the limit's value and its name here; the status server answers 431 or 413
// instead. Plain constants with no dependencies, so every layer (mil, the orchestrator, the
// worker) includes this one header. docs/security-and-limits.md lists them with their reasons.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mil {

// JSON documents read from files (results, job specs, heartbeats, lock files, manifests, indexes).

/// Largest JSON document read from a file (a result, a job spec, a heartbeat, a lock file, a
/// manifest): a result with a long training history is ~100 KB and a 100,000-job manifest ~60 MB;
/// nlohmann's in-memory form is ~10x the text.
constexpr std::size_t kMaxJsonDocumentBytes = std::size_t{256} << 20;

/// Deepest nesting of JSON arrays and objects: our documents nest at most 6 levels, and nlohmann's
/// copy, comparison and dump recurse once per level, so a file of a million '[' would overflow the
/// stack.
constexpr int kMaxJsonDepth = 64;

// torch.save archives (.pt features, state_dicts, checkpoints).

/// Largest .pt file read into memory: the features of a 200,000-patch slide at D = 1,536 in float32
/// are 1.2 GB, and the largest state_dict we load (TransMIL) is a few MB.
constexpr std::uint64_t kMaxTorchSaveFileBytes = std::uint64_t{16} << 30;
/// Largest single member of such an archive (one tensor storage, copied once into a tensor).
constexpr std::uint64_t kMaxArchiveMemberBytes = std::uint64_t{16} << 30;
/// Most members in one archive: torch.save writes one per storage (a few hundred for a
/// state_dict); the member table costs ~100 bytes each.
constexpr std::size_t kMaxArchiveMembers = std::size_t{1} << 20;
/// Largest pickle program (data.pkl), which is copied into memory: a state_dict of 10,000 tensors
/// pickles to ~2 MB.
constexpr std::size_t kMaxPickleBytes = std::size_t{64} << 20;
/// Most opcodes one pickle may execute: ~30 per tensor in torch.save output, so 300,000 for that
/// state_dict; it bounds the unpickler's stack and memo.
constexpr std::size_t kMaxPickleOpcodes = std::size_t{8} << 20;
/// Deepest nesting of containers the pickle may build: torch.save output nests 4 levels
/// (checkpoint dict, state_dict, a tensor's argument tuple, its size tuple); every destructor,
/// comparison and printer of the result recurses once per level.
constexpr int kMaxPickleDepth = 32;
/// Most dimensions of one tensor: features are 2-D, parameters at most 5-D.
constexpr std::size_t kMaxTensorDims = 16;
/// Most elements of one tensor: the 1.2 GB slide above has 3 x 10^8.
constexpr std::uint64_t kMaxTensorElements = std::uint64_t{1} << 32;
/// A tensor may have more elements than its storage (a broadcast view saved with zero strides)
/// only up to this many, so that a few bytes on disk cannot become gigabytes in memory.
constexpr std::uint64_t kMaxExpandedTensorElements = std::uint64_t{1} << 24;

// CLAM/TRIDENT .h5 feature files.

/// An .h5 may decode to at most this many times its own size: CLAM and TRIDENT write features
/// uncompressed as float16 (2x when widened to float32) or float32, and gzip shrinks features by
/// less than 2x; a few kilobytes claiming [10^6, 10^4] unwritten values would otherwise allocate
/// 40 GB.
constexpr std::uint64_t kMaxH5ExpansionRatio = 16;
/// Most attributes read from one HDF5 object (CLAM writes 2-6 on `coords`).
constexpr int kMaxH5Attributes = 256;
/// Longest string attribute kept (e.g. a slide's name or a model tag).
constexpr std::size_t kMaxH5StringAttributeBytes = std::size_t{64} << 10;

// Packed caches (.milpack).

/// Largest index of a packed cache, parsed as JSON: ~300 bytes per slide, so ~800,000 slides.
constexpr std::uint64_t kMaxPackedIndexBytes = std::uint64_t{256} << 20;

// Label, split and instance CSVs.

/// Largest CSV file: a label CSV of 30,000 slides is ~1 MB; the classic MIL instance CSVs (MUSK) a
/// few MB.
constexpr std::uint64_t kMaxCsvFileBytes = std::uint64_t{256} << 20;
/// Longest CSV line: label and split rows are < 200 bytes; an instance row of the classic MIL
/// datasets holds a few hundred numbers (~3 KB).
constexpr std::size_t kMaxCsvLineBytes = std::size_t{1} << 20;
/// Most lines in one CSV: the largest public WSI cohorts list ~30,000 slides, the classic MIL
/// instance CSVs ~10,000 instances.
constexpr std::size_t kMaxCsvLines = std::size_t{1} << 22;

// Sweep files, the journal and the status server (the orchestrator).

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

/// The end of a limit error, after the file's name: "<what> exceeds the limit of <limit>
/// (<name>)".
inline std::string over_limit(const std::string& what, std::uint64_t limit, const char* name) {
  return what + " exceeds the limit of " + std::to_string(limit) + " (" + name + ")";
}

/// The same with the value found: "<what> (<actual>) exceeds the limit of <limit> (<name>)".
inline std::string over_limit(const std::string& what, std::uint64_t actual, std::uint64_t limit,
                              const char* name) {
  return over_limit(what + " (" + std::to_string(actual) + ")", limit, name);
}

}  // namespace mil
