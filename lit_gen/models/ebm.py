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
from lit_gen.mcmc import ChainInit, DataInit, Langevin, MCMCSampler, NoiseInit, ReplayBuffer, UniformInit
from lit_gen.models.base import NetFactory
from lit_gen.models.energy import EnergyModule
from lit_gen.utils.rank_state import gather_to_rank_zero, select_rank

#: the shorthands of ``chain_init`` (a :class:`~lit_gen.mcmc.ChainInit` object may be given instead)
CHAIN_INITS: dict[str, Any] = {"replay": ReplayBuffer, "noise": lambda: NoiseInit(None), "data": DataInit}


class EBMModule(EnergyModule):
    """An energy network ``E(x) -> (B,)`` trained by CD/PCD, DSM or sliced score matching.

    Args:
        energy_net: energy network factory (e.g. ``lit_gen.nn.EnergyMLP``, ``lit_gen.nn.ConvEnergyNet``).
        data_shape: shape of one data point (linked from the data module by the CLI).
        sampler: MCMC sampler for training negatives (default: Langevin, step 0.01, exact noise).
        mcmc_steps: MCMC steps per training batch.
        chain_init: a :class:`~lit_gen.mcmc.ChainInit` (``class_path`` in YAML; any object with its interface),
            or a shorthand: ``replay`` (persistent chains, ``ReplayBuffer(capacity=buffer_capacity,
            restart_prob=restart_prob)``), ``noise`` (short-run from the init distribution) or ``data`` (CD-k,
            chains start at the data batch).
        buffer_capacity, restart_prob: replay buffer size and per-draw restart probability (``replay`` shorthand).
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
        grid_limit: half-width L of the [−L, L]² grid of the 2D grid NLL (``docs/algorithms.md#grid-nll``).
    """

    guard_name = "the EBM"

    def __init__(
        self,
        energy_net: NetFactory,
        data_shape: Sequence[int] = (2,),
        sampler: MCMCSampler | None = None,
        mcmc_steps: int = 20,
        chain_init: ChainInit | Literal["replay", "noise", "data"] = "replay",
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
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        if loss not in ("cd", "dsm", "ssm"):
            raise ValueError(f"loss must be 'cd', 'dsm' or 'ssm', got {loss!r}")
        if not isinstance(chain_init, ChainInit) and chain_init not in CHAIN_INITS:
            raise ValueError(
                f"chain_init must be a lit_gen.mcmc.ChainInit or one of {sorted(CHAIN_INITS)}, got {chain_init!r}"
            )
        for name, value in (("mcmc_steps", mcmc_steps), ("sample_steps", sample_steps)):
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of MCMC steps, got {value}")
        # the chains exist before the base class sets an init box (it hands the box to them)
        if isinstance(chain_init, ChainInit):
            self.chains: ChainInit = chain_init
        elif chain_init == "replay":
            self.chains = ReplayBuffer(None, capacity=buffer_capacity, restart_prob=restart_prob)
        else:
            self.chains = CHAIN_INITS[chain_init]()
        super().__init__(energy_net, data_shape, init_low, init_high, energy_bound, grid_limit, optimizer,
                         lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points)
        self.save_hyperparameters(ignore=["energy_net", "sampler", "sample_sampler", "optimizer", "lr_scheduler"])
        self.sampler = sampler if sampler is not None else Langevin(step_size=0.01)
        self.sample_sampler = sample_sampler if sample_sampler is not None else self.sampler
        self.mcmc_steps = int(mcmc_steps)
        self.loss_type = loss
        self.alpha = float(alpha)
        self.data_noise = float(data_noise)
        self.dsm_sigmas = tuple(float(s) for s in dsm_sigmas)
        self.ssm_slices = int(ssm_slices)
        self.sample_steps = int(sample_steps)

    # ------------------------------------------------------------- chain init
    def on_init_box_set(self) -> None:
        """Hand the init box to the training chains (fresh chains are drawn uniformly from it)."""
        self.chains.set_init(UniformInit(self.box_low, self.box_high))

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x = self.check_batch(batch)
        if self.loss_type == "cd":
            loss = self._cd_step(x)
        elif self.loss_type == "dsm":
            loss = denoising_score_matching_loss(self.energy, x, self.dsm_sigmas)
        else:
            loss = sliced_score_matching_loss(self.energy, x, self.ssm_slices)
        self.guard(loss, None)
        if self.logs_this_step():
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def _cd_step(self, x: Tensor) -> Tensor:
        x_pos = x + self.data_noise * torch.randn_like(x) if self.data_noise > 0 else x
        init = self.chains.initial(x)
        result = self.sampler.run(self.energy, init, self.mcmc_steps)
        if self.init_box is not None:
            self.check_chains(init, result.x, self.box_low, self.box_high)
        self.chains.update(result.x)
        e_pos = self.energy(x_pos)
        e_neg = self.energy(result.x.detach())
        self.guard(None, torch.cat([e_pos.detach(), e_neg.detach()]))
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

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("ebm_chains")
        if isinstance(state, list):  # one entry per rank
            state = select_rank(state, self.global_rank, "replay buffers")
        if state:
            self.chains.load_state_dict(state)
