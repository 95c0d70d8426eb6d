"""``DCDModule``: energy-based models trained by Diffusion Contrastive Divergence (Luo et al. 2023).

Derived from the paper's definitions (its body was not available to us;
``docs/algorithms.md#diffusion-contrastive-divergence``). Contrastive divergence is
``KL(p_d‖p_θ) − KL(K_θ p_d‖p_θ)`` with ``K_θ`` the model's own MCMC kernel. DCD replaces ``K_θ`` by a θ-free
Gaussian diffusion kernel ``Q(x̃ | x) = N(a x, s² I)`` (VE: ``a = 1``; VP: ``a = sqrt(1 − β)``, ``s = sqrt(β)``):

    DCD_Q(θ) = KL(p_d ‖ p_θ) − KL(Q p_d ‖ Q p_θ) ≥ 0.

Writing ``p_θ = exp(−E_θ)/Z_θ`` and ``(Q p_θ)(x̃) = ∫ Q(x̃|x') exp(−E_θ(x'))dx' / Z_θ``, both KL terms contain
``log Z_θ`` with opposite signs, so it cancels; differentiating the remaining terms gives

    ∇θ DCD = E_{p_d}[∇θ E(x)] − E_{x∼p_d, x̃∼Q(·|x), x'∼p_θ(·|x̃)}[∇θ E(x')],

(the second expectation is the θ-derivative of ``−E_{Qp_d} log ∫ Q(x̃|x') e^{−E(x')}dx'``), with the recovery
posterior ``p_θ(x'|x̃) ∝ exp(−U(x'))``, ``U(x') = E(x') + ‖x̃ − a x'‖²/(2s²)``. Each step therefore: noise the
batch (``x̃ = a x + s ξ``), run ``mcmc_steps`` = K steps of any ``lit_gen.mcmc`` sampler on U started at
``x̃/a`` with step ``η = c (s/a)²``, and minimise ``mean E(x) − mean E(sg(x')) + α(mean E(x)² + mean E(x')²)``.
For small s the posterior is nearly Gaussian of width s/a, which is why a few steps suffice.

Caveat on K = 1 (derived here, checked in the tests): one exact Langevin step from ``x̃/a`` adds noise on top of
the kernel's and cannot remove it, so for small s the one-step estimator's fixed point is the tempered
density ``∝ p_d^{1 + 1/(2c)}``, not ``p_d``. K steps approach the exact posterior as ``(1 − c)^K``.
The noise-free one-step variant (``Langevin(noise_scale=0)``, ``step_scale=0.5``) is consistent to leading
order in s: its gradient is then proportional to the score-matching gradient (Hyvärinen 2005).

Time-dependent variant (``num_levels = L > 1``, Gao et al. 2021 style ladder): an energy ``E_θ(x, t)`` for
levels t = 0..L−1 of the ladder ``x_0 = data → x_1 → … → x_L`` (kernels from
:func:`lit_gen.losses.dcd.kernel_ladder`). A training step draws one level t per batch, forms
``x_t = m_t x_0 + σ_t ε`` and ``x_{t+1} ∼ Q_{t+1}(·|x_t)`` and applies DCD to ``E(·, t)`` with ``Q_{t+1}``.
Generation starts ``x_L`` from a Gaussian moment-matched to the training data's level-L marginal and
anneals down the ladder, sampling ``x_t ∼ p_θ(x_t | x_{t+1})`` at each level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.denoise import denoise
from lit_gen.diffusion.guidance import drop_labels
from lit_gen.diffusion.kernels import kernel_ladder, ladder_marginals, recovery_energy
from lit_gen.evaluation import DenoisingPSNR, Evaluator
from lit_gen.losses.dcd import dcd_loss, scaled_sampler
from lit_gen.mcmc import Langevin, MCMCSampler, ReplicaExchange, per_chain_energy, tile_chains
from lit_gen.models.base import NetFactory
from lit_gen.models.energy import EnergyModule


class DCDModule(EnergyModule):
    """An energy ``E(x)`` (or ``E(x, t)`` on a noise ladder) trained by Diffusion Contrastive Divergence.

    Args:
        energy_net: energy network factory; ``E(x) -> (B,)`` (e.g. ``lit_gen.nn.EnergyMLP``) when
            ``num_levels = 1``, ``E(x, t) -> (B,)`` (``lit_gen.nn.TimeEnergyMLP``, ``lit_gen.nn.UNetEnergy``) when
            ``num_levels > 1``.
        data_shape: shape of one data point (linked from the data module by the CLI).
        kernel: ``ve`` (``x̃ = x + sξ``) or ``vp`` (``x̃ = sqrt(1−s²) x + s ξ``, i.e. β = s²).
        noise: the kernel's s (first level of the ladder).
        num_levels: 1 for the plain EBM, L > 1 for the time-dependent variant over L levels.
        max_noise: the last level's marginal noise (VE: σ_L; VP: sqrt(β_L)); used when ``num_levels > 1``.
        level_scaling: measure the ladder's energies in units of their recovery posterior's precision,
            ``E(x, t) = net(x, t) / ρ_t²``, ``ρ_t = s/a`` of the kernel from level t to t + 1: the posterior is
            then ``(net(x', t) + ‖x' − x̃/a‖²/2) / ρ_t²``, a posterior step ``η_t = c ρ_t²`` moves a chain by
            ``c ∇net`` on every level, and a network of O(1) outputs has the curvature ``1/ρ_t²`` that
            pulls its chains off the noise. Without it one network must output energies whose gradients
            differ by ``(ρ_{L−1}/ρ_0)²`` (95 on the MNIST ladder) between levels, and reach ``1/ρ_0²`` (99
            there) through its weights. Gao et al. (2021) divide their network by each level's Langevin step
            for the same reason (docs/algorithms.md#noise-ladder). Energies grow by ``1/ρ_t²``: raise
            ``energy_bound`` with it.
        level_weights: relative frequency of each level t = 0..L−1 in training (``None``: uniform). Each level's
            DCD objective has its own minimiser, ``E(·, t) = −log p_t`` up to a constant, so a non-uniform choice
            does not bias any level; it moves the shared network's capacity and the step budget to the levels
            that need them (on MNIST, the widest top posterior; docs/algorithms.md#noise-ladder).
        sampler: recovery-posterior sampler (default: exact Langevin). A :class:`~lit_gen.mcmc.ReplicaExchange`
            tempers the whole posterior ``exp(−U/T_k)`` over its ladder (non-persistent: every batch has new
            posteriors); training then logs ``train/mcmc_swap_rate``
            (docs/algorithms.md#tempered-and-adapted-training-chains).
        mcmc_steps: K, posterior sampler steps per training batch (K = 1: one-step estimator).
        step_scale: c: the sampler's step is set to ``c (s/a)²`` (HMC: ``sqrt(2c) s/a``) for each kernel;
            ``None`` uses the sampler's own step unchanged.
        alpha: weight of the energy-magnitude regulariser.
        energy_bound: the divergence guard's limit on |E|.
        sample_steps: ``num_levels = 1``: steps of the long-run chain of ``sample()`` from the init box;
            ``num_levels > 1``: posterior steps per level of the annealed generation.
        sample_sampler: sampler of ``sample()`` (default: the training sampler). On a ladder its step is
            scaled per level like the training sampler's.
        init_low, init_high: box of the uniform init of long-run chains; ``None`` derives it from the data
            module's bounds padded by 10% (images: [-1, 1]).
        num_classes, label_dropout, guidance_scale: a conditional energy ``E(x, [t,] y)``, as in
            :class:`~lit_gen.models.EBMModule`: the recovery chains run on the batch's labels (the null class with
            probability ``label_dropout``), ``sample(n, y=...)`` on ``(1 − w) E(·, ∅) + w E(·, y)``.
        ais_chains, ais_steps, ais_step_size: the AIS bracket of the test NLL beyond 2-D data
            (:class:`lit_gen.evaluation.AISLikelihood`; ``ais_steps = 0`` turns it off).
        grid_limit: half-width of the [−L, L]² grid of the 2D grid NLL in the test report.
        denoise_sigmas: noise levels of the test-time denoising evaluation on image data (PSNR).
        final_denoise: on a ladder, end generation with the posterior mean ``E[x_0 | x_1]`` by Tweedie's formula on
            the level-1 energy, ``x_0 = (x_1 − σ_1² ∇E(x_1, 1)) / m_1``, instead of a draw from the level-0 posterior,
            whose noise of width ``ρ_0`` stays in the samples unless the level-0 energy is sharp (the last
            denoising step of Song & Ermon 2020; docs/algorithms.md#noise-ladder).
        denoise_method, denoise_steps, denoise_step_scale: how :meth:`denoise_images` denoises: ``map``, ``sample``
            or ``mean`` on the level-0 energy (:func:`lit_gen.denoise.denoise`; with level scaling the step is
            ``c / (1/σ² + 1/ρ_0²)``, the curvature of the two terms), or ``tweedie`` on a ladder: one gradient of
            the level whose noise matches σ.
        denoise_num_images: test images denoised per σ (the first ones of the test split).
    """

    guard_name = "the DCD energy"
    negatives_name = "recovery samples"
    guard_hint = (
        "Lower the learning rate or step_scale, raise alpha (energy regulariser), raise mcmc_steps, or enable "
        "gradient clipping (trainer.gradient_clip_val)."
    )

    def __init__(
        self,
        energy_net: NetFactory,
        data_shape: Sequence[int] = (2,),
        kernel: Literal["ve", "vp"] = "ve",
        noise: float = 0.3,
        num_levels: int = 1,
        max_noise: float | None = None,
        level_scaling: bool = False,
        level_weights: Sequence[float] | None = None,
        sampler: MCMCSampler | None = None,
        mcmc_steps: int = 5,
        step_scale: float | None = 0.1,
        alpha: float = 0.1,
        energy_bound: float = 1e4,
        sample_steps: int = 200,
        sample_sampler: MCMCSampler | None = None,
        init_low: float | None = None,
        init_high: float | None = None,
        grid_limit: float = 6.0,
        num_classes: int | None = None,
        label_dropout: float = 0.1,
        guidance_scale: float = 1.0,
        ais_chains: int = 64,
        ais_steps: int = 200,
        ais_step_size: float = 0.05,
        denoise_sigmas: Sequence[float] = (0.1, 0.2, 0.3),
        final_denoise: bool = False,
        denoise_method: Literal["map", "sample", "mean", "tweedie"] = "map",
        denoise_steps: int = 100,
        denoise_step_scale: float = 0.1,
        denoise_num_images: int = 512,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        super().__init__(energy_net, data_shape, init_low, init_high, energy_bound, grid_limit, optimizer,
                         lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points,
                         num_classes=num_classes)
        self.configure_ais(ais_chains, ais_steps, ais_step_size)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
        self.label_dropout = float(label_dropout)
        self.guidance_scale = float(guidance_scale)
        self.save_hyperparameters(ignore=["energy_net", "sampler", "sample_sampler", "optimizer", "lr_scheduler"])
        if kernel not in ("ve", "vp"):
            raise ValueError(f"kernel must be 've' or 'vp', got {kernel!r}")
        for name, value in (("mcmc_steps", mcmc_steps), ("sample_steps", sample_steps),
                            ("num_levels", num_levels), ("denoise_steps", denoise_steps),
                            ("denoise_num_images", denoise_num_images)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if num_levels > 1 and max_noise is None:
            raise ValueError("a noise ladder (num_levels > 1) needs max_noise, the last level's noise")
        if denoise_method not in ("map", "sample", "mean", "tweedie"):
            raise ValueError(f"denoise_method must be 'map', 'sample', 'mean' or 'tweedie', got {denoise_method!r}")
        if (denoise_method == "tweedie" or final_denoise) and num_levels < 2:
            raise ValueError("denoise_method='tweedie' and final_denoise need the energies of noisy levels: set "
                             "num_levels > 1 (a noise ladder), or use denoise_method='map'")
        if any(not (isinstance(s, (int, float)) and s > 0) for s in denoise_sigmas):
            raise ValueError(f"denoise_sigmas must be positive noise stds, got {list(denoise_sigmas)}")
        self.kernel_kind = kernel
        self.num_levels = int(num_levels)
        self.kernels = kernel_ladder(kernel, self.num_levels, noise, noise if max_noise is None else max_noise)
        self.marginal_mean, self.marginal_std = ladder_marginals(self.kernels)
        self.level_scaling = bool(level_scaling)
        self.level_probs = self._level_probs(level_weights)
        widths = torch.tensor([k.posterior_scale for k in self.kernels], dtype=torch.float32)
        # w_t = 1/ρ_t²: the network's energy in the units of the kernel's own term ‖x̃/a − x‖²/(2ρ_t²)
        self.register_buffer("level_weight", widths ** -2 if self.level_scaling else torch.ones_like(widths),
                             persistent=False)
        self.sampler = sampler if sampler is not None else Langevin(step_size=0.01)
        self.sample_sampler = sample_sampler if sample_sampler is not None else self.sampler
        self.step_scale = step_scale
        # one step-matched copy per level, built once (a compiled Langevin keeps its graph per copy)
        self.level_samplers = [scaled_sampler(self.sampler, k, step_scale) for k in self.kernels]
        self.level_sample_samplers = [scaled_sampler(self.sample_sampler, k, step_scale) for k in self.kernels]
        self.mcmc_steps = int(mcmc_steps)
        self.alpha = float(alpha)
        self.sample_steps = int(sample_steps)
        self.denoise_sigmas = tuple(float(s) for s in denoise_sigmas) if self.is_image else ()
        self.final_denoise = bool(final_denoise)
        self.denoise_method = denoise_method
        self.denoise_steps = int(denoise_steps)
        self.denoise_step_scale = float(denoise_step_scale)
        self.denoise_num_images = int(denoise_num_images)

    def _level_probs(self, weights: Sequence[float] | None) -> Tensor | None:
        """The training distribution over levels from ``level_weights`` (``None``: uniform, drawn by ``randint``)."""
        if weights is None:
            return None
        values = list(weights)
        if len(values) != self.num_levels:
            raise ValueError(f"level_weights needs one weight per level ({self.num_levels}), got {len(values)}: "
                             f"{values}")
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0
               for w in values) or sum(values) <= 0:
            raise ValueError(f"level_weights must be finite non-negative numbers with a positive sum, got {values}")
        probs = torch.tensor(values, dtype=torch.float64)
        return (probs / probs.sum()).float()

    def draw_level(self) -> int:
        """The ladder level of one training batch: drawn from ``level_weights``, uniform without them (0 off a
        ladder)."""
        if self.level_probs is not None:
            return int(torch.multinomial(self.level_probs, 1))
        return int(torch.randint(self.num_levels, ())) if self.num_levels > 1 else 0

    # ------------------------------------------------------------------ energy
    def energy(self, x: Tensor, t: Tensor | int = 0, y: Tensor | None = None) -> Tensor:
        """``E(x)`` (``num_levels = 1``) or ``E(x, t)`` (t: int or ``(B,)`` float level), shape ``(B,)``; with
        labels ``y`` the conditional ``E(x, [t,] y)``."""
        extra = {} if y is None else {"y": y}
        if self.num_levels == 1:
            return self.energy_net(x, **extra)
        if not isinstance(t, Tensor):
            t = torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)
        out = self.energy_net(x, t, **extra)
        if self.level_scaling:
            out = out * self.level_weight.to(out.dtype)[t.round().long().clamp(0, self.num_levels - 1)]
        return out

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x0, y = self.check_labelled_batch(batch)
        if y is not None:
            y = drop_labels(y, self.label_dropout, self.num_classes)
        level = self.draw_level()
        kernel = self.kernels[level]
        x_pos = x0
        if level > 0:
            x_pos = self.marginal_mean[level] * x0 + self.marginal_std[level] * torch.randn_like(x0)
        x_tilde = kernel.sample(x_pos)

        def energy_t(z: Tensor) -> Tensor:
            return self.energy(z, level, y)

        init = kernel.posterior_init(x_tilde)
        sampler = self.level_samplers[level]
        posterior = self._posterior(sampler, lambda labels: lambda z: self.energy(z, level, labels), y, x_tilde,
                                    kernel)
        result = sampler.run(posterior, init, self.mcmc_steps)
        self.check_chains(init, result.x, self.box_low, self.box_high)
        e_pos = energy_t(x_pos)
        e_neg = energy_t(result.x.detach())
        self.guard(None, torch.cat([e_pos.detach(), e_neg.detach()]))
        loss, parts = dcd_loss(e_pos, e_neg, self.alpha)
        self.guard(loss, None)
        if self.logs_this_step():
            # ‖x' − x̃/a‖ in units of the flat-prior posterior's radius (s/a)·√D: K exact Langevin steps of step
            # c (s/a)² under a flat energy reach sqrt(2/(2 − c) (1 − (1 − c)^(2K))); far above it, the energy moves them
            shift = (result.x - x_tilde / kernel.a).flatten(1).norm(dim=1)
            shift_dim = result.x[0].numel()
            self.log_dict(
                {
                    "train/energy_pos": e_pos.mean().detach(),
                    "train/energy_neg": e_neg.mean().detach(),
                    "train/dcd": parts["dcd"],
                    "train/recovery_shift": shift.mean(),
                    "train/recovery_spread": shift.mean() / (kernel.posterior_scale * math.sqrt(shift_dim)),
                    "train/level": float(level),
                    "train/mcmc_acceptance": float(result.stats.get("acceptance_rate", 1.0)),
                    **({"train/mcmc_swap_rate": float(result.stats["swap_rate"])}
                       if isinstance(sampler, ReplicaExchange) and "swap_rate" in result.stats else {}),
                }
            )
            self.log("train/loss", loss, prog_bar=True)
        return loss

    # ---------------------------------------------------------------- sampling
    def sample(
        self, n: int, steps: int | None = None, generator: torch.Generator | None = None, init: Tensor | None = None,
        y: Tensor | int | None = None, guidance_scale: float | None = None, start_level: int | None = None,
    ) -> Tensor:
        """Draw ``n`` samples.

        ``num_levels = 1``: ``steps`` (default ``sample_steps``) of ``sample_sampler`` on E from uniform points of
        the init box (or ``init``). ``num_levels > 1``: annealed generation down the ladder, ``steps`` posterior
        steps per level, from a Gaussian moment-matched to the top level's marginal (or ``init``).

        ``start_level`` (ladder only, default the top ``L``): the level ``s`` of ``init`` (or of the moment-matched
        Gaussian), so annealing runs the levels ``s − 1 … 0`` only. With ``init = m_s x_0 + σ_s ε`` for real data
        ``x_0`` this asks which level breaks generation: the levels below ``s`` see their true input law.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"number of samples must be a positive int, got {n!r}")
        steps = self.sample_steps if steps is None else int(steps)
        if steps <= 0:
            raise ValueError(f"steps must be a positive number of MCMC steps, got {steps}")
        if init is None:
            self.require_init_box()
        if start_level is not None:
            if self.num_levels == 1:
                raise ValueError("start_level needs a noise ladder (num_levels > 1)")
            if isinstance(start_level, bool) or not isinstance(start_level, int) \
                    or not 1 <= start_level <= self.num_levels:
                raise ValueError(f"start_level must be a level of the ladder in 1..{self.num_levels} (the level of "
                                 f"init), got {start_level!r}")
        labels = None
        w = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        if y is not None:
            labels = self.check_labels(y, n)
        elif guidance_scale is not None:
            raise ValueError("guidance_scale needs class labels: pass y")
        was_training = self.training
        self.eval()
        try:
            if self.num_levels == 1:
                x = init
                if x is None:
                    x = self.init_distribution().sample(n, self.data_shape, generator, self.device)
                energy: Any = self._guided(0, labels, w)
                if labels is not None and isinstance(self.sample_sampler, ReplicaExchange):
                    energy = per_chain_energy(lambda m: self._guided(0, tile_chains(labels, m), w), x.shape[0])
                return self.sample_sampler.run(energy, x, steps, generator=generator).x
            return self._anneal(n, steps, generator, init, labels, w, start_level)
        finally:
            self.train(was_training)

    @staticmethod
    def _posterior(sampler: MCMCSampler, energy_of: Any, y: Tensor | None, x_tilde: Tensor, kernel: Any) -> Any:
        """The recovery energy ``U(x') = E(x') + ‖x̃ − a x'‖²/(2s²)`` for ``sampler``; ``energy_of(labels)`` is the
        energy ``z ↦ E(z, ·, labels)``. A replica-exchange sampler evaluates it on the K stacked replicas of every
        chain, so x̃ and the labels are tiled to match (:func:`lit_gen.mcmc.per_chain_energy`)."""
        if not isinstance(sampler, ReplicaExchange):
            return recovery_energy(energy_of(y), x_tilde, kernel)

        def make(m: int) -> Any:
            labels = None if y is None else tile_chains(y, m)
            return recovery_energy(energy_of(labels), tile_chains(x_tilde, m), kernel)

        return per_chain_energy(make, x_tilde.shape[0])

    def _guided(self, level: int, y: Tensor | None, w: float) -> Any:
        """``z ↦ E(z, level)``, or the guided ``(1 − w) E(z, level, ∅) + w E(z, level, y)``."""
        if y is None:
            return lambda z: self.energy(z, level)
        null = torch.full_like(y, self.num_classes)
        return lambda z: (1.0 - w) * self.energy(z, level, null) + w * self.energy(z, level, y)

    def _anneal(self, n: int, steps: int, generator: torch.Generator | None, init: Tensor | None,
                labels: Tensor | None = None, w: float = 1.0, top: int | None = None) -> Tensor:
        top = self.num_levels if top is None else top
        if init is None:
            mean = self.marginal_mean[top] * self.data_mean
            std = torch.sqrt((self.marginal_mean[top] * self.data_std) ** 2 + self.marginal_std[top] ** 2)
            draw = generator.device if generator is not None else self.device
            noise = torch.randn((n, *self.data_shape), generator=generator, device=draw).to(self.device)
            x = mean + std * noise
        else:
            x = init.to(self.device)
        for level in reversed(range(top)):
            if level == 0 and self.final_denoise:
                return self._tweedie(x, 1, self._guided(1, labels, w))
            kernel = self.kernels[level]
            sampler = self.level_sample_samplers[level]
            posterior = self._posterior(sampler, lambda lab, lv=level: self._guided(lv, lab, w), labels, x, kernel)
            x = sampler.run(posterior, kernel.posterior_init(x), steps, generator=generator).x
        return x

    def _tweedie(self, x_t: Tensor, level: int, energy: Any) -> Tensor:
        """``E[x_0 | x_t] = (x_t − σ_t² ∇E(x_t, t)) / m_t`` (Tweedie's formula for ``x_t = m_t x_0 + σ_t ε``): the
        ``tweedie`` denoiser of :func:`lit_gen.denoise.denoise` on ``y = x_t / m_t`` with noise ``σ_t / m_t``."""
        m = self.marginal_mean[level]
        return denoise(lambda z: energy(m * z), x_t / m, float(self.marginal_std[level] / m), method="tweedie")

    # -------------------------------------------------------------- denoising
    def denoise_level(self, sigma: float) -> int:
        """The ladder level ``t ≥ 1`` whose noise ``σ_t / m_t`` (in the units of the clean data) is nearest σ in
        log scale: the energy the ``tweedie`` denoiser uses for ``y = x + σ n``."""
        if self.num_levels < 2:
            raise ValueError("denoise_level needs a noise ladder (num_levels > 1)")
        noise = [float(s) / float(m) for s, m in zip(self.marginal_std, self.marginal_mean, strict=True)]
        levels = range(1, self.num_levels)
        return min(levels, key=lambda t: abs(math.log(noise[t]) - math.log(float(sigma))))

    def denoise_images(self, y: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
        """Denoise ``y = x + σ n`` with the learned energy, by ``denoise_method`` (the test report's denoiser).

        ``tweedie``: with t = :meth:`denoise_level` (σ), the noisy images scaled onto level t, ``x_t = m_t y``
        (noise ``m_t σ ≈ σ_t``), give ``x̂ = y − σ² ∇_y E(m_t y, t)``, the posterior mean by Tweedie's formula
        when σ = σ_t/m_t and the energy is right. ``map``/``sample``/``mean``: the level-0 energy as the prior
        (:func:`lit_gen.denoise.denoise`), the step ``denoise_step_scale · σ² / (1 + σ²/ρ_0²)`` under level
        scaling (the level-0 energy carries the factor ``1/ρ_0²``), ``denoise_step_scale · σ²`` otherwise."""
        if self.denoise_method == "tweedie":
            level = self.denoise_level(sigma)
            scale = self.marginal_mean[level]
            return denoise(lambda z: self.energy(scale * z, level), y, sigma, method="tweedie")
        step_scale = self.denoise_step_scale
        if self.level_scaling:
            step_scale = step_scale / (1.0 + float(sigma) ** 2 * float(self.level_weight[0]))
        return denoise(self.energy, y, sigma, method=self.denoise_method, steps=self.denoise_steps,
                       step_scale=step_scale, generator=generator)

    # -------------------------------------------------------------- evaluation
    def energy_evaluators(self) -> list[Evaluator]:
        """For images, the denoising PSNR at each of ``denoise_sigmas`` (the energy as a denoising prior, through
        :meth:`denoise_images`), then the energy report of :class:`~lit_gen.models.EnergyModule`."""
        evaluators: list[Evaluator] = []
        if self.denoise_sigmas:
            evaluators.append(DenoisingPSNR(self.denoise_sigmas, self.denoise_num_images, self.denoise_images))
        return evaluators + super().energy_evaluators()
