"""Fréchet distance (closed form on Gaussians, accumulation, errors), the FD-digits classifier and its report."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gen.data import DigitsDataModule
from lit_gen.metrics import (
    FrechetDistance,
    fd_digits_metric,
    frechet_distance,
    frechet_distance_of_features,
    inception_fid,
    inception_kid,
    inception_score,
    load_digits_classifier,
)
from lit_gen.metrics.digits_classifier import FEATURES, labelled_digits
from lit_gen.models import DiffusionModule
from lit_gen.nn import UNet


def _random_spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_fd_closed_form_for_commuting_covariances() -> None:
    # diagonal covariances commute: FD = ‖μ1 − μ2‖² + Σ_i (√σ1_i − √σ2_i)²
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([4.0, 1.0, 0.25])
    expected = 1.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    assert float(frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2))) == pytest.approx(expected, abs=1e-10)


def test_fd_matches_scipy_sqrtm_for_general_covariances_and_is_zero_on_itself() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    s1, s2 = _random_spd(5, 0), _random_spd(5, 1)
    mu1, mu2 = torch.zeros(5, dtype=torch.float64), torch.full((5,), 0.3, dtype=torch.float64)
    cross = scipy_linalg.sqrtm((s1 @ s2).numpy()).real.trace()
    expected = 5 * 0.09 + float(torch.trace(s1) + torch.trace(s2)) - 2 * cross
    assert float(frechet_distance(mu1, s1, mu2, s2)) == pytest.approx(expected, rel=1e-8)
    assert abs(float(frechet_distance(mu1, s1, mu1, s1))) < 1e-9


def test_fd_from_gaussian_samples_approaches_the_closed_form() -> None:
    d, n = 3, 20000
    s1, s2 = _random_spd(d, 2), _random_spd(d, 3)
    mu2 = torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s1).T
    b = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s2).T + mu2
    exact = float(frechet_distance(torch.zeros(d), s1, mu2, s2))
    # the plug-in estimate has bias O(d/n) and sd O(sqrt(tr Σ / n)) ≈ 0.01 here: 0.05 is ~5 sd
    assert float(frechet_distance_of_features(a, b)) == pytest.approx(exact, abs=0.05)
    # the accumulating metric (batches, float64 sums) equals the one-shot function
    metric = FrechetDistance(None, num_features=d)
    for i in range(0, n, 4096):
        metric.update(a[i : i + 4096], real=True)
        metric.update(b[i : i + 4096], real=False)
    assert float(metric.compute()) == pytest.approx(float(frechet_distance_of_features(a, b)), rel=1e-9)
    # a mean shift c·e1 adds exactly c² to the closed form: the metric grows with the shift
    shifted = float(frechet_distance(torch.zeros(d), s1, mu2 + torch.tensor([2.0, 0, 0]), s2))
    assert shifted > exact


def test_fd_errors_name_the_problem() -> None:
    metric = FrechetDistance(lambda x: x[:, :2], num_features=3)
    with pytest.raises(ValueError, match="num_features=3"):
        metric.update(torch.zeros(4, 5), real=True)
    with pytest.raises(ValueError, match="at least 2 real"):
        FrechetDistance(None, num_features=2).compute()
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(torch.tensor([float("nan")]), torch.eye(1), torch.zeros(1), torch.eye(1))
    with pytest.raises(ValueError, match="covariance"):
        frechet_distance(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))


@pytest.mark.parametrize(("factory", "what"), [(inception_fid, "FID"), (inception_kid, "KID"),
                                               (inception_score, "IS")])
def test_inception_metrics_without_weights_say_how_to_provide_them(tmp_path: Path, factory: Callable,
                                                                   what: str) -> None:
    # either torch-fidelity or the weights file is missing offline; both errors name the metric and point to
    # FD-digits, and the missing-file error names the path to put the weights at
    with pytest.raises((FileNotFoundError, ModuleNotFoundError), match=f"Inception {what}.*FD-digits") as err:
        factory(weights_path=tmp_path / "missing.pth")
    if err.type is FileNotFoundError:
        assert str(tmp_path / "missing.pth") in str(err.value)


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("lit_gen_cache")
    load_digits_classifier(cache)  # trains (a few seconds) and caches
    return cache


def test_digits_classifier_is_seeded_accurate_and_cached(digits_cache: Path) -> None:
    files = list(digits_cache.glob("digits_classifier_v*_seed0.pt"))
    assert len(files) == 1
    state = torch.load(files[0], weights_only=True)
    # measured 0.986 on the 20% hold-out (360 digits); 0.95 leaves > 3 binomial sd of margin
    assert state["accuracy"] >= 0.95
    cached = load_digits_classifier(digits_cache, train_if_missing=False)
    x = labelled_digits(0)["x_test"][:16]
    assert torch.equal(cached.features(x), load_digits_classifier(digits_cache).features(x))
    assert cached.features(x).shape == (16, FEATURES)
    with pytest.raises(FileNotFoundError, match="train_digits_classifier"):
        load_digits_classifier(digits_cache / "empty", train_if_missing=False)
    with pytest.raises(ValueError, match="single-channel"):
        cached.features(torch.zeros(2, 3, 8, 8))


def test_fd_digits_floor_is_far_below_noise_and_flipped_digits(digits_cache: Path) -> None:
    data = labelled_digits(0)
    test, train = data["x_test"], data["x_train"][: len(data["x_test"])]

    def fd(fake: torch.Tensor, real: torch.Tensor = test) -> float:
        metric = fd_digits_metric(digits_cache)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return float(metric.compute())

    floor = fd(train)
    noise = fd(torch.rand(test.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    flipped = fd(torch.flip(train, dims=[-2]))
    # measured: floor ≈ 14, noise ≈ 750; the upside-down digits are still digit-like strokes but far off
    assert floor < 0.1 * noise
    assert floor < flipped < noise
    # resized digits (16×16, as DigitsDataModule(image_size=16) serves them) are pooled back to 8×8; pooling
    # blurs, so the floor is taken at the same resolution (as the test report does): still far below noise
    def up(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)

    floor16 = fd(up(train), up(test))
    noise16 = fd(up(torch.rand(test.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1), up(test))
    assert floor16 < 0.1 * noise16


def test_test_report_of_a_digits_model_has_fd_digits_and_its_floor(
    digits_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIT_GEN_CACHE", str(digits_cache))
    L.seed_everything(0)
    dm = DigitsDataModule(batch_size=64)
    model = DiffusionModule(partial(UNet, channels=8, channel_mult=(1,), num_res_blocks=1, attention_resolutions=()),
                            data_shape=(1, 8, 8), sampler="ddim", sampler_steps=2)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=L.pytorch.loggers.CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0)
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    report = model.last_test_report
    # an untrained model is far from the data; the floor is the train-vs-test distance of the real digits
    assert math.isfinite(report["fd_digits"]) and math.isfinite(report["fd_digits_floor"])
    assert report["fd_digits"] > 3 * report["fd_digits_floor"] > 0
    assert (Path(trainer.log_dir) / "test_report.md").read_text().count("fd_digits") == 2
