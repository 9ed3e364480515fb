#include "mil/synthetic/layout.h"

#include <ATen/ATen.h>

#include <cmath>
#include <random>

namespace mil {

at::Tensor region_coords(const std::vector<std::uint8_t>& roles,
                         const std::vector<std::uint8_t>& region_roles, std::uint64_t seed,
                         int64_t patch_size) {
  const int64_t n = int64_t(roles.size());
  const int64_t width = std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(n)))));
  std::mt19937_64 rng(seed);
  std::vector<int64_t> cell_of(std::size_t(n), -1);  // instance -> cell
  std::vector<char> taken(std::size_t(n), 0);        // cell -> used
  std::vector<char> queued(std::size_t(n), 0);       // cell -> in the current frontier
  int64_t free_cells = n;

  /// A uniformly random free cell (there is one whenever free_cells > 0).
  const auto random_free_cell = [&] {
    int64_t skip = int64_t(rng() % std::uint64_t(free_cells));
    int64_t c = 0;
    for (; c + 1 < n; ++c) {
      if (!taken[std::size_t(c)] && skip-- == 0) break;
    }
    return c;
  };
  for (std::uint8_t role : region_roles) {
    std::vector<int64_t> members;
    for (int64_t i = 0; i < n; ++i) {
      if (roles[std::size_t(i)] == role && cell_of[std::size_t(i)] < 0) members.push_back(i);
    }
    std::vector<int64_t> frontier;
    const auto take = [&](int64_t cell, int64_t instance) {
      taken[std::size_t(cell)] = 1;
      --free_cells;
      cell_of[std::size_t(instance)] = cell;
      const int64_t x = cell % width, y = cell / width;
      const int64_t neighbours[4] = {x > 0 ? cell - 1 : -1, x + 1 < width ? cell + 1 : -1,
                                     y > 0 ? cell - width : -1, cell + width};
      for (int64_t next : neighbours) {
        if (next < 0 || next >= n || taken[std::size_t(next)] || queued[std::size_t(next)])
          continue;
        queued[std::size_t(next)] = 1;
        frontier.push_back(next);
      }
    };
    for (int64_t instance : members) {
      // Drop frontier cells another region took meanwhile; restart from a new seed when none is
      // left (the region then has a second component).
      int64_t cell = -1;
      while (!frontier.empty() && cell < 0) {
        const std::size_t pick = std::size_t(rng() % frontier.size());
        const int64_t candidate = frontier[pick];
        frontier[pick] = frontier.back();
        frontier.pop_back();
        queued[std::size_t(candidate)] = 0;
        if (!taken[std::size_t(candidate)]) cell = candidate;
      }
      if (cell < 0) cell = random_free_cell();
      take(cell, instance);
    }
    for (int64_t c : frontier) queued[std::size_t(c)] = 0;
  }
  int64_t next_free = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (cell_of[std::size_t(i)] >= 0) continue;
    while (taken[std::size_t(next_free)]) ++next_free;
    taken[std::size_t(next_free)] = 1;
    cell_of[std::size_t(i)] = next_free;
  }
  at::Tensor coords = at::empty({n, 2}, at::kLong);
  int64_t* c = coords.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    c[2 * i] = (cell_of[std::size_t(i)] % width) * patch_size;
    c[2 * i + 1] = (cell_of[std::size_t(i)] / width) * patch_size;
  }
  return coords;
}

}  // namespace mil
