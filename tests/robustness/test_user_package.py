"""A user project outside lit_gen: its own energy network and EBMModule subclass, trained by `lit-gen fit`.

The package is written into tmp_path, put on PYTHONPATH, and referenced only by class_path in a YAML config,
exactly as the README's "Subclassing in your own project" section describes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import yaml

NETS = '''
import torch
from torch import nn


class RadialEnergy(nn.Module):
    """E(x) = softplus(scale) * |x|^2 / 2 + MLP(x): the user's own energy network, data shape first."""

    def __init__(self, data_shape, width=16):
        super().__init__()
        dim = int(torch.tensor(data_shape).prod())
        self.user_scale = nn.Parameter(torch.zeros(()))
        self.mlp = nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, x):
        x = x.flatten(1)
        return nn.functional.softplus(self.user_scale) * 0.5 * (x ** 2).sum(1) + self.mlp(x).squeeze(1)
'''

MODULE = '''
from lit_gen.models import EBMModule


class CountingEBM(EBMModule):
    """EBMModule with one extra constructor argument and a count of its own training steps."""

    def __init__(self, *args, tag: str = "none", **kwargs):
        super().__init__(*args, **kwargs)
        self.tag = tag
        self.user_steps = 0

    def training_step(self, batch, batch_idx):
        self.user_steps += 1
        return super().training_step(batch, batch_idx)

    def on_save_checkpoint(self, checkpoint):
        super().on_save_checkpoint(checkpoint)
        checkpoint["user"] = {"tag": self.tag, "user_steps": self.user_steps}
'''


def _write_package(root: Path) -> None:
    pkg = root / "my_ebm_project"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A user project."""\n')
    (pkg / "nets.py").write_text(textwrap.dedent(NETS))
    (pkg / "module.py").write_text(textwrap.dedent(MODULE))


def test_user_package_trains_through_the_console_script(tmp_path: Path) -> None:
    _write_package(tmp_path / "src")
    run_dir = tmp_path / "run"
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_steps": 3, "limit_val_batches": 0, "inference_mode": False,
            "enable_progress_bar": False, "default_root_dir": str(run_dir),
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"save_last": True}}],
        },
        "model": {
            "class_path": "my_ebm_project.module.CountingEBM",
            "init_args": {
                "energy_net": {"class_path": "my_ebm_project.nets.RadialEnergy", "init_args": {"width": 8}},
                "tag": "from-yaml", "mcmc_steps": 2, "sample_steps": 2,
            },
        },
        "data": {"class_path": "lit_gen.data.Toy2DDataModule",
                 "init_args": {"name": "moons", "batch_size": 64, "n_train": 256, "n_val": 64, "n_test": 64}},
    }
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(config))
    script = Path(sys.executable).with_name("lit-gen")
    assert script.exists(), "install the package (make install) so that the lit-gen entry point exists"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(script), "fit", "--config", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    (ckpt_path,) = run_dir.rglob("last.ckpt")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 3
    assert ckpt["hyper_parameters"]["_class_path"] == "my_ebm_project.module.CountingEBM"
    assert ckpt["user"] == {"tag": "from-yaml", "user_steps": 3}  # the subclass's own code ran every step
    state = ckpt["state_dict"]
    assert "energy_net.user_scale" in state and "energy_net.mlp.0.weight" in state  # the user's network
    assert state["energy_net.mlp.0.weight"].shape == (8, 2)  # width from YAML, data shape from the data module
    assert float(state["energy_net.user_scale"]) != 0.0  # it was trained (initialised at 0, Adam moved it)


STRATEGIES = '''
import torch

from lit_gen.diffusion import DiffusionLoss, dsm_loss
from lit_gen.diffusion.samplers import DiffusionSampler, ddim_sample
from lit_gen.diffusion.schedules import DDAEBMSchedule
from lit_gen.losses import EnergyLoss
from lit_gen.mcmc import ChainInit


class CountingDDIM(DiffusionSampler):
    """The user's own diffusion sampler: deterministic DDIM that counts its calls."""

    def __init__(self, num_steps: int = 4):
        super().__init__(num_steps)
        self.calls = 0

    def run(self, denoiser, schedule, shape, *, num_steps, generator, device, **options):
        self.calls += 1
        return ddim_sample(denoiser, schedule, shape, num_steps, generator=generator, device=device)


class GaussianStart(ChainInit):
    """The user's own chain initialisation: every chain starts at N(0, scale^2 I)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.draws = 0

    def initial(self, data, generator=None):
        self.draws += 1
        return self.scale * torch.randn_like(data)

    def update(self, samples):
        pass


class CountingDSM(DiffusionLoss):
    """The user's own diffusion objective: the DSM loss scaled by ``scale``, counting its calls."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.calls = 0

    def __call__(self, net, schedule, x0, prediction):
        self.calls += 1
        return self.scale * dsm_loss(net, schedule, x0, prediction=prediction)


class EnergyMeanGap(EnergyLoss):
    """The user's own energy objective: the plain CD gap, counting its calls (negatives drawn by the module)."""

    needs_negatives = True

    def __init__(self):
        self.calls = 0

    def __call__(self, energy, x, negatives=None):
        self.calls += 1
        assert negatives is not None and negatives.shape == x.shape
        gap = energy(x).mean() - energy(negatives.detach()).mean()
        return gap, {"gap": gap.detach()}


class ShortSchedule(DDAEBMSchedule):
    """The user's own DDAEBM schedule: two steps, a wider beta range."""

    def __init__(self):
        super().__init__(num_timesteps=2, beta_min=0.1, beta_max=15.0)
'''


def test_user_strategies_plug_in_through_yaml(tmp_path: Path, monkeypatch) -> None:
    """A user's diffusion sampler, chain initialisation, losses and DDAEBM schedule, given by class_path, are the
    ones the modules use."""
    from lit_gen.cli import build_cli

    src = tmp_path / "src" / "my_strategies"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text(textwrap.dedent(STRATEGIES))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    configs = Path(__file__).resolve().parents[2] / "configs"
    common = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar",
              "false", "--trainer.default_root_dir", str(tmp_path / "run")]
    sampler = {"model": {"init_args": {"sampler": {"class_path": "my_strategies.CountingDDIM",
                                                   "init_args": {"num_steps": 3}}}}}
    (tmp_path / "sampler.yaml").write_text(yaml.safe_dump(sampler))
    cli = build_cli(["fit", "--config", str(configs / "diffusion" / "toy2d.yaml"), "--config",
                     str(tmp_path / "sampler.yaml"), "--model.init_args.net.init_args.hidden", "16", *common])
    chosen = cli.model.default_sampler
    assert type(chosen).__name__ == "CountingDDIM" and chosen.num_steps == 3
    before = chosen.calls  # the end-of-fit plot sampled with it already
    assert cli.model.sample(5).shape == (5, 2) and chosen.calls == before + 1 and before >= 1
    chains = {"model": {"init_args": {"chain_init": {"class_path": "my_strategies.GaussianStart",
                                                     "init_args": {"scale": 0.5}}}}}
    (tmp_path / "chains.yaml").write_text(yaml.safe_dump(chains))
    cli = build_cli(["fit", "--config", str(configs / "ebm" / "toy2d.yaml"), "--config", str(tmp_path / "chains.yaml"),
                     "--model.init_args.mcmc_steps", "2", *common])
    assert type(cli.model.chains).__name__ == "GaussianStart" and cli.model.chains.draws == 2
    # losses (EDM-style callables) and the DDAEBM schedule, from the user's package too
    losses = {"model": {"init_args": {"loss": {"class_path": "my_strategies.EnergyMeanGap"}}}}
    (tmp_path / "ebm_loss.yaml").write_text(yaml.safe_dump(losses))
    cli = build_cli(["fit", "--config", str(configs / "ebm" / "toy2d.yaml"), "--config",
                     str(tmp_path / "ebm_loss.yaml"), "--model.init_args.mcmc_steps", "2", *common])
    assert type(cli.model.loss).__name__ == "EnergyMeanGap" and cli.model.loss.calls == 2
    losses = {"model": {"init_args": {"loss": {"class_path": "my_strategies.CountingDSM",
                                               "init_args": {"scale": 2.0}}}}}
    (tmp_path / "dsm_loss.yaml").write_text(yaml.safe_dump(losses))
    cli = build_cli(["fit", "--config", str(configs / "diffusion" / "toy2d.yaml"), "--config",
                     str(tmp_path / "dsm_loss.yaml"), "--model.init_args.net.init_args.hidden", "16", *common])
    assert type(cli.model.loss).__name__ == "CountingDSM" and cli.model.loss.calls == 2
    assert cli.model.loss.scale == 2.0
    schedule = {"model": {"init_args": {"schedule": {"class_path": "my_strategies.ShortSchedule"}}}}
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    cli = build_cli(["fit", "--config", str(configs / "ddaebm" / "toy2d.yaml"), "--config",
                     str(tmp_path / "schedule.yaml"), *common])
    assert type(cli.model.schedule).__name__ == "ShortSchedule" and cli.model.schedule.num_timesteps == 2
    assert cli.model.sample(4).shape == (4, 2)
