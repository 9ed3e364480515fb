#include "mil/models/newton_polynomial.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace mil {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Rows of the divided-difference table one parallel task fills (each costs about 15·n·k flops).
constexpr int64_t kDividedDifferenceGrain = 8;

/// Per eigenvalue and step k of the scalar recursion: a_k, q_k and r_{k+1}, each laid out
/// [batch][k][i].
struct Trajectories {
  std::vector<double> a, q, r_next;
};

/// The scalar recursion of the header for eigenvalues `lambda` [batch, n] (double, contiguous).
Trajectories trajectories(const at::Tensor& lambda, int64_t steps) {
  const int64_t batch = lambda.size(0), n = lambda.size(1);
  Trajectories t;
  t.a.resize(batch * steps * n);
  t.q.resize(batch * steps * n);
  t.r_next.resize(batch * steps * n);
  const double* l = lambda.data_ptr<double>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      double r = 1.0;
      for (int64_t k = 0; k < steps; ++k) {
        const int64_t at = (b * steps + k) * n + i;
        const double a = l[b * n + i] * r;
        const double q = 0.25 * (13.0 - a * (15.0 - a * (7.0 - a)));
        r *= q;
        t.a[at] = a;
        t.q[at] = q;
        t.r_next[at] = r;
      }
    }
  }
  return t;
}

/// r_k(λ) [batch, n] for eigenvalues `lambda` [batch, n].
at::Tensor polynomial_values(const at::Tensor& lambda, int64_t steps) {
  at::Tensor r = at::ones_like(lambda);
  if (steps == 0) return r;
  const Trajectories t = trajectories(lambda, steps);
  const int64_t batch = lambda.size(0), n = lambda.size(1);
  double* out = r.data_ptr<double>();
  for (int64_t b = 0; b < batch; ++b) {
    std::copy_n(t.r_next.begin() + (b * steps + steps - 1) * n, n, out + b * n);
  }
  return r;
}

/// F [batch, n, n] with F_ij = [r_k](λ_i, λ_j) = (r_k(λ_i) - r_k(λ_j)) / (λ_i - λ_j), r_k'(λ_i)
/// when equal, by the product rule of divided differences ([fg](x, y) = f(x)[g](x, y) + [f](x,
/// y)g(y)) along the recursion, so that equal or close eigenvalues need no division.
at::Tensor divided_differences(const at::Tensor& lambda, int64_t steps) {
  const int64_t batch = lambda.size(0), n = lambda.size(1);
  at::Tensor f = at::zeros({batch, n, n}, lambda.options());
  if (steps == 0) return f;
  const Trajectories t = trajectories(lambda, steps);
  const double* l = lambda.data_ptr<double>();
  double* out = f.data_ptr<double>();
  at::parallel_for(0, batch * n, kDividedDifferenceGrain, [&](int64_t begin, int64_t end) {
    std::vector<double> da(n), dr(n);  // [a_k](λ_i, λ_j) and [r_k](λ_i, λ_j) over j
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / n, i = row % n;
      std::fill(da.begin(), da.end(), 1.0);  // a_0 = λ
      std::fill(dr.begin(), dr.end(), 0.0);  // r_0 = 1
      for (int64_t k = 0; k < steps; ++k) {
        const double* a = t.a.data() + (b * steps + k) * n;
        const double* q = t.q.data() + (b * steps + k) * n;
        const double* r_next = t.r_next.data() + (b * steps + k) * n;
        const double ai = a[i], ri = k == 0 ? 1.0 : t.r_next[(b * steps + k - 1) * n + i],
                     li = l[b * n + i];
        for (int64_t j = 0; j < n; ++j) {
          const double aj = a[j];
          const double dq =
              -0.25 * da[j] * (15.0 - 7.0 * (ai + aj) + (ai * ai + ai * aj + aj * aj));
          dr[j] = ri * dq + dr[j] * q[j];  // [r q] = r(λ_i)[q] + [r] q(λ_j)
          da[j] = li * dr[j] + r_next[j];  // [λ r] = λ_i [r] + r(λ_j)
        }
      }
      std::copy(dr.begin(), dr.end(), out + row * n);
    }
  });
  return f;
}

/// linalg_eigh of every matrix of a batch [batch, n, n], one matrix per thread. LAPACK's symmetric
/// eigensolver gains nothing from a second BLAS thread at these sizes (measured: 8 x 256 x 256 in
/// double, 43 ms on one thread, 45 ms on two), so the matrices are spread over the threads instead,
/// each solved with single-threaded BLAS (OpenBLAS runs serially inside a parallel region). Every
/// matrix is thus solved the same way at any thread count. Returns contiguous eigenvalues [batch,
/// n] and vectors.
std::tuple<at::Tensor, at::Tensor> batched_eigh(const at::Tensor& symmetric) {
  const int64_t batch = symmetric.size(0), n = symmetric.size(1);
  at::Tensor lambda = at::empty({batch, n}, symmetric.options());
  at::Tensor u = at::empty({batch, n, n}, symmetric.options());
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      at::Tensor values, vectors;
      std::tie(values, vectors) = at::linalg_eigh(symmetric[b]);
      lambda[b].copy_(values);
      u[b].copy_(vectors);
    }
  });
  return {lambda, u};
}

class NewtonPolynomial : public torch::autograd::Function<NewtonPolynomial> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z0, const at::Tensor& m,
                            int64_t steps) {
    const int64_t n = m.size(-1);
    at::Tensor symmetric = m.to(at::kDouble).reshape({-1, n, n});
    symmetric = 0.5 * (symmetric + symmetric.transpose(-1, -2));
    at::Tensor lambda, u;
    std::tie(lambda, u) = batched_eigh(symmetric);
    const at::Tensor r = polynomial_values(lambda, steps);
    const at::Tensor y = z0.to(at::kDouble).reshape({-1, z0.size(-2), n}).matmul(u);  // Z0·U
    ctx->save_for_backward({lambda, u, y, r});
    ctx->saved_data["steps"] = steps;
    at::Tensor z =
        (y * r.unsqueeze(-2)).matmul(u.transpose(-1, -2)).to(z0.scalar_type());  // Z0·U·diag(r)·Uᵀ
    std::vector<int64_t> sizes = m.sizes().vec();
    sizes[sizes.size() - 2] = z0.size(-2);
    return z.view(sizes);
  }

  // With D = dZ·U: dZ0 = D·diag(r)·Uᵀ and dM = U (F ∘ (Yᵀ·D)) Uᵀ, Y = Z0·U (Daleckii-Krein; see the
  // header).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& lambda = saved[0];
    const at::Tensor& u = saved[1];
    const at::Tensor& y = saved[2];
    const at::Tensor& r = saved[3];
    const int64_t steps = ctx->saved_data["steps"].toInt(), n = lambda.size(-1);
    const at::Tensor d = grads[0].to(at::kDouble).reshape({-1, y.size(-2), n}).matmul(u);
    at::Tensor grad_z0, grad_m;
    if (ctx->needs_input_grad(0)) {
      grad_z0 = (d * r.unsqueeze(-2))
                    .matmul(u.transpose(-1, -2))
                    .to(grads[0].scalar_type())
                    .view(grads[0].sizes());
    }
    if (ctx->needs_input_grad(1)) {
      const at::Tensor inner = y.transpose(-1, -2).matmul(d) * divided_differences(lambda, steps);
      std::vector<int64_t> sizes = grads[0].sizes().vec();
      sizes[sizes.size() - 2] = n;
      grad_m = u.matmul(inner).matmul(u.transpose(-1, -2)).to(grads[0].scalar_type()).view(sizes);
    }
    return {grad_z0, grad_m, at::Tensor()};
  }
};

}  // namespace

at::Tensor newton_pinv_polynomial(const at::Tensor& z0, const at::Tensor& m, int64_t iterations) {
  TORCH_CHECK(m.dim() >= 2 && m.size(-1) == m.size(-2),
              "newton_pinv_polynomial expects m [..., n, n], got ", m.sizes());
  TORCH_CHECK(z0.dim() == m.dim() && z0.size(-1) == m.size(-1) &&
                  z0.sizes().slice(0, z0.dim() - 2).equals(m.sizes().slice(0, m.dim() - 2)),
              "newton_pinv_polynomial expects z0 [..., p, n] matching m ", m.sizes(), ", got ",
              z0.sizes());
  TORCH_CHECK(m.device().is_cpu() && z0.device().is_cpu(),
              "newton_pinv_polynomial runs on CPU tensors only, got ", m.device());
  TORCH_CHECK(iterations >= 0, "newton_pinv_polynomial needs iterations >= 0, got ", iterations);
  return NewtonPolynomial::apply(z0, m, iterations);
}

}  // namespace mil
