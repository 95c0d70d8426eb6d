"""Denoising PSNR of an energy prior: PSNR of the noisy input and of its denoised version, per noise level.

For each σ, the first ``num_images`` test images get Gaussian noise of standard deviation σ (seeded per batch
and level, so every model sees the same noisy images) and are denoised by gradient steps on
``½‖x − y‖²/σ² + E(x)`` (:func:`lit_gen.denoise.denoise`), or by the model's own ``denoiser`` (a DCD noise
ladder's Tweedie denoiser, :meth:`lit_gen.models.DCDModule.denoise_images`). The report gives ``psnr_noisy_s{σ}``,
``psnr_denoised_s{σ}`` and their difference ``psnr_gain_s{σ}`` (data range 2: images in [−1, 1]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lit_gen.denoise import denoise
from lit_gen.evaluation.base import Evaluator

__all__ = ["DenoisingPSNR"]


def _key(kind: str, sigma: float) -> str:
    # ModuleDict keys cannot contain dots
    return f"{kind}_{round(sigma * 1e4)}"


class DenoisingPSNR(Evaluator):
    """PSNR before and after denoising with ``module.energy`` at each noise level of ``sigmas``.

    Args:
        sigmas: noise standard deviations.
        num_images: test images denoised per level.
        method, steps, step_scale: settings of :func:`lit_gen.denoise.denoise` on ``module.energy``.
        denoiser: ``(y, σ, generator) -> x̂`` used instead of them (e.g. ``DCDModule.denoise_images``), or None.
    """

    def __init__(self, sigmas: Sequence[float], num_images: int, method: str, steps: int, step_scale: float,
                 denoiser: Callable[[Tensor, float, torch.Generator], Tensor] | None = None) -> None:
        super().__init__()
        from torchmetrics.image import PeakSignalNoiseRatio

        self.sigmas = tuple(float(s) for s in sigmas)
        self.num_images = int(num_images)
        self.method = method
        self.steps = int(steps)
        self.step_scale = float(step_scale)
        self.denoiser = denoiser
        self.psnr = nn.ModuleDict(
            {_key(kind, s): PeakSignalNoiseRatio(data_range=2.0) for s in self.sigmas for kind in ("noisy", "denoised")}
        )
        self._count = 0

    def start(self, module: Any, split: str) -> None:
        self._count = 0

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        if not self.sigmas or self._count >= self.num_images:
            return
        x = batch[: self.num_images - self._count]
        self._count += len(x)
        for k, sigma in enumerate(self.sigmas):
            g = torch.Generator().manual_seed(1000 * batch_idx + k)  # same noisy images for every model
            y = x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
            if self.denoiser is not None:
                x_hat = self.denoiser(y, sigma, g).clamp(-1.0, 1.0)
            else:
                x_hat = denoise(module.energy, y, sigma, method=self.method, steps=self.steps,
                                step_scale=self.step_scale, clamp=(-1.0, 1.0), generator=g)
            self.psnr[_key("noisy", sigma)].update(y.float(), x.float())
            self.psnr[_key("denoised", sigma)].update(x_hat.float(), x.float())

    def report(self, module: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        if not self.sigmas or self._count == 0:
            return out
        for sigma in self.sigmas:
            noisy = float(self.psnr[_key("noisy", sigma)].compute())
            clean = float(self.psnr[_key("denoised", sigma)].compute())
            out[f"psnr_noisy_s{sigma:g}"] = noisy
            out[f"psnr_denoised_s{sigma:g}"] = clean
            out[f"psnr_gain_s{sigma:g}"] = clean - noisy
        for metric in self.psnr.values():
            metric.reset()
        return out
