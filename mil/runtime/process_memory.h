#pragma once
// Process-wide allocator settings for training processes. Called once from main(), never from the
// library.
#include <string>

namespace mil {

/// Makes glibc keep freed buffers of up to 32 MiB in its heap for reuse instead of handing them
/// back to the kernel. Every bag allocates fresh [N x 512] activations and gradients of 2-12 MB; by
/// default glibc serves blocks that size with new mmap pages, and the first-touch page faults
/// doubled the CPU time of an ABMIL step on our VMs (2 threads, N = 1803: 135 -> 65 CPU ms per bag,
/// against 42 for its two GEMMs). Memory stays bounded: freed blocks are reused by the next bag of
/// similar size. Setting MIL_MALLOC_TUNING=0, or any glibc.malloc tunable in GLIBC_TUNABLES, leaves
/// glibc's defaults alone. Returns what it did, for the log.
std::string keep_freed_buffers_for_reuse();

/// Raises oneDNN's primitive cache from 1,024 to 16,384 entries (ONEDNN_PRIMITIVE_CACHE_CAPACITY)
/// unless the user set it (or DNNL_PRIMITIVE_CACHE_CAPACITY). bf16 matmuls on the CPU run through
/// oneDNN, which JIT-compiles one primitive per distinct shape; bags differ in size, and MHIM uses
/// about 17 shapes per bag (teacher, masked student, GRN, each forward and backward), so 60 bags
/// already cycled through more than 1,024 and every lookup missed: MHIM(ABMIL) bf16 took 2.69 s per
/// epoch instead of 1.89, and its memory grew with the epochs. A cached primitive holds some tens
/// of KB of code. Must run before the first oneDNN call. Returns what it did, for the log.
std::string keep_compiled_kernels_for_reuse();

}  // namespace mil
