"""Denoising PSNR of an energy prior: PSNR of the noisy input and of its denoised version, per noise level.

For each σ, the first ``num_images`` test images get Gaussian noise of standard deviation σ (seeded per batch
and level, so every model sees the same noisy images) and are denoised by the model's ``denoiser``
``(y, σ, generator) -> x̂``: :meth:`lit_gen.models.DCDModule.denoise_images` (Tweedie on a noise ladder, or gradient
steps on ``½‖x − y‖²/σ² + E(x)``), or :func:`energy_denoiser` around any energy. The report gives ``psnr_noisy_s{σ}``,
``psnr_denoised_s{σ}`` and their difference ``psnr_gain_s{σ}`` (data range 2: images in [−1, 1]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lit_gen.denoise import denoise
from lit_gen.evaluation.base import Evaluator

__all__ = ["DenoisingPSNR", "Denoiser", "energy_denoiser"]

Denoiser = Callable[[Tensor, float, torch.Generator], Tensor]


def _key(kind: str, sigma: float) -> str:
    # ModuleDict keys cannot contain dots
    return f"{kind}_{round(sigma * 1e4)}"


def energy_denoiser(energy: Callable[[Tensor], Tensor], method: str = "map", steps: int = 100,
                    step_scale: float = 0.1) -> Denoiser:
    """The denoiser ``(y, σ, generator) -> x̂`` of :func:`lit_gen.denoise.denoise` on ``energy`` as the prior,
    with its ``method``, ``steps`` and ``step_scale`` (the step is ``step_scale · σ²``)."""

    def run(y: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
        return denoise(energy, y, sigma, method=method, steps=steps, step_scale=step_scale, generator=generator)

    return run


class DenoisingPSNR(Evaluator):
    """PSNR before and after denoising by ``denoiser`` at each noise level of ``sigmas``.

    Args:
        sigmas: noise standard deviations.
        num_images: test images denoised per level.
        denoiser: ``(y, σ, generator) -> x̂`` (e.g. ``DCDModule.denoise_images``, or :func:`energy_denoiser`);
            its output is clamped to the image range [−1, 1].
    """

    def __init__(self, sigmas: Sequence[float], num_images: int, denoiser: Denoiser) -> None:
        super().__init__()
        from torchmetrics.image import PeakSignalNoiseRatio

        if not callable(denoiser):
            raise TypeError(f"denoiser must be a callable (y, sigma, generator) -> x_hat, got {denoiser!r}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.num_images = int(num_images)
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
            x_hat = self.denoiser(y, sigma, g).clamp(-1.0, 1.0)
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
