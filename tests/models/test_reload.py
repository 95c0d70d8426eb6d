"""Reloading without repeating the config: load_from_checkpoint, lit_gen.load, save/from_pretrained."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch

import lit_gen
from lit_gen.data import Toy2DDataModule
from lit_gen.diffusion import CosineSchedule
from lit_gen.diffusion.samplers import DDIM
from lit_gen.mcmc import MALA, Langevin
from lit_gen.models import DCDModule, DDAEBMModule, DiffusionModule, EBMModule, GenerativeModule
from lit_gen.models.hub import CONFIG_KEY, model_config
from lit_gen.nn import EnergyMLP, GeneratorMLP, PosteriorMLP, TimeEnergyMLP, TimeMLP
from lit_gen.utils.config import ConfigError


def _modules() -> dict[str, GenerativeModule]:
    common = {"eval_metrics": False}
    return {
        "diffusion": DiffusionModule(
            net=functools.partial(TimeMLP, hidden=16, depth=2), schedule=CosineSchedule(num_timesteps=100),
            sampler=DDIM(4, eta=0.5), test_nll_samples=0, **common),
        "ebm": EBMModule(energy_net=functools.partial(EnergyMLP, hidden=16), sampler=MALA(step_size=0.05),
                         mcmc_steps=2, sample_steps=3, **common),
        "dcd": DCDModule(energy_net=functools.partial(EnergyMLP, hidden=16), sampler=Langevin(step_size=0.05),
                         mcmc_steps=2, sample_steps=3, noise=0.4, **common),
        "ddaebm": DDAEBMModule(energy_net=functools.partial(TimeEnergyMLP, hidden=16),
                               generator_net=functools.partial(GeneratorMLP, hidden=16),
                               posterior_net=functools.partial(PosteriorMLP, hidden=16), num_timesteps=2, **common),
    }


def _fit(module: GenerativeModule, root: Path) -> Path:
    dm = Toy2DDataModule("8gaussians", n_train=256, n_val=64, n_test=64, batch_size=64)
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, inference_mode=False, default_root_dir=root)
    trainer.fit(module, datamodule=dm)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def _draw(module: GenerativeModule) -> torch.Tensor:
    torch.manual_seed(1)  # the MCMC samplers draw from the global generator
    return module.sample(6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["diffusion", "ebm", "dcd", "ddaebm"])
def test_every_module_reloads_exactly_from_its_checkpoint_alone(name: str, tmp_path: Path) -> None:
    module = _modules()[name]
    path = _fit(module, tmp_path)
    module.eval()
    reloaded = type(module).load_from_checkpoint(path)
    assert type(reloaded) is type(module)
    assert model_config(reloaded) == model_config(module)  # networks, schedule, sampler, ... as configured
    for key, value in module.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    reloaded.eval()
    assert torch.equal(_draw(reloaded), _draw(module))
    via_load = lit_gen.load(tmp_path)  # a run folder: its newest loadable checkpoint
    assert type(via_load) is type(module) and not via_load.training
    assert torch.equal(_draw(via_load), _draw(module))
    # save_pretrained / from_pretrained: config.json + safetensors, no trainer
    folder = module.save_pretrained(tmp_path / "pretrained")
    assert json.loads((folder / "config.json").read_text())["class_path"].endswith(type(module).__name__)
    again = type(module).from_pretrained(folder)
    assert torch.equal(_draw(again), _draw(module))
    assert torch.equal(_draw(lit_gen.load(folder)), _draw(module))


def test_the_reloaded_diffusion_model_keeps_its_schedule_and_sampler(tmp_path: Path) -> None:
    module = _modules()["diffusion"]
    path = _fit(module, tmp_path)
    reloaded = DiffusionModule.load_from_checkpoint(path)
    assert isinstance(reloaded.schedule, CosineSchedule) and reloaded.schedule.num_timesteps == 100
    assert isinstance(reloaded.default_sampler, DDIM) and reloaded.default_sampler.options["eta"] == 0.5
    # a keyword replaces one part, the rest still comes from the checkpoint
    other = DiffusionModule.load_from_checkpoint(path, sampler="heun", sampler_steps=3)
    assert type(other.default_sampler).__name__ == "Heun" and isinstance(other.schedule, CosineSchedule)


def test_what_the_checkpoint_cannot_hold_must_be_passed_again(tmp_path: Path) -> None:
    module = DiffusionModule(net=lambda shape: TimeMLP(shape, hidden=8), test_nll_samples=0, eval_metrics=False)
    path = tmp_path / "lambda.ckpt"
    torch.save({"state_dict": module.state_dict(), CONFIG_KEY: model_config(module)}, path)
    with pytest.raises(ConfigError, match="pass again: net"):
        DiffusionModule.load_from_checkpoint(path)
    with pytest.raises(ConfigError, match="save_pretrained needs every constructor argument"):
        module.save_pretrained(tmp_path / "pre")
    reloaded = DiffusionModule.load_from_checkpoint(path, net=lambda shape: TimeMLP(shape, hidden=8))
    assert isinstance(reloaded.net, TimeMLP)


def test_a_checkpoint_naming_other_callables_is_refused_before_anything_runs(tmp_path: Path) -> None:
    module = _modules()["diffusion"]
    config = model_config(module)
    marker = tmp_path / "ran"
    for target in ("os.system", "builtins.eval", "subprocess.Popen"):
        bad = json.loads(json.dumps(config))
        bad["init_args"]["schedule"] = {"class_path": target, "init_args": {"command": f"touch {marker}"},
                                        "kind": "instance"}
        path = tmp_path / "bad.ckpt"
        torch.save({"state_dict": module.state_dict(), CONFIG_KEY: bad}, path)
        with pytest.raises(ConfigError, match="refusing"):
            DiffusionModule.load_from_checkpoint(path)
    bad = json.loads(json.dumps(config))
    bad["class_path"] = "not_imported_anywhere_pkg.Module"
    torch.save({"state_dict": module.state_dict(), CONFIG_KEY: bad}, tmp_path / "bad2.ckpt")
    with pytest.raises(ConfigError, match="refusing to import"):
        DiffusionModule.load_from_checkpoint(tmp_path / "bad2.ckpt")
    assert not marker.exists()
    with pytest.raises(ConfigError, match="holds a DiffusionModule, not a EBMModule"):
        EBMModule.load_from_checkpoint(_fit(module, tmp_path))


def test_a_cli_trained_checkpoint_reloads_in_one_call(tmp_path: Path) -> None:
    from lit_gen.cli import build_cli

    config = Path(__file__).resolve().parents[2] / "configs" / "diffusion" / "toy2d.yaml"
    cli = build_cli(["fit", "--config", str(config), "--trainer.max_steps", "4", "--trainer.limit_val_batches", "0",
                     "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
                     "--model.init_args.net.init_args.hidden", "16"])
    model = lit_gen.load(tmp_path / "run")
    assert isinstance(model, DiffusionModule)
    shapes = {k: v.shape for k, v in cli.model.state_dict().items()}
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    assert type(model.schedule) is type(cli.model.schedule)
    assert model.default_sampler.num_steps == cli.model.default_sampler.num_steps
    cli.model.eval()
    assert torch.equal(_draw(model), _draw(cli.model))


def test_the_test_report_says_what_it_was_computed_from(tmp_path: Path) -> None:
    from lit_gen.cli import build_cli

    config = Path(__file__).resolve().parents[2] / "configs" / "diffusion" / "toy2d.yaml"
    common = ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
              "--model.init_args.net.init_args.hidden", "16", "--model.init_args.test_nll_samples", "8",
              "--model.init_args.sampler_steps", "3", "--data.init_args.n_test", "200"]
    build_cli(["fit", "--config", str(config), "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0", *common])
    ckpt = next((tmp_path / "run").rglob("last.ckpt"))
    cli = build_cli(["test", "--config", str(config), "--ckpt_path", str(ckpt), *common])
    info = cli.model.last_test_info
    assert info["checkpoint"] == str(ckpt) and info["global_step"] == 3 and info["model"] == "DiffusionModule"
    assert info["sampler"] == repr(cli.model.default_sampler) and "num_steps=3" in info["sampler"]
    assert info["sample_nfe"] == cli.model.sample(2, return_nfe=True)[1]
    saved = json.loads(next((tmp_path / "run").rglob("test_report.json")).read_text())
    assert saved["run"] == info and "sw1" in saved and saved["nll_nfe"] == 4 * 32
