"""``FlowMatchingModule`` under a plain ``L.Trainer`` on CPU: short fits on the toy sets beat the untrained model,
the test report carries the NLL, data → data transport and reflow run, a resumed run ends bit for bit where an
uninterrupted one does (as ``tests/scale/test_resume.py`` checks the other modules), bf16-mixed trains, and bad
settings are refused with a message that names them."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gen.data import Toy2DDataModule
from lit_gen.metrics import sliced_wasserstein
from lit_gen.models import FlowMatchingModule
from lit_gen.nn import TimeMLP


def _module(**overrides: Any) -> FlowMatchingModule:
    kwargs: dict[str, Any] = dict(
        net=partial(TimeMLP, hidden=32, depth=2, time_dim=16), ema_decay=0.99, eval_metrics=False,
        test_nll_samples=0, sample_steps=8, optimizer=partial(torch.optim.Adam, lr=3e-3),
    )
    kwargs.update(overrides)
    return FlowMatchingModule(**kwargs)


def _data(name: str = "moons", n_train: int = 2048, batch_size: int = 128, seed: int = 0) -> Toy2DDataModule:
    return Toy2DDataModule(name=name, n_train=n_train, n_val=128, n_test=1000, batch_size=batch_size, seed=seed)


def _trainer(max_steps: int, **kwargs: Any) -> L.Trainer:
    args: dict[str, Any] = dict(max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                limit_val_batches=0, num_sanity_val_steps=0)
    args.update(kwargs)
    return L.Trainer(**args)


def _sw1(model: FlowMatchingModule, test: torch.Tensor) -> float:
    return float(sliced_wasserstein(model.sample(len(test), generator=torch.Generator().manual_seed(1)), test))


@pytest.mark.parametrize("coupling, prob_path", [("independent", "linear"), ("ot", "linear"),
                                                  ("sinkhorn", "brownian_bridge")])
def test_short_fit_on_moons_beats_the_untrained_model(coupling: str, prob_path: str) -> None:
    L.seed_everything(0, verbose=False)
    dm = _data()
    dm.setup()
    test = dm.tensor("test")
    sigma = 0.3 if coupling == "sinkhorn" else 0.0
    model = _module(coupling=coupling, prob_path=prob_path, sigma=sigma)
    before = _sw1(model, test)
    _trainer(80).fit(model, dm)
    after = _sw1(model, test)
    assert after < 0.5 * before, (before, after)
    x, nfe = model.sample(64, method="heun", num_steps=4, return_nfe=True)
    assert x.shape == (64, 2) and nfe == 8


def test_test_report_has_the_flow_nll_next_to_the_true_one() -> None:
    L.seed_everything(0, verbose=False)
    dm = _data("8gaussians", n_train=1024, batch_size=128)
    model = _module(coupling="ot", eval_metrics=True, test_nll_samples=64, test_nll_steps=4, eval_max_points=300,
                    mmd_max_points=100)
    trainer = _trainer(40)
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    report = model.last_test_report
    assert math.isfinite(report["nll"]) and report["nll_nfe"] == 16.0
    assert report["nll"] > report["nll_true"] - 0.2  # a density: no better than the truth (up to noise)
    assert math.isfinite(report["sw1"]) and report["sw1"] > 0
    lp = model.log_prob(dm.tensor("test")[:16], num_steps=4, method="dopri5")
    assert lp.shape == (16,) and torch.isfinite(lp).all()
    z = model.encode(dm.tensor("test")[:16])
    assert z.shape == (16, 2)


def test_data_to_data_transport_moons_to_8gaussians() -> None:
    L.seed_everything(0, verbose=False)
    dm = _data("8gaussians", n_train=1024)
    dm.setup()
    test = dm.tensor("test")
    model = _module(coupling="ot", source=_data("moons", n_train=1024, seed=1))
    before = _sw1(model, test)
    _trainer(60).fit(model, dm)
    assert _sw1(model, test) < 0.6 * before
    src = model.draw_source(500, torch.Generator().manual_seed(0))
    assert float(sliced_wasserstein(src, model.source_points()[:500])) < 0.2  # the source draws are moons points
    with pytest.raises(ValueError, match="has no log_prob"):
        model.log_prob(test[:4])


def test_reflow_pairs_train_a_second_flow(tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    dm = _data()
    first = _module(coupling="independent")
    _trainer(60).fit(first, dm)
    x0, x1 = first.reflow_pairs(300, num_steps=4, batch_size=128, generator=torch.Generator().manual_seed(0))
    assert x0.shape == x1.shape == (300, 2)
    assert torch.allclose(first.sample(300, num_steps=4, x0=x0), x1)  # the pairs are the model's own map
    file = first.save_reflow_pairs(tmp_path / "pairs.pt", 300, num_steps=4)
    second = _module(pairs=str(file))
    second.load_state_dict(first.state_dict())

    def one_step_error(model: FlowMatchingModule) -> float:  # one Euler step against the first model's 4 steps
        return float((model.sample(300, num_steps=1, method="euler", x0=x0, use_ema=False) - x1).square().mean())

    before = one_step_error(second)
    _trainer(40).fit(second, dm)
    p0, _ = second.reflow_training_pairs()
    assert p0.shape == (300, 2)
    assert one_step_error(second) < 0.7 * before  # the rectified flow is straighter
    with pytest.raises(ValueError, match="coupling='independent'"):
        _module(pairs=str(file), coupling="ot")
    torch.save({"x0": torch.zeros(3, 2)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a reflow-pairs file"):
        _module(pairs=str(tmp_path / "bad.pt")).reflow_training_pairs()


# ------------------------------------------------------------------------------------------------ resume
class _Recorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))


RESUME_CASES = {
    "gaussian_ot": dict(coupling="ot"),
    "moons_source_sinkhorn": dict(coupling="sinkhorn", prob_path="brownian_bridge", sigma=0.2),
}


def _resume_run(case: str, max_steps: int, ckpt_path: str | None = None, checkpoint_dir: Path | None = None,
                every: int | None = None) -> tuple[FlowMatchingModule, _Recorder]:
    recorder = _Recorder()
    callbacks: list[L.Callback] = [recorder]
    extra: dict[str, Any] = {}
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, every_n_train_steps=every, save_top_k=-1,
                                         filename="{step}"))
        extra["enable_checkpointing"] = True
    L.seed_everything(0, verbose=False)
    overrides = dict(RESUME_CASES[case])
    if case.startswith("moons_source"):
        overrides["source"] = _data("moons", n_train=256, seed=1)
    model = _module(net=partial(TimeMLP, hidden=16, depth=1, time_dim=8),
                    lr_scheduler=partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=50, eta_min=1e-4),
                    **overrides)
    trainer = _trainer(max_steps, callbacks=callbacks, **extra)
    trainer.fit(model, _data("8gaussians", n_train=256, batch_size=64), ckpt_path=ckpt_path)
    return model, recorder


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_matches_uninterrupted_run_bitwise(case: str, tmp_path: Path) -> None:
    k = 6  # 4 batches per epoch: the checkpoint is mid-epoch
    full, full_rec = _resume_run(case, 2 * k)
    _, first_rec = _resume_run(case, k, checkpoint_dir=tmp_path, every=k)
    ckpt = tmp_path / f"step={k}.ckpt"
    assert ckpt.exists(), sorted(p.name for p in tmp_path.iterdir())
    L.seed_everything(123, verbose=False)  # everything that matters must come from the checkpoint
    resumed, resumed_rec = _resume_run(case, 2 * k, ckpt_path=str(ckpt))
    assert first_rec.losses + resumed_rec.losses == full_rec.losses
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resuming"
    assert int(full.ema.n_averaged) == int(resumed.ema.n_averaged) == 2 * k  # type: ignore[union-attr]


def test_bf16_mixed_trains_on_cpu() -> None:
    L.seed_everything(0, verbose=False)
    model = _module(coupling="ot")
    seen: set[torch.dtype] = set()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    recorder = _Recorder()
    _trainer(8, precision="bf16-mixed", callbacks=[recorder]).fit(model, _data())
    assert torch.bfloat16 in seen
    assert len(recorder.losses) == 8 and all(math.isfinite(v) for v in recorder.losses)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(model.sample(16)).all()


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="source must be 'gaussian'"):
        _module(source="uniform")
    with pytest.raises(ValueError, match="sigma > 0"):
        _module(coupling="sinkhorn")
    with pytest.raises(ValueError, match="unknown probability path"):
        _module(prob_path="straight")
    with pytest.raises(ValueError, match="unknown coupling"):
        _module(coupling="emd")
    with pytest.raises(ValueError, match="sample_method must be one of"):
        _module(sample_method="rk45")
    with pytest.raises(ValueError, match="sample_steps"):
        _module(sample_steps=0)
    model = _module()
    with pytest.raises(ValueError, match="positive"):
        model.sample(0)
    with pytest.raises(ValueError, match="x0 has shape"):
        model.sample(4, x0=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="must live in the data's space"):
        _module(source=_data("moons"), data_shape=(3,)).draw_source(4)
