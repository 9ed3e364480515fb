#pragma once
// Process-wide allocator settings for training processes. Called once from main(), never from the library.
#include <string>

namespace mil {

/// Makes glibc keep freed buffers of up to 32 MiB in its heap for reuse instead of handing them back to the kernel.
/// Every bag allocates fresh [N x 512] activations and gradients of 2-12 MB; by default glibc serves blocks that
/// size with new mmap pages, and the first-touch page faults doubled the CPU time of an ABMIL step on our VMs
/// (2 threads, N = 1803: 135 -> 65 CPU ms per bag, against 42 for its two GEMMs). Memory stays bounded: freed
/// blocks are reused by the next bag of similar size. Setting MIL_MALLOC_TUNING=0, or any glibc.malloc tunable in
/// GLIBC_TUNABLES, leaves glibc's defaults alone. Returns what it did, for the log.
std::string keep_freed_buffers_for_reuse();

}  // namespace mil
