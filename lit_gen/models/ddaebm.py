"""``DDAEBMModule``: the denoising-diffusion adversarial energy-based model (Geng et al. 2024, ICML).

A T-step (T = 4) diffusion in which every denoising step is an EBM ``E_θ(x_t, t)`` trained against a latent
generator ``G_φ(x_{t+1}, t, z)`` and a Gaussian posterior ``q_ψ(z | x_t, x_{t+1}, t)``: each batch makes one
energy step (CD-style term + R1 on the conditional log-density) and then one generator step (the symmetric
Jeffrey divergence KL(p_φ‖p_θ) + KL(q_data‖p_φ), the second through a negative ELBO), exactly as
:mod:`lit_gen.losses.ddaebm` writes them (``docs/algorithms.md#ddaebm``). Sampling is T generator calls from
N(0, I) through an EMA copy of the generator; the energy gives the 2D density map ``exp(−E(x, 0))`` and the
OOD score ``−E(x, 0)``.

Manual optimization with two optimizers, each stepped once per batch (and each LR scheduler with it). Like every
other module, ``trainer.global_step`` and ``max_steps`` count data batches: only the generator step, the second
of the two, advances the step counter (Lightning would otherwise count every optimizer step, two per batch), so
``every_n_train_steps``, ``val_check_interval`` and the schedules' lengths all read in batches. Gradient
clipping is the ``gradient_clip_val`` argument of this module (Lightning refuses the Trainer's under manual
optimization). Under DDP use the ``ddp_find_unused_parameters_true`` strategy (``configs/trainer/ddp.yaml``):
each step leaves the other networks' parameters without gradients.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lit_gen.diffusion.guidance import drop_labels
from lit_gen.diffusion.samplers.ddaebm import ddaebm_sample
from lit_gen.diffusion.schedules import DDAEBMSchedule
from lit_gen.evaluation import Evaluator, GridNLL
from lit_gen.losses.ddaebm import energy_step_loss, generator_step_loss
from lit_gen.models.base import NetFactory
from lit_gen.models.energy import EnergyModule
from lit_gen.optim import span_run
from lit_gen.utils.ema import ExponentialMovingAverage

LatentNetFactory = Callable[[tuple[int, ...], int], nn.Module]
"""A network class taking ``(data_shape, latent_dim)`` first (generator and posterior networks)."""


def _build_latent_network(net: LatentNetFactory | nn.Module, data_shape: tuple[int, ...], latent_dim: int,
                          what: str, num_classes: int | None = None) -> nn.Module:
    if isinstance(net, nn.Module):
        module = net
        if num_classes is not None and getattr(module, "num_classes", None) != num_classes:
            raise ValueError(f"the {what} module was built with num_classes={getattr(module, 'num_classes', None)}, "
                             f"but the model is conditional on {num_classes} classes: pass a factory, or build it "
                             f"with num_classes={num_classes}")
    elif callable(net):
        module = net(data_shape, latent_dim) if num_classes is None else net(data_shape, latent_dim,
                                                                              num_classes=num_classes)
    else:
        raise TypeError(f"{what} must be a network class, factory or nn.Module, got {type(net).__name__}")
    if not isinstance(module, nn.Module):
        raise TypeError(f"the {what} factory returned {type(module).__name__}, expected an nn.Module")
    found = getattr(module, "latent_dim", latent_dim)
    if found != latent_dim:
        raise ValueError(f"the {what} was built with latent_dim={found}, but the module's latent_dim is "
                         f"{latent_dim}: set latent_dim once, on the module")
    return module


def guided_generator(net: nn.Module, y: Tensor, w: float, num_classes: int) -> Callable[[Tensor, Tensor, Tensor],
                                                                                       Tensor]:
    r"""The generator step ``(x_{t+1}, t, z) -> x̂0`` of class ``y`` with classifier-free guidance of weight ``w``:

    .. math:: \hat x_0 = G(x_{t+1}, t, z, \varnothing) + w\,(G(x_{t+1}, t, z, y) - G(x_{t+1}, t, z, \varnothing))

    (Ho & Salimans 2022, applied to the generator's clean-data prediction, which the posterior step then noises
    as in the unguided sampler). ``w = 1`` is one conditional call, ``w = 0`` one call with the null class; else
    the two are evaluated in one batch of 2B with the same ``z``."""
    null = torch.full_like(y, num_classes)

    def step(x: Tensor, t: Tensor, z: Tensor) -> Tensor:
        if w == 1.0:
            return net(x, t, z, y=y)
        if w == 0.0:
            return net(x, t, z, y=null)
        both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([z, z]), y=torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return uncond + w * (cond - uncond)

    return step


def _no_count() -> None:
    """Stands in for Lightning's step-counting hooks during the energy step."""


class DDAEBMModule(EnergyModule):
    """Energy ``E_θ(x_t, t)``, generator ``G_φ(x_{t+1}, t, z)`` and posterior ``q_ψ(z | x_t, x_{t+1}, t)``.

    Args:
        energy_net: time-conditioned energy factory ``E(x, t) -> (B,)`` (``lit_gen.nn.TimeEnergyMLP``,
            ``lit_gen.nn.UNetEnergy``).
        generator_net: factory ``(data_shape, latent_dim) -> G`` (``lit_gen.ddaebm.GeneratorMLP``,
            ``lit_gen.ddaebm.UNetGenerator``).
        posterior_net: factory ``(data_shape, latent_dim) -> q`` returning ``(μ, logvar)``
            (``lit_gen.ddaebm.PosteriorMLP``, ``lit_gen.ddaebm.ConvPosterior``).
        data_shape: shape of one data point (linked from the data module by the CLI).
        latent_dim: size of z (toy 2, images 100).
        num_timesteps, beta_min, beta_max: shorthand for ``schedule`` (``DDAEBMSchedule(num_timesteps, beta_min,
            beta_max)``), used when ``schedule`` is not given.
        schedule: the noise schedule, a :class:`lit_gen.diffusion.schedules.DDAEBMSchedule` (``class_path`` in YAML).
        r1_gamma: weight γ of the R1 penalty (0.02 in the paper).
        r1_every: apply R1 every this many batches (lazy regularisation; 1 = always).
        entropy_weight: λ_H of the generator's entropy bound (0.1).
        recon_var_floor: variance floor of the reconstruction NLL (1e-2).
        energy_optimizer, generator_optimizer: optimizer factories (the generator's also updates ψ).
        energy_lr_scheduler, generator_lr_scheduler: optional LR scheduler factories, stepped once per batch.
        gradient_clip_val: clip each network group's gradient norm to this (``None``: no clipping).
        ema_decay: EMA decay of the sampling generator (``None``: sample from the raw generator).
        ema_warmup: warm-up decay ``min(d, (1+n)/(10+n))``.
        grid_limit, grid_cells: half-width and cells per side of the grid on which the 2D test report
            normalises ``exp(−E(x, 0))`` (``energy_map_nll``).
        eval_metrics, eval_max_points, mmd_max_points, val_max_points: see :class:`GenerativeModule`.
        num_classes: classes of a conditional model (linked from ``data.num_classes``; ``None``: unconditional).
            The three networks are built with ``num_classes`` and called with the label: ``E(x_t, t, y)``,
            ``G(x_{t+1}, t, z, y)``, ``q(z | x_t, x_{t+1}, t, y)``.
        label_dropout: probability that a training label is replaced by the null class, the same for the three
            networks of a pair, so one set of networks also learns the unconditional model (default 0.1).
        guidance_scale: default weight w of ``sample(n, y=...)``: classifier-free guidance on the generator's
            clean-data prediction, ``x̂0 = G(·, ∅) + w (G(·, y) − G(·, ∅))`` with the same z (w = 0 unconditional,
            1 conditional, > 1 guided; two generator calls per step when w ∉ {0, 1}).

    The energy map ``exp(−E(x, 0))`` (``energy_for_plot``) is drawn at level 0, not conditioned on x_1, as the
    authors' toy code does (at equilibrium ``E(x, 0) = −log q_0(x) + const``). Whether it peaks at known modes:
    :func:`lit_gen.metrics.mode_peak_report`; on 2D data a plain MLP energy on raw coordinates does not form
    sharp peaks in a few thousand batches, :class:`lit_gen.nn.FourierTimeEnergyMLP` does.
    """

    needs_init_box = False  # sampling starts from N(0, I), not from a box

    def __init__(
        self,
        energy_net: NetFactory,
        generator_net: LatentNetFactory,
        posterior_net: LatentNetFactory,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 2,
        num_timesteps: int = 4,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        schedule: DDAEBMSchedule | None = None,
        r1_gamma: float = 0.02,
        r1_every: int = 1,
        entropy_weight: float = 0.1,
        recon_var_floor: float = 1e-2,
        energy_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        energy_lr_scheduler: LRSchedulerCallable | None = None,
        generator_lr_scheduler: LRSchedulerCallable | None = None,
        gradient_clip_val: float | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        grid_limit: float = 6.0,
        grid_cells: int = 200,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
        num_classes: int | None = None,
        label_dropout: float = 0.1,
        guidance_scale: float = 1.0,
    ) -> None:
        super().__init__(energy_net, data_shape, grid_limit=grid_limit, optimizer=energy_optimizer,
                         lr_scheduler=energy_lr_scheduler, eval_metrics=eval_metrics, eval_max_points=eval_max_points,
                         mmd_max_points=mmd_max_points, val_max_points=val_max_points, num_classes=num_classes)
        self.save_hyperparameters(ignore=["energy_net", "generator_net", "posterior_net", "energy_optimizer",
                                          "generator_optimizer", "energy_lr_scheduler", "generator_lr_scheduler",
                                          "schedule"])
        self.automatic_optimization = False
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if r1_gamma < 0 or entropy_weight < 0:
            raise ValueError(f"r1_gamma and entropy_weight must be >= 0, got {r1_gamma}, {entropy_weight}")
        if not isinstance(r1_every, int) or r1_every < 1:
            raise ValueError(f"r1_every must be a positive int (1 = R1 every batch), got {r1_every!r}")
        if recon_var_floor <= 0:
            raise ValueError(f"recon_var_floor must be positive, got {recon_var_floor}")
        if gradient_clip_val is not None and gradient_clip_val <= 0:
            raise ValueError(f"gradient_clip_val must be positive or None, got {gradient_clip_val}")
        self.latent_dim = latent_dim
        # the schedule object, or its shorthand: the three scalars
        self.schedule = schedule if schedule is not None else DDAEBMSchedule(num_timesteps, beta_min, beta_max)
        if not isinstance(self.schedule, DDAEBMSchedule):
            raise TypeError(f"schedule must be a lit_gen.diffusion.schedules.DDAEBMSchedule, got {type(schedule)}")
        self.generator = _build_latent_network(generator_net, self.data_shape, latent_dim, "generator_net",
                                               self.num_classes)
        self.posterior = _build_latent_network(posterior_net, self.data_shape, latent_dim, "posterior_net",
                                               self.num_classes)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
        self.label_dropout = float(label_dropout)
        self.guidance_scale = float(guidance_scale)
        self.r1_gamma = float(r1_gamma)
        self.r1_every = r1_every
        self.entropy_weight = float(entropy_weight)
        self.recon_var_floor = float(recon_var_floor)
        self.generator_optimizer_factory = generator_optimizer
        self.generator_lr_scheduler_factory = generator_lr_scheduler
        self.gradient_clip_val = gradient_clip_val
        self.grid_cells = int(grid_cells)
        self.ema = ExponentialMovingAverage(self.generator, ema_decay, ema_warmup) if ema_decay is not None else None

    # ------------------------------------------------------------------ energy
    def energy(self, x: Tensor, t: Tensor | int = 0, y: Tensor | None = None) -> Tensor:
        """``E_θ(x, t)``, or ``E_θ(x, t, y)`` of a conditional model (``y=None``: the null class), shape ``(B,)``;
        ``t = 0`` is the data level."""
        if not isinstance(t, Tensor):
            t = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        return self.energy_net(x, t) if y is None else self.energy_net(x, t, y=y)

    # ------------------------------------------------------------ optimization
    def configure_optimizers(self) -> Any:
        configs = []
        for params, opt_factory, sched_factory in (
            (self.energy_net.parameters(), self.optimizer_factory, self.lr_scheduler_factory),
            (itertools.chain(self.generator.parameters(), self.posterior.parameters()),
             self.generator_optimizer_factory, self.generator_lr_scheduler_factory),
        ):
            optimizer = opt_factory(list(params))
            config: dict[str, Any] = {"optimizer": optimizer}
            if sched_factory is not None:
                scheduler = sched_factory(optimizer)
                span_run(scheduler, self._trainer.max_steps if self._trainer is not None else None,
                         type(self).__name__)
                config["lr_scheduler"] = {"scheduler": scheduler, "interval": "step"}
            configs.append(config)
        return configs

    def _scheduler_of(self, optimizer: Any) -> Any:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return None
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler.optimizer is optimizer.optimizer:
                return scheduler
        return None

    def _step(self, optimizer: Any, loss: Tensor, counts: bool = True) -> None:
        """Backward and step ``optimizer`` (and its scheduler); ``counts=False`` leaves ``global_step`` as it is.

        Lightning's manual loop counts a step through two hooks it sets on each ``LightningOptimizer`` for the
        duration of a batch; the energy step runs with them switched off so that one batch is one step."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if counts:
            optimizer.step()  # clips in on_before_optimizer_step
        else:
            hooks = optimizer._on_before_step, optimizer._on_after_step
            optimizer._on_before_step = optimizer._on_after_step = _no_count
            try:
                optimizer.step()
            finally:
                optimizer._on_before_step, optimizer._on_after_step = hooks
        scheduler = self._scheduler_of(optimizer)
        if scheduler is not None:
            scheduler.step()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """Clip here, not before ``optimizer.step()``: under 16-mixed the precision plugin unscales the gradients
        inside ``step`` just before this hook, so clipping earlier would clip the loss-scaled gradients."""
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x0, y = self.check_labelled_batch(batch)
        if y is not None:  # one dropped-label draw for the three networks of this batch
            y = drop_labels(y, self.label_dropout, self.num_classes)
        energy = self.energy if y is None else functools.partial(self.energy, y=y)
        gen_net = self.generator if y is None else functools.partial(self.generator, y=y)
        posterior = self.posterior if y is None else functools.partial(self.posterior, y=y)
        opt_e, opt_g = self.optimizers()
        t = self.schedule.sample_times(x0.shape[0], device=x0.device)
        x_t, x_next = self.schedule.q_pair(x0, t)
        z = torch.randn(x0.shape[0], self.latent_dim, device=x0.device, dtype=x0.dtype)
        # one generator pass serves both steps: detached in the energy step, differentiated in the generator step
        x0_fake = gen_net(x_next, t, z)
        x_fake = self.schedule.posterior_sample(x0_fake, x_next, t, torch.randn_like(x_t))

        gamma = self.r1_gamma if batch_idx % self.r1_every == 0 else 0.0
        loss_e, parts_e = energy_step_loss(energy, self.schedule, x_t, x_next, x_fake, t, gamma)
        self.check_finite(loss_e, "the DDAEBM energy loss", _HINT)
        self._step(opt_e, loss_e, counts=False)

        self.toggle_optimizer(opt_g)  # θ frozen: E(x̃) sends gradients to φ and ψ only
        try:
            loss_g, parts_g = generator_step_loss(
                energy, gen_net, posterior, self.schedule, x_t, x_next, x_fake, z, t,
                self.entropy_weight, self.recon_var_floor,
            )
            self.check_finite(loss_g, "the DDAEBM generator loss", _HINT)
            self._step(opt_g, loss_g)
        finally:
            self.untoggle_optimizer(opt_g)
        if self.ema is not None:
            self.ema.update_parameters(self.generator)

        if self.logs_this_step():
            logs = {"train/energy_loss": loss_e.detach(), "train/generator_loss": loss_g.detach()}
            logs.update({f"train/{k}": v for k, v in {**parts_e, **parts_g}.items()})
            self.log_dict(logs, prog_bar=False)
            self.log("train/loss", loss_e.detach() + loss_g.detach(), prog_bar=True)
        return loss_e.detach() + loss_g.detach()

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, use_ema: bool = True,
               return_nfe: bool = False, y: Tensor | int | None = None,
               guidance_scale: float | None = None) -> Tensor | tuple[Tensor, int]:
        """Draw ``n`` samples in ``num_timesteps`` generator evaluations (EMA generator by default); with labels
        ``y`` (an int or ``(n,)``) of class ``y``, guided with weight ``guidance_scale`` (default: the module's)."""
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"number of samples must be a positive int, got {n!r}")
        net = self.ema.module if (use_ema and self.ema is not None) else self.generator
        calls = 1
        step: Any = net
        if y is not None:
            labels = self.check_labels(y, n)
            w = self.guidance_scale if guidance_scale is None else float(guidance_scale)
            step = guided_generator(net, labels, w, self.num_classes)
            calls = 1 if w in (0.0, 1.0) else 2
        was_training = net.training
        net.eval()
        try:
            x = ddaebm_sample(step, self.schedule, (n, *self.data_shape), self.latent_dim, generator=generator,
                              device=self.device)
        finally:
            net.train(was_training)
        return (x, calls * self.schedule.num_timesteps) if return_nfe else x

    # -------------------------------------------------------------- evaluation
    def sampling_info(self) -> dict[str, Any]:
        """The generator's denoising ladder: one generator call per step."""
        return {"sampler": f"DDAEBM generator ladder ({self.schedule.num_timesteps} steps)",
                "sample_nfe": int(self.schedule.num_timesteps)}

    def energy_evaluators(self) -> list[Evaluator]:
        """2-D data: the grid NLL of exp(−E(x, 0)) as ``energy_map_nll``/``energy_map_mass_escape`` (the energy map
        of the paper's figures, not the model's exact marginal density); nothing otherwise."""
        if self.data_shape != (2,):
            return []
        return [GridNLL(self.grid_limit, self.grid_cells, prefix="energy_map_")]


_HINT = ("Lower the learning rates, raise r1_gamma, or set gradient_clip_val on the model (the Trainer's "
         "gradient_clip_val does not apply under manual optimization).")
