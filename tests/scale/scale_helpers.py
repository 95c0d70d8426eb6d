"""Tiny versions of the lit_gen modules and quiet CPU trainers, shared by the scale tests.

Every module gets an LR scheduler (and, where it has one, an EMA and a replay buffer), so that resuming
exercises all of the state a checkpoint must carry.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy

from lit_gen.data import Toy2DDataModule
from lit_gen.ddaebm import GeneratorMLP, PosteriorMLP
from lit_gen.diffusion.schedules import LinearSchedule
from lit_gen.mcmc import Langevin
from lit_gen.models import DCDModule, DDAEBMModule, DiffusionModule, EBMModule, FlowMatchingModule, GenerativeModule
from lit_gen.nn import EnergyMLP, TimeEnergyMLP, TimeMLP

MODULES = ("diffusion", "ebm", "dcd", "ddaebm", "flow", "diffusion_cond")
"""``*_cond``: the module with ``num_classes`` on labelled data (8 classes, the mixture components)."""
HIDDEN = 16


def _adam(lr: float = 1e-2) -> Callable[..., torch.optim.Optimizer]:
    return partial(torch.optim.Adam, lr=lr)


def _cosine() -> Callable[..., Any]:
    return partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=50, eta_min=1e-4)


def make_module(name: str, **overrides: Any) -> GenerativeModule:
    """A tiny ``name`` module (hidden width 16, one block) with an LR scheduler, for fast CPU runs.

    ``overrides`` replace constructor arguments (e.g. the optimizer).
    """
    kwargs = _module_kwargs(name.removesuffix("_cond"))
    if name.endswith("_cond"):
        kwargs["num_classes"] = 8
    kwargs.update(overrides)
    name = name.removesuffix("_cond")
    classes = {"diffusion": DiffusionModule, "ebm": EBMModule, "dcd": DCDModule, "ddaebm": DDAEBMModule,
               "flow": FlowMatchingModule}
    return classes[name](**kwargs)


def _module_kwargs(name: str) -> dict[str, Any]:
    if name == "diffusion":
        return dict(
            net=partial(TimeMLP, hidden=HIDDEN, depth=1, time_dim=8), schedule=LinearSchedule(100),
            sampler="ddim", sampler_steps=5, ema_decay=0.99, optimizer=_adam(), lr_scheduler=_cosine(),
            eval_metrics=False,
        )
    if name == "ebm":
        # a small buffer with frequent restarts, so that restarts (an RNG draw) happen within a few steps
        return dict(
            energy_net=partial(EnergyMLP, hidden=HIDDEN, depth=1), sampler=Langevin(step_size=0.01), mcmc_steps=5,
            chain_init="replay", buffer_capacity=256, restart_prob=0.2, sample_steps=20, optimizer=_adam(),
            lr_scheduler=_cosine(), eval_metrics=False,
        )
    if name == "dcd":
        return dict(
            energy_net=partial(EnergyMLP, hidden=HIDDEN, depth=1), noise=1.0, mcmc_steps=5, sample_steps=20,
            optimizer=_adam(3e-2), lr_scheduler=_cosine(), eval_metrics=False,
        )
    if name == "ddaebm":
        return dict(
            energy_net=partial(TimeEnergyMLP, hidden=HIDDEN, depth=1, time_dim=8),
            generator_net=partial(GeneratorMLP, hidden=HIDDEN, depth=1, time_dim=8),
            posterior_net=partial(PosteriorMLP, hidden=HIDDEN, depth=1, time_dim=8),
            energy_optimizer=_adam(1e-3), generator_optimizer=_adam(1e-3),
            energy_lr_scheduler=_cosine(), generator_lr_scheduler=_cosine(), gradient_clip_val=1.0,
            ema_decay=0.99, eval_metrics=False,
        )
    if name == "flow":
        return dict(
            net=partial(TimeMLP, hidden=HIDDEN, depth=1, time_dim=8), coupling="ot", sample_steps=4, ema_decay=0.99,
            optimizer=_adam(), lr_scheduler=_cosine(), eval_metrics=False, test_nll_samples=0,
        )
    raise ValueError(f"unknown module {name!r}; choose one of {MODULES}")


def num_optimizers(name: str) -> int:
    """Optimizers stepped per training batch: DDAEBM steps two (``global_step`` still counts batches)."""
    return 2 if name == "ddaebm" else 1


def make_data(n_train: int = 256, batch_size: int = 64, seed: int = 0, name: str | None = None) -> Toy2DDataModule:
    """8 Gaussians, ``n_train // batch_size`` batches per epoch (4 by default); with labels for a ``*_cond``
    module ``name``."""
    return Toy2DDataModule(name="8gaussians", n_train=n_train, n_val=128, n_test=128, batch_size=batch_size,
                           seed=seed, conditional=bool(name and name.endswith("_cond")))


def make_trainer(max_steps: int, **kwargs: Any) -> L.Trainer:
    """A quiet single-process CPU trainer without validation, logger or checkpoints unless ``kwargs`` add them."""
    args: dict[str, Any] = dict(
        max_steps=max_steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        inference_mode=False,
    )
    args.update(kwargs)
    return L.Trainer(**args)


class LossRecorder(L.Callback):
    """Keeps the loss each training step returns (``train/loss`` reaches the loggers only every
    ``log_every_n_steps``), and the batches themselves."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.batches: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        value = outputs.get("loss") if isinstance(outputs, dict) else outputs
        assert value is not None, f"no loss returned at batch {batch_idx}: {outputs!r}"
        self.losses.append(float(value))
        if isinstance(batch, (tuple, list)):  # (x, y): the labels as a last column
            batch = torch.cat([batch[0], batch[1][:, None].to(batch[0].dtype)], 1)
        self.batches.append(batch.detach().clone())


def progress_measure(name: str, module: GenerativeModule, data: Toy2DDataModule) -> float:
    """A held-out quantity that training lowers, evaluated with fixed noise (deterministic for given weights).

    Diffusion: the DSM loss on fresh data points, 4 fixed noise draws. Energy models: the contrastive gap
    ``mean E(x_test) − mean E(u)`` with u uniform on the training data's box (t = 0 for DDAEBM), which falls as the
    energy learns to put the data below the space around it. (The training losses themselves are too noisy over a
    few dozen steps: the CD loss compares two moving sets, and DDAEBM's mixes adversarial terms.)
    """
    from lit_gen.diffusion import dsm_loss

    # 4096 fresh points: the measure's own noise (std(E)/64 per mean) is then well below the changes it tracks
    test = data.sample(4096, generator=torch.Generator().manual_seed(7))
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(7)
        if name == "diffusion":
            return float(sum(dsm_loss(module.net, module.schedule, test) for _ in range(4)) / 4)
        if name == "diffusion_cond":  # the null-class (unconditional) denoiser
            return float(sum(dsm_loss(module.net, module.schedule, test) for _ in range(4)) / 4)
        if name == "flow":
            from lit_gen.flows import cfm_loss

            return float(sum(cfm_loss(module.velocity(), module.prob_path, torch.randn_like(test), test)
                             for _ in range(4)) / 4)
        low, high = data.bounds()
        u = low + (high - low) * torch.rand(len(test), 2)
        return float(module.energy(test).mean() - module.energy(u).mean())


class RankProbe(L.Callback):
    """Under DDP, writes what each rank holds at the end of training to ``out_dir/rank{r}.pt``.

    Its parameters and buffers, its replay buffer (at the start and at the end of training), its global step, the
    batches it trained on, its torch RNG state (before the metric samples are drawn), and
    the SW1/MMD² that torchmetrics computes across ranks for ``n`` samples of this rank (seeded by rank) against
    ``n`` validation points of this rank (slice r), with those samples and points, so that the test can compute
    the single-process value on the same points.
    """

    def __init__(self, out_dir: str, n: int = 64) -> None:
        self.out_dir = out_dir
        self.n = n
        self.chains_at_start: torch.Tensor | None = None
        self.batches: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if isinstance(batch, (tuple, list)):  # (x, y): the labels as a last column
            batch = torch.cat([batch[0], batch[1][:, None].to(batch[0].dtype)], 1)
        self.batches.append(batch.detach().cpu().clone())

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        torch.set_num_threads(1)  # the spawned processes share 2 cores

    @staticmethod
    def _chains(pl_module: L.LightningModule) -> torch.Tensor | None:
        chains = getattr(getattr(pl_module, "chains", None), "chains", None)
        return None if chains is None else chains.detach().cpu().clone()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.chains_at_start = self._chains(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from pathlib import Path

        from lit_gen.metrics import MaximumMeanDiscrepancy, SlicedWassersteinDistance

        rank, rng = trainer.global_rank, torch.get_rng_state()
        fake = pl_module.sample(self.n, generator=torch.Generator().manual_seed(1000 + rank)).detach().cpu()
        real = trainer.datamodule.tensor("val")[rank * self.n:(rank + 1) * self.n]
        sw1, mmd = SlicedWassersteinDistance(), MaximumMeanDiscrepancy()
        sw1.update(fake, real)
        mmd.update(fake, real)
        out = {
            "rank": rank, "world_size": trainer.world_size, "global_step": trainer.global_step,
            "state": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
            "chains_at_start": self.chains_at_start, "chains": self._chains(pl_module),
            "sw1": float(sw1.compute()), "mmd": float(mmd.compute()), "fake": fake, "real": real,
            "batches": self.batches, "rng": rng,
        }
        torch.save(out, Path(self.out_dir) / f"rank{rank}.pt")


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ddp_trainer(max_steps: int, callbacks: list[L.Callback], **kwargs: Any) -> L.Trainer:
    """Two CPU processes (gloo) started by ``ddp_spawn``; unused parameters allowed (DDAEBM's two steps).

    Every trainer rendezvouses on this machine at a fresh port. Lightning keeps ``MASTER_ADDR``/``MASTER_PORT``
    from ``os.environ`` when they are set, and other code writes them (the simulated SLURM test made them point at
    a fictitious node, and the ranks waited 30 minutes for it); the process-group timeout turns any such wait into
    an error within two minutes.
    """
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(free_port())
    strategy = DDPStrategy(start_method="spawn", find_unused_parameters=True, timeout=timedelta(seconds=120))
    return make_trainer(max_steps, devices=2, strategy=strategy, callbacks=callbacks, **kwargs)
