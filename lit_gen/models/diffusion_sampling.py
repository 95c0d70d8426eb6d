"""``DiffusionSamplingModule``: what every diffusion-type module shares, whatever its x̂0-predictor is.

A noise schedule, a default :class:`~lit_gen.diffusion.samplers.DiffusionSampler`, ``sample`` through it,
``log_prob`` through the probability-flow ODE (:func:`lit_gen.diffusion.likelihood.pf_ode_log_prob`) and the test
NLL evaluator. Subclasses provide ``denoiser(use_ema)``: :class:`~lit_gen.models.DiffusionModule` a trained
network, :class:`~lit_gen.models.KernelDiffusionModule` the kernel score of the training set (nothing to train).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.diffusion import Denoiser, NoiseSchedule
from lit_gen.diffusion.likelihood import pf_ode_log_prob
from lit_gen.diffusion.samplers import DiffusionSampler, build_sampler
from lit_gen.diffusion.schedules import LinearSchedule
from lit_gen.evaluation import Evaluator, FlowLikelihood
from lit_gen.models.base import GenerativeModule

__all__ = ["DiffusionSamplingModule"]


class DiffusionSamplingModule(GenerativeModule):
    """Schedule, default sampler, sampling, probability-flow likelihood and the test NLL.

    Args:
        data_shape: shape of one data point (linked from the data module by the CLI).
        schedule: noise schedule (default: linear β ∈ [1e-4, 0.02], T = 1000).
        sampler: the default sampler, a :class:`~lit_gen.diffusion.samplers.DiffusionSampler` (``class_path`` in
            YAML; a user's own subclass too), or a shorthand name (``heun``, ``ddim``, ``ddpm``,
            ``euler_maruyama``, ...), built with ``sampler_steps`` and ``sampler_kwargs``.
        sampler_steps: number of steps of a named sampler.
        sampler_kwargs: extra settings of a named sampler (e.g. ``eta`` for DDIM).
        test_nll_samples: test points whose probability-flow NLL enters the test report (nats for vectors,
            bits/dim with uniform dequantisation for images); 0 turns it off.
        test_nll_steps: RK4 steps of that NLL (``nfe = 4 · steps``; Hutchinson divergence above 16 dims).
        optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points, num_classes: see
            :class:`GenerativeModule`.
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        schedule: NoiseSchedule | None = None,
        sampler: DiffusionSampler | str = "heun",
        sampler_steps: int = 18,
        sampler_kwargs: dict[str, Any] | None = None,
        test_nll_samples: int = 512,
        test_nll_steps: int = 32,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points,
                         val_max_points, num_classes=num_classes)
        if sampler_steps <= 0:
            raise ValueError(f"sampler_steps must be a positive integer, got {sampler_steps}")
        if test_nll_samples < 0 or test_nll_steps < 1:
            raise ValueError(
                f"need test_nll_samples >= 0 and test_nll_steps >= 1; got {test_nll_samples}, {test_nll_steps}"
            )
        # a name is a shorthand for its sampler class built with sampler_steps and sampler_kwargs
        self.default_sampler = build_sampler(
            sampler, sampler_steps if isinstance(sampler, str) else None,
            sampler_kwargs if isinstance(sampler, str) else None,
        )
        self.schedule = schedule if schedule is not None else LinearSchedule()
        self.sampler = sampler if isinstance(sampler, str) else type(sampler).__name__
        self.sampler_steps = self.default_sampler.num_steps
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.test_nll_samples = int(test_nll_samples)
        self.test_nll_steps = int(test_nll_steps)

    def configure_evaluators(self) -> list[Evaluator]:
        """The base evaluators and the probability-flow NLL of the first ``test_nll_samples`` test points."""
        evaluators = super().configure_evaluators()
        if self.test_nll_samples > 0:
            evaluators.append(FlowLikelihood(self.test_nll_samples, 4 * self.test_nll_steps))
        return evaluators

    # ----------------------------------------------------------------- sampling
    def denoiser(self, use_ema: bool = True, **conditioning: Any) -> Denoiser:
        """The x̂0-predictor that samplers call (subclasses implement it); ``conditioning`` holds ``y``,
        ``guidance_scale`` and ``guidance_interval`` for conditional models."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: DiffusionSampler | str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        use_ema: bool = True,
        return_nfe: bool = False,
        y: Tensor | int | None = None,
        guidance_scale: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
        **sampler_kwargs: Any,
    ) -> Tensor | tuple[Tensor, int]:
        """Draw ``n`` samples with the default sampler, or with ``sampler``/``steps``/``sampler_kwargs``.

        With ``return_nfe=True`` also returns the number of network evaluations used. A conditional model samples
        class ``y`` (an int or ``(n,)`` labels) with classifier-free guidance of weight ``guidance_scale`` (0:
        unconditional, 1: conditional, > 1: guided; default the model's) applied for σ in ``guidance_interval``;
        without ``y`` it samples unconditionally (the null class).
        """
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
        if sampler is None:
            chosen = self.default_sampler
        else:  # a name, or a sampler object, for this call only
            chosen = build_sampler(sampler)
        overrides = dict(sampler_kwargs)
        if steps is not None:
            overrides["num_steps"] = steps
        conditioning: dict[str, Any] = {}
        if y is not None:
            conditioning = {"y": self.check_labels(y, n), "guidance_scale": guidance_scale,
                            "guidance_interval": guidance_interval}
        elif guidance_scale is not None or guidance_interval is not None:
            raise ValueError("guidance_scale and guidance_interval need class labels: pass y")
        was_training = self.training
        self.eval()
        try:
            out = chosen(self.denoiser(use_ema, **conditioning), self.schedule, (n, *self.data_shape),
                         generator=generator,
                         device=self.device, **overrides)
        finally:
            self.train(was_training)
        self.last_sample_nfe = int(out.nfe)
        return (out.x, out.nfe) if return_nfe else out.x

    def sampling_info(self) -> dict[str, Any]:
        """The default sampler and the network evaluations of the last batch of samples."""
        info: dict[str, Any] = {"sampler": repr(self.default_sampler)}
        nfe = getattr(self, "last_sample_nfe", None)
        if nfe is not None:
            info["sample_nfe"] = nfe
        return info

    # ----------------------------------------------------------------- likelihood
    def log_prob(
        self, x: Tensor, steps: int | None = None, generator: torch.Generator | None = None, use_ema: bool = True
    ) -> Tensor:
        """``log p(x)`` in nats per sample from the probability-flow ODE (RK4, ``steps`` or ``test_nll_steps``;
        exact divergence up to 16 dims, Hutchinson above): :func:`lit_gen.diffusion.likelihood.pf_ode_log_prob`."""
        x = self.check_batch(x).to(self.device)
        was_training = self.training
        self.eval()
        try:
            out = pf_ode_log_prob(
                self.denoiser(use_ema), self.schedule, x, steps or self.test_nll_steps, generator=generator
            )
        finally:
            self.train(was_training)
        return out.log_prob
