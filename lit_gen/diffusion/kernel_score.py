"""Training-free score models: diffusion kernel smoothing of the training set, Euclidean and on the torus.

Shen & Oates (2024), "Operator-informed score matching for Markov diffusion models" (arXiv:2406.09084),
seed 002, "Riemannian diffusion kernel smoothing". The forward process applied to the empirical measure of
the training set ``{x_j}`` has an exact score, so no network is needed (in low dimension):

- Euclidean (variance-preserving): ``x_t | x_0 ~ N(sqrt(ᾱ) x_0, (1 − ᾱ) I)`` and the posterior mean is
  ``D(x_t, t) = Σ_j w_j x_j``, ``w_j = softmax_j(−‖x_t − sqrt(ᾱ) x_j‖² / (2(1 − ᾱ)))``.
- Torus ``[−π, π)^d``: in the variance-exploding variable ``y = x_t / sqrt(ᾱ)``, ``σ² = (1 − ᾱ)/ᾱ``, the heat
  kernel is the wrapped Gaussian ``k_σ(Δ) = Π_i Σ_{k∈ℤ} N(Δ_i + 2πk; 0, σ²)``; the score of
  ``p_σ(y) = mean_j k_σ(y − x_j)`` is ``s(y) = Σ_j w_j ∇ log k_σ(y − x_j)`` with ``w_j ∝ k_σ(y − x_j)``, and
  Tweedie's formula ``D = y + σ² s(y)`` gives the denoiser in the lifted (unwrapped) coordinates. ``D`` is
  periodic-equivariant, ``D(y + 2πk) = D(y) + 2πk``, so every sampler runs unchanged on the lift and its output
  is wrapped into the box with :func:`wrap_to_torus`. **Derived** from the definitions
  (``docs/algorithms.md#kernel-score``).

The 1-D wrapped-normal factor is summed over images ``k ∈ {−2..2}`` when ``σ < 1.5`` and through its Fourier
series ``(1/2π)(1 + 2 Σ_{n=1}^{5} e^{−n²σ²/2} cos nΔ)`` (Jacobi theta) above: the dropped images weigh at most
``e^{−((2K+1)²−1)π²/(2σ²)} < e^{−52}`` of the kept ones for ``|Δ| ≤ π``, the dropped Fourier terms
``e^{−36σ²/2} < e^{−40}`` of ``f ≥ 0.37``. The training set is visited in chunks with a running
(log-sum-exp) softmax, so memory is ``O(batch · chunk_size · d)`` whatever its size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lit_gen.diffusion.schedules import NoiseSchedule, _broadcast_to_data

__all__ = ["KernelDenoiser", "TorusKernelDenoiser", "wrap_to_torus", "wrapped_normal_log_kernel"]

_IMAGES = 2
_FOURIER_TERMS = 5
_FOURIER_SIGMA = 1.5


def wrap_to_torus(x: Tensor) -> Tensor:
    """Map every coordinate into ``[−π, π)``: ``((x + π) mod 2π) − π``."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def wrapped_normal_log_kernel(delta: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise ``log k_σ(Δ)`` and ``d/dΔ log k_σ(Δ)`` of the 1-D wrapped normal on ``[−π, π)``.

    ``k_σ(Δ) = Σ_{k∈ℤ} N(Δ + 2πk; 0, σ²)`` (density w.r.t. arc length), evaluated by the image sum for
    ``σ < 1.5`` and by the Fourier series above (see the module docstring); ``sigma`` broadcasts against ``delta``.
    """
    delta = wrap_to_torus(delta)
    sigma = sigma.to(delta.dtype)
    use_fourier = sigma >= _FOURIER_SIGMA
    if not bool(use_fourier.any()):  # one branch only when every σ falls on one side (a sampler step)
        return _log_kernel_images(delta, sigma.expand_as(delta))
    if bool(use_fourier.all()):
        return _log_kernel_fourier(delta, sigma.expand_as(delta))
    sigma = sigma.expand_as(delta)
    use_fourier = use_fourier.expand_as(delta)
    log_img, grad_img = _log_kernel_images(delta, sigma)
    log_four, grad_four = _log_kernel_fourier(delta, torch.where(use_fourier, sigma, torch.full_like(sigma, 10.0)))
    return torch.where(use_fourier, log_four, log_img), torch.where(use_fourier, grad_four, grad_img)


def _log_kernel_images(delta: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Image sum ``Σ_{|k|≤K} N(Δ + 2πk; 0, σ²)``: log and derivative (accurate for σ < 1.5)."""
    # image sum: logsumexp over shifted squared distances
    shifts = 2 * math.pi * torch.arange(-_IMAGES, _IMAGES + 1, dtype=delta.dtype, device=delta.device)
    z = delta.unsqueeze(-1) + shifts  # (..., 2K+1)
    var = sigma.unsqueeze(-1).square()
    logits = -0.5 * z.square() / var
    log_img = torch.logsumexp(logits, -1) - 0.5 * torch.log(2 * math.pi * sigma.square())
    grad_img = -(torch.softmax(logits, -1) * z).sum(-1) / sigma.square()
    return log_img, grad_img


def _log_kernel_fourier(delta: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Fourier series ``f = 1 + 2 Σ q^{n²} cos(nΔ)``, ``q = e^{−σ²/2}``: log and derivative (σ ≥ 1.5)."""
    n = torch.arange(1, _FOURIER_TERMS + 1, dtype=delta.dtype, device=delta.device)
    coef = torch.exp(-0.5 * n.square() * sigma.unsqueeze(-1).square())  # (..., M)
    f = 1.0 + 2.0 * (coef * torch.cos(n * delta.unsqueeze(-1))).sum(-1)
    df = -2.0 * (coef * n * torch.sin(n * delta.unsqueeze(-1))).sum(-1)
    return torch.log(f) - math.log(2 * math.pi), df / f


def _check_data(data: Tensor, chunk_size: int) -> Tensor:
    if not isinstance(data, Tensor) or data.dim() < 2 or data.shape[0] == 0:
        raise ValueError("data must be a non-empty tensor of training points of shape (N, *data_shape)")
    if not torch.isfinite(data).all():
        raise ValueError("the training data contain NaN or infinite values; clean them before building a kernel score")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return data.detach().flatten(1)


class KernelDenoiser(nn.Module):
    """Exact posterior mean ``E[x_0 | x_t]`` of the empirical training measure (Euclidean; module docstring).

    Args:
        data: training points ``(N, *data_shape)``.
        schedule: the variance-preserving schedule the samplers use.
        chunk_size: training points per chunk of the streaming softmax (memory bound).
    """

    data: Tensor

    def __init__(self, data: Tensor, schedule: NoiseSchedule, chunk_size: int = 4096) -> None:
        super().__init__()
        self.register_buffer("data", _check_data(data, chunk_size), persistent=False)
        self.data_shape = tuple(data.shape[1:])
        self.schedule = schedule
        self.chunk_size = int(chunk_size)

    def _check(self, x_t: Tensor) -> Tensor:
        if tuple(x_t.shape[1:]) != self.data_shape:
            raise ValueError(f"x_t has shape {tuple(x_t.shape)}, expected (B, *{self.data_shape})")
        return x_t.flatten(1)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        flat = self._check(x_t)
        work = torch.promote_types(flat.dtype, torch.float32)
        la = self.schedule.log_alpha_bar(t).to(work)
        a = _broadcast_to_data((0.5 * la).exp(), flat)
        var = _broadcast_to_data(-torch.expm1(la), flat)
        y = flat.to(work) / a  # ‖x_t − a x_j‖² / (1 − ᾱ) = ‖y − x_j‖² / σ_EDM², σ_EDM² = (1 − ᾱ)/ᾱ
        edm_var = var / a.square()
        run_max = torch.full((flat.shape[0], 1), float("-inf"), dtype=work, device=flat.device)
        denom = torch.zeros_like(run_max)
        numer = torch.zeros_like(y)
        for start in range(0, self.data.shape[0], self.chunk_size):
            chunk = self.data[start : start + self.chunk_size].to(work)
            sq = torch.cdist(y, chunk, compute_mode="donot_use_mm_for_euclid_dist").square()
            logits = -0.5 * sq / edm_var
            new_max = torch.maximum(run_max, logits.amax(1, keepdim=True))
            scale = torch.exp(run_max - new_max)
            w = torch.exp(logits - new_max)
            denom = denom * scale + w.sum(1, keepdim=True)
            numer = numer * scale + w @ chunk
            run_max = new_max
        return (numer / denom).to(x_t.dtype).reshape(x_t.shape)


class TorusKernelDenoiser(KernelDenoiser):
    """Riemannian diffusion kernel smoothing on ``[−π, π)^d`` with the wrapped-Gaussian heat kernel.

    Returns ``D = y + σ² s(y)`` in the lifted coordinates (module docstring), so samplers run unchanged;
    wrap their output with :func:`wrap_to_torus` (``DiffusionModule`` subclasses for kernels do so).
    Training points are wrapped into the box on construction.
    """

    def __init__(self, data: Tensor, schedule: NoiseSchedule, chunk_size: int = 1024) -> None:
        super().__init__(wrap_to_torus(data.detach()), schedule, chunk_size)

    def score(self, y: Tensor, sigma: Tensor) -> Tensor:
        """``∇ log p_σ(y)`` of the wrapped-kernel density at lifted points ``y`` (B, d), per-sample ``σ`` (B,)."""
        work = torch.promote_types(y.dtype, torch.float32)
        y = y.to(work)
        sig = sigma.to(work).reshape(-1, 1, 1)
        run_max = torch.full((y.shape[0], 1), float("-inf"), dtype=work, device=y.device)
        denom = torch.zeros_like(run_max)
        numer = torch.zeros_like(y)
        for start in range(0, self.data.shape[0], self.chunk_size):
            chunk = self.data[start : start + self.chunk_size].to(work)
            log_k, grad_k = wrapped_normal_log_kernel(y[:, None, :] - chunk[None], sig)  # (B, C, d)
            logits = log_k.sum(-1)
            new_max = torch.maximum(run_max, logits.amax(1, keepdim=True))
            scale = torch.exp(run_max - new_max)
            w = torch.exp(logits - new_max)
            denom = denom * scale + w.sum(1, keepdim=True)
            numer = numer * scale + (w.unsqueeze(-1) * grad_k).sum(1)
            run_max = new_max
        return numer / denom

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        flat = self._check(x_t)
        work = torch.promote_types(flat.dtype, torch.float32)
        la = self.schedule.log_alpha_bar(t).to(work)
        edm_var = torch.expm1(-la)
        y = flat.to(work) * torch.exp(-0.5 * la).reshape(-1, 1)
        x0 = y + edm_var.reshape(-1, 1) * self.score(y, edm_var.sqrt())
        return x0.to(x_t.dtype).reshape(x_t.shape)
