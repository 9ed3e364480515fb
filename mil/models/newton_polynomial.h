#pragma once
// The Newton-Schulz pseudo-inverse of Nyström attention (modules/nystrom_attention.py's
// `moore_penrose_iter_pinv`), evaluated through an eigendecomposition instead of 24 matmuls forward
// and 48 backward per call.
//
// The reference iterates Z <- ¼ Z (13I - XZ(15I - XZ(7I - XZ))) from Z0. Every X·Z_k is then a
// polynomial in M = X·Z0, and Z_k = Z0 · r_k(M), where the scalar polynomials follow
//   a_0 = λ, r_0 = 1,  q_k = ¼(13 - a_k(15 - a_k(7 - a_k))),
//   r_{k+1} = r_k q_k,  a_{k+1} = λ r_{k+1}.
// With Z0 = Xᵀ/s, M = X Xᵀ/s is symmetric, so r_k(M) = U diag(r_k(λ)) Uᵀ from M = U diag(λ) Uᵀ, and
// its gradient is the Daleckii-Krein formula U (F ∘ (Uᵀ G U)) Uᵀ with F_ij the divided difference
// [r_k](λ_i, λ_j) (the derivative on the diagonal). Both are the reference's function and gradient
// in exact arithmetic; here they are computed in double precision, which is closer to them than the
// reference's own float32 matrix iteration (see newton_polynomial_test.cpp).
#include <ATen/core/Tensor.h>

namespace mil {

/// Z0·r_k(M) for batches z0 [..., p, n] and symmetric m [..., n, n] (only m's symmetric part is
/// read): the reference's Newton pseudo-inverse after k steps from Z0 when m = X·Z0. Differentiable
/// in both; the gradient in m is that of the matrix polynomial (its Fréchet derivative, also in
/// non-symmetric directions). Computed in double (Z0·r_k(M) cancels: r_k is up to 3.25^k on small
/// eigenvalues) and returned in z0's dtype. CPU only.
at::Tensor newton_pinv_polynomial(const at::Tensor& z0, const at::Tensor& m, int64_t iterations);

/// The largest iteration count newton_pinv_polynomial is used for by moore_penrose_pinv: r_k grows
/// like 3.25^k on the null space of M, where it multiplies only rounding noise of Z0 (exactly zero
/// in exact arithmetic); 3.25^12 · 1e-16 stays far below float32 rounding.
constexpr int64_t kNewtonPolynomialMaxIterations = 12;

}  // namespace mil
