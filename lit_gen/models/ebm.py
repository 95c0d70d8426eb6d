"""``EBMModule``: energy-based models trained by contrastive divergence or score matching.

``p_θ(x) ∝ exp(−E_θ(x))``. With ``loss="cd"`` every step draws negatives x⁻ by ``mcmc_steps`` of a pluggable
MCMC sampler (Langevin, MALA, HMC; ``lit_gen.mcmc``) from a chain initialisation (persistent replay buffer —
Du & Mordatch 2019 —, short-run from noise — Nijkamp et al. 2019 —, or CD-k from data — Hinton 2002) and
minimises ``mean E(x⁺) − mean E(sg(x⁻)) + α(mean E(x⁺)² + mean E(x⁻)²)``. ``loss="dsm"`` and ``loss="ssm"`` train
the same energy by denoising or sliced score matching instead, without MCMC.

A divergence guard stops training when the loss is not finite or an energy exceeds ``energy_bound``, with a
message naming the step, the energies and what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lit_gen.losses import (
    contrastive_divergence_loss,
    denoising_score_matching_loss,
    sliced_score_matching_loss,
)
from lit_gen.mcmc import DataInit, Langevin, MCMCSampler, NoiseInit, ReplayBuffer, UniformInit
from lit_gen.models.base import GenerativeModule, NetFactory, build_network
from lit_gen.utils.rank_state import gather_to_rank_zero, select_rank


class EBMModule(GenerativeModule):
    """An energy network ``E(x) -> (B,)`` trained by CD/PCD, DSM or sliced score matching.

    Args:
        energy_net: energy network factory (e.g. ``lit_gen.nn.EnergyMLP``, ``lit_gen.nn.ConvEnergyNet``).
        data_shape: shape of one data point (linked from the data module by the CLI).
        sampler: MCMC sampler for training negatives (default: Langevin, step 0.01, exact noise).
        mcmc_steps: MCMC steps per training batch.
        chain_init: ``replay`` (persistent chains), ``noise`` (short-run from the init distribution) or
            ``data`` (CD-k, chains start at the data batch).
        buffer_capacity, restart_prob: replay buffer size and per-draw restart probability.
        init_low, init_high: box of the uniform init distribution; ``None`` derives it from the training data's
            bounding box padded by 10% (images: [-1, 1]).
        loss: ``cd``, ``dsm`` or ``ssm``.
        alpha: weight of the energy-magnitude regulariser of CD.
        data_noise: std of Gaussian noise added to the data in CD (0.005 on images, Du & Mordatch 2019).
        dsm_sigmas: noise levels of DSM (one drawn per sample).
        ssm_slices: projections per sample for sliced score matching.
        energy_bound: the divergence guard's limit on |E|.
        sample_steps: MCMC steps of ``sample()`` (long-run chains from the init distribution).
        sample_sampler: sampler used by ``sample()``; default: the training sampler.
        grid_limit: half-width L of the [−L, L]² grid of the 2D grid NLL (SPEC §2).
    """

    def __init__(
        self,
        energy_net: NetFactory,
        data_shape: Sequence[int] = (2,),
        sampler: MCMCSampler | None = None,
        mcmc_steps: int = 20,
        chain_init: Literal["replay", "noise", "data"] = "replay",
        buffer_capacity: int = 10000,
        restart_prob: float = 0.05,
        init_low: float | None = None,
        init_high: float | None = None,
        loss: Literal["cd", "dsm", "ssm"] = "cd",
        alpha: float = 0.1,
        data_noise: float = 0.0,
        dsm_sigmas: Sequence[float] = (0.1,),
        ssm_slices: int = 1,
        energy_bound: float = 1e4,
        sample_steps: int = 200,
        sample_sampler: MCMCSampler | None = None,
        grid_limit: float = 6.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
    ) -> None:
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics)
        self.save_hyperparameters(ignore=["energy_net", "sampler", "sample_sampler", "optimizer", "lr_scheduler"])
        if loss not in ("cd", "dsm", "ssm"):
            raise ValueError(f"loss must be 'cd', 'dsm' or 'ssm', got {loss!r}")
        if chain_init not in ("replay", "noise", "data"):
            raise ValueError(f"chain_init must be 'replay', 'noise' or 'data', got {chain_init!r}")
        for name, value in (("mcmc_steps", mcmc_steps), ("sample_steps", sample_steps)):
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of MCMC steps, got {value}")
        if (init_low is None) != (init_high is None):
            raise ValueError("give both init_low and init_high, or neither (then the data's bounding box is used)")
        self.energy_net = build_network(energy_net, self.data_shape)
        self.sampler = sampler if sampler is not None else Langevin(step_size=0.01)
        self.sample_sampler = sample_sampler if sample_sampler is not None else self.sampler
        self.mcmc_steps = int(mcmc_steps)
        self.loss_type = loss
        self.alpha = float(alpha)
        self.data_noise = float(data_noise)
        self.dsm_sigmas = tuple(float(s) for s in dsm_sigmas)
        self.ssm_slices = int(ssm_slices)
        self.energy_bound = float(energy_bound)
        self.sample_steps = int(sample_steps)
        self.grid_limit = float(grid_limit)
        self.init_box: tuple[Tensor, Tensor] | None = None
        if init_low is not None:
            low, high = float(init_low), float(init_high)
            self.init_box = (torch.full(self.data_shape, low), torch.full(self.data_shape, high))
        elif self.is_image:
            self.init_box = (torch.full(self.data_shape, -1.0), torch.full(self.data_shape, 1.0))
        if chain_init == "replay":
            self.chains: ReplayBuffer | NoiseInit | DataInit = ReplayBuffer(
                None, capacity=buffer_capacity, restart_prob=restart_prob
            )
        elif chain_init == "noise":
            self.chains = NoiseInit(None)
        else:
            self.chains = DataInit()
        if self.init_box is not None:
            self._set_init_box(*self.init_box)

    # ------------------------------------------------------------------ energy
    def energy(self, x: Tensor) -> Tensor:
        """``E(x)``, shape ``(B,)``."""
        return self.energy_net(x)

    def energy_for_plot(self, x: Tensor) -> Tensor:
        """Energy used by the plotting callback's heat map."""
        return self.energy(x.to(self.device)).detach()

    # ------------------------------------------------------------- chain init
    def _set_init_box(self, low: Tensor, high: Tensor) -> None:
        self.init_box = (low, high)
        if not isinstance(self.chains, DataInit):
            self.chains.set_init(UniformInit(low, high))

    def init_distribution(self) -> UniformInit:
        """Uniform distribution on the init box (for ``sample()`` and noise-started chains)."""
        if self.init_box is None:
            raise RuntimeError(
                "the MCMC init box is unknown: fit the model on a data module first, or set init_low/init_high"
            )
        low, high = self.init_box
        return UniformInit(low.to(self.device), high.to(self.device))

    def on_fit_start(self) -> None:
        if self.init_box is None:
            bounds = getattr(self.trainer.datamodule, "bounds", None)
            if bounds is None:
                raise RuntimeError("the data module has no bounds(); set init_low and init_high in the model")
            low, high = bounds()
            pad = 0.1 * (high - low)
            self._set_init_box((low - pad).reshape(self.data_shape).cpu(), (high + pad).reshape(self.data_shape).cpu())

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x = self.check_batch(batch)
        if self.loss_type == "cd":
            loss = self._cd_step(x)
        elif self.loss_type == "dsm":
            loss = denoising_score_matching_loss(self.energy, x, self.dsm_sigmas)
        else:
            loss = sliced_score_matching_loss(self.energy, x, self.ssm_slices)
        self._guard(loss, None)
        if self.logs_this_step():
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def _cd_step(self, x: Tensor) -> Tensor:
        x_pos = x + self.data_noise * torch.randn_like(x) if self.data_noise > 0 else x
        init = self.chains.initial(x)
        result = self.sampler.run(self.energy, init, self.mcmc_steps)
        self.chains.update(result.x)
        e_pos = self.energy(x_pos)
        e_neg = self.energy(result.x.detach())
        self._guard(None, torch.cat([e_pos.detach(), e_neg.detach()]))
        loss, parts = contrastive_divergence_loss(e_pos, e_neg, self.alpha)
        if self.logs_this_step():
            self.log_dict(
                {
                    "train/energy_pos": e_pos.mean().detach(),
                    "train/energy_neg": e_neg.mean().detach(),
                    "train/cd": parts["cd"],
                    "train/mcmc_grad_norm": float(result.stats.get("grad_norm", float("nan"))),
                    "train/mcmc_acceptance": float(result.stats.get("acceptance_rate", 1.0)),
                }
            )
        return loss

    def _guard(self, loss: Tensor | None, energies: Tensor | None) -> None:
        hint = (
            "Lower the learning rate or the MCMC step size, raise alpha (energy regulariser), or enable "
            "gradient clipping (trainer.gradient_clip_val)."
        )
        if loss is not None:
            self.check_finite(loss, "the EBM loss", hint)
        if energies is not None:
            if not torch.isfinite(energies).all():
                self.check_finite(energies, "the energies", hint)
            peak = float(energies.abs().max())
            if peak > self.energy_bound:
                raise FloatingPointError(
                    f"the EBM diverged at global step {self.global_step}: |E| reached {peak:.3g} "
                    f"(bound energy_bound={self.energy_bound:g}; mean energy of data "
                    f"{float(energies[: len(energies) // 2].mean()):.3g}, of samples "
                    f"{float(energies[len(energies) // 2:].mean()):.3g}). {hint} "
                    "The last good checkpoint is kept in the run directory."
                )

    # ---------------------------------------------------------------- sampling
    def sample(
        self, n: int, steps: int | None = None, generator: torch.Generator | None = None, init: Tensor | None = None
    ) -> Tensor:
        """Long-run MCMC: ``steps`` (default ``sample_steps``) of ``sample_sampler`` from the init distribution."""
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
        steps = self.sample_steps if steps is None else int(steps)
        if steps <= 0:
            raise ValueError(f"steps must be a positive number of MCMC steps, got {steps}")
        x = init if init is not None else self.init_distribution().sample(n, self.data_shape, generator, self.device)
        was_training = self.training
        self.eval()
        try:
            return self.sample_sampler.run(self.energy, x, steps, generator=generator).x
        finally:
            self.train(was_training)

    # ---------------------------------------------------------- checkpointing
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the chains of every rank (a list indexed by rank: under DDP each rank has its own buffer)."""
        super().on_save_checkpoint(checkpoint)
        state = self.chains.state_dict()
        state = {k: v.cpu() if isinstance(v, Tensor) else v for k, v in state.items()}
        checkpoint["ebm_chains"] = gather_to_rank_zero(state)
        checkpoint["ebm_init_box"] = self.init_box

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        box = checkpoint.get("ebm_init_box")
        if box is not None:
            self._set_init_box(*box)
        state = checkpoint.get("ebm_chains")
        if isinstance(state, list):  # one entry per rank
            state = select_rank(state, self.global_rank, "replay buffers")
        if state:
            self.chains.load_state_dict(state)

    # -------------------------------------------------------------- evaluation
    def ood_score(self, x: Tensor) -> Tensor:
        """Out-of-distribution score ``−E(x)``: higher means more typical of the training data."""
        return -self.energy(x.to(self.device))

    def extra_test_metrics(self, test_data: Tensor | None) -> dict[str, float]:
        if test_data is None:
            return {}
        if self.is_image:
            from lit_gen.metrics import ood_report

            with torch.inference_mode(False), torch.no_grad():
                return ood_report(self.ood_score, test_data)
        if self.data_shape != (2,):
            return {}
        from lit_gen.metrics import grid_nll

        with torch.inference_mode(False), torch.no_grad():
            res = grid_nll(self.energy, test_data.to(self.device), limit=self.grid_limit)
        out = {"grid_nll": float(res["nll"]), "grid_nll_2L": float(res["nll_2L"]),
               "mass_escape": float(res["mass_escape"])}
        true_nll = getattr(self.trainer.datamodule, "true_nll", None)
        if callable(true_nll):
            value = true_nll("test")
            if value is not None:
                out["true_nll"] = float(value)
                out["nll_gap"] = out["grid_nll"] - out["true_nll"]
        return out
