"""Class-conditional training and guidance through the modules: labels in, the chosen class out."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch

from lit_gen.data import Toy2DDataModule
from lit_gen.ddaebm import GeneratorMLP, PosteriorMLP
from lit_gen.diffusion import CosineSchedule
from lit_gen.mcmc import MALA
from lit_gen.models import DCDModule, DDAEBMModule, DiffusionModule, EBMModule, FlowMatchingModule
from lit_gen.nn import EnergyMLP, TimeEnergyMLP, TimeMLP


def _trainer(steps: int, **kw) -> L.Trainer:
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_checkpointing=False, limit_val_batches=0, enable_model_summary=False, **kw)


def _class_means(dm: Toy2DDataModule) -> torch.Tensor:
    x, y = dm.tensor("train"), dm.labels("train")
    return torch.stack([x[y == c].mean(0) for c in range(dm.num_classes)])


def _nearest(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, means).argmin(1)


@pytest.fixture(scope="module")
def trained() -> tuple[DiffusionModule, Toy2DDataModule]:
    L.seed_everything(0, verbose=False)
    dm = Toy2DDataModule("8gaussians", n_train=4096, n_val=64, n_test=512, batch_size=256, conditional=True)
    model = DiffusionModule(net=functools.partial(TimeMLP, hidden=64, depth=2), schedule=CosineSchedule(),
                            prediction="v", num_classes=dm.num_classes, sampler="ddim", sampler_steps=20,
                            test_nll_samples=0, eval_metrics=False, optimizer=functools.partial(torch.optim.Adam,
                                                                                                lr=2e-3))
    _trainer(600).fit(model, datamodule=dm)
    dm.setup("fit")
    return model, dm


def test_guidance_generates_the_chosen_class(trained) -> None:
    model, dm = trained
    means = _class_means(dm)
    acc = {}
    for w in (0.0, 1.0, 3.0):
        hits = []
        for c in range(dm.num_classes):
            x = model.sample(64, y=c, guidance_scale=w, generator=torch.Generator().manual_seed(c))
            hits.append((_nearest(x, means) == c).float().mean())
        acc[w] = float(torch.stack(hits).mean())
    # w = 0 is the unconditional model: about 1/8 of the samples in each class; guidance picks the class
    assert acc[0.0] < 0.3, acc
    assert acc[1.0] > 0.85 and acc[3.0] >= acc[1.0] - 0.02, acc
    # unconditional samples still cover the mixture
    x = model.sample(512, generator=torch.Generator().manual_seed(0))
    assert len(torch.unique(_nearest(x, means))) == dm.num_classes


def test_w0_is_the_unconditional_sampler_bit_for_bit(trained) -> None:
    model, _ = trained
    a = model.sample(32, generator=torch.Generator().manual_seed(5))
    b = model.sample(32, y=torch.arange(32) % 8, guidance_scale=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_label_errors_name_the_problem(trained) -> None:
    model, dm = trained
    with pytest.raises(ValueError, match="class label 8 .* out of range for num_classes=8"):
        model.sample(4, y=8)
    with pytest.raises(ValueError, match="shape"):
        model.sample(4, y=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="need class labels"):
        model.sample(4, guidance_scale=2.0)
    plain = DiffusionModule(net=TimeMLP, test_nll_samples=0, eval_metrics=False)
    with pytest.raises(ValueError, match="built without num_classes"):
        plain.sample(4, y=1)
    with pytest.raises(ValueError, match="the batch carries class labels"):
        _trainer(1).fit(plain, datamodule=dm)
    unlabelled = Toy2DDataModule("8gaussians", n_train=256, n_val=64, n_test=64, batch_size=64)
    with pytest.raises(ValueError, match="is conditional .* but the batch has no labels"):
        _trainer(1).fit(model, datamodule=unlabelled)
    with pytest.raises(TypeError, match="takes no num_classes argument"):
        DiffusionModule(net=lambda shape: TimeMLP(shape), num_classes=3)
    with pytest.raises(ValueError, match="does not take class labels yet"):
        FlowMatchingModule(net=TimeMLP, num_classes=3)


def test_conditional_energy_models_train_and_sample_the_class() -> None:
    L.seed_everything(0, verbose=False)
    dm = Toy2DDataModule("8gaussians", n_train=2048, n_val=64, n_test=256, batch_size=256, conditional=True)
    for cls, extra in ((EBMModule, {"sampler": MALA(step_size=0.02), "chain_init": "data"}), (DCDModule, {})):
        model = cls(energy_net=functools.partial(EnergyMLP, hidden=64), num_classes=8, mcmc_steps=10,
                    sample_steps=60, eval_metrics=False, **extra)
        _trainer(150, inference_mode=False).fit(model, datamodule=dm)
        dm.setup("fit")
        means = _class_means(dm)
        x = model.sample(128, y=3, guidance_scale=1.0)
        assert x.shape == (128, 2) and torch.isfinite(x).all()
        # started all over the box, the chains of class 3 gather at its component more than a uniform spread
        # would: that gives 1/8 (standard error sqrt(1/8 · 7/8 / 128) ≈ 0.03), so 0.25 is four errors above it
        assert float((_nearest(x, means) == 3).float().mean()) > 0.25, cls.__name__


def test_conditional_config_trains_and_predicts_one_row_per_class(tmp_path) -> None:
    from pathlib import Path

    import numpy as np

    from lit_gen.cli import build_cli

    config = Path(__file__).resolve().parents[2] / "configs" / "diffusion" / "digits_cond.yaml"
    common = ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
              "--model.init_args.sampler_steps", "2"]
    cli = build_cli(["fit", "--config", str(config), "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
                     "--model.init_args.test_nll_samples", "0", *common])
    assert cli.model.num_classes == 10 and cli.datamodule.num_classes == 10  # linked from the data
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    build_cli(["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--guidance", "2.0", *common])
    samples = np.load(next((tmp_path / "run").rglob("predictions/samples.npy")), allow_pickle=False)
    assert samples.shape[1:] == (1, 8, 8)
    with pytest.raises((ValueError, SystemExit)):
        build_cli(["fit", "--config", str(config), "--model", "lit_gen.models.FlowMatchingModule", *common])


def test_conditional_ddaebm_generates_the_chosen_class_and_w0_is_unconditional() -> None:
    L.seed_everything(0, verbose=False)
    dm = Toy2DDataModule("8gaussians", n_train=4096, n_val=64, n_test=256, batch_size=256, conditional=True)
    model = DDAEBMModule(
        energy_net=functools.partial(TimeEnergyMLP, hidden=64),
        generator_net=functools.partial(GeneratorMLP, hidden=64),
        posterior_net=functools.partial(PosteriorMLP, hidden=64), num_classes=8, eval_metrics=False,
        energy_optimizer=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.9)),
        generator_optimizer=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.9)), ema_decay=0.99,
    )
    _trainer(400).fit(model, datamodule=dm)
    dm.setup("fit")
    means = _class_means(dm)
    acc = {}
    for w in (0.0, 1.0, 2.0):
        hits = [(_nearest(model.sample(64, y=c, guidance_scale=w, generator=torch.Generator().manual_seed(c)),
                          means) == c).float().mean() for c in range(8)]
        acc[w] = float(torch.stack(hits).mean())
    assert acc[0.0] < 0.3 and acc[1.0] > 0.6 and acc[2.0] >= acc[1.0] - 0.05, acc
    plain = model.sample(32, generator=torch.Generator().manual_seed(1))
    null = model.sample(32, y=torch.arange(32) % 8, guidance_scale=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain, null)
    _, nfe = model.sample(8, y=1, guidance_scale=2.0, return_nfe=True)
    assert nfe == 2 * model.schedule.num_timesteps
    with pytest.raises(ValueError, match="out of range"):
        model.sample(4, y=8)


def test_jem_energy_classifies_and_the_test_report_gives_its_accuracy(tmp_path) -> None:
    """EnergyMLP(class_logits=True) read as JEM: trained with the hybrid loss (λ = 1), the test report gives the
    test-split accuracy of argmax f(x); on 8 well-separated Gaussians it must be far above chance (1/8)."""
    L.seed_everything(0, verbose=False)
    dm = Toy2DDataModule("8gaussians", n_train=2048, n_val=64, n_test=512, batch_size=256, conditional=True)
    model = EBMModule(energy_net=functools.partial(EnergyMLP, hidden=64, class_logits=True), num_classes=8,
                      mcmc_steps=10, sample_steps=20, sampler=MALA(step_size=0.02), chain_init="data",
                      classifier_weight=1.0, eval_metrics=False)
    trainer = _trainer(150, inference_mode=False, default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    report = model.last_test_report
    assert report["jem_accuracy_n"] == 512
    assert report["jem_accuracy"] > 0.9, report
    with pytest.raises(ValueError, match="class_logits=True"):
        EBMModule(energy_net=EnergyMLP, num_classes=8, classifier_weight=1.0)
