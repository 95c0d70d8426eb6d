"""Resume: stopped at step k and resumed from its checkpoint, a run ends at step 2k bit for bit as if uninterrupted.

With 4 batches per epoch, k = 6 batches puts the checkpoint mid-epoch (the resumed run then crosses an epoch
boundary) and k = 4 at the end of an epoch: the data order (a seeded shuffle per epoch), the RNG streams
(diffusion noise, MCMC noise, replay-buffer restarts), optimizers, LR schedulers, EMA copies and the replay
buffer must all continue exactly. All of it runs
single-threaded on CPU in float32, where the same operations in the same order give the same bits, so the
comparison is exact (``torch.equal``), not within a tolerance.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from scale_helpers import MODULES, LossRecorder, make_data, make_module, make_trainer


def _run(name: str, max_steps: int, ckpt_path: str | None = None, checkpoint_dir: Path | None = None,
         every: int | None = None) -> tuple[L.LightningModule, L.Trainer, LossRecorder]:
    recorder = LossRecorder()
    callbacks: list[L.Callback] = [recorder]
    extra = {}
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, every_n_train_steps=every, save_top_k=-1,
                                         filename="{step}"))
        extra["enable_checkpointing"] = True
    L.seed_everything(0, verbose=False)
    module = make_module(name)
    trainer = make_trainer(max_steps, callbacks=callbacks, **extra)
    trainer.fit(module, make_data(name=name), ckpt_path=ckpt_path)
    recorder.rng_after = torch.get_rng_state()
    return module, trainer, recorder


def _assert_same_tensors(a: object, b: object, where: str) -> None:
    """Recursive bitwise comparison of nested dicts/lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("k_batches", [4, 6], ids=["epoch_end", "mid_epoch"])
@pytest.mark.parametrize("name", MODULES)
def test_resume_matches_uninterrupted_run_bitwise(name: str, k_batches: int, tmp_path: Path) -> None:
    k = k_batches
    full, full_trainer, full_rec = _run(name, 2 * k)

    _, _, first_rec = _run(name, k, checkpoint_dir=tmp_path, every=k)
    ckpt = tmp_path / f"step={k}.ckpt"
    assert ckpt.exists(), sorted(p.name for p in tmp_path.iterdir())
    # a different seed for the fresh module: everything that matters must come from the checkpoint
    L.seed_everything(123, verbose=False)
    resumed, resumed_trainer, resumed_rec = _run(name, 2 * k, ckpt_path=str(ckpt))

    assert full_trainer.global_step == resumed_trainer.global_step == 2 * k
    # the data order continues: the resumed run sees the batches the uninterrupted run saw after step k
    seen = first_rec.batches + resumed_rec.batches
    assert len(seen) == len(full_rec.batches) == 2 * k_batches
    for i, (a, b) in enumerate(zip(seen, full_rec.batches, strict=True)):
        assert torch.equal(a, b), f"batch {i} differs after resuming"
    assert first_rec.losses + resumed_rec.losses == full_rec.losses
    # parameters and buffers, EMA copies included (they are sub-modules), bitwise
    _assert_same_tensors(full.state_dict(), resumed.state_dict(), "state_dict")
    for i, (a, b) in enumerate(zip(full_trainer.optimizers, resumed_trainer.optimizers, strict=True)):
        _assert_same_tensors(a.state_dict(), b.state_dict(), f"optimizer{i}")
    for i, (a, b) in enumerate(zip(full_trainer.lr_scheduler_configs, resumed_trainer.lr_scheduler_configs,
                                   strict=True)):
        _assert_same_tensors(a.scheduler.state_dict(), b.scheduler.state_dict(), f"scheduler{i}")
    if getattr(full, "ema", None) is not None:
        assert int(full.ema.n_averaged) == int(resumed.ema.n_averaged) == 2 * k_batches
    if name == "ebm":
        _assert_same_tensors(full.chains.state_dict(), resumed.chains.state_dict(), "replay buffer")
    # the global RNG stream ends in the same state
    assert torch.equal(full_rec.rng_after, resumed_rec.rng_after)


def test_index_batch_sampler_resumes_mid_epoch_once() -> None:
    from torch.utils.data import DistributedSampler, RandomSampler

    from lit_gen.data import IndexBatchSampler, TensorIndexDataset

    data = TensorIndexDataset(torch.arange(16.0))
    g = torch.Generator().manual_seed(0)
    full = list(IndexBatchSampler(RandomSampler(data, generator=g), batch_size=4, drop_last=True))
    g.manual_seed(0)
    resumed = IndexBatchSampler(RandomSampler(data, generator=g), batch_size=4, drop_last=True, skip=3)
    rest = list(resumed)
    assert len(rest) == 1 and torch.equal(rest[0], full[3])
    assert len(list(resumed)) == 4  # the next epoch is whole again
    # under DDP the distributed sampler is set to the resumed epoch before its order is drawn
    dist = DistributedSampler(data, num_replicas=2, rank=0, shuffle=True, seed=0)
    dist.set_epoch(1)
    epoch1 = list(IndexBatchSampler(dist, batch_size=2, drop_last=True))
    dist.set_epoch(0)
    assert [b.tolist() for b in IndexBatchSampler(dist, 2, True, skip=1, epoch=1)] == [b.tolist() for b in epoch1[1:]]
    with pytest.raises(ValueError, match="skip"):
        IndexBatchSampler(dist, 2, True, skip=-1)
