"""Euler–Maruyama on the reverse-time SDE of the variance-preserving process (Song et al., 2021,
"Score-based generative modeling through stochastic differential equations", eq. 6)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lit_gen.diffusion._random import randn
from lit_gen.diffusion.denoiser import Denoiser
from lit_gen.diffusion.samplers._common import SampleOutput, check_num_steps, full_t, prepare
from lit_gen.diffusion.schedules import NoiseSchedule

__all__ = ["euler_maruyama_sample"]


def euler_maruyama_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 100,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    x_T: Tensor | None = None,
) -> SampleOutput:
    """Euler–Maruyama in the integrated-noise time ``λ = −log ᾱ`` on a grid uniform in log-SNR.

    Discretisation (chosen so that one code path is stable for every schedule): in ``λ`` the VP SDE of any
    schedule is the same Ornstein–Uhlenbeck process ``dx = −½ x dλ + dW_λ`` (``dλ = β dτ``), whose reverse is
    ``dx = [−½ x − ∇log p_λ(x)] dλ + dW̄_λ``. One step down from ``λ_i`` by ``h = λ_i − λ_{i+1} > 0``::

        x ← x + h (½ x + ∇log p(x)) + sqrt(h) z,    ∇log p(x) = (sqrt(ᾱ) D(x, t) − x) / (1 − ᾱ)   (Tweedie)

    The grid ``t_0 = T−1 > ... > t_{N−1} = 0`` is uniform in ``log σ_EDM`` (= −½ log-SNR, as in Lu et al.,
    2022, DPM-Solver), which keeps every ``h`` moderate: with the cosine schedule, uniform steps in ``t`` give
    ``h > 7`` on the last step (β is clipped at 0.999 there) and Euler–Maruyama explodes. After ``N − 1``
    steps the sample is denoised once more, ``x = D(x, t_{N−1})``, without noise. ``nfe = num_steps``. The
    method is first order: its bias shrinks like ``1/num_steps``.
    """
    n = check_num_steps(num_steps)
    with torch.no_grad():
        x = prepare(schedule, shape, generator, device, dtype, x_T)
        batch = x.shape[0]
        ends = torch.tensor([0.0, schedule.num_timesteps - 1.0], dtype=torch.float64, device=x.device)
        lo_s, hi_s = schedule.edm_sigma(ends).tolist()
        if n == 1:
            log_sigmas = [math.log(hi_s)]
        else:
            step = (math.log(lo_s) - math.log(hi_s)) / (n - 1)
            log_sigmas = [math.log(hi_s) + i * step for i in range(n)]
        sig = torch.tensor(log_sigmas, dtype=torch.float64, device=x.device).exp()
        t_grid = schedule.t_from_edm_sigma(sig).tolist()
        lam = torch.log1p(sig.square()).tolist()  # λ = −log ᾱ = log(1 + σ_EDM²)
        for i in range(n - 1):
            x0 = denoiser(x, full_t(t_grid[i], batch, x.device, dtype)).to(dtype)
            one_minus = -math.expm1(-lam[i])
            score = (math.exp(-0.5 * lam[i]) * x0 - x) / one_minus
            h = lam[i] - lam[i + 1]
            x = x + h * (0.5 * x + score) + math.sqrt(h) * randn(x.shape, generator, x.device, dtype)
        x = denoiser(x, full_t(t_grid[-1], batch, x.device, dtype)).to(dtype)
    return SampleOutput(x=x, nfe=n)
