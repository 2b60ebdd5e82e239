// Fused CPU optimizer steps for optim/_fused.py: one pass over memory per tensor (each element of
// the parameter, its gradient and its state is read once and written once), in the tensor's own
// precision and in the same operation order as the foreach path (optim/adam.py, optim/sgd.py), so
// the two agree to the last bit wherever the compiler emits no fused multiply-add.
// Registered as torch operators (torch.ops.descent_fused.*), no pybind11, so it builds quickly.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kGrain = 32768;  // elements per parallel chunk

// torch's lerp (aten/src/ATen/native/Lerp.h): which of its two forms is exact depends on the weight.
template <typename T>
inline T lerp(T self, T end, T weight, bool small_weight) {
  return small_weight ? self + weight * (end - self) : end - (end - self) * (T(1) - weight);
}

template <typename T>
void adam_tensor(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                 T* __restrict__ vmax, int64_t n, double step_size_d, double eps_hat_d, double beta1,
                 double beta2, double lr, double weight_decay, bool decoupled, bool maximize) {
  const T w1 = static_cast<T>(1 - beta1), b2 = static_cast<T>(beta2), w2 = static_cast<T>(1 - beta2);
  const bool small_w1 = std::abs(w1) < T(0.5);
  const bool decay_param = weight_decay != 0 && decoupled, decay_grad = weight_decay != 0 && !decoupled;
  const T shrink = static_cast<T>(1 - lr * weight_decay), wd = static_cast<T>(weight_decay);
  const T step_size = static_cast<T>(step_size_d), eps_hat = static_cast<T>(eps_hat_d);
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T pi = p[i];
      if (decay_param) pi = pi * shrink;
      T gi = maximize ? -g[i] : g[i];
      if (decay_grad) gi = gi + wd * pi;
      const T mi = lerp(m[i], gi, w1, small_w1);
      const T vi = v[i] * b2 + w2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      T second = vi;
      if (vmax != nullptr) {
        second = std::max(vmax[i], vi);
        vmax[i] = second;
      }
      p[i] = pi + step_size * mi / (std::sqrt(second) + eps_hat);
    }
  });
}

void adam_(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
           at::TensorList max_exp_avg_sqs, at::ArrayRef<double> step_sizes, at::ArrayRef<double> eps_hats,
           double beta1, double beta2, double lr, double weight_decay, bool decoupled, bool maximize) {
  const bool amsgrad = !max_exp_avg_sqs.empty();
  for (size_t k = 0; k < params.size(); ++k) {
    const at::Tensor& p = params[k];
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "descent_fused_adam", [&] {
      adam_tensor<scalar_t>(
          p.data_ptr<scalar_t>(), grads[k].data_ptr<scalar_t>(), exp_avgs[k].data_ptr<scalar_t>(),
          exp_avg_sqs[k].data_ptr<scalar_t>(), amsgrad ? max_exp_avg_sqs[k].data_ptr<scalar_t>() : nullptr,
          p.numel(), step_sizes[k], eps_hats[k], beta1, beta2, lr, weight_decay, decoupled, maximize);
    });
  }
}

template <typename T>
void sgd_tensor(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, double lr,
                double weight_decay, double momentum, double dampening, bool nesterov, bool maximize,
                bool first) {
  const T neg_lr = static_cast<T>(-lr), wd = static_cast<T>(weight_decay), mu = static_cast<T>(momentum);
  const T w = static_cast<T>(1 - dampening);
  const bool decay = weight_decay != 0;
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T pi = p[i];
      T gi = maximize ? -g[i] : g[i];
      if (decay) gi = gi + wd * pi;
      if (buf != nullptr) {
        const T bi = first ? gi : buf[i] * mu + w * gi;
        buf[i] = bi;
        gi = nesterov ? gi + mu * bi : bi;
      }
      p[i] = pi + neg_lr * gi;
    }
  });
}

void sgd_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers, at::IntArrayRef first,
          double lr, double weight_decay, double momentum, double dampening, bool nesterov, bool maximize) {
  const bool with_momentum = !momentum_buffers.empty();
  for (size_t k = 0; k < params.size(); ++k) {
    const at::Tensor& p = params[k];
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "descent_fused_sgd", [&] {
      sgd_tensor<scalar_t>(
          p.data_ptr<scalar_t>(), grads[k].data_ptr<scalar_t>(),
          with_momentum ? momentum_buffers[k].data_ptr<scalar_t>() : nullptr, p.numel(), lr, weight_decay,
          momentum, dampening, nesterov, maximize, with_momentum && first[k] != 0);
    });
  }
}

}  // namespace

TORCH_LIBRARY(descent_fused, m) {
  m.def(
      "adam_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
      "Tensor(d!)[] max_exp_avg_sqs, float[] step_sizes, float[] eps_hats, float beta1, float beta2, "
      "float lr, float weight_decay, bool decoupled, bool maximize) -> ()",
      &adam_);
  m.def(
      "sgd_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, int[] first, float lr, "
      "float weight_decay, float momentum, float dampening, bool nesterov, bool maximize) -> ()",
      &sgd_);
}
