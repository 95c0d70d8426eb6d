"""Evaluation that scales with the data: chunked SW1, capped seeded subsamples, sizes in the test report."""

from __future__ import annotations

import importlib
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from lit_gen.data import Toy2DDataModule
from lit_gen.evaluation import SampleDistances, eval_seed, subsample_indices
from lit_gen.mcmc import Langevin
from lit_gen.metrics import mmd2_unbiased, random_directions, sliced_wasserstein
from lit_gen.metrics.sliced_wasserstein import _CHUNK_BYTES, projection_chunk_size
from lit_gen.models import DiffusionModule, EBMModule
from lit_gen.nn import EnergyMLP, TimeMLP

sw_module = importlib.import_module("lit_gen.metrics.sliced_wasserstein")

# ----------------------------------------------------------------------------- chunked SW1


def _sw1_direct(a: torch.Tensor, b: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """The one-shot formula: all n x K projections at once, sorted per direction, mean gap (float64)."""
    u = random_directions(k, a.shape[1], seed)
    pa = torch.sort(a.double() @ u.T, dim=0).values
    pb = torch.sort(b.double() @ u.T, dim=0).values
    return (pa - pb).abs().mean()


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64, 1000])
def test_chunked_sw1_equals_the_one_shot_formula(chunk_size: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 5, generator=g, dtype=torch.float64)
    b = 1.3 * torch.randn(3000, 5, generator=g, dtype=torch.float64) + 0.2
    value = sliced_wasserstein(a, b, num_projections=100, seed=3, chunk_size=chunk_size)
    torch.testing.assert_close(value, _sw1_direct(a, b, 100, 3), rtol=1e-12, atol=0)
    # float32 inputs: same value up to float32 rounding, whatever the chunking
    v32 = sliced_wasserstein(a.float(), b.float(), num_projections=100, seed=3, chunk_size=chunk_size)
    assert v32.dtype == torch.float32
    assert v32.item() == pytest.approx(value.item(), rel=1e-5)


def test_sw1_chunk_size_is_checked() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        sliced_wasserstein(torch.randn(10, 2), torch.randn(10, 2), chunk_size=0)


def test_sw1_chunk_keeps_the_working_set_bounded_whatever_n() -> None:
    for n in (10, 10_000, 400_000, 10**6, 10**7):
        k = projection_chunk_size(n, 4)
        assert k >= 1
        assert k == 1 or k * n * 36 <= _CHUNK_BYTES  # 36 bytes per point and projection (float32)
    assert projection_chunk_size(400_000, 4) <= 4  # the one-shot n x 512 matrix held 400k x 512 floats
    assert projection_chunk_size(10_000, 4) >= 128


def test_sw1_on_200k_points_never_holds_n_by_k(monkeypatch: pytest.MonkeyPatch) -> None:
    n, k = 200_000, 64
    g = torch.Generator().manual_seed(1)
    a = torch.randn(n, 2, generator=g)
    b = a.flip(0) + torch.tensor([0.1, 0.0])  # the same points, reordered and shifted
    sorted_sizes: list[int] = []
    real_sort = sw_module._sort_rows

    def spy(x: torch.Tensor) -> torch.Tensor:
        sorted_sizes.append(x.numel())
        return real_sort(x)

    monkeypatch.setattr(sw_module, "_sort_rows", spy)
    start = time.perf_counter()
    value = sliced_wasserstein(a, b, num_projections=k)
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    chunk = projection_chunk_size(n, 4)
    assert chunk < k and len(sorted_sizes) == 2 * math.ceil(k / chunk)
    assert max(sorted_sizes) <= chunk * n < n * k
    assert max(sorted_sizes) * 36 <= _CHUNK_BYTES
    # a shift by c = 0.1 along x moves every order statistic of projection k by c·u_k1: SW1 = c · mean_k |u_k1|
    u = random_directions(k, 2)
    assert value.item() == pytest.approx(0.1 * u[:, 0].abs().mean().item(), rel=1e-4)
    assert elapsed < 60  # seconds, generous on a shared CPU


def test_mmd_blocks_and_symmetry_match_the_full_kernel_matrix() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(301, 3, generator=g, dtype=torch.float64)
    b = torch.randn(157, 3, generator=g, dtype=torch.float64) + 0.3
    hs = (0.1, 0.2, 0.5, 1.0, 2.0)

    def k(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in hs)

    m, n = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    expected = ((kaa.sum() - kaa.diagonal().sum()) / (m * (m - 1)) + (kbb.sum() - kbb.diagonal().sum()) / (n * (n - 1))
                - 2 * k(a, b).mean())
    for chunk in (None, 1, 10, 64, 1000):
        torch.testing.assert_close(mmd2_unbiased(a, b, hs, chunk_size=chunk), expected, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- subsample rule


def test_subsample_indices_are_seeded_and_all_points_when_they_fit() -> None:
    assert torch.equal(subsample_indices(5, 10, seed=0), torch.arange(5))
    idx = subsample_indices(1000, 100, seed=7)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert torch.equal(idx, subsample_indices(1000, 100, seed=7))
    assert not torch.equal(idx, subsample_indices(1000, 100, seed=8))
    assert not torch.equal(idx, torch.arange(100))  # not the first rows


def _diffusion(**kw) -> DiffusionModule:
    return DiffusionModule(net=lambda shape: TimeMLP(shape, hidden=16, depth=2), data_shape=(2,), sampler="ddim",
                           sampler_steps=3, ema_decay=None, test_nll_samples=0, **kw)


def test_ranks_split_the_subsample_between_them() -> None:
    dm = Toy2DDataModule("8gaussians", n_train=500, n_val=1000, n_test=1000, batch_size=64)
    model = _diffusion()
    model.eval_max_points, model.mmd_max_points = 301, 100
    model._trainer = SimpleNamespace(world_size=1, global_rank=0, datamodule=dm)
    whole = model.evaluator(SampleDistances).subsample(model, "test")
    assert whole.limit == 301 and whole.mmd_limit == 100 and whole.split_size == 1000
    world = 3
    shares = []
    for rank in range(world):
        model._trainer = SimpleNamespace(world_size=world, global_rank=rank, datamodule=dm)
        shares.append(model.evaluator(SampleDistances).subsample(model, "test"))
    model._trainer = None
    # the ranks' rows are disjoint and together the single-process subsample: exactly the cap, not W · cap
    assert sum(s.limit for s in shares) == 301
    rows = torch.cat([s.rows for s in shares])
    assert len(torch.unique(rows, dim=0)) == 301
    assert torch.equal(torch.unique(rows, dim=0), torch.unique(whole.rows, dim=0))
    # MMD²: the ranks' first shares are together the subsample's first 100 points
    assert [s.mmd_limit for s in shares] == [34, 33, 33]
    mmd_rows = torch.cat([s.rows[: s.mmd_limit] for s in shares])
    assert torch.equal(torch.unique(mmd_rows, dim=0), torch.unique(whole.rows[:100], dim=0))


# ----------------------------------------------------------------------------- test report


def test_report_states_the_sizes_and_the_floor_uses_the_same_subsample(tmp_path: Path) -> None:
    L.seed_everything(0)
    dm = Toy2DDataModule("8gaussians", n_train=4000, n_val=100, n_test=3000, batch_size=256, seed=0)
    model = _diffusion()
    model.eval_max_points, model.mmd_max_points = 1000, 300
    sampled: list[int] = []
    real_sample = model.eval_sample
    model.eval_sample = lambda n: (sampled.append(n), real_sample(n))[1]  # type: ignore[method-assign]
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.test(model, datamodule=dm, verbose=False)
    report = model.last_test_report
    assert sum(sampled) == 1000 and len(sampled) == math.ceil(1000 / 256)  # batches past the cap: no sampling
    assert report["eval_n_sw1"] == 1000 and report["eval_n_floor"] == 1000
    assert report["eval_n_mmd"] == 300 and report["eval_n_test_split"] == 3000
    test_sub = dm.tensor("test")[subsample_indices(3000, 1000, eval_seed(model._trainer, "test"))]
    train_sub = dm.tensor("train")[subsample_indices(4000, 1000, eval_seed(model._trainer, "train"))]
    assert report["sw1_floor"] == pytest.approx(float(sliced_wasserstein(train_sub, test_sub)), rel=1e-6)
    assert report["mmd_floor"] == pytest.approx(float(mmd2_unbiased(train_sub[:300], test_sub[:300])), rel=1e-6)


class _ReportProbe(L.Callback):
    """Saves every rank's test report (module level: ddp_spawn pickles it by reference)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save(dict(pl_module.last_test_report), Path(self.out_dir) / f"report{trainer.global_rank}.pt")


def test_ddp_ranks_share_one_capped_subsample_and_the_floor_uses_it(tmp_path: Path) -> None:
    import os
    import socket
    from datetime import timedelta
    from functools import partial

    from lightning.pytorch.strategies import DDPStrategy

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    L.seed_everything(0, verbose=False)
    dm = Toy2DDataModule("8gaussians", n_train=2000, n_val=64, n_test=1500, batch_size=128, seed=0)
    model = DiffusionModule(net=partial(TimeMLP, hidden=16, depth=2), data_shape=(2,), sampler="ddim",
                            sampler_steps=3, ema_decay=None, test_nll_samples=0)
    model.eval_max_points, model.mmd_max_points = 501, 201
    strategy = DDPStrategy(start_method="spawn", timeout=timedelta(seconds=120))
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, inference_mode=False,
                        callbacks=[_ReportProbe(str(tmp_path))], default_root_dir=tmp_path)
    trainer.test(model, datamodule=dm, verbose=False)
    r0, r1 = (torch.load(tmp_path / f"report{r}.pt") for r in (0, 1))
    assert r0 == r1
    # the cap is the total over both ranks, not per rank
    assert r0["eval_n_sw1"] == 501 and r0["eval_n_mmd"] == 201 and r0["eval_n_floor"] == 501
    assert r0["eval_n_test_split"] == 1500
    # the floor is computed on the single-process subsample (the same points, gathered from the ranks)
    probe = _diffusion()
    probe._trainer = SimpleNamespace(world_size=1, global_rank=0, datamodule=dm)
    test_sub = dm.tensor("test")[subsample_indices(1500, 501, eval_seed(probe._trainer, "test"))]
    train_sub = dm.tensor("train")[subsample_indices(2000, 501, eval_seed(probe._trainer, "train"))]
    assert r0["sw1_floor"] == pytest.approx(float(sliced_wasserstein(train_sub, test_sub)), rel=1e-5)
    expected_mmd = float(mmd2_unbiased(train_sub[:201], test_sub[:201]))
    assert r0["mmd_floor"] == pytest.approx(expected_mmd, rel=1e-4, abs=1e-9)


def _test_run(path: Path, root: Path) -> tuple[float, dict]:
    from lit_gen.cli import build_cli

    start = time.perf_counter()
    cli = build_cli([
        "test", "--config", "configs/diffusion/toy2d.yaml", "--data", "lit_gen.data.ArrayDataModule",
        "--data.init_args.path", str(path), "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false", "--model.init_args.net.init_args.hidden", "16",
        "--model.init_args.sampler_steps", "5",
    ])
    return time.perf_counter() - start, cli.model.last_test_report


def test_cli_test_on_a_million_points_costs_about_what_ten_thousand_do(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for n in (10**4, 10**6):
        files[n] = tmp_path / f"points_{n}.npy"
        np.save(files[n], rng.standard_normal((n, 2)).astype(np.float32))
    _test_run(files[10**4], tmp_path / "warmup")  # imports and first-call costs out of the measurement
    times: dict[int, list[float]] = {10**4: [], 10**6: []}
    reports = {}
    for rep in range(2):  # interleaved, best of two: the machine is shared
        for n in (10**4, 10**6):
            elapsed, reports[n] = _test_run(files[n], tmp_path / f"run_{n}_{rep}")
            times[n].append(elapsed)
    small, big = min(times[10**4]), min(times[10**6])
    big_report = reports[10**6]
    assert big_report["eval_n_test_split"] == 100_000
    assert big_report["eval_n_sw1"] == 10_000 and big_report["eval_n_floor"] == 10_000
    assert big_report["eval_n_mmd"] == 4000
    assert reports[10**4]["eval_n_sw1"] == reports[10**4]["eval_n_mmd"] == 1000
    assert math.isfinite(big_report["sw1"]) and math.isfinite(big_report["sw1_floor"])
    saved = json.loads(next((tmp_path / "run_1000000_1").rglob("test_report.json")).read_text())
    assert saved["eval_n_sw1"] == 10_000 and isinstance(saved["eval_n_sw1"], int)
    print(f"lit-gen test: 10^4 points {small:.2f} s, 10^6 points {big:.2f} s, ratio {big / small:.2f}")
    assert big < 4 * small, (times, big / small)


# ----------------------------------------------------------------------------- EBM validation


def test_ebm_validation_samples_only_the_capped_points(tmp_path: Path) -> None:
    dm = Toy2DDataModule("8gaussians", n_train=512, n_val=5000, n_test=64, batch_size=256, seed=0)
    model = EBMModule(energy_net=lambda shape: EnergyMLP(shape, hidden=16, depth=2), data_shape=(2,),
                      sampler=Langevin(step_size=0.01), sample_steps=3, init_low=-5.0, init_high=5.0)
    assert model.val_max_points == 2000
    calls: list[int] = []
    real_sample = model.sample

    def counting_sample(n: int, *args, **kwargs) -> torch.Tensor:
        calls.append(n)
        return real_sample(n, *args, **kwargs)

    model.sample = counting_sample  # type: ignore[method-assign]
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        inference_mode=False, default_root_dir=tmp_path)
    out = trainer.validate(model, datamodule=dm, verbose=False)
    # 5000 validation points in 20 batches, but the long chain runs for 2000 points only (8 batches)
    assert sum(calls) == 2000 and len(calls) == math.ceil(2000 / 256)
    assert math.isfinite(out[0]["val/sw1"])
    distances = model.evaluator(SampleDistances)
    sub = distances.subsample(model, "val", batch_idx=1)
    assert sub.limit == 2000 and sub.split_size == 5000
    val = dm.tensor("val")
    assert not torch.equal(sub.rows, val[:2000])  # a seeded random subsample, not the first rows
    assert torch.equal(sub.rows, distances.subsample(model, "val", batch_idx=0).rows)  # the same in every epoch
