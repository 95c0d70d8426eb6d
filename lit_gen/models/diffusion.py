"""``DiffusionModule``: denoising diffusion probabilistic models in Lightning.

Training minimises the denoising score-matching loss of Ho et al. (2020),
``L = E_{t, x0, ε} w(t) ‖target − f_θ(sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε, t)‖²``, where the target is ε, x0 or
v = sqrt(ᾱ)ε − sqrt(1−ᾱ)x0 (Salimans & Ho 2022) and ``w`` is 1 or min-SNR-γ (Hang et al. 2023).
Samples come from an EMA copy of the network through any sampler of ``lit_gen.diffusion.samplers``:
DDPM ancestral, DDIM (Song et al. 2021), Heun on the probability-flow ODE (Karras et al. 2022) or
Euler–Maruyama on the reverse SDE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.diffusion import NetworkDenoiser, NoiseSchedule, dsm_loss, get_sampler
from lit_gen.diffusion.schedules import LinearSchedule
from lit_gen.models.base import GenerativeModule, NetFactory, build_network
from lit_gen.utils.ema import ExponentialMovingAverage


class DiffusionModule(GenerativeModule):
    """A diffusion model: network, noise schedule, prediction target, loss weighting, sampler and EMA.

    Args:
        net: denoising network factory ``net(x, t) -> x``-shaped (e.g. ``lit_gen.nn.TimeMLP``, ``lit_gen.nn.UNet``).
        data_shape: shape of one data point (linked from the data module by the CLI).
        schedule: noise schedule (default: linear β ∈ [1e-4, 0.02], T = 1000).
        prediction: what the network predicts: ``eps``, ``x0`` or ``v``.
        weighting: ``none`` or ``min_snr`` (γ = ``snr_gamma``).
        sampler: default sampler name: ``heun``, ``ddim``, ``ddpm`` or ``euler_maruyama``.
        sampler_steps: default number of sampler steps (Heun: NFE = 2·steps − 1).
        sampler_kwargs: extra keyword arguments of the default sampler (e.g. ``eta`` for DDIM).
        clip_denoised: clamp x̂0 to [-1, 1] while sampling; ``None`` clamps for images only.
        ema_decay: EMA decay of the sampling network; ``None`` samples from the raw weights.
        ema_warmup: use the warm-up decay ``min(d, (1+n)/(10+n))`` (suits short budgets).
        optimizer, lr_scheduler, eval_metrics: see :class:`GenerativeModule`.
    """

    def __init__(
        self,
        net: NetFactory,
        data_shape: Sequence[int] = (2,),
        schedule: NoiseSchedule | None = None,
        prediction: Literal["eps", "x0", "v"] = "eps",
        weighting: Literal["none", "min_snr"] = "none",
        snr_gamma: float = 5.0,
        sampler: str = "heun",
        sampler_steps: int = 18,
        sampler_kwargs: dict[str, Any] | None = None,
        clip_denoised: bool | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
    ) -> None:
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics)
        self.save_hyperparameters(ignore=["net", "schedule", "optimizer", "lr_scheduler"])
        if prediction not in ("eps", "x0", "v"):
            raise ValueError(f"prediction must be one of 'eps', 'x0', 'v', got {prediction!r}")
        if weighting not in ("none", "min_snr"):
            raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
        get_sampler(sampler)  # fail early on an unknown name
        if sampler_steps <= 0:
            raise ValueError(f"sampler_steps must be a positive integer, got {sampler_steps}")
        self.net = build_network(net, self.data_shape)
        self.schedule = schedule if schedule is not None else LinearSchedule()
        self.prediction = prediction
        self.weighting = weighting
        self.snr_gamma = float(snr_gamma)
        self.sampler = sampler
        self.sampler_steps = int(sampler_steps)
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.clip_denoised = self.is_image if clip_denoised is None else bool(clip_denoised)
        self.ema = ExponentialMovingAverage(self.net, ema_decay, ema_warmup) if ema_decay is not None else None

    # ----------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x0 = self.check_batch(batch)
        loss = dsm_loss(
            self.net, self.schedule, x0, prediction=self.prediction, weighting=self.weighting, gamma=self.snr_gamma
        )
        self.check_finite(loss, "the diffusion loss", "Lower the learning rate or enable gradient clipping.")
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    # ----------------------------------------------------------------- sampling
    def denoiser(self, use_ema: bool = True) -> NetworkDenoiser:
        """The x̂0-predictor that samplers call: the (EMA) network read through the schedule."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.net
        clip = (-1.0, 1.0) if self.clip_denoised else None
        return NetworkDenoiser(net, self.schedule, self.prediction, clip=clip)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        use_ema: bool = True,
        return_nfe: bool = False,
        **sampler_kwargs: Any,
    ) -> Tensor | tuple[Tensor, int]:
        """Draw ``n`` samples with the default sampler, or with ``sampler``/``steps``/``sampler_kwargs``.

        With ``return_nfe=True`` also returns the number of network evaluations used.
        """
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
        name = sampler or self.sampler
        if sampler is None:
            kwargs = {**self.sampler_kwargs, **sampler_kwargs}
            steps = steps if steps is not None else self.sampler_steps
        else:
            kwargs = dict(sampler_kwargs)
        if steps is not None:
            kwargs["num_steps"] = steps
        was_training = self.training
        self.eval()
        try:
            out = get_sampler(name)(
                self.denoiser(use_ema), self.schedule, (n, *self.data_shape), generator=generator,
                device=self.device, **kwargs,
            )
        finally:
            self.train(was_training)
        return (out.x, out.nfe) if return_nfe else out.x
