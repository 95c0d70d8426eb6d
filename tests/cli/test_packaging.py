"""A package that works outside the repository, and a CLI that answers mistakes in one line.

Configs resolve by name from any folder; ``lit-gen --version``; misspelt keys get "did you mean"; sampler names are
checked before anything is built; abbreviations are refused; ``--model.help`` stays short; a wheel built by
``python -m build`` installs into a fresh venv and trains from a packaged config there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import lit_gen
from lit_gen.cli import build_cli, is_user_error, main, sampler_name_problem
from lit_gen.diffusion.samplers import DDIM, strategy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _argv_of_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sys.argv`` as the console script sees it (pytest's own arguments made LightningCLI warn)."""
    monkeypatch.setattr(sys, "argv", ["lit-gen"])


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["diffusion/toy2d.yaml", "configs/diffusion/toy2d.yaml", "diffusion/toy2d"])
def test_config_resolves_by_name_from_another_folder(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        build_cli(["fit", "--config", name, "--print_config"])
    assert info.value.code in (0, None)
    assert "class_path: lit_gen.models.DiffusionModule" in capsys.readouterr().out


def test_unknown_config_name_suggests_the_packaged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        build_cli(["fit", "--config", "diffusion/toy2d.yml"])
    (line,) = _err_lines(capsys)
    assert "File does not exist" in line and "did you mean diffusion/toy2d.yaml" in line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_cli(["--version"])
    assert info.value.code in (0, None)
    assert lit_gen.__version__ == version("lit-gen")
    assert capsys.readouterr().out.startswith(f"lit-gen {lit_gen.__version__} (lightning ")


def test_main_classes_import_from_the_package() -> None:
    from lit_gen import DDIM as top_ddim
    from lit_gen import DiffusionModule, EBMModule, Toy2DDataModule  # noqa: F401

    assert top_ddim is DDIM and set(lit_gen.__all__) <= set(dir(lit_gen))


def test_misspelt_key_is_one_line_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", "diffusion/toy2d.yaml", "--trainer.max_stepz", "3"])
    assert info.value.code == 2
    (line,) = _err_lines(capsys)
    assert "--trainer.max_stepz" in line and "did you mean --trainer.max_steps?" in line


@pytest.mark.parametrize(("key", "suggestion"), [("model.init_args.sampler_stepz", "sampler_steps"),
                                                 ("data.init_args.batch_sise", "batch_size"),
                                                 ("model.init_args.net.init_args.hiden", "hidden")])
def test_misspelt_init_argument_gets_did_you_mean(key: str, suggestion: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--config", "diffusion/toy2d.yaml", f"--{key}", "3"])
    (line,) = _err_lines(capsys)
    assert key.rsplit(".", 1)[1] in line and f"did you mean {suggestion}?" in line
    assert "Union subtypes" not in line and "Given value" not in line


def test_prefix_abbreviation_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_cli(["fit", "--config", "diffusion/toy2d.yaml", "--trainer.max_step", "3"])
    assert info.value.code == 2
    (line,) = _err_lines(capsys)
    assert "unrecognized arguments: --trainer.max_step 3" in line and "did you mean --trainer.max_steps?" in line


def test_unknown_sampler_name_is_refused_before_anything_is_built(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", "diffusion/toy2d.yaml", "--model.init_args.sampler", "dddim",
              "--trainer.default_root_dir", str(tmp_path / "run")])
    assert info.value.code == 2
    (line,) = _err_lines(capsys)
    assert "unknown sampler 'dddim'" in line and "did you mean ddim?" in line
    assert all(name in line for name in strategy.SAMPLER_CLASSES)
    assert not (tmp_path / "run").exists()


def test_sampler_names_are_read_when_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"subcommand": "fit", "fit": {"model": {"class_path": "lit_gen.models.DiffusionModule",
                                                     "init_args": {"sampler": "my_ddim"}}}}
    assert "unknown sampler 'my_ddim'" in sampler_name_problem(config)
    monkeypatch.setitem(strategy.SAMPLER_CLASSES, "my_ddim", DDIM)
    assert sampler_name_problem(config) is None


def test_constructor_error_is_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", "diffusion/toy2d.yaml", "--model.init_args.sampler_steps", "0",
              "--trainer.default_root_dir", str(tmp_path / "run")])
    assert info.value.code == 1
    lines = [line for line in _err_lines(capsys) if "error:" in line or "Traceback" in line]
    assert len(lines) == 1 and "sampler_steps must be a positive integer, got 0" in lines[0], lines


def test_bugs_keep_their_traceback() -> None:
    import torch

    from lit_gen.diffusion.parametrization import to_x0
    from lit_gen.models import DiffusionModule
    from lit_gen.nn import TimeMLP

    with pytest.raises(ValueError) as user:
        DiffusionModule(TimeMLP, sampler_steps=0)
    assert is_user_error(user.value)
    with pytest.raises(RuntimeError) as bug:  # a tensor operation failing inside lit_gen: a bug, not the input
        to_x0(torch.randn(3, 2), torch.randn(3, 5), torch.rand(3), "eps")
    assert not is_user_error(bug.value)


def test_model_help_does_not_list_every_torch_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_cli(["fit", "--model.help", "DiffusionModule"])
    out = capsys.readouterr().out
    assert "--model.net" in out and "torchvision" not in out
    assert len(out.splitlines()) < 300, len(out.splitlines())


def _copy_source(dest: Path) -> Path:
    """The files a build reads, outside the repository (a build writes build/ and *.egg-info beside them)."""
    shutil.copytree(ROOT / "lit_gen", dest / "lit_gen", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "configs", dest / "configs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def test_wheel_installs_into_a_fresh_venv_and_trains_from_a_packaged_config(tmp_path: Path) -> None:
    """``python -m build`` (sdist, then the wheel from it), installed with ``--no-deps`` into a new venv that sees
    this environment's packages through a ``.pth`` file (torch and Lightning are not installed again; a venv made
    with ``--system-site-packages`` from a venv's python would see the base interpreter's packages instead)."""
    src, dist, venv, elsewhere = _copy_source(tmp_path / "src"), tmp_path / "dist", tmp_path / "venv", tmp_path / "cwd"
    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--outdir", str(dist)]
    else:  # the dev extra installs `build`; without it, pip builds the same wheel
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist)]
    subprocess.run([*cmd, str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("lit_gen-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    (purelib,) = (venv / "lib").glob("python*/site-packages")
    (purelib / "_parent_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"MPLBACKEND": "Agg"}
    where = subprocess.run([str(python), "-c", "import lit_gen; print(lit_gen.__file__); print(lit_gen.__version__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert where.stdout.splitlines() == [str(purelib / "lit_gen" / "__init__.py"), lit_gen.__version__]
    run = subprocess.run(
        [str(venv / "bin" / "lit-gen"), "fit", "--config", "diffusion/toy2d.yaml", "--trainer.max_steps", "5",
         "--trainer.default_root_dir", "run", "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar",
         "false", "--model.init_args.net.init_args.hidden", "16", "--model.init_args.sampler_steps", "2"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    version_dir = elsewhere / "run" / "lightning_logs" / "version_0"
    assert (version_dir / "checkpoints" / "last.ckpt").is_file() and (version_dir / "plots" / "samples.png").is_file()
    assert "latest sample plot" in run.stdout
