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

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.contract import data_log_prob
from lit_gen.diffusion import Denoiser, NetworkDenoiser, NoiseSchedule, dsm_loss
from lit_gen.diffusion.likelihood import bits_per_dim, dequantize, pf_ode_log_prob
from lit_gen.diffusion.oism import oism_loss
from lit_gen.diffusion.samplers import DiffusionSampler, build_sampler
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
        test_nll_samples: int = 512,
        test_nll_steps: int = 32,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points,
                         val_max_points)
        # a sampler object is a component (like the network), not a plain hyper-parameter
        ignore = ["net", "schedule", "optimizer", "lr_scheduler"] + ([] if isinstance(sampler, str) else ["sampler"])
        self.save_hyperparameters(ignore=ignore)
        if prediction not in ("eps", "x0", "v"):
            raise ValueError(f"prediction must be one of 'eps', 'x0', 'v', got {prediction!r}")
        if weighting not in ("none", "min_snr"):
            raise ValueError(f"weighting must be 'none' or 'min_snr', got {weighting!r}")
        if sampler_steps <= 0:
            raise ValueError(f"sampler_steps must be a positive integer, got {sampler_steps}")
        # a name is a shorthand for its sampler class built with sampler_steps and sampler_kwargs
        self.default_sampler = build_sampler(
            sampler, sampler_steps if isinstance(sampler, str) else None,
            sampler_kwargs if isinstance(sampler, str) else None,
        )
        if target not in ("dsm", "oism"):
            raise ValueError(f"target must be 'dsm' or 'oism', got {target!r}")
        if reference_size < 1 or test_nll_samples < 0 or test_nll_steps < 1:
            raise ValueError(
                f"need reference_size >= 1, test_nll_samples >= 0 and test_nll_steps >= 1; got {reference_size}, "
                f"{test_nll_samples}, {test_nll_steps}"
            )
        self.net = build_network(net, self.data_shape)
        self.schedule = schedule if schedule is not None else LinearSchedule()
        self.prediction = prediction
        self.weighting = weighting
        self.snr_gamma = float(snr_gamma)
        self.sampler = sampler if isinstance(sampler, str) else type(sampler).__name__
        self.sampler_steps = self.default_sampler.num_steps
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.clip_denoised = self.is_image if clip_denoised is None else bool(clip_denoised)
        self.ema = ExponentialMovingAverage(self.net, ema_decay, ema_warmup) if ema_decay is not None else None
        self.target = target
        self.reference_size = int(reference_size)
        self.test_nll_samples = int(test_nll_samples)
        self.test_nll_steps = int(test_nll_steps)
        self._nll_points: list[Tensor] = []

    # ----------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x0 = self.check_batch(batch)
        if self.target == "oism":
            loss = oism_loss(
                self.net, self.schedule, x0, prediction=self.prediction, weighting=self.weighting,
                gamma=self.snr_gamma, reference_size=min(self.reference_size, x0.shape[0]),
            )
        else:
            loss = dsm_loss(
                self.net, self.schedule, x0, prediction=self.prediction, weighting=self.weighting,
                gamma=self.snr_gamma,
            )
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
    def denoiser(self, use_ema: bool = True) -> Denoiser:
        """The x̂0-predictor that samplers call: the (EMA) network read through the schedule."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.net
        clip = (-1.0, 1.0) if self.clip_denoised else None
        return NetworkDenoiser(net, self.schedule, self.prediction, clip=clip)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: DiffusionSampler | str | None = None,
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
        if sampler is None:
            chosen = self.default_sampler
        else:  # a name, or a sampler object, for this call only
            chosen = build_sampler(sampler)
        overrides = dict(sampler_kwargs)
        if steps is not None:
            overrides["num_steps"] = steps
        was_training = self.training
        self.eval()
        try:
            out = chosen(self.denoiser(use_ema), self.schedule, (n, *self.data_shape), generator=generator,
                         device=self.device, **overrides)
        finally:
            self.train(was_training)
        return (out.x, out.nfe) if return_nfe else out.x

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

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        held = sum(len(p) for p in self._nll_points)
        if held < self.test_nll_samples:
            self._nll_points.append(self.check_batch(batch)[: self.test_nll_samples - held].detach())

    def extra_test_metrics(self, test_data: Tensor | None) -> dict[str, float]:
        """Probability-flow NLL of the first ``test_nll_samples`` test points: ``nll`` in nats (vectors) or
        ``bpd`` (images, 8-bit uniform dequantisation), its NFE, and the data's exact NLL when known."""
        points, self._nll_points = self._nll_points, []
        if self.test_nll_samples == 0 or not points:
            return {}
        x = torch.cat(points)
        gen = torch.Generator().manual_seed(0)
        report: dict[str, float] = {}
        if self.is_image:
            x_deq = dequantize(x, generator=gen)
            report["bpd"] = float(bits_per_dim(self.log_prob(x_deq, generator=gen), x[0].numel()).mean())
        else:
            report["nll"] = float(-self.log_prob(x, generator=gen).mean())
            true_log_prob = data_log_prob(self._trainer)
            if true_log_prob is not None:
                report["nll_true"] = float(-true_log_prob(x.cpu()).double().mean())
        report["nll_nfe"] = float(4 * self.test_nll_steps)
        return report
