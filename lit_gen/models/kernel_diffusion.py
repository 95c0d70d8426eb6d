"""``KernelDiffusionModule``: a training-free diffusion model whose denoiser is the kernel score of the
training set (Shen & Oates 2024, "Riemannian diffusion kernel smoothing"; :mod:`lit_gen.diffusion.kernel_score`).

There is nothing to fit: the training split is read from the data module at set-up (or given with
:meth:`KernelDiffusionModule.fit_data`), and ``lit-gen test --config configs/diffusion/kernel_toy2d.yaml`` samples
with any sampler of :mod:`lit_gen.diffusion.samplers` straight away. ``manifold="torus"`` uses the
wrapped-Gaussian kernel on ``[−π, π)^d`` and wraps the samples into the box.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from lit_gen.contract import data_split
from lit_gen.diffusion import NoiseSchedule
from lit_gen.diffusion.kernel_score import KernelDenoiser, TorusKernelDenoiser, wrap_to_torus
from lit_gen.diffusion.samplers import DiffusionSampler
from lit_gen.models.base import refuse_labels
from lit_gen.models.diffusion_sampling import DiffusionSamplingModule


class KernelDiffusionModule(DiffusionSamplingModule):
    """A diffusion-type module whose x̂0-predictor is the exact posterior mean of the training points.

    It shares :class:`DiffusionSamplingModule`'s schedule, samplers, likelihood and test NLL with
    :class:`~lit_gen.models.DiffusionModule`, and has no network, EMA or loss.

    Args:
        data_shape: linked from the data module by the CLI.
        schedule: noise schedule of the samplers (default: linear, T = 1000).
        manifold: ``euclidean`` (Gaussian kernel) or ``torus`` (wrapped Gaussian on ``[−π, π)^d``).
        chunk_size: training points per chunk of the streaming softmax (memory ``O(batch · chunk · d)``).
        sampler, sampler_steps, sampler_kwargs, test_nll_samples, test_nll_steps, eval_metrics, eval_max_points,
            mmd_max_points, val_max_points: see
            :class:`DiffusionSamplingModule`. The test NLL (probability-flow ODE) is reported for ``euclidean`` only.
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        schedule: NoiseSchedule | None = None,
        manifold: Literal["euclidean", "torus"] = "euclidean",
        chunk_size: int = 4096,
        sampler: DiffusionSampler | str = "ddim",
        sampler_steps: int = 35,
        sampler_kwargs: dict[str, Any] | None = None,
        test_nll_samples: int = 512,
        test_nll_steps: int = 32,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
        num_classes: int | None = None,
    ) -> None:
        refuse_labels("KernelDiffusionModule", num_classes)
        if manifold not in ("euclidean", "torus"):
            raise ValueError(f"manifold must be 'euclidean' or 'torus', got {manifold!r}")
        super().__init__(
            data_shape=data_shape, schedule=schedule, sampler=sampler, sampler_steps=sampler_steps,
            sampler_kwargs=sampler_kwargs, test_nll_samples=0 if manifold == "torus" else test_nll_samples,
            test_nll_steps=test_nll_steps, eval_metrics=eval_metrics, eval_max_points=eval_max_points,
            mmd_max_points=mmd_max_points, val_max_points=val_max_points,
        )
        ignore = ["schedule"] + ([] if isinstance(sampler, str) else ["sampler"])
        self.save_hyperparameters(ignore=ignore)
        self.manifold = manifold
        self.chunk_size = int(chunk_size)
        self.kernel: KernelDenoiser | None = None

    def fit_data(self, data: Tensor) -> KernelDiffusionModule:
        """Use ``data`` ``(N, *data_shape)`` as the training set of the kernel score; returns ``self``."""
        data = self.check_batch(data)
        cls = TorusKernelDenoiser if self.manifold == "torus" else KernelDenoiser
        self.kernel = cls(data.detach().to(self.device), self.schedule, chunk_size=self.chunk_size)
        return self

    def setup(self, stage: str) -> None:
        """Read the training points from the data module (once), after the base class's per-rank RNG set-up."""
        super().setup(stage)
        if self.kernel is None:
            train = data_split(self._trainer, "train")
            if train is None:
                raise RuntimeError(
                    "KernelDiffusionModule needs the training points: use a data module with a `tensor('train')` "
                    "split (toy, array, digits) or call fit_data(points) before sampling"
                )
            self.fit_data(train)

    def denoiser(self, use_ema: bool = True) -> KernelDenoiser:
        """The kernel posterior mean over the training set (there are no weights, EMA or otherwise)."""
        if self.kernel is None:
            raise RuntimeError("no training points yet: call fit_data(points), or run under a trainer with data")
        return self.kernel.to(self.device)

    @torch.no_grad()
    def sample(self, n: int, *args: Any, **kwargs: Any) -> Tensor | tuple[Tensor, int]:
        """As :meth:`DiffusionModule.sample`; on the torus the samples are wrapped into ``[−π, π)^d``."""
        out = super().sample(n, *args, **kwargs)
        if self.manifold != "torus":
            return out
        return (wrap_to_torus(out[0]), out[1]) if isinstance(out, tuple) else wrap_to_torus(out)

    def log_prob(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Probability-flow ``log p(x)`` (Euclidean only: the torus has no Gaussian prior to integrate to)."""
        if self.manifold == "torus":
            raise NotImplementedError("log_prob is implemented for manifold='euclidean' only")
        return super().log_prob(x, *args, **kwargs)

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        """Nothing to train: the score is computed from the training points (``fit`` only validates)."""
        return None

    def configure_optimizers(self) -> None:
        """No parameters, no optimizer."""
        return None
