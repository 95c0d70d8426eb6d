"""DiffusionModule: sampling interface, EMA, errors, and a short end-to-end training on 8gaussians."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lit_gen.data import Toy2DDataModule
from lit_gen.diffusion import CosineSchedule, LinearSchedule
from lit_gen.metrics import sliced_wasserstein
from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP


def _module(**kw) -> DiffusionModule:
    defaults = dict(net=lambda shape: TimeMLP(shape, hidden=32, depth=2), data_shape=(2,),
                    schedule=LinearSchedule(100))
    defaults.update(kw)
    return DiffusionModule(**defaults)


@pytest.mark.parametrize("sampler,steps,nfe", [("heun", 5, 9), ("ddim", 7, 7), ("ddpm", 10, 10),
                                               ("euler_maruyama", 6, None)])
def test_sample_any_sampler_shape_nfe_and_seed(sampler: str, steps: int, nfe: int | None) -> None:
    m = _module()
    x, used = m.sample(16, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(3),
                       return_nfe=True)
    assert x.shape == (16, 2) and torch.isfinite(x).all()
    if nfe is not None:
        assert used == nfe
    again = m.sample(16, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again)


def test_default_sampler_is_configured_one() -> None:
    m = _module(sampler="ddim", sampler_steps=4, sampler_kwargs={"eta": 0.0})
    _, nfe = m.sample(4, return_nfe=True)
    assert nfe == 4


def test_ema_tracks_network_with_warmup() -> None:
    m = _module(ema_decay=0.9, ema_warmup=False)
    first = [p.clone() for p in m.ema.module.parameters()]
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(1.0)
    m.ema.update_parameters(m.net)  # first update copies
    m.ema.update_parameters(m.net)  # second: d=0.9 of the copy + 0.1 of the (same) net
    for a, b, p in zip(m.ema.module.parameters(), first, m.net.parameters(), strict=True):
        torch.testing.assert_close(a, p)  # both updates saw the same weights, so the average equals them
        assert not torch.equal(a, b)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(1.0)
    m.ema.update_parameters(m.net)
    for a, p in zip(m.ema.module.parameters(), m.net.parameters(), strict=True):
        torch.testing.assert_close(a, p - 0.9)  # 0.9·(p−1) + 0.1·p


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="prediction"):
        _module(prediction="score")
    with pytest.raises(ValueError, match="heun"):
        _module(sampler="nope")
    with pytest.raises(ValueError, match="sampler_steps"):
        _module(sampler_steps=0)
    m = _module()
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*\(2,\)"):
        m.check_batch(torch.zeros(4, 3))


def test_nan_loss_stops_with_message() -> None:
    m = _module()
    with torch.no_grad():
        next(m.net.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite.*learning rate"):
        m.training_step(torch.randn(8, 2), 0)


def _gaussian_fit_sw1(train: torch.Tensor, test: torch.Tensor) -> float:
    """SW1 of the moment-matched Gaussian: the score of the best model that knows only mean and covariance."""
    g = torch.Generator().manual_seed(5)
    mu, cov = train.mean(0), torch.cov(train.T)
    fake = mu + torch.randn(len(test), 2, generator=g) @ torch.linalg.cholesky(cov).T
    return float(sliced_wasserstein(fake, test))


def test_end_to_end_8gaussians_beats_threshold(tmp_path) -> None:
    """Train 1500 steps; the model must close 75% of the gap from the best Gaussian fit to the data floor."""
    L.seed_everything(0)
    dm = Toy2DDataModule(name="8gaussians", n_train=8000, n_val=2000, n_test=2000, batch_size=256, seed=0)
    model = DiffusionModule(
        net=lambda shape: TimeMLP(shape, hidden=128, depth=3), data_shape=dm.data_shape,
        schedule=CosineSchedule(1000), sampler="heun", sampler_steps=18, ema_decay=0.995,
        optimizer=lambda p: torch.optim.Adam(p, lr=2e-3),
    )
    trainer = L.Trainer(max_steps=1500, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    report = model.last_test_report
    floor = report["sw1_floor"]
    baseline = _gaussian_fit_sw1(dm.tensor("train"), dm.tensor("test"))
    threshold = floor + 0.25 * (baseline - floor)
    assert baseline > 3 * floor  # the test is only meaningful when the Gaussian fit is clearly wrong
    assert report["sw1"] < threshold, (report, baseline, threshold)
    assert report["mmd"] < 0.25 * _mmd_of_gaussian_fit(dm)


def _mmd_of_gaussian_fit(dm: Toy2DDataModule) -> float:
    from lit_gen.metrics import mmd2_unbiased

    train, test = dm.tensor("train"), dm.tensor("test")
    g = torch.Generator().manual_seed(6)
    fake = train.mean(0) + torch.randn(len(test), 2, generator=g) @ torch.linalg.cholesky(torch.cov(train.T)).T
    return float(mmd2_unbiased(fake, test))
