"""``DiffusionModule``: denoising diffusion probabilistic models in Lightning.

Training minimises the denoising score-matching loss of Ho et al. (2020),
``L = E_{t, x0, ε} w(t) ‖target − f_θ(sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε, t)‖²``, where the target is ε, x0 or
v = sqrt(ᾱ)ε − sqrt(1−ᾱ)x0 (Salimans & Ho 2022) and ``w`` is 1 or min-SNR-γ (Hang et al. 2023).
Samples come from an EMA copy of the network through any sampler of ``lit_gen.diffusion.samplers``:
DDPM ancestral, DDIM (Song et al. 2021), Heun on the probability-flow ODE (Karras et al. 2022) or
Euler–Maruyama on the reverse SDE. ``target="oism"`` trains on the posterior-averaged target of
:mod:`lit_gen.diffusion.oism` (Shen & Oates 2024); ``log_prob`` and the test NLL integrate the
probability-flow ODE (:mod:`lit_gen.diffusion.likelihood`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.diffusion import Denoiser, NetworkDenoiser, NoiseSchedule
from lit_gen.diffusion.guidance import GuidedDenoiser, drop_labels
from lit_gen.diffusion.losses import DiffusionLoss, DSMLoss
from lit_gen.diffusion.oism import OISMLoss
from lit_gen.diffusion.samplers import DiffusionSampler
from lit_gen.models.base import NetFactory, build_network
from lit_gen.models.diffusion_sampling import DiffusionSamplingModule
from lit_gen.utils.ema import ExponentialMovingAverage


class DiffusionModule(DiffusionSamplingModule):
    """A diffusion model: network, noise schedule, prediction target, loss weighting, sampler and EMA.

    Args:
        net: denoising network factory ``net(x, t) -> x``-shaped (e.g. ``lit_gen.nn.TimeMLP``, ``lit_gen.nn.UNet``).
        data_shape: shape of one data point (linked from the data module by the CLI).
        schedule: noise schedule (default: linear β ∈ [1e-4, 0.02], T = 1000).
        prediction: what the network predicts: ``eps``, ``x0`` or ``v``.
        weighting: ``none`` or ``min_snr`` (γ = ``snr_gamma``).
        sampler: the default sampler, a :class:`~lit_gen.diffusion.samplers.DiffusionSampler` (``class_path`` in
            YAML; a user's own subclass too), or a shorthand name: ``heun``, ``ddim``, ``ddpm`` or
            ``euler_maruyama``, built with ``sampler_steps`` and ``sampler_kwargs``.
        sampler_steps: number of steps of a named sampler (Heun: NFE = 2·steps − 1).
        sampler_kwargs: extra settings of a named sampler (e.g. ``eta`` for DDIM).
        clip_denoised: clamp x̂0 to [-1, 1] while sampling; ``None`` clamps for images only.
        ema_decay: EMA decay of the sampling network; ``None`` samples from the raw weights.
        ema_warmup: use the warm-up decay ``min(d, (1+n)/(10+n))`` (suits short budgets).
        target: ``dsm`` (single-sample target) or ``oism`` (its posterior average over ``reference_size``
            points of the batch, the sample's own included; :mod:`lit_gen.diffusion.oism`).
        reference_size: OISM reference-set size ``R`` (capped at the batch size; ``R = 1`` is DSM).
        num_classes: classes of a conditional model (linked from ``data.num_classes``; ``None``: unconditional).
            The network is built with ``num_classes`` and called ``net(x_t, t, y)``.
        label_dropout: probability that a training label is replaced by the null class (classifier-free guidance,
            Ho & Salimans 2022).
        guidance_scale: the default guidance weight w of ``sample(n, y=...)`` (0 unconditional, 1 conditional).
        guidance_interval: apply w only for EDM noise levels σ in this ``(σ_lo, σ_hi)`` (Kynkäänniemi et al.
            2024); ``None``: everywhere.
        loss: the training objective as a :class:`~lit_gen.diffusion.DiffusionLoss` (``class_path`` in YAML; a
            user's own subclass too). ``None`` builds it from the shorthands ``target``, ``weighting``,
            ``snr_gamma`` and ``reference_size``: :class:`~lit_gen.diffusion.DSMLoss` or
            :class:`~lit_gen.diffusion.OISMLoss`.
        test_nll_samples: test points whose probability-flow NLL enters the test report (nats for vectors,
            bits/dim with uniform dequantisation for images); 0 turns it off.
        test_nll_steps: RK4 steps of that NLL (``nfe = 4 · steps``; Hutchinson divergence above 16 dims).
        optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points: see
            :class:`GenerativeModule`.
    """

    def __init__(
        self,
        net: NetFactory,
        data_shape: Sequence[int] = (2,),
        schedule: NoiseSchedule | None = None,
        prediction: Literal["eps", "x0", "v"] = "eps",
        weighting: Literal["none", "min_snr"] = "none",
        snr_gamma: float = 5.0,
        sampler: DiffusionSampler | str = "heun",
        sampler_steps: int = 18,
        sampler_kwargs: dict[str, Any] | None = None,
        clip_denoised: bool | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        target: Literal["dsm", "oism"] = "dsm",
        reference_size: int = 64,
        loss: DiffusionLoss | None = None,
        num_classes: int | None = None,
        label_dropout: float = 0.1,
        guidance_scale: float = 1.0,
        guidance_interval: tuple[float, float] | None = None,
        test_nll_samples: int = 512,
        test_nll_steps: int = 32,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        super().__init__(data_shape, schedule, sampler, sampler_steps, sampler_kwargs, test_nll_samples,
                         test_nll_steps, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points,
                         val_max_points, num_classes=num_classes)
        # a sampler object is a component (like the network), not a plain hyper-parameter
        ignore = ["net", "schedule", "loss", "optimizer", "lr_scheduler"]
        ignore += [] if isinstance(sampler, str) else ["sampler"]
        self.save_hyperparameters(ignore=ignore)
        if prediction not in ("eps", "x0", "v"):
            raise ValueError(f"prediction must be one of 'eps', 'x0', 'v', got {prediction!r}")
        if weighting not in ("none", "min_snr"):
            raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
        if target not in ("dsm", "oism"):
            raise ValueError(f"target must be 'dsm' or 'oism', got {target!r}")
        if reference_size < 1:
            raise ValueError(f"need reference_size >= 1, got {reference_size}")
        self.net = build_network(net, self.data_shape, self.num_classes)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
        self.label_dropout = float(label_dropout)
        self.guidance_scale = float(guidance_scale)
        self.guidance_interval = tuple(guidance_interval) if guidance_interval is not None else None
        self.prediction = prediction
        self.weighting = weighting
        self.snr_gamma = float(snr_gamma)
        self.clip_denoised = self.is_image if clip_denoised is None else bool(clip_denoised)
        self.ema = ExponentialMovingAverage(self.net, ema_decay, ema_warmup) if ema_decay is not None else None
        self.target = target
        self.reference_size = int(reference_size)
        if loss is not None and not isinstance(loss, DiffusionLoss):
            raise TypeError(f"loss must be a lit_gen.diffusion.DiffusionLoss (or None), got {type(loss).__name__}")
        if loss is None:
            loss = (OISMLoss(self.reference_size, weighting, self.snr_gamma) if target == "oism"
                    else DSMLoss(weighting, self.snr_gamma))
        self.loss = loss

    # ----------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x0, y = self.check_labelled_batch(batch)
        net = self.net
        if y is not None:  # classifier-free guidance: the null class learns the unconditional model
            net = functools.partial(self.net, y=drop_labels(y, self.label_dropout, self.num_classes))
        loss = self.loss(net, self.schedule, x0, self.prediction)
        self.check_finite(loss, "the diffusion loss", "Lower the learning rate or enable gradient clipping.")
        if self.logs_this_step():
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer step, then the EMA update ``θ_ema ← d θ_ema + (1 − d) θ``.

        Here rather than in ``on_train_batch_end``: checkpoint callbacks run their ``on_train_batch_end`` before
        the module's, so a checkpoint saved there would miss the batch's EMA update and a resumed run would drift.
        """
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    # ----------------------------------------------------------------- sampling
    def denoiser(
        self, use_ema: bool = True, y: Tensor | None = None, guidance_scale: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> Denoiser:
        """The x̂0-predictor that samplers call: the (EMA) network read through the schedule; with labels ``y``,
        classifier-free guidance ``x̂0(∅) + w (x̂0(y) − x̂0(∅))`` (:class:`lit_gen.diffusion.GuidedDenoiser`)."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.net
        clip = (-1.0, 1.0) if self.clip_denoised else None
        if y is None:
            return NetworkDenoiser(net, self.schedule, self.prediction, clip=clip)
        w = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        interval = self.guidance_interval if guidance_interval is None else tuple(guidance_interval)
        return GuidedDenoiser.from_network(net, self.schedule, y, w, prediction=self.prediction, clip=clip,
                                           interval=interval)
