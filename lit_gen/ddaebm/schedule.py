"""The few-step (T = 4) variance-preserving schedule of DDAEBM and its Gaussian transitions.

Geng et al. (2024), "Improving Adversarial Energy-Based Model via Diffusion Process" (ICML), following the
discretisation of Xiao et al. (2022, DDGAN). With τ_i = (i/T)(1 − ε) + ε, i = 0..T (ε = 1e-3), the VP-SDE
variance is ``var(τ) = 1 − exp(−½τ²(β_max − β_min) − τβ_min)`` and

    β_0 = var(τ_0),   β_i = min(1 − ᾱ_i / ᾱ_{i−1}, 0.999),   ᾱ_i = ∏_{j≤i} (1 − β_j),   a_i = sqrt(1 − β_i).

ᾱ is the cumulative product of the (clipped) betas so that the forward chain, the pair sampler and the
posterior below all describe one Markov chain (without clipping ᾱ_i = 1 − var(τ_i) exactly). Level 0 is the
data with a tiny noise (sqrt(ᾱ_0) ≈ 0.99995 for β_min = 0.1); level T should be close to N(0, I) because
sampling starts there: with β_min = 0.1, β_max = 20 and T = 4, sqrt(ᾱ_T) ≈ 0.0066.

Levels are indexed t ∈ {0..T}; a network's time input is the index t ∈ {0..T−1} of the *target* level of a
denoising step x_{t+1} → x_t. Every tensor of indices may be an integer or float tensor of shape (B,).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def vp_variance(tau: Tensor, beta_min: float, beta_max: float) -> Tensor:
    """``var(τ) = 1 − exp(−½ τ² (β_max − β_min) − τ β_min)``: the VP-SDE marginal variance (Song et al. 2021)."""
    return -torch.expm1(-0.5 * tau**2 * (beta_max - beta_min) - tau * beta_min)


def _bcast(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """``values[t]`` reshaped to broadcast against ``like`` (B, ...), in ``like``'s float dtype."""
    out = values[t.long()]
    dtype = like.dtype if like.is_floating_point() else out.dtype
    return out.to(dtype).reshape(-1, *([1] * (like.dim() - 1)))


class DDAEBMSchedule(nn.Module):
    """T-step VP schedule with the pair sampler and the DDPM posterior ``q(x_t | x_{t+1}, x_0)``.

    An ``nn.Module`` only so that its coefficient buffers follow the model across devices; the buffers are
    derived from the arguments and not saved in checkpoints. Coefficients are computed in float64, stored in
    float32.

    Args:
        num_timesteps: T, the number of denoising steps (and network evaluations when sampling).
        beta_min, beta_max: VP-SDE rates; choose them so that ``sqrt(ᾱ_T)`` times the data scale is small.
        eps: the smallest diffusion time ε.
    """

    alpha_bars: Tensor
    betas: Tensor
    post_coef_x0: Tensor
    post_coef_xt: Tensor
    post_var: Tensor

    def __init__(
        self, num_timesteps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0, eps: float = 1e-3
    ) -> None:
        super().__init__()
        if not isinstance(num_timesteps, int) or isinstance(num_timesteps, bool) or num_timesteps < 1:
            raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")
        if not (0.0 <= beta_min < beta_max) or not math.isfinite(beta_max):
            raise ValueError(f"need 0 <= beta_min < beta_max < inf, got beta_min={beta_min}, beta_max={beta_max}")
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must lie in (0, 1), got {eps}")
        self.num_timesteps = num_timesteps
        self.beta_min, self.beta_max, self.eps = float(beta_min), float(beta_max), float(eps)
        tau = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps * (1.0 - eps) + eps
        var = vp_variance(tau, self.beta_min, self.beta_max)
        alpha_from_var = 1.0 - var
        betas = torch.cat([var[:1], (1.0 - alpha_from_var[1:] / alpha_from_var[:-1]).clamp(max=0.999)])
        alpha_bars = torch.cumprod(1.0 - betas, dim=0)
        # q(x_t | x_{t+1}, x_0) for t = 0..T-1 (Ho et al. 2020, eq. 7, shifted by one index).
        ab_t, ab_next, beta_next = alpha_bars[:-1], alpha_bars[1:], betas[1:]
        post_var = beta_next * (1.0 - ab_t) / (1.0 - ab_next)
        post_coef_x0 = beta_next * ab_t.sqrt() / (1.0 - ab_next)
        post_coef_xt = (1.0 - ab_t) * (1.0 - beta_next).sqrt() / (1.0 - ab_next)
        for name, value in (("alpha_bars", alpha_bars), ("betas", betas), ("post_var", post_var),
                            ("post_coef_x0", post_coef_x0), ("post_coef_xt", post_coef_xt)):
            self.register_buffer(name, value.to(torch.float32), persistent=False)

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}, beta_min={self.beta_min}, beta_max={self.beta_max}"

    # ------------------------------------------------------------- SPEC §0 interface
    def alpha_bar(self, t: Tensor) -> Tensor:
        """ᾱ_t for level indices t (shape (B,))."""
        return self.alpha_bars[self._check_t(t, self.num_timesteps).long()]

    def sigma(self, t: Tensor) -> Tensor:
        """``sqrt(1 − ᾱ_t)``: the noise level of x_t given x_0."""
        return (1.0 - self.alpha_bar(t)).sqrt()

    def _check_t(self, t: Tensor, top: int) -> Tensor:
        if not isinstance(t, Tensor) or t.dim() != 1:
            raise ValueError(f"time indices must be a tensor of shape (B,), got {getattr(t, 'shape', t)!r}")
        # The value check synchronises with the device, so it runs on CPU tensors only (tests, user calls).
        if t.device.type != "cpu" or not t.numel():
            return t
        fractional = t.is_floating_point() and not torch.equal(t, t.round())
        if t.min() < 0 or t.max() > top or fractional:
            raise ValueError(f"time indices must be integers in [0, {top}], got values in "
                             f"[{float(t.min())}, {float(t.max())}]")
        return t

    def sample_times(self, batch: int, device: torch.device | str | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
        """Uniform step indices t ∈ {0..T−1} (int64, shape (batch,)) for training pairs."""
        return torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)

    # ----------------------------------------------------------------- forward chain
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε``."""
        ab = _bcast(self.alpha_bars, self._check_t(t, self.num_timesteps), x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def q_step(self, x_t: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """One forward step ``x_{t+1} = a_{t+1} x_t + sqrt(β_{t+1}) ε'`` (t ∈ {0..T−1})."""
        beta = _bcast(self.betas, self._check_t(t, self.num_timesteps - 1) + 1, x_t)
        return (1.0 - beta).sqrt() * x_t + beta.sqrt() * noise

    def q_pair(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A training pair ``(x_t, x_{t+1})`` from data ``x0`` at step indices ``t`` ∈ {0..T−1}."""
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        noise2 = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return x_t, self.q_step(x_t, t, noise2)

    def transition_log_prob(self, x_next: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``log N(x_{t+1}; a_{t+1} x_t, β_{t+1} I)`` summed over data dims, shape (B,), in float32 or wider."""
        beta = _bcast(self.betas, self._check_t(t, self.num_timesteps - 1) + 1, x_t.float())
        return _gaussian_log_prob(x_next.float(), (1.0 - beta).sqrt() * x_t.float(), beta)

    # ---------------------------------------------------------------------- posterior
    def posterior_mean_var(self, x0: Tensor, x_next: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of ``q(x_t | x_{t+1}, x_0)`` (DDPM posterior; variance broadcastable)."""
        t = self._check_t(t, self.num_timesteps - 1)
        mean = _bcast(self.post_coef_x0, t, x0) * x0 + _bcast(self.post_coef_xt, t, x_next) * x_next
        return mean, _bcast(self.post_var, t, x0)

    def posterior_sample(self, x0: Tensor, x_next: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t ∼ q(x_t | x_{t+1}, x_0)``; the mean only where t = 0 (the last sampling step)."""
        mean, var = self.posterior_mean_var(x0, x_next, t)
        keep = (t != 0).to(mean.dtype).reshape(-1, *([1] * (mean.dim() - 1)))
        return mean + keep * var.sqrt() * noise

    def posterior_log_prob(self, x_t: Tensor, x0: Tensor, x_next: Tensor, t: Tensor,
                           var_floor: float = 0.0) -> Tensor:
        """``log q(x_t | x_{t+1}, x_0)`` summed over data dims, shape (B,), variance floored at ``var_floor``."""
        mean, var = self.posterior_mean_var(x0.float(), x_next.float(), t)
        return _gaussian_log_prob(x_t.float(), mean, var.clamp(min=var_floor))


def _gaussian_log_prob(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """``log N(x; mean, var I)`` summed over all but the batch dimension."""
    elem = -0.5 * ((x - mean) ** 2 / var + var.log() + math.log(2 * math.pi))
    return elem.expand_as(x).flatten(1).sum(dim=1)
