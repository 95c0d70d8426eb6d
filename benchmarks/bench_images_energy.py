"""Energy models on MNIST 28×28: ``EBMModule`` (the IGEBM recipe) against ``DCDModule`` at equal wall-clock.

    python benchmarks/bench_images_energy.py [--quick] --out benchmarks/results/images_energy.md
    python benchmarks/bench_images_energy.py --steps 3 --samples 16 --n-test 64 --out /tmp/e.md   # smoke

The energy rows of the MNIST image benchmark (the diffusion rows are ``bench_images.py``'s). Two contenders, each
built from its shipped config as the YAML says (classes and arguments as written there; only the training budget
is overridden):

- *EBMModule*, ``configs/ebm/mnist.yaml``: the IGEBM recipe (Du & Mordatch 2019) shortened for a CPU: a
  ``ConvEnergyNet`` (32 channels, mult (1, 2, 4)) trained by contrastive divergence with 30 tempered Langevin steps
  (step 10, noise 0.005, gradient clamp 0.03) from a replay buffer of 8192 chains (5 % restarts), α = 0.1,
  data noise 0.005, Adam(0, 0.999) at lr 1e-4, gradient-norm clip 0.1; ``sample(n)`` runs 256 Langevin steps of
  the training sampler from uniform noise on [-1, 1].
- *DCDModule*, ``configs/dcd/mnist.yaml``: Diffusion Contrastive Divergence (Luo et al. 2023) on a 6-level VP
  noise ladder (sqrt β from 0.1 to 0.7), a time-conditioned ``UNetEnergy`` E(x, t) = ½‖x − U(x, t)‖² (16 channels,
  mult (1, 2, 2), attention at 7×7), 5 recovery-posterior Langevin steps per batch, Adam at lr 3e-4 with a linear
  warm-up over 200 steps, gradient-norm clip 1; ``sample(n)`` anneals down the ladder from a Gaussian matched to the
  top level, 20 posterior Langevin steps per level (120 in all).

Both train through ``lightning.Trainer.fit`` on the config's ``MNISTDataModule`` (``data/MNIST/raw``, batch 64, the
same seeded order for both), ``seed_everything(0)`` before each, the config's ``gradient_clip_val`` and
``inference_mode``, one torch thread; validation, the sample-plot and checkpoint callbacks and the logger are
left out. Equal wall-clock: the EBM trains its ``--steps`` first and the time from its first batch to the end of
its last is measured; DCD then trains until the same time has passed (a callback sets ``trainer.should_stop``
after the batch that reaches it; at most one step over). The table gives the steps each got.

Measures, all on the same ``--n-test`` seeded MNIST test images:

- FD-MNIST (:func:`lit_gen.metrics.mnist_sample_report`): the Fréchet distance
  ‖μ_s − μ_t‖² + tr(Σ_s + Σ_t − 2 (Σ_s^½ Σ_t Σ_s^½)^½) between Gaussian fits of the cached MNIST classifier's
  128-d features of ``--samples`` samples and of the test images, next to the floor (as many training images
  against the same test images).
- OOD AUROC of the score s(x) = −E(x) (``DCDModule``: the level-0 energy), test images (positives) against
  uniform noise on [-1, 1], Gaussian noise N(0, 0.5²) clipped to [-1, 1], the test images flipped upside down
  (the sets of :func:`lit_gen.metrics.ood_report`) and the 1797 sklearn 8×8 digits, scaled from [0, 16] to
  [-1, 1] and resized bilinearly to 28×28 (a real other data set: fatter strokes filling the frame):
  AUROC = P(s(x_in) > s(x_out)) + ½ P(s(x_in) = s(x_out)), 1 separates perfectly, 0.5 is chance, below 0.5 ranks
  the OOD set as more typical. Computed by :func:`lit_gen.metrics.ood_auroc` (on the scores' ranks, so
  energies in the hundreds keep their order).
- Denoising PSNR at σ ∈ {0.1, 0.2, 0.3}: y = x + σ n with the noise seeded per batch and σ
  (:class:`lit_gen.evaluation.DenoisingPSNR`, so both energies see the same noisy images), each energy through
  its own denoiser, clamped to [-1, 1]: the EBM's by MAP (10 gradient steps of size 0.8 σ² on
  E(x) + ‖x − y‖²/(2σ²) from y; :func:`lit_gen.denoise.denoise`), DCD's by the config's ``denoise_method``
  (:meth:`lit_gen.models.DCDModule.denoise_images`; shipped: Tweedie's formula on the ladder level whose noise
  matches σ, x̂ = y − σ² ∇E(m_t y, t)), PSNR = 10 log₁₀(4 / MSE) over all pixels of the test
  images (data range 2 on [-1, 1] images), on the first 256 test images (the DCD config's ``denoise_num_images``).
  Beside them the noisy input itself, the noisy input clamped to [-1, 1] (the clamp every denoiser here ends with,
  which alone removes much of the noise on MNIST's flat −1 background) and a no-prior baseline: the best
  constant shrinkage toward the training mean image m, x̂ = m + λ (y − m) with λ = tr Σ / (tr Σ + d σ²) (Σ the
  training images' covariance, d = 784: the linear estimator of that form with least expected squared error),
  clamped to [-1, 1].

Sample grids (one row per contender, a row of real test images, and the denoising of the first test images at the
largest σ) go to the PNG beside the table.

Budgets (one torch thread on a shared 2-core CPU): full: the EBM 200 steps of batch 64 and DCD as long, 160
samples per FD row, 1000 test images; sized from a few measured steps at a load of about 3 (the EBM 1.3 s per step,
DCD 2.6 s: about 13-15 minutes in all), it took 25 minutes under a load of 5-6 (2.6 and 7.5 s per step).
``--quick``: EBM 30 steps, 64 samples, 128 test images (5 minutes at a load of 4). ``--steps``, ``--samples`` and
``--n-test`` override either. A short CPU run: neither model draws recognisable digits at this budget (the
configs' own budget is 1000 steps, their GPU settings far more); the figures compare the two methods at equal
training time, not converged models.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: `benchmarks` is a folder of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_images import grid_png, mnist_tensors  # noqa: E402
from lit_gen.denoise import denoise  # noqa: E402
from lit_gen.evaluation import DenoisingPSNR, energy_denoiser  # noqa: E402
from lit_gen.metrics import (  # noqa: E402
    image_ood_sets,
    load_mnist_classifier,
    mnist_sample_report,
    ood_auroc,
)
from lit_gen.models import DCDModule  # noqa: E402

CONFIGS = {"EBMModule": "configs/ebm/mnist.yaml", "DCDModule": "configs/dcd/mnist.yaml"}
#: the EBM's denoiser (it has no noise levels): MAP, gradient descent on E(x) + ‖x − y‖²/(2σ²) from y
EBM_DENOISER = dict(method="map", steps=10, step_scale=0.8)
SIGMAS = (0.1, 0.2, 0.3)
OOD_SETS = ("uniform", "gaussian", "vflip", "digits")
OOD_NAMES = {"uniform": "uniform noise", "gaussian": "Gaussian noise", "vflip": "flipped digits",
             "digits": "sklearn digits 28×28"}
PREPARE = "python -m lit_gen.data.mnist_prepare --root data"
# init arguments whose YAML ``class_path`` stands for a factory (called later by the module), not an object
FACTORY_KEYS = ("energy_net", "optimizer", "lr_scheduler")


# ------------------------------------------------------------------------------------------ the configs
def load_config(name: str) -> dict[str, Any]:
    """A shipped config (``configs/...yaml``) as a dict."""
    return yaml.safe_load((ROOT / name).read_text())


def _instantiate(value: Any, factory: bool) -> Any:
    """A YAML ``{class_path, init_args}`` entry as its object, or as a factory (``functools.partial``) when
    ``factory``: what the CLI builds for an argument typed as a callable (networks, optimizers, schedulers)."""
    if isinstance(value, list):
        return [_instantiate(v, factory) for v in value]
    if not (isinstance(value, dict) and "class_path" in value):
        return value
    module, _, name = value["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    init = {k: _instantiate(v, False) for k, v in dict(value.get("init_args") or {}).items()}
    return functools.partial(cls, **init) if factory else cls(**init)


def module_from_config(config: dict[str, Any], overrides: dict[str, Any] | None = None) -> L.LightningModule:
    """The config's model as shipped (``data_shape`` linked from the MNIST data, as the CLI does; evaluation off:
    the benchmark measures outside the Lightning loop), seeded as the config's ``seed_everything``. ``overrides``
    replace init arguments (tests only)."""
    spec = config["model"]
    module, _, name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    kwargs = {k: _instantiate(v, k in FACTORY_KEYS) for k, v in dict(spec.get("init_args") or {}).items()}
    kwargs.update(overrides or {})
    L.seed_everything(int(config.get("seed_everything", 0)), verbose=False)
    return cls(data_shape=(1, 28, 28), eval_metrics=False, **kwargs)


def datamodule_from_config(config: dict[str, Any], root: str, batch_size: int | None = None) -> L.LightningDataModule:
    """The config's ``MNISTDataModule`` reading ``root`` (``batch_size`` overrides the config's: tests only)."""
    spec = dict(config["data"])
    spec["init_args"] = {**spec.get("init_args", {}), "root": root}
    if batch_size is not None:
        spec["init_args"]["batch_size"] = batch_size
    return _instantiate(spec, False)


class WallClock(L.Callback):
    """Training time from the start of the first batch to the end of the latest, and the optimizer steps done; with
    ``budget_s``, sets ``trainer.should_stop`` after the batch at which that time is reached."""

    def __init__(self, budget_s: float | None = None) -> None:
        self.budget_s = budget_s
        self.start: float | None = None
        self.elapsed = 0.0
        self.steps = 0
        self.stopped_by_time = False

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           idx: int) -> None:
        assert self.start is not None
        self.elapsed = time.perf_counter() - self.start
        self.steps = trainer.global_step
        if self.budget_s is not None and self.elapsed >= self.budget_s:
            trainer.should_stop = True
            self.stopped_by_time = True


def fit(module: L.LightningModule, config: dict[str, Any], datamodule: L.LightningDataModule, clock: WallClock,
        max_steps: int) -> L.Trainer:
    """``Trainer.fit`` with the config's trainer settings that shape training (clip, inference mode), on CPU."""
    cfg = config["trainer"]
    trainer = L.Trainer(
        max_steps=max_steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        gradient_clip_val=cfg.get("gradient_clip_val"), inference_mode=bool(cfg.get("inference_mode", True)),
        callbacks=[clock],
    )
    trainer.fit(module, datamodule=datamodule)
    return trainer


# ------------------------------------------------------------------------------------------- measures
def psnr(x_hat: Tensor, x: Tensor) -> float:
    """10 log₁₀(4 / MSE) over all pixels: images in [-1, 1] (data range 2)."""
    mse = float((x_hat.double() - x.double()).square().mean())
    return 10.0 * math.log10(4.0 / mse) if mse > 0 else math.inf


def noisy(x: Tensor, sigma: float, batch_idx: int, k: int) -> Tensor:
    """The noisy batch :class:`DenoisingPSNR` makes of batch ``batch_idx`` at its ``k``-th σ (same seed rule)."""
    g = torch.Generator().manual_seed(1000 * batch_idx + k)
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


def shrinkage(y: Tensor, mean: Tensor, total_var: float, sigma: float) -> Tensor:
    """x̂ = m + λ (y − m), λ = tr Σ / (tr Σ + d σ²), clamped to [-1, 1]: the no-prior baseline."""
    d = mean.numel()
    lam = total_var / (total_var + d * sigma**2)
    return (mean + lam * (y - mean)).clamp(-1.0, 1.0)


def batches(x: Tensor, size: int) -> list[Tensor]:
    return [x[i : i + size] for i in range(0, len(x), size)]


def denoising_table(modules: dict[str, Any], test: Tensor, train: Tensor, settings: dict[str, Any],
                    batch: int = 64) -> dict[str, dict[float, float]]:
    """PSNR (dB) at each σ of the noisy input, the shrinkage baseline and each module's energy as the prior, on the
    same noisy ``test`` images (``DenoisingPSNR`` for the energies; the noise reproduced for the other rows).
    ``settings``: the MAP denoiser of energies without their own (a ``DCDModule`` uses ``denoise_images``)."""
    mean = train.mean(0)
    total_var = float(train.var(0).sum())
    out: dict[str, dict[float, float]] = {"noisy input": {}, "noisy input clamped": {}, "shrinkage baseline": {}}
    chunks = batches(test, batch)
    for k, sigma in enumerate(SIGMAS):
        ys = [noisy(x, sigma, i, k) for i, x in enumerate(chunks)]
        out["noisy input"][sigma] = psnr(torch.cat(ys), test)
        out["noisy input clamped"][sigma] = psnr(torch.cat(ys).clamp(-1.0, 1.0), test)
        out["shrinkage baseline"][sigma] = psnr(torch.cat([shrinkage(y, mean, total_var, sigma) for y in ys]), test)
    for name, module in modules.items():
        denoiser = (module.denoise_images if isinstance(module, DCDModule)
                    else energy_denoiser(module.energy, settings["method"], settings["steps"], settings["step_scale"]))
        evaluator = DenoisingPSNR(SIGMAS, len(test), denoiser)
        module.eval()
        evaluator.start(module, "test")
        for i, x in enumerate(chunks):
            evaluator.update(module, x, i, "test")
        report = evaluator.report(module)
        out[name] = {}
        for sigma in SIGMAS:
            ref = out["noisy input"][sigma]
            if abs(report[f"psnr_noisy_s{sigma:g}"] - ref) > 1e-3:  # the evaluator saw other noisy images
                raise RuntimeError(f"noisy-input PSNR differs: DenoisingPSNR {report[f'psnr_noisy_s{sigma:g}']:.4f} "
                                   f"vs {ref:.4f} at σ = {sigma}")
            out[name][sigma] = report[f"psnr_denoised_s{sigma:g}"]
    return out


def sklearn_digits_28() -> Tensor:
    """The 1797 sklearn 8×8 digits, [0, 16] → [-1, 1], bilinearly resized to 28×28: ``(1797, 1, 28, 28)``."""
    from lit_gen.data.digits import load_digits_tensor

    return load_digits_tensor(28)


def ood_table(module: Any, test: Tensor, digits: Tensor) -> dict[str, float]:
    """AUROC of −E: test images against uniform noise, Gaussian noise, flipped digits (the sets of
    :func:`lit_gen.metrics.ood_report`, its seed 0) and the sklearn digits."""
    module.eval()

    def score(x: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.cat([module.ood_score(b).float().cpu() for b in batches(x, 256)])

    s_in = score(test)
    sets = {**image_ood_sets(test, torch.Generator().manual_seed(0)), "digits": digits}
    return {name: ood_auroc(s_in, score(x)) for name, x in sets.items()}


# ----------------------------------------------------------------------------------------------- run
@dataclass
class Settings:
    """The budget of one run (``model_overrides`` / ``batch_size``: tests only)."""

    steps: int
    samples: int
    n_test: int
    root: str
    quick: bool = False
    threads: int = 1
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_size: int | None = None
    dcd_max_steps: int = 10**7  # DCD stops by time; this only bounds it


def run(settings: Settings, classifier: Any = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train both, measure everything; returns the figures :func:`write` lays out. ``classifier``: the FD-MNIST
    classifier (default: the cached one for ``root``)."""
    started = time.perf_counter()
    say = lambda msg: log(f"[{time.perf_counter() - started:7.1f} s] {msg}")  # noqa: E731
    try:
        train, test_all = mnist_tensors(settings.root)
    except FileNotFoundError as err:
        raise SystemExit(f"MNIST not found under {settings.root}/MNIST/raw: write it once with `{PREPARE}`\n({err})"
                         ) from None
    test = test_all[torch.randperm(len(test_all), generator=torch.Generator().manual_seed(0))[: settings.n_test]]
    if classifier is None:
        classifier = load_mnist_classifier(settings.root, log=say)
    floor_imgs = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[: settings.samples]]
    floor = mnist_sample_report(floor_imgs, test, None, classifier)["fd_mnist"]
    say(f"FD floor ({len(floor_imgs)} training images vs {len(test)} test images): {floor:.2f}")
    digits = sklearn_digits_28()

    configs = {name: load_config(path) for name, path in CONFIGS.items()}
    modules: dict[str, Any] = {}
    train_info: dict[str, dict[str, Any]] = {}
    budget: float | None = None
    for name in ("EBMModule", "DCDModule"):
        config = configs[name]
        module = module_from_config(config, settings.model_overrides.get(name))
        dm = datamodule_from_config(config, settings.root, settings.batch_size)
        clock = WallClock(budget)
        max_steps = settings.steps if budget is None else settings.dcd_max_steps
        trainer = fit(module, config, dm, clock, max_steps)
        scheduler = config["model"]["init_args"].get("lr_scheduler") or {}
        train_info[name] = dict(steps=trainer.global_step, seconds=clock.elapsed, stopped_by_time=clock.stopped_by_time,
                                batch=dm.batch_size, params=sum(p.numel() for p in module.parameters()),
                                warmup=(scheduler.get("init_args") or {}).get("total_iters"))
        say(f"{name}: {trainer.global_step} steps in {clock.elapsed:.1f} s"
            + (f" (stopped by time at the EBM's {budget:.1f} s)" if clock.stopped_by_time else ""))
        if budget is None:
            budget = clock.elapsed
        modules[name] = module

    results: dict[str, dict[str, Any]] = {}
    grids: list[tuple[str, Tensor]] = [("MNIST test images", test)]
    for name, module in modules.items():
        start = time.perf_counter()
        x = module.sample(settings.samples, generator=torch.Generator().manual_seed(1)).detach().cpu()
        sample_s = time.perf_counter() - start
        fd = mnist_sample_report(x, test, None, classifier)["fd_mnist"] if torch.isfinite(x).all() else math.nan
        ood = ood_table(module, test, digits)
        if name == "EBMModule":
            sampler = f"{module.sample_steps} Langevin steps from uniform noise"
        else:
            sampler = f"annealed, {module.num_levels} levels × {module.sample_steps} Langevin steps"
        results[name] = dict(fd=fd, sample_s=sample_s, ood=ood, sampler=sampler)
        grids.append((f"{name}: {sampler}", x))
        say(f"{name}: FD {fd:.2f} ({settings.samples} samples in {sample_s:.0f} s); AUROC "
            + ", ".join(f"{k} {v:.3f}" for k, v in ood.items()))

    dcd_cfg = configs["DCDModule"]["model"]["init_args"]
    den = dict(EBM_DENOISER, dcd_method=modules["DCDModule"].denoise_method)
    n_denoise = min(len(test), int(dcd_cfg.get("denoise_num_images", len(test))))  # the config's count: 256
    start = time.perf_counter()
    psnrs = denoising_table(modules, test[:n_denoise], train, den)
    say(f"denoising ({n_denoise} images × {len(SIGMAS)} σ) in {time.perf_counter() - start:.0f} s: " + "; ".join(
        f"{row} " + "/".join(f"{v:.2f}" for v in vals.values()) for row, vals in psnrs.items()))

    # the denoising of the first test images at the largest σ, for the picture
    k, sigma = len(SIGMAS) - 1, SIGMAS[-1]
    x0 = batches(test, 64)[0]
    y0 = noisy(x0, sigma, 0, k)
    grids.append((f"noisy test images, σ = {sigma}", y0))
    grids.append(("shrinkage baseline", shrinkage(y0, train.mean(0), float(train.var(0).sum()), sigma)))
    for name, module in modules.items():
        if isinstance(module, DCDModule):
            grids.append((f"{name} denoised ({module.denoise_method})", module.denoise_images(y0, sigma).clamp(-1, 1)))
        else:
            grids.append((f"{name} denoised (MAP)", denoise(module.energy, y0, sigma, method=den["method"],
                                                             steps=den["steps"], step_scale=den["step_scale"],
                                                             clamp=(-1.0, 1.0))))
    return dict(settings=settings, floor=floor, n_test=len(test), n_denoise=n_denoise, train=train_info,
                results=results, psnr=psnrs, denoiser=den, grids=grids, wall_s=time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------- table
def reading(out: dict[str, Any]) -> str:
    """The short reading of the figures, worded from them."""
    res, psnrs, floor = out["results"], out["psnr"], out["floor"]
    ebm, dcd = res["EBMModule"], res["DCDModule"]
    parts = []
    warmup, dcd_steps = out["train"]["DCDModule"].get("warmup"), out["train"]["DCDModule"]["steps"]
    if warmup and dcd_steps < warmup:
        parts.append(f"DCD got {dcd_steps} steps, fewer than its config's linear learning-rate warm-up "
                     f"({warmup} steps), so it trained below its full learning rate throughout.")
    if math.isfinite(ebm["fd"]) and math.isfinite(dcd["fd"]):
        better = "DCDModule" if dcd["fd"] < ebm["fd"] else "EBMModule"
        parts.append(f"At equal training time {better}'s samples score the lower FD-MNIST ({ebm['fd']:.1f} EBM vs "
                     f"{dcd['fd']:.1f} DCD, {ebm['fd'] / floor:.1f}× and {dcd['fd'] / floor:.1f}× the floor of "
                     f"{floor:.1f})" + ("; both are far from the floor, as expected of so short a run."
                                       if min(ebm["fd"], dcd["fd"]) > 3 * floor else "."))
    for name, r in res.items():
        low = [OOD_NAMES[k] for k in OOD_SETS if r["ood"][k] < 0.5]
        high = [OOD_NAMES[k] for k in OOD_SETS if r["ood"][k] >= 0.9]
        text = f"{name}'s −E"
        if high:
            text += f" separates {', '.join(high)} from test digits (AUROC ≥ 0.9)"
        if low:
            text += (("; it" if high else "") + f" ranks {', '.join(low)} as *more* typical than the test digits "
                     "(AUROC below 0.5)")
        if not high and not low:
            text += " ranks every OOD set between chance and 0.9"
        parts.append(text + ".")
    for name in ("EBMModule", "DCDModule"):
        def diff(row: str, name: str = name) -> str:
            return ", ".join(f"{psnrs[name][s] - psnrs[row][s]:+.2f}" for s in SIGMAS)

        parts.append(f"As a denoising prior {name}'s energy changes the PSNR by {diff('noisy input')} dB from the "
                     f"noisy input at σ = {', '.join(f'{s:g}' for s in SIGMAS)}, {diff('noisy input clamped')} dB "
                     f"from the clamped input and {diff('shrinkage baseline')} dB from the shrinkage baseline.")
    return " ".join(parts)


def write(out: dict[str, Any], path: Path, command: str) -> str:
    """The markdown table at ``path`` and the sample grids beside it (``path`` with ``.png``); returns the text."""
    s: Settings = out["settings"]
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_suffix(".png")
    grid_png(out["grids"], png, per_row=16)
    tr, res, psnrs, floor = out["train"], out["results"], out["psnr"], out["floor"]
    ebm, dcd = tr["EBMModule"], tr["DCDModule"]
    den = out["denoiser"]
    lines = [
        "## Energy models on MNIST: EBMModule (IGEBM recipe) vs DCDModule at equal wall-clock",
        "",
        f"Command: `{command}` · {datetime.date.today()} · torch {torch.__version__} · cpu ({platform.machine()}, "
        f"{s.threads} thread{'s' if s.threads > 1 else ''}) · wall {out['wall_s'] / 60:.1f} min",
        "",
        f"`configs/ebm/mnist.yaml` and `configs/dcd/mnist.yaml` as shipped, budget overridden: the EBM trains "
        f"**{ebm['steps']} steps** at batch {ebm['batch']} ({ebm['seconds']:.0f} s, "
        f"{1000 * ebm['seconds'] / max(ebm['steps'], 1):.0f} ms/step); DCD trains for the same wall time "
        f"({dcd['seconds']:.0f} s, stopped by time: {'yes' if dcd['stopped_by_time'] else 'no'}), "
        f"**{dcd['steps']} steps** at batch {dcd['batch']} ({1000 * dcd['seconds'] / max(dcd['steps'], 1):.0f} "
        "ms/step); the config's own budget is 1000 steps each. Both through `Trainer.fit` on the config's "
        "`MNISTDataModule` (same seeded batch order), one torch thread on a shared 2-core CPU, so the step counts "
        f"carry load noise. FD-MNIST of {s.samples} samples against {out['n_test']} seeded test images; floor "
        f"({s.samples} training images against them): **{floor:.2f}**. Same test images for OOD and denoising.",
        "",
        "| model | parameters | training steps | ms/step | sampler | FD-MNIST | FD / floor | "
        + " | ".join(f"AUROC {OOD_NAMES[k]}" for k in OOD_SETS) + " |",
        "|---|---:|---:|---:|---|---:|---:|" + "---:|" * len(OOD_SETS),
    ]
    for name in ("EBMModule", "DCDModule"):
        t, r = tr[name], res[name]
        lines.append(f"| {name} | {t['params']:,} | {t['steps']} | {1000 * t['seconds'] / max(t['steps'], 1):.0f} | "
                     f"{r['sampler']} | {r['fd']:.2f} | {r['fd'] / floor:.1f} | "
                     + " | ".join(f"{r['ood'][k]:.3f}" for k in OOD_SETS) + " |")
    lines += [
        "",
        "AUROC of −E (DCD: the level-0 energy) with the test images as positives: uniform noise on [-1, 1], "
        "N(0, 0.5²) clipped, the test images upside down, and the 1797 sklearn 8×8 digits scaled to [-1, 1] and "
        "resized bilinearly to 28×28. 0.5 is chance.",
        "",
        f"Denoising PSNR (dB, 10 log₁₀(4/MSE) on [-1, 1]) of the first {out['n_denoise']} of these test images (the "
        "DCD config's `denoise_num_images`), same seeded noise for every row, every denoised image clamped to "
        f"[-1, 1]; EBMModule by {den['method'].upper()} ({den['steps']} gradient steps of {den['step_scale']:g} σ² "
        "on E(x) + ‖x − y‖²/(2σ²) from y), DCDModule by its config's `denoise_method` "
        f"({den['dcd_method']}" + (": one step x̂ = y − σ² ∇E(m_t y, t) on the ladder level t whose noise σ_t/m_t "
                                  "is nearest σ, Tweedie's formula)" if den["dcd_method"] == "tweedie" else ")")
        + "; "
        "*shrinkage baseline* (no prior): x̂ = m + λ (y − m), m the training mean image, "
        "λ = tr Σ / (tr Σ + 784 σ²) from the training covariance, clamped; *clamped*: the noisy input clamped to "
        "[-1, 1], the clamp every other column includes (on MNIST's flat −1 background it alone removes much of "
        "the noise).",
        "",
        "| σ | noisy input | clamped | shrinkage baseline | EBMModule | DCDModule |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for sigma in SIGMAS:
        noisy_db = psnrs["noisy input"][sigma]
        cells = [f"{psnrs[row][sigma]:.2f}" + (f" ({psnrs[row][sigma] - noisy_db:+.2f})" if row != "noisy input"
                                                else "")
                 for row in ("noisy input", "noisy input clamped", "shrinkage baseline", "EBMModule", "DCDModule")]
        lines.append(f"| {sigma:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "In brackets: the change from the noisy input.",
        "",
        "Reading (one seed, a short CPU run): " + reading(out),
        "",
        f"![sample grids: test images, each model's samples, then the denoising at σ = {SIGMAS[-1]}]({png.name})",
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="EBM 30 steps, 64 samples, 128 test images (minutes)")
    parser.add_argument("--steps", type=int, default=None, help="EBM training steps (full 200, quick 30)")
    parser.add_argument("--samples", type=int, default=None, help="samples per FD row (full 160, quick 64)")
    parser.add_argument("--n-test", type=int, default=None, help="test images (full 1000, quick 128)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--root", default=str(ROOT / "data"), help="folder holding MNIST/raw")
    parser.add_argument("--out", default="benchmarks/results/images_energy.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Settings(steps=args.steps or (30 if args.quick else 200),
                        samples=args.samples or (64 if args.quick else 160),
                        n_test=args.n_test or (128 if args.quick else 1000), root=args.root, quick=args.quick,
                        threads=args.threads)
    out = run(settings)
    given = [("--steps", args.steps), ("--samples", args.samples), ("--n-test", args.n_test)]
    command = "python benchmarks/bench_images_energy.py" + (" --quick" if args.quick else "") + "".join(
        f" {flag} {value}" for flag, value in given if value is not None)
    text = write(out, Path(args.out), command)
    print(text)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")


if __name__ == "__main__":
    main()
