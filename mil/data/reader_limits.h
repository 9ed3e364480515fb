#pragma once
// Limits of the data layer's readers of files other people made: torch.save archives (zip, pickle,
// storages), CLAM/TRIDENT .h5 files, packed caches and CSVs. Each is checked before the memory it
// guards is allocated; a file over one is refused with an error naming the file, the limit's value
// and its name here. docs/fuzzing-and-sanitizers.md lists every layer's limits.
#include <cstddef>
#include <cstdint>

#include "mil/core/reader_limits.h"

namespace mil {

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

}  // namespace mil
