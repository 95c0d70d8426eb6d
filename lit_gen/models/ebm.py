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

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.nn import functional as F

from lit_gen.diffusion.guidance import drop_labels
from lit_gen.evaluation import jem_logits_available
from lit_gen.losses import EnergyLoss, build_energy_loss
from lit_gen.mcmc import (
    HMC,
    MALA,
    ChainInit,
    DataInit,
    DualAveraging,
    Langevin,
    MCMCSampler,
    NoiseInit,
    ReplayBuffer,
    ReplicaExchange,
    UniformInit,
    guided_energy,
    long_run,
    per_chain_energy,
    tile_chains,
)
from lit_gen.models.base import NetFactory
from lit_gen.models.energy import EnergyModule
from lit_gen.utils.rank_state import gather_to_rank_zero, select_rank

#: the shorthands of ``chain_init`` (a :class:`~lit_gen.mcmc.ChainInit` object may be given instead)
CHAIN_INITS: dict[str, Any] = {"replay": ReplayBuffer, "noise": lambda: NoiseInit(None), "data": DataInit}

#: default acceptance targets of ``adapt_train_step``: 0.574 is MALA's optimum (Roberts & Rosenthal 1998), 0.65 HMC's
#: in high dimension (Beskos et al. 2013): short training chains take the cheaper end of HMC's 0.65–0.8
TRAIN_TARGET_ACCEPT: dict[type, float] = {MALA: 0.57, HMC: 0.65}


def _step_owner(sampler: MCMCSampler) -> MCMCSampler:
    """The sampler whose ``step_size`` moves the chains: the base sampler of a replica exchange."""
    return sampler.sampler if isinstance(sampler, ReplicaExchange) else sampler


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
        loss: the objective, a :class:`~lit_gen.losses.EnergyLoss` (``class_path`` in YAML; a user's own subclass
            too), or a shorthand: ``cd`` (:class:`~lit_gen.losses.ContrastiveDivergence` with ``alpha`` and
            ``data_noise``), ``dsm`` (:class:`~lit_gen.losses.DenoisingScoreMatching` with ``dsm_sigmas``) or
            ``ssm`` (:class:`~lit_gen.losses.SlicedScoreMatching` with ``ssm_slices``). Losses that declare
            ``needs_negatives`` get ``mcmc_steps`` of ``sampler`` from ``chain_init`` (:meth:`negative_phase`).
        alpha: weight of the energy-magnitude regulariser of CD (shorthand ``cd``).
        data_noise: std of Gaussian noise added to the data in CD (0.005 on images, Du & Mordatch 2019).
        dsm_sigmas: noise levels of DSM (one drawn per sample; shorthand ``dsm``).
        ssm_slices: projections per sample for sliced score matching (shorthand ``ssm``).
        energy_bound: the divergence guard's limit on |E|.
        sample_steps: MCMC steps of ``sample()`` (long-run chains from the init distribution).
        sample_sampler: sampler used by ``sample()``; default: the training sampler.
        num_classes: classes of a conditional energy ``E(x, y)`` (linked from ``data.num_classes``; ``None``:
            unconditional). Training conditions the positive and the negative phase on the batch's labels, each
            replaced by the null class with probability ``label_dropout`` (so ``E(x, ∅)`` learns the marginal).
        label_dropout: see ``num_classes``.
        guidance_scale: default weight w of ``sample(n, y=...)``: MCMC on ``(1 − w) E(x, ∅) + w E(x, y)``.
        adapt_sample_step: adapt the step of a Metropolis–Hastings ``sample_sampler`` (MALA, HMC) before each
            ``sample()`` by dual averaging (Hoffman & Gelman 2014) to its target acceptance, then freeze it, on a
            copy (the configured sampler is unchanged); unadjusted Langevin runs as configured.
        sample_warmup: dual-averaging updates (one sampler step each) of that warm-up.
        classifier_weight: λ of JEM's hybrid objective (Grathwohl et al. 2020) for an energy network built with
            ``class_logits=True``: the loss adds ``λ · CE(f(x), y)``, the cross-entropy of ``p(y | x) = softmax f(x)``
            on the labelled batch (0: the generative loss alone). The test report then gives ``jem_accuracy``.
        ais_chains, ais_steps, ais_step_size: the AIS bracket of the test NLL beyond 2-D data
            (:class:`lit_gen.evaluation.AISLikelihood`; ``ais_steps = 0`` turns it off).
        grid_limit: half-width L of the [−L, L]² grid of the 2D grid NLL (``docs/algorithms.md#grid-nll``).
        adapt_train_step: adapt the training sampler's step size (the base sampler's, for a
            :class:`~lit_gen.mcmc.ReplicaExchange`) by dual averaging (Hoffman & Gelman 2014) to
            ``train_target_acceptance``: one update per training batch, fed the mean acceptance probability of its
            negative chains, for the first ``train_adapt_steps`` batches; then the step is frozen at the averaged
            ``ε̄``. The step stays at most ``10 ε₀`` (ε₀ the configured step): a young, flat energy accepts every
            proposal. The controller and the step are saved in checkpoints. Needs a Metropolis–Hastings sampler (MALA,
            HMC); unadjusted Langevin has no acceptance to adapt to
            (docs/algorithms.md#tempered-and-adapted-training-chains).
        train_target_acceptance: δ of that adaptation; ``None``: 0.57 for MALA, 0.65 for HMC.
        train_adapt_steps: number of adapted training batches (optimizer steps without gradient accumulation).

    A :class:`~lit_gen.mcmc.ReplicaExchange` ``sampler`` (parallel tempering; ``persistent=True`` keeps its hot
    replicas from batch to batch, saved in checkpoints) logs ``train/mcmc_swap_rate``.
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
        loss: EnergyLoss | Literal["cd", "dsm", "ssm"] = "cd",
        alpha: float = 0.1,
        data_noise: float = 0.0,
        dsm_sigmas: Sequence[float] = (0.1,),
        ssm_slices: int = 1,
        energy_bound: float = 1e4,
        sample_steps: int = 200,
        sample_sampler: MCMCSampler | None = None,
        grid_limit: float = 6.0,
        num_classes: int | None = None,
        label_dropout: float = 0.1,
        guidance_scale: float = 1.0,
        classifier_weight: float = 0.0,
        adapt_sample_step: bool = True,
        sample_warmup: int = 100,
        ais_chains: int = 64,
        ais_steps: int = 200,
        ais_step_size: float = 0.05,
        adapt_train_step: bool = False,
        train_target_acceptance: float | None = None,
        train_adapt_steps: int = 500,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
    ) -> None:
        # a name is a shorthand for its loss class built with alpha/data_noise, dsm_sigmas or ssm_slices
        self_loss = build_energy_loss(loss, alpha=alpha, data_noise=data_noise, sigmas=dsm_sigmas,
                                      num_slices=ssm_slices)
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
                         lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points,
                         num_classes=num_classes)
        ignore = ["energy_net", "sampler", "sample_sampler", "optimizer", "lr_scheduler"]
        self.configure_ais(ais_chains, ais_steps, ais_step_size)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
        self.label_dropout = float(label_dropout)
        self.guidance_scale = float(guidance_scale)
        if classifier_weight < 0 or (classifier_weight > 0 and not jem_logits_available(self)):
            raise ValueError(
                f"classifier_weight={classifier_weight} must be >= 0, and > 0 needs an energy network built with "
                f"num_classes and class_logits=True (JEM: its outputs are the classifier's logits)"
            )
        self.classifier_weight = float(classifier_weight)
        if isinstance(sample_warmup, bool) or not isinstance(sample_warmup, int) or sample_warmup < 0:
            raise ValueError(f"sample_warmup must be a number of dual-averaging updates >= 0, got {sample_warmup!r}")
        self.adapt_sample_step = bool(adapt_sample_step)
        self.sample_warmup = sample_warmup
        self.save_hyperparameters(ignore=ignore + ([] if isinstance(loss, str) else ["loss"]))
        self.sampler = sampler if sampler is not None else Langevin(step_size=0.01)
        self.sample_sampler = sample_sampler if sample_sampler is not None else self.sampler
        if sample_sampler is None and isinstance(self.sampler, ReplicaExchange) and self.sampler.persistent:
            # sample() must not run on (nor overwrite) the training chains' hot replicas: a non-persistent copy
            self.sample_sampler = self.sampler.non_persistent_copy()
        self.mcmc_steps = int(mcmc_steps)
        self.loss = self_loss
        self.loss_type = loss if isinstance(loss, str) else type(loss).__name__
        self.alpha = float(alpha)
        self.data_noise = float(data_noise)
        self.dsm_sigmas = tuple(float(s) for s in dsm_sigmas)
        self.ssm_slices = int(ssm_slices)
        self.sample_steps = int(sample_steps)
        self.train_adaptation = self._build_train_adaptation(adapt_train_step, train_target_acceptance,
                                                             train_adapt_steps)
        self.train_adapt_steps = int(train_adapt_steps)

    def _build_train_adaptation(self, adapt: bool, target: float | None, steps: int) -> DualAveraging | None:
        """The dual-averaging controller of the training sampler's step (``adapt_train_step``), or None."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"train_adapt_steps must be a positive int (adapted training batches), got {steps!r}")
        if not adapt:
            return None
        owner = _step_owner(self.sampler)
        if isinstance(owner, Langevin) or not hasattr(owner, "step_size"):
            raise ValueError(
                f"adapt_train_step needs a training sampler with an accept/reject step and a step_size (MALA, HMC, "
                f"or a ReplicaExchange around one); {type(owner).__name__} has no acceptance probability to adapt "
                "to. Use sampler lit_gen.mcmc.MALA (or HMC), or set adapt_train_step to false"
            )
        if target is None:
            target = next((v for cls, v in TRAIN_TARGET_ACCEPT.items() if isinstance(owner, cls)), None)
            if target is None:
                raise ValueError(f"give train_target_acceptance for {type(owner).__name__} (defaults exist for MALA "
                                 "and HMC only)")
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < float(target) < 1.0:
            raise ValueError(f"train_target_acceptance must be a probability in (0, 1), got {target!r}")
        return DualAveraging(float(target), initial_step_size=float(owner.step_size))

    @property
    def train_adapting(self) -> bool:
        """Whether the training sampler's step is still being adapted (``adapt_train_step`` and warm-up not over)."""
        return self.train_adaptation is not None and self.train_adaptation.iteration < self.train_adapt_steps

    def _adapt_train_step(self, result: Any) -> None:
        """One dual-averaging update from a negative phase's acceptance probability; freeze after the last."""
        controller = self.train_adaptation
        if result.accept_prob is not None and result.accept_prob.numel() > 0:
            prob = result.accept_prob.double().mean()
        else:
            prob = torch.tensor(float(result.stats.get("acceptance_rate", math.nan)), dtype=torch.float64)
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:  # every rank keeps the same step
            prob = trainer.strategy.reduce(prob.to(self.device), reduce_op="mean")
        owner = _step_owner(self.sampler)
        step = controller.update(float(prob))
        if controller.iteration >= self.train_adapt_steps:
            step = controller.final_step_size
        # at most 10 ε₀ (the controller's shrinkage point μ = log 10ε₀): while the energy is still flat every
        # proposal is accepted and an unbounded step would grow until the chains leave the data far behind
        owner.step_size = min(step, 10.0 * controller.initial_step_size)

    # ------------------------------------------------------------- chain init
    def on_init_box_set(self) -> None:
        """Hand the init box to the training chains (fresh chains are drawn uniformly from it)."""
        self.chains.set_init(UniformInit(self.box_low, self.box_high))

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x, y = self.check_labelled_batch(batch)
        energy = negative_energy = self.energy
        if y is not None:  # both phases on E(·, y); the dropped labels (null class) train E(·, ∅)
            labels = drop_labels(y, self.label_dropout, self.num_classes)
            energy = negative_energy = functools.partial(self.energy, y=labels)
            if isinstance(self.sampler, ReplicaExchange):  # the K replicas of each chain keep its label
                negative_energy = per_chain_energy(lambda m: functools.partial(self.energy, y=tile_chains(labels, m)),
                                                   x.shape[0])
        negatives, stats = self.negative_phase(x, negative_energy) if self.loss.needs_negatives else (None, {})
        loss, parts = self.loss(energy, x, negatives)
        if y is not None and self.classifier_weight > 0:  # JEM's hybrid: log p(x | ·) + λ log p(y | x)
            cross_entropy = F.cross_entropy(self.energy_net.logits(x), y)
            loss = loss + self.classifier_weight * cross_entropy
            parts = {**parts, "classifier_loss": cross_entropy.detach()}
        energies = parts.pop("energies", None)
        if energies is not None:
            self.guard(None, energies)
        self.guard(loss, None)
        if self.logs_this_step():
            self.log_dict({f"train/{k}": v for k, v in {**parts, **stats}.items()})
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def negative_phase(self, x: Tensor, energy: Any = None) -> tuple[Tensor, dict[str, float]]:
        """The model's samples for the loss: ``mcmc_steps`` of ``sampler`` on ``energy`` (default ``self.energy``;
        a conditional run passes ``E(·, y)``) from the chain init, which keeps them.

        Returns the samples and the chain statistics to log (``mcmc_grad_norm``, ``mcmc_acceptance``; with a
        :class:`~lit_gen.mcmc.ReplicaExchange` sampler ``mcmc_swap_rate``; with ``adapt_train_step``
        ``mcmc_step_size``, the step after this batch's update). A replica-exchange sampler calls ``energy`` on the
        K stacked replicas of the chains too: an energy with per-chain labels must accept that
        (:func:`lit_gen.mcmc.per_chain_energy`; ``training_step`` does it).
        """
        init = self.chains.initial(x)
        adapting = self.train_adapting
        result = self.sampler.run(energy or self.energy, init, self.mcmc_steps)
        if self.init_box is not None:
            self.check_chains(init, result.x, self.box_low, self.box_high)
        self.chains.update(result.x)
        if adapting:
            self._adapt_train_step(result)
        stats = {
            "mcmc_grad_norm": float(result.stats.get("grad_norm", float("nan"))),
            "mcmc_acceptance": float(result.stats.get("acceptance_rate", 1.0)),
        }
        if isinstance(self.sampler, ReplicaExchange):
            stats["mcmc_swap_rate"] = float(result.stats.get("swap_rate", float("nan")))
        if self.train_adaptation is not None:
            stats["mcmc_step_size"] = float(_step_owner(self.sampler).step_size)
        return result.x, stats

    # ---------------------------------------------------------------- sampling
    def sample(
        self, n: int, steps: int | None = None, generator: torch.Generator | None = None, init: Tensor | None = None,
        y: Tensor | int | None = None, guidance_scale: float | None = None, return_stats: bool = False,
        adapt: bool | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, float]]:
        """Long-run MCMC: ``steps`` (default ``sample_steps``) of ``sample_sampler`` from the init distribution, on
        ``E`` or, for class ``y`` of a conditional model, on ``(1 − w) E(x, ∅) + w E(x, y)`` (w = ``guidance_scale``,
        default the model's; :func:`lit_gen.mcmc.guided_energy`).

        A Metropolis–Hastings ``sample_sampler`` (MALA, HMC) first adapts a copy of its step size by dual averaging
        to its target acceptance over ``sample_warmup`` updates (``adapt``, default ``adapt_sample_step``), then
        freezes it (:func:`lit_gen.mcmc.long_run`). ``return_stats=True`` also returns the run's diagnostics:
        ``ess_min``/``ess_mean`` (bulk ESS per coordinate over the second half), ``rhat_max`` (split-R̂),
        ``acceptance_rate`` and the ``step_size`` used."""
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
        steps = self.sample_steps if steps is None else int(steps)
        if steps <= 0:
            raise ValueError(f"steps must be a positive number of MCMC steps, got {steps}")
        energy = self.energy
        x = init if init is not None else self.init_distribution().sample(n, self.data_shape, generator, self.device)
        if y is not None:
            w = self.guidance_scale if guidance_scale is None else float(guidance_scale)
            labels = self.check_labels(y, n)
            energy = guided_energy(self.energy_net, labels, w)
            if isinstance(self.sample_sampler, ReplicaExchange):  # the replicas of chain b keep its label
                energy = per_chain_energy(lambda m: guided_energy(self.energy_net, tile_chains(labels, m), w),
                                          x.shape[0])
        elif guidance_scale is not None:
            raise ValueError("guidance_scale needs class labels: pass y")
        was_training = self.training
        self.eval()
        try:
            adapt = self.adapt_sample_step if adapt is None else bool(adapt)
            result = long_run(self.sample_sampler, energy, x, steps, warmup=self.sample_warmup if adapt else 0,
                              record=return_stats, generator=generator)
            return (result.x, result.stats) if return_stats else result.x
        finally:
            self.train(was_training)

    # ---------------------------------------------------------- checkpointing
    def sampler_state(self) -> dict[str, Any]:
        """The training sampler's state for a checkpoint: a replica exchange's hot replicas and swap counters
        (``"sampler"``), and the adapted step with its dual-averaging controller (``"adaptation"``)."""
        state: dict[str, Any] = {"sampler": None, "adaptation": None}
        if isinstance(self.sampler, ReplicaExchange):
            state["sampler"] = self.sampler.state_dict()
        if self.train_adaptation is not None:
            state["adaptation"] = {"controller": self.train_adaptation.state_dict(),
                                   "step_size": float(_step_owner(self.sampler).step_size)}
        return state

    def load_sampler_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`sampler_state`'s output (entries this module's configuration has no use for are left)."""
        if state.get("sampler") is not None and isinstance(self.sampler, ReplicaExchange):
            self.sampler.load_state_dict(state["sampler"])
        adaptation = state.get("adaptation")
        if adaptation is not None and self.train_adaptation is not None:
            self.train_adaptation.load_state_dict(adaptation["controller"])
            _step_owner(self.sampler).step_size = float(adaptation["step_size"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the chains and the training sampler's state of every rank (lists indexed by rank: under DDP each
        rank has its own buffer and hot replicas)."""
        super().on_save_checkpoint(checkpoint)
        state = self.chains.state_dict()
        state = {k: v.cpu() if isinstance(v, Tensor) else v for k, v in state.items()}
        checkpoint["ebm_chains"] = gather_to_rank_zero(state)
        checkpoint["ebm_sampler"] = gather_to_rank_zero(self.sampler_state())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("ebm_chains")
        if isinstance(state, list):  # one entry per rank
            state = select_rank(state, self.global_rank, "replay buffers")
        if state:
            self.chains.load_state_dict(state)
        sampler_state = checkpoint.get("ebm_sampler")
        if isinstance(sampler_state, list):
            sampler_state = select_rank(sampler_state, self.global_rank, "training-sampler states")
        if sampler_state:
            self.load_sampler_state(sampler_state)
