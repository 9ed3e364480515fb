#include "mil/models/transmil_blocks.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include "tests/support/expect_throw.h"

namespace mil {
namespace {

/// A PPEG whose only non-zero weight is proj2's right-neighbour tap (row 1, column 2 of the 3 x 3
/// kernel): every token becomes itself plus the token to its right on the grid (zero past the
/// edge).
Ppeg right_neighbour_ppeg(int64_t dim) {
  Ppeg ppeg{PpegOptions(dim)};
  torch::NoGradGuard no_grad;
  for (auto* conv : {ppeg->proj.get(), ppeg->proj1.get(), ppeg->proj2.get()}) {
    conv->weight.zero_();
    conv->bias.zero_();
  }
  ppeg->proj2->weight.select(2, 1).select(2, 2).fill_(1.0);
  return ppeg;
}

}  // namespace

TEST(GridSide, IsTheExactCeilingOfTheSquareRoot) {
  EXPECT_EQ(grid_side(0), 0);
  EXPECT_EQ(grid_side(1), 1);
  EXPECT_EQ(grid_side(2), 2);
  EXPECT_EQ(grid_side(4), 2);
  EXPECT_EQ(grid_side(5), 3);
  EXPECT_EQ(grid_side(49), 7);
  EXPECT_EQ(grid_side(50), 8);
  EXPECT_EQ(grid_side(1000000000000), 1000000);
  EXPECT_EQ(grid_side(1000000000001), 1000001);
}

TEST(PadToSquareByRepeating, AppendsCopiesOfTheFirstTokens) {
  const at::Tensor tokens = at::arange(5, at::kFloat).unsqueeze(1);  // 5 -> 3 x 3 = 9 tokens
  const at::Tensor padded = pad_to_square_by_repeating(tokens);
  EXPECT_TRUE(padded.squeeze(1).equal(at::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 0.f, 1.f, 2.f, 3.f})));
  EXPECT_TRUE(pad_to_square_by_repeating(tokens.slice(0, 0, 4)).equal(tokens.slice(0, 0, 4)));
}

TEST(Ppeg, MixesNeighboursOnTheRowMajorGrid) {
  // TransMIL's PPEG on the exact 2 x 2 grid t0 t1 / t2 t3: right neighbours give t0+t1, t1, t2+t3,
  // t3.
  Ppeg ppeg = right_neighbour_ppeg(2);
  const at::Tensor grid = at::arange(8, at::kFloat).view({4, 2});
  const at::Tensor expected = at::stack({grid[0] + grid[1], grid[1], grid[2] + grid[3], grid[3]});
  EXPECT_TRUE(ppeg->forward(grid, 2).equal(expected));
}

TEST(Ppeg, MhimPaddingLaysFewTokensOnASevenWideGrid) {
  // MHIM's PPEG on 3 tokens: squared to t0 t1 t2 t0, then zero-padded to 7 x 7, so all four sit on
  // the first row: t0+t1, t1+t2, t2+t0 (on a 2 x 2 grid t1 would have had no right neighbour).
  Ppeg ppeg = right_neighbour_ppeg(2);
  const at::Tensor tokens = at::arange(1, 7, at::kFloat).view({3, 2});
  const at::Tensor expected =
      at::stack({tokens[0] + tokens[1], tokens[1] + tokens[2], tokens[2] + tokens[0]});
  EXPECT_TRUE(ppeg->forward_padded(tokens).equal(expected));
}

TEST(Ppeg, RejectsGridsThatAreNotSideSquared) {
  Ppeg ppeg(PpegOptions(4));
  MIL_EXPECT_THROW_WITH(ppeg->forward(at::randn({5, 4}), 2),
                        "Ppeg expects [4, 4] grid tokens for side 2, got [5, 4]");
}

}  // namespace mil
