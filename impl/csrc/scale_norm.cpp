// Fused CPU kernel for ScaleNorm, y = g x / max(||x||, eps) over the last dim (see impl/norms.py).
//
// Why: written as tensor ops, ScaleNorm runs several kernels and re-reads the input from memory
// between them, and ends up slower than torch's fused LayerNorm. Here each row is reduced and then
// written while it is still in cache (two passes over a row per direction, one trip to memory),
// and rows are split across threads with at::parallel_for, so torch.set_num_threads applies.
// The autograd node is C++ too (torch::autograd::Function), so a training step does not re-enter
// Python for it: a Python autograd.Function cost about 50 us more per forward + backward than
// LayerNorm's native node, 3-4% of a 2048 x 512 step.
// Built lazily by torch.utils.cpp_extension.load from impl/norms.py and registered as torch.ops.claimbench_norms.*
// (TORCH_LIBRARY rather than pybind11: no <torch/extension.h>, which halves the first-use compile time).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace {

// sum_i a[i] * b[i]. A single accumulator would be a serial dependency chain that gcc may not
// vectorise (reassociating a float sum changes its rounding), so keep 16 independent partial sums:
// under -O3 they become one or two SIMD registers.
template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  constexpr int64_t L = 16;
  T acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    for (int64_t j = 0; j < L; ++j) acc[j] += a[i + j] * b[i + j];
  }
  T s = 0;
  for (int64_t j = 0; j < L; ++j) s += acc[j];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Rows per parallel task: about 16K elements, so that small inputs are not split into tasks whose
// thread start-up costs more than the work.
int64_t grain(int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)); }

void check_cpu(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "scale_norm C++ kernel: ", name, " must be a CPU tensor");
}

// Returns y (x's shape, contiguous) and inv = 1 / max(||x_row||, eps), one per row.
std::tuple<at::Tensor, at::Tensor> forward_kernel(const at::Tensor& x_in, double g, double eps) {
  check_cpu(x_in, "x");
  TORCH_CHECK(x_in.dim() >= 1, "scale_norm C++ kernel: x must have at least one dimension");
  const at::Tensor x = x_in.contiguous();
  const int64_t d = x.size(-1);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor inv = at::empty({rows}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scale_norm_forward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    scalar_t* ip = inv.mutable_data_ptr<scalar_t>();
    const scalar_t e = static_cast<scalar_t>(eps), gs = static_cast<scalar_t>(g);
    at::parallel_for(0, rows, grain(d), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* xr = xp + r * d;
        scalar_t* yr = yp + r * d;
        const scalar_t ir = scalar_t(1) / std::max(std::sqrt(dot(xr, xr, d)), e);
        const scalar_t s = gs * ir;
        for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * s;
        ip[r] = ir;
      }
    });
  });
  return {y, inv};
}

// Returns dx (x's shape) and dg (0-d). Per row, with r = 1/inv and dot = dy.x:
//   dx = (g/r) (dy - x dot / r^2) where ||x|| > eps, and (g/r) dy where the clamp is active
//   (r = eps is a constant there); dg = sum over rows of dot / r.
std::tuple<at::Tensor, at::Tensor> backward_kernel(const at::Tensor& dy_in, const at::Tensor& x_in,
                                                   const at::Tensor& inv_in, double g, double eps) {
  check_cpu(dy_in, "dy");
  check_cpu(x_in, "x");
  check_cpu(inv_in, "inv");
  TORCH_CHECK(dy_in.sizes() == x_in.sizes(), "scale_norm C++ kernel: dy and x differ in shape");
  TORCH_CHECK(dy_in.scalar_type() == x_in.scalar_type() && inv_in.scalar_type() == x_in.scalar_type(),
              "scale_norm C++ kernel: dy, x and inv must share a dtype");
  const at::Tensor x = x_in.contiguous(), dy = dy_in.contiguous(), inv = inv_in.contiguous();
  const int64_t d = x.size(-1);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  TORCH_CHECK(inv.numel() == rows, "scale_norm C++ kernel: inv must hold one value per row");
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor row_dg = at::empty({rows}, x.options());  // dot / r per row, summed below
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "scale_norm_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
    const scalar_t* ip = inv.const_data_ptr<scalar_t>();
    scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
    scalar_t* dgp = row_dg.mutable_data_ptr<scalar_t>();
    const scalar_t gs = static_cast<scalar_t>(g);
    // The forward stored exactly 1/eps (same expression, same dtype) where the clamp was active.
    const scalar_t inv_eps = scalar_t(1) / static_cast<scalar_t>(eps);
    at::parallel_for(0, rows, grain(d), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* xr = xp + r * d;
        const scalar_t* dyr = dyp + r * d;
        scalar_t* dxr = dxp + r * d;
        const scalar_t ir = ip[r];
        const scalar_t dt = dot(dyr, xr, d);
        const scalar_t a = gs * ir;                                // g / r
        const scalar_t b = ir < inv_eps ? a * dt * ir * ir : 0;  // g dot / r^3; 0 where clamped
        for (int64_t i = 0; i < d; ++i) dxr[i] = a * dyr[i] - b * xr[i];
        dgp[r] = dt * ir;
      }
    });
  });
  return {dx, row_dg.sum()};
}

// y = scale_norm(x, g, eps) with g a one-element tensor whose value is read once; x and inv are saved.
class ScaleNormFunction : public torch::autograd::Function<ScaleNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& g,
                            double eps) {
    check_cpu(g, "g");
    TORCH_CHECK(g.numel() == 1, "scale_norm C++ kernel: g must hold one value, got ", g.numel());
    const double gv = g.item<double>();
    const at::Tensor xc = x.contiguous();
    auto [y, inv] = forward_kernel(xc, gv, eps);
    ctx->save_for_backward({xc, inv, g});
    ctx->saved_data["g"] = gv;
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // Grad mode is on here only under create_graph=True; the kernel's output has no graph, so a
    // second derivative through it would silently be zero.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "ScaleNorm's C++ kernel is differentiable once; for higher derivatives build ScaleNorm(d, fast=False)");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &inv = saved[1], &g = saved[2];
    auto [dx, dg] = backward_kernel(grads[0], x, inv, ctx->saved_data["g"].toDouble(),
                                    ctx->saved_data["eps"].toDouble());
    return {ctx->needs_input_grad(0) ? dx : at::Tensor(),
            ctx->needs_input_grad(1) ? dg.reshape(g.sizes()).to(g.scalar_type()) : at::Tensor(), at::Tensor()};
  }
};

}  // namespace

TORCH_LIBRARY(claimbench_norms, m) {
  m.def("scale_norm(Tensor x, Tensor g, float eps) -> Tensor",
        [](const at::Tensor& x, const at::Tensor& g, double eps) { return ScaleNormFunction::apply(x, g, eps); });
}
