#pragma once
// Where a synthetic slide's patches lie: the N patches tile a near-square block of tissue, and the
// instances of each role (tumour, easy witnesses, hard witnesses...) sit together in contiguous
// regions, as tumour does on a real slide, instead of scattered at random. Only the coordinates
// depend on it: feature rows keep their order.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

/// Level-0 patch coordinates [N, 2] (x, y; int64) for instances with `roles` [N]: the tissue is the
/// first N cells, row-major, of a grid ceil(sqrt(N)) cells wide, each cell `patch_size` pixels.
/// For each role in `region_roles`, in order, its instances take a region grown from a random free
/// cell by adding random free 4-neighbours of the region (Eden growth): one 4-connected blob, or
/// more only when the free cells around it run out. Instances of other roles fill the remaining
/// cells in row-major order. Deterministic in `seed`.
at::Tensor region_coords(const std::vector<std::uint8_t>& roles,
                         const std::vector<std::uint8_t>& region_roles, std::uint64_t seed,
                         int64_t patch_size = 256);

}  // namespace mil
