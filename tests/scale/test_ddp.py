"""Distributed training: ``strategy="ddp_spawn"``, two CPU processes talking through gloo.

For every module: training runs on both ranks, the replicas stay identical, a held-out measure of progress falls,
and the SW1/MMD² metrics synced across the two ranks equal the single-process value on the union of the ranks'
samples. For the EBM: each rank keeps its own replay buffer, and a checkpoint saves and restores every rank's.
Slow suite (`make test-all`): a DDP run resumed mid-epoch ends bit for bit like an uninterrupted one, on every rank.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from scale_helpers import (
    MODULES,
    RankProbe,
    make_data,
    make_ddp_trainer,
    make_module,
    progress_measure,
)

from lit_gen.metrics import MaximumMeanDiscrepancy, SlicedWassersteinDistance

BATCHES = 30  # per rank, batch 32: enough for every module's progress measure to fall (seeds 0-2, one process)


def _ranks(out_dir: Path) -> tuple[dict, dict]:
    r0, r1 = (torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world_size"]) == (0, 1, 2)
    return r0, r1


def _check_run(name: str, out_dir: Path, steps: int, before: float, after: float) -> tuple[dict, dict]:
    """What every module must show after a DDP run; returns the two ranks' records."""
    r0, r1 = _ranks(out_dir)
    assert r0["global_step"] == r1["global_step"] == steps
    # gradients are averaged across ranks, so both replicas hold the same weights (EMA copies included)
    assert r0["state"].keys() == r1["state"].keys()
    for key in r0["state"]:
        assert torch.equal(r0["state"][key], r1["state"][key]), f"{key} differs between ranks"
    assert after < before, f"{name}: held-out measure went from {before:.4f} to {after:.4f}"

    # metrics synced across ranks = single-process metrics on the same samples. The synced state is the
    # rank-ordered concatenation, the same tensors as below, and the computation is the same, so the values agree
    # to the last bit.
    fake, real = torch.cat([r0["fake"], r1["fake"]]), torch.cat([r0["real"], r1["real"]])
    assert not torch.equal(r0["fake"], r1["fake"]) and not torch.equal(r0["real"], r1["real"])
    sw1, mmd = SlicedWassersteinDistance(), MaximumMeanDiscrepancy()
    sw1.update(fake, real)
    mmd.update(fake, real)
    assert r0["sw1"] == r1["sw1"] == float(sw1.compute())
    assert r0["mmd"] == r1["mmd"] == float(mmd.compute())
    # and they differ from what a single rank would report alone (so the sync really happened)
    alone = SlicedWassersteinDistance()
    alone.update(r0["fake"], r0["real"])
    assert float(alone.compute()) != r0["sw1"]
    return r0, r1


def _fit(name: str, out_dir: Path, steps: int, callbacks: tuple[L.Callback, ...] = (), **kwargs: object) -> tuple:
    L.seed_everything(0, verbose=False)
    module, data = make_module(name), make_data(n_train=1024, batch_size=32, name=name)
    before = progress_measure(name, module, data)
    make_ddp_trainer(steps, [RankProbe(str(out_dir)), *callbacks], **kwargs).fit(module, data)
    # ddp_spawn copies rank 0's weights back into this process's module
    return before, progress_measure(name, module, data)


# Each ddp_spawn run costs 7-15 s on 2 cores (two fresh interpreters import torch and Lightning).
# the flow and conditional variants add ~100 s of CPU: they run in `make test-all`
@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in ("flow", "diffusion_cond") else m
                                  for m in MODULES if m != "ebm"])
def test_ddp_spawn_trains_syncs_replicas_and_metrics(name: str, tmp_path: Path) -> None:
    steps = BATCHES
    before, after = _fit(name, tmp_path, steps)
    _check_run(name, tmp_path, steps, before, after)


def test_ddp_spawn_ebm_keeps_replay_buffers_per_rank_through_checkpoints(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=BATCHES, save_top_k=-1, filename="{step}")
    before, after = _fit("ebm", first, BATCHES, (checkpoint,), enable_checkpointing=True)
    r0, r1 = _check_run("ebm", first, BATCHES, before, after)
    # each rank keeps its own persistent chains (its own noise, slots and restarts)
    assert not torch.equal(r0["chains"], r1["chains"])

    saved = torch.load(tmp_path / f"step={BATCHES}.ckpt", weights_only=True)
    # the checkpoint holds one buffer and one set of RNG states per rank, each rank's own
    assert len(saved["ebm_chains"]) == len(saved["rng_states"]) == 2
    assert torch.equal(saved["ebm_chains"][0]["chains"], r0["chains"])
    assert torch.equal(saved["ebm_chains"][1]["chains"], r1["chains"])
    assert not torch.equal(saved["rng_states"][0]["torch"], saved["rng_states"][1]["torch"])

    # resumed under DDP, each rank starts from its own buffer
    L.seed_everything(0, verbose=False)
    make_ddp_trainer(BATCHES + 2, [RankProbe(str(second))]).fit(
        make_module("ebm"), make_data(n_train=1024, batch_size=32), ckpt_path=str(tmp_path / f"step={BATCHES}.ckpt")
    )
    s0, s1 = _ranks(second)
    assert torch.equal(s0["chains_at_start"], r0["chains"])
    assert torch.equal(s1["chains_at_start"], r1["chains"])
    assert s0["global_step"] == s1["global_step"] == BATCHES + 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ebm", "ddaebm"])
def test_ddp_resume_matches_uninterrupted_run_bitwise(name: str, tmp_path: Path) -> None:
    """Under DDP too: k = 10 batches per rank (16 per epoch) stops mid-epoch, 2k crosses into the next epoch."""
    k = 10
    full, first, second = (tmp_path / d for d in ("full", "first", "second"))
    for d in (full, first, second):
        d.mkdir()
    _fit(name, full, 2 * k)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=k, save_top_k=-1, filename="{step}")
    _fit(name, first, k, (checkpoint,), enable_checkpointing=True)
    # Same seed as the interrupted run: under DDP the shuffle is Lightning's DistributedSampler, seeded from
    # seed_everything (as a config's `seed_everything` does on resume). The RNG streams and the position in the
    # epoch come from the checkpoint: this seed alone would restart them from step 0.
    L.seed_everything(0, verbose=False)
    make_ddp_trainer(2 * k, [RankProbe(str(second))]).fit(
        make_module(name), make_data(n_train=1024, batch_size=32, name=name), ckpt_path=str(tmp_path / f"step={k}.ckpt")
    )
    for rank in (0, 1):
        a, b, c = (torch.load(d / f"rank{rank}.pt", weights_only=False) for d in (full, first, second))
        seen = b["batches"] + c["batches"]
        assert len(seen) == len(a["batches"]) == 20
        for i, (x, y) in enumerate(zip(seen, a["batches"], strict=True)):
            assert torch.equal(x, y), f"rank {rank}: batch {i} differs after resuming"
        for key in a["state"]:
            assert torch.equal(a["state"][key], c["state"][key]), f"rank {rank}: {key} differs after resuming"
        assert torch.equal(a["rng"], c["rng"])
        if name == "ebm":
            assert torch.equal(a["chains"], c["chains"])
