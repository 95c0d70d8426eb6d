"""Class-conditional digits and MNIST: accuracy and FD of guided samples, every lit_gen method, diffusers the peer.

    python benchmarks/bench_conditional.py [--quick] [--threads 1]               # digits -> results/conditional.md
    python benchmarks/bench_conditional.py --data mnist [--root data]     # MNIST -> results/conditional_mnist.md

Contenders, on sklearn's 8×8 digits with labels (``DigitsDataModule(conditional=True)``, seed 0, batch 128) or, with
``--data mnist``, on 28×28 MNIST (``MNISTDataModule(conditional=True)``, seed 0, batch 64; ``make prepare-mnist``
first):

- lit_gen: the four shipped conditional digits configs, ``configs/{diffusion,ebm,dcd,ddaebm}/digits_cond.yaml``, or
  the four MNIST configs ``configs/<method>/mnist.yaml`` with ``--data.init_args.conditional true`` (the CLI links the
  ten classes into every network), each trained through ``lit-gen fit`` (``lit_gen.cli.build_cli``) with only the
  step budget overridden (no validation, plots, checkpoints or logger); sampled with
  ``module.sample(n, y=labels, guidance_scale=w)``: classifier-free guidance on the denoiser (diffusion, the
  config's Heun-18 sampler, 35 NFE per branch), MCMC on ``(1 − w) E(x, ∅) + w E(x, y)`` (EBM, DCD), guidance on
  the generator's clean-data prediction (DDAEBM);
- the peer: diffusers' ``UNet2DModel`` with a class embedding (``num_class_embeds=11``, index 10 the null class,
  labels replaced by it with probability 0.1 in training), laid out as the diffusion config's U-Net (digits: widths
  32/64, one res block per level, one-head attention at 4×4 and in the middle, GroupNorm 32; MNIST: widths
  16/32/32, two res blocks per level, attention at 7×7 and in the middle, GroupNorm 16), the embedding applied as a
  scale and shift after each res block's second norm (``resnet_time_scale_shift="scale_shift"``, as lit_gen's U-Net;
  parameter counts within 0.02 %), ``DDPMScheduler(beta_schedule="squaredcos_cap_v2")`` with the diffusion config's
  target (digits ε, MNIST v), trained by a plain loop on the very same batches as lit_gen's diffusion run (a fresh
  data module with the same seed yields the same order), as many steps, Adam at the config's learning rate with
  the config's linear warm-up where it has one (MNIST), gradient-norm clipping at the config's value, its
  ``EMAModel`` at the config's decay (default warm-up ``min(d, (1+n)/(10+n))``, the rule lit_gen's EMA uses);
  sampled with ``DDIMScheduler`` (trailing spacing, as many steps as the diffusion config's sampler: 18 NFE per
  branch) and CFG on its output, ``out = out(∅) + w (out(y) − out(∅))``.

Measured for w ∈ {0, 1, 2, 4} (w = 0: unconditional, 1: conditional, > 1: guided), on ``--per-class`` samples
of each of the ten classes (clamped to [-1, 1], the data's range), with the data's cached classifier, the one its
FD uses (:func:`lit_gen.metrics.load_digits_classifier`, 64-d features; :func:`lit_gen.metrics.load_mnist_classifier`,
128-d features):

- accuracy: the fraction of samples that the classifier assigns to the class they were drawn for (10 % in
  expectation for unconditional samples, whatever they look like);
- FD: the Fréchet distance on the classifier's penultimate features
  (:func:`lit_gen.metrics.frechet_distance_of_features`) of all samples against the test images (digits: the 180
  of the test split; MNIST: ``--n-test`` per class of the 10k test images, seeded); its floor is the same distance
  from as many training images (the same number per class) to the same test images;
- per-class FD: the mean over classes of the FD between the samples of class c and the test images of class c.
  The digits test split has only 14 to 24 images per class, fewer than the feature dimensions, so their covariance
  would be singular; the per-class FD is computed in the top ``--pca`` (8) principal directions of the training
  split's features instead (the same projection for samples, test and floor images, for both data sets), and
  reported next to its floor from as many training images of each class.

"Guidance raises accuracy above 10 %" is met for a method when its best accuracy at w ≥ 1 exceeds both 10 % and
its own w = 0 accuracy by three binomial standard errors at p = 0.1. "FD against accuracy as w grows" is seen when
guidance works (the first verdict is met) and accuracy at w = 4 is at least that at w = 1 while FD at w = 4 is above
the lower FD of w = 1 and w = 2 (guidance
trades sample quality and diversity for class fidelity, Ho & Salimans 2022, Dhariwal & Nichol 2021).

Budgets (one torch thread on a shared 2-core CPU): the steps per method in ``STEPS[data]`` (``QUICK_STEPS[data]``
with ``--quick``), far below the configs' own budgets, so every model here is undertrained; 50 samples per class on
digits, 20 on MNIST (30 and 10 with ``--quick``). The steps differ by method (a DDAEBM step costs about 25 DCD steps
on digits) and are written in the table. Digits: about 45 minutes in all on a shared machine (the DCD ladder is
two thirds of it), 10 with ``--quick``; MNIST: about an hour.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from lit_gen.cli import build_cli
from lit_gen.data import DigitsDataModule, MNISTDataModule
from lit_gen.metrics import (
    as_mnist_images,
    frechet_distance_of_features,
    load_digits_classifier,
    load_mnist_arrays,
    load_mnist_classifier,
)

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("diffusion", "ebm", "dcd", "ddaebm")
PEER = "diffusers"
GUIDANCE = (0.0, 1.0, 2.0, 4.0)
NUM_CLASSES = 10
DATA = ("digits", "mnist")
STEPS = {"digits": {"diffusion": 400, "ebm": 250, "dcd": 1200, "ddaebm": 80},
         "mnist": {"diffusion": 500, "ebm": 200, "dcd": 300, "ddaebm": 60}}
QUICK_STEPS = {"digits": {"diffusion": 60, "ebm": 40, "dcd": 200, "ddaebm": 15},
               "mnist": {"diffusion": 40, "ebm": 20, "dcd": 30, "ddaebm": 6}}
PER_CLASS = {"digits": (50, 30), "mnist": (20, 10)}  # samples per class: full, quick
PREDICTION_TYPE = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}  # lit_gen target -> diffusers

Sampler = Callable[[Tensor, float], Tensor]  # (labels (n,), guidance weight) -> samples (n, *data_shape)


def label(name: str) -> str:
    return "diffusers UNet2DModel + DDIM" if name == PEER else f"lit_gen {name}"


def config_path(method: str, data: str = "digits") -> Path:
    return ROOT / "configs" / method / ("digits_cond.yaml" if data == "digits" else "mnist.yaml")


def config_args(method: str, data: str, root: str) -> list[str]:
    """The ``lit-gen`` arguments of a method's conditional config: the digits file, or the MNIST file with labels."""
    args = ["--config", str(config_path(method, data))]
    if data == "mnist":
        args += ["--data.init_args.conditional", "true", "--data.init_args.root", root]
    return args


# ------------------------------------------------------------------------------------------------ lit_gen
def fit_config(method: str, steps: int, workdir: str, data: str = "digits", root: str = "data") -> Any:
    """``lit-gen fit`` of the method's conditional config for ``steps`` steps; returns the trained module."""
    args = ["fit", *config_args(method, data, root), "--trainer.max_steps", str(steps),
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.enable_checkpointing", "false",
            "--trainer.callbacks", "[]", "--trainer.limit_val_batches", "0",
            "--trainer.default_root_dir", str(Path(workdir) / method)]
    return build_cli(args).model


def lit_sampler(module: Any) -> Sampler:
    def run(labels: Tensor, w: float) -> Tensor:
        return module.sample(int(labels.numel()), y=labels, guidance_scale=w)

    return run


def network_params(method: str, module: Any) -> int:
    """Parameters of the network(s) that sampling uses (without EMA copies)."""
    nets = {"diffusion": ["net"], "ebm": ["energy_net"], "dcd": ["energy_net"], "ddaebm": ["generator"]}[method]
    return sum(p.numel() for name in nets for p in getattr(module, name).parameters())


# ------------------------------------------------------------------------------------------------ diffusers
def diffusers_unet(data: str = "digits") -> nn.Module:
    """diffusers' class-conditional ``UNet2DModel`` laid out as the diffusion config's U-Net (digits or MNIST)."""
    from diffusers import UNet2DModel

    if data == "mnist":  # configs/diffusion/mnist.yaml: 16·(1, 2, 2), 2 res blocks, attention at 7×7
        return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(16, 32, 32),
                           layers_per_block=2, norm_num_groups=16, resnet_time_scale_shift="scale_shift",
                           down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                           up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                           class_embed_type=None, num_class_embeds=NUM_CLASSES + 1)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 64), layers_per_block=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=64, norm_num_groups=32,
                       resnet_time_scale_shift="scale_shift",
                       class_embed_type=None, num_class_embeds=NUM_CLASSES + 1)


def data_module(data: str, batch_size: int, seed: int, root: str) -> Any:
    if data == "mnist":
        return MNISTDataModule(root=root, batch_size=batch_size, seed=seed, conditional=True)
    return DigitsDataModule(batch_size=batch_size, seed=seed, conditional=True)


def diffusers_peer(steps: int, data: str = "digits", root: str = "data") -> tuple[Sampler, int]:
    """Train the peer on the diffusion config's batch stream; returns its CFG sampler and parameter count."""
    from diffusers import DDIMScheduler, DDPMScheduler
    from diffusers.training_utils import EMAModel

    cfg = yaml.safe_load(config_path("diffusion", data).read_text())
    model_args = cfg["model"]["init_args"]
    lr = float(model_args["optimizer"]["init_args"]["lr"])
    clip = float(cfg["trainer"].get("gradient_clip_val") or math.inf)
    decay = float(model_args.get("ema_decay", 0.999))
    sampler_steps = int(model_args.get("sampler_steps", 18))
    dropout = float(model_args.get("label_dropout", 0.1))
    data_args = cfg["data"]["init_args"]
    prediction_type = PREDICTION_TYPE[str(model_args.get("prediction", "eps"))]
    dm = data_module(data, int(data_args["batch_size"]), int(data_args.get("seed", 0)), root)
    dm.setup("fit")
    shape = tuple(dm.data_shape)
    loader = dm.train_dataloader()  # iterated epoch after epoch, as Lightning does
    torch.manual_seed(int(cfg.get("seed_everything", 0)))
    net = diffusers_unet(data)
    train_sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                prediction_type=prediction_type)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    warmup = model_args.get("lr_scheduler")  # the MNIST config's LinearLR warm-up, stepped per batch as lit_gen's
    if warmup is not None and warmup["class_path"] != "torch.optim.lr_scheduler.LinearLR":
        raise ValueError(f"the peer reproduces only a LinearLR warm-up, the config has {warmup['class_path']}")
    scheduler = torch.optim.lr_scheduler.LinearLR(opt, **warmup.get("init_args", {})) if warmup else None
    ema = EMAModel(net.parameters(), decay=decay)
    done = 0
    while done < steps:
        for x0, y in loader:
            y = torch.where(torch.rand(y.shape) < dropout, torch.full_like(y, NUM_CLASSES), y)
            noise = torch.randn_like(x0)
            t = torch.randint(0, train_sched.config.num_train_timesteps, (x0.shape[0],))
            target = {"epsilon": noise, "sample": x0}.get(prediction_type)
            if target is None:
                target = train_sched.get_velocity(x0, noise, t)
            loss = (net(train_sched.add_noise(x0, noise, t), t, class_labels=y).sample - target).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            if scheduler is not None:
                scheduler.step()
            ema.step(net.parameters())
            done += 1
            if done == steps:
                break
    averaged = copy.deepcopy(net).eval()
    ema.copy_to(averaged.parameters())

    @torch.no_grad()
    def run(labels: Tensor, w: float) -> Tensor:
        sched = DDIMScheduler.from_config(train_sched.config, timestep_spacing="trailing")
        sched.set_timesteps(sampler_steps)
        n = labels.numel()
        null = torch.full_like(labels, NUM_CLASSES)
        x = torch.randn(n, *shape) * sched.init_noise_sigma
        for t in sched.timesteps:
            inp = sched.scale_model_input(x, t)
            if w == 0.0:
                out = averaged(inp, t, class_labels=null).sample
            elif w == 1.0:
                out = averaged(inp, t, class_labels=labels).sample
            else:
                both = averaged(torch.cat([inp, inp]), t, class_labels=torch.cat([null, labels])).sample
                out_u, out_c = both.chunk(2)
                out = out_u + w * (out_c - out_u)  # linear in the output, so the same for ε, v or x0
            x = sched.step(out, t, x).prev_sample
        return x

    return run, sum(p.numel() for p in net.parameters())


# ------------------------------------------------------------------------------------------------ scoring
def _per_class_subset(labels: Tensor, per_class: int, generator: torch.Generator, what: str) -> Tensor:
    """Indices of ``per_class`` seeded picks of every class."""
    picks = []
    for c in range(NUM_CLASSES):
        idx = (labels == c).nonzero().flatten()
        if len(idx) < per_class:
            raise ValueError(f"only {len(idx)} {what} images of class {c} for {per_class} per class")
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(picks)


class Scorer:
    """Accuracy, FD and per-class FD of labelled samples against the test images (digits or MNIST)."""

    def __init__(self, per_class: int, pca_dims: int, seed: int = 0, data: str = "digits", root: str = "data",
                 n_test: int = 100) -> None:
        g = torch.Generator().manual_seed(seed + 1)
        if data == "mnist":
            arrays = load_mnist_arrays(root)
            self.classifier: Any = load_mnist_classifier(root)
            self.x_train, self.y_train = as_mnist_images(arrays["x_train"]), arrays["y_train"]
            test = _per_class_subset(arrays["y_test"], n_test, torch.Generator().manual_seed(seed), "test")
            self.x_test, self.y_test = as_mnist_images(arrays["x_test"][test]), arrays["y_test"][test]
        else:
            dm = DigitsDataModule(conditional=True, seed=seed)
            dm.setup("fit")
            self.classifier = load_digits_classifier()
            self.x_train, self.y_train = dm.tensor("train"), dm.labels("train")
            self.x_test, self.y_test = dm.tensor("test"), dm.labels("test")
        assert self.y_train is not None and self.y_test is not None
        self.data_shape = tuple(self.x_train.shape[1:])
        train_features = self.features(self.x_train)
        self.mean = train_features.mean(dim=0)
        _, vecs = torch.linalg.eigh(torch.cov((train_features - self.mean).T))
        self.basis = vecs[:, -pca_dims:]  # top principal directions of the training features
        self.test_features = self.features(self.x_test)
        self.test_projected = self.project(self.test_features)
        self.per_class = per_class
        pick = _per_class_subset(self.y_train, per_class, g, "training")
        self.floor_images, self.floor_labels = self.x_train[pick], self.y_train[pick]

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        return torch.cat([self.classifier.features(chunk.float()) for chunk in x.split(1000)]).double()

    def project(self, features: Tensor) -> Tensor:
        return (features - self.mean) @ self.basis

    @torch.no_grad()
    def score(self, x: Tensor, labels: Tensor) -> dict[str, float]:
        x = x.detach().float().cpu().clamp(-1.0, 1.0)
        feats = self.features(x)
        accuracy = float((self.classifier.head(feats.float()).argmax(dim=1) == labels).float().mean())
        fd = float(frechet_distance_of_features(feats, self.test_features))
        proj = self.project(feats)
        per_class = [float(frechet_distance_of_features(proj[labels == c], self.test_projected[self.y_test == c]))
                     for c in range(NUM_CLASSES)]
        return {"accuracy": accuracy, "fd": fd, "fd_class": sum(per_class) / NUM_CLASSES}

    def floor(self) -> dict[str, float]:
        return self.score(self.floor_images, self.floor_labels)


# ------------------------------------------------------------------------------------------------ output
def save_grids(grids: dict[str, Tensor], path: Path, per_row: int) -> None:
    """One panel per method: a row of ``per_row`` samples per class (0 at the top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    fig, axes = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 2.9), squeeze=False)
    for ax, (name, x) in zip(axes[0], grids.items(), strict=True):
        image = make_grid((x.clamp(-1, 1) + 1) / 2, nrow=per_row, padding=1, pad_value=1.0)
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{name}, w = 2", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def verdicts(name: str, rows: dict[float, dict[str, float]], n: int) -> tuple[str, str]:
    margin = 3.0 * math.sqrt(0.1 * 0.9 / n)
    guided = max(rows[w]["accuracy"] for w in GUIDANCE if w >= 1.0)
    base = rows[0.0]["accuracy"]
    met = guided > max(0.1, base) + margin
    accuracy = (f"{name}: {'met' if met else 'missed'} (best accuracy at w ≥ 1 {guided:.1%} against "
                f"{base:.1%} at w = 0, margin {margin:.1%})")
    rises = rows[4.0]["accuracy"] >= rows[1.0]["accuracy"]
    best_fd = min(rows[1.0]["fd"], rows[2.0]["fd"])
    seen = met and rises and rows[4.0]["fd"] > best_fd  # no trade-off without guidance working at all
    fds = ", ".join(f"{rows[w]['fd']:.1f}" for w in GUIDANCE)
    accs = ", ".join(f"{rows[w]['accuracy']:.0%}" for w in GUIDANCE)
    trade = f"{name}: {'seen' if seen else 'not seen'} (accuracy {accs}; FD {fds} at w = 0, 1, 2, 4)"
    return accuracy, trade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=DATA, default="digits", help="digits (8×8) or mnist (28×28, prepared)")
    parser.add_argument("--root", default=str(ROOT / "data"), help="folder holding MNIST/raw (--data mnist)")
    parser.add_argument("--n-test", type=int, default=100, help="MNIST test images per class that FD compares against")
    parser.add_argument("--quick", action="store_true", help="fewer steps (QUICK_STEPS) and samples")
    parser.add_argument("--per-class", type=int, default=None,
                        help="samples per class (digits 50, quick 30; mnist 20, quick 10)")
    parser.add_argument("--steps", nargs="*", default=[], metavar="METHOD=STEPS",
                        help="override a method's steps, e.g. diffusion=500 (diffusers follows diffusion)")
    parser.add_argument("--methods", nargs="*", default=[*METHODS, PEER])
    parser.add_argument("--pca", type=int, default=8, help="principal directions for the per-class FD")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None,
                        help="default benchmarks/results/conditional.md (digits), conditional_mnist.md (mnist)")
    args = parser.parse_args()
    if args.out is None:
        args.out = "benchmarks/results/" + ("conditional.md" if args.data == "digits" else "conditional_mnist.md")
    torch.set_num_threads(args.threads)
    steps = dict((QUICK_STEPS if args.quick else STEPS)[args.data])
    for item in args.steps:
        key, value = item.split("=")
        steps[key] = int(value)
    steps[PEER] = steps["diffusion"]
    per_class = args.per_class or PER_CLASS[args.data][1 if args.quick else 0]
    started = time.perf_counter()
    scorer = Scorer(per_class, args.pca, data=args.data, root=args.root, n_test=args.n_test)
    floor = scorer.floor()
    labels = torch.arange(NUM_CLASSES).repeat_interleave(per_class)
    torch.manual_seed(0)
    noise = scorer.score(torch.rand(len(labels), *scorer.data_shape) * 2 - 1, labels)  # what no model reaches
    results: dict[str, dict[float, dict[str, float]]] = {}
    info: dict[str, dict[str, Any]] = {}
    grids: dict[str, Tensor] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.methods:
            print(f"{name}: training {steps[name]} steps", flush=True)
            t0 = time.perf_counter()
            try:
                if name == PEER:
                    sample, params = diffusers_peer(steps[name], args.data, args.root)
                else:
                    module = fit_config(name, steps[name], workdir, args.data, args.root)
                    module.eval()
                    sample, params = lit_sampler(module), network_params(name, module)
                t1 = time.perf_counter()
                results[name] = {}
                for i, w in enumerate(GUIDANCE):
                    torch.manual_seed(1000 + i)
                    x = sample(labels, w).detach().float().cpu()
                    results[name][w] = scorer.score(x, labels)
                    print(f"  w={w}: {results[name][w]}", flush=True)
                    if w == 2.0:
                        grids[label(name)] = torch.cat([x[labels == c][:10] for c in range(NUM_CLASSES)])
                info[name] = {"params": params, "train_s": t1 - t0, "sample_s": time.perf_counter() - t1}
            except Exception as err:  # one failing method must not hide the others; the table says why
                info[name] = {"error": f"{type(err).__name__}: {str(err)[:120]}"}
                print(f"  failed: {info[name]['error']}", flush=True)
    wall = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if grids:
        save_grids(grids, out.with_suffix(".png"), per_row=10)
    write(out, args, steps, per_class, results, info, floor, noise, wall)
    print(f"wrote {out} in {wall:.0f} s")


def write(out: Path, args: argparse.Namespace, steps: dict[str, int], per_class: int,
          results: dict[str, dict[float, dict[str, float]]], info: dict[str, dict[str, Any]],
          floor: dict[str, float], noise: dict[str, float], wall: float) -> None:
    n = per_class * NUM_CLASSES
    mnist = args.data == "mnist"
    cmd = "python benchmarks/bench_conditional.py" + (" --data mnist" if mnist else "")
    cmd += " --quick" if args.quick else ""
    if mnist:
        source = ("`configs/<method>/mnist.yaml` with `--data.init_args.conditional true`", "FD-MNIST", 128,
                  f"the {args.n_test * NUM_CLASSES} seeded test images ({args.n_test} per class)",
                  f"{args.n_test} class-c test images")
    else:
        source = ("shipped `configs/<method>/digits_cond.yaml`", "FD-digits", 64, "the 180 test images",
                  "14–24 class-c test images")
    config, metric, dims, test_text, class_test = source
    lines = [
        f"## Class-conditional {'MNIST' if mnist else 'digits'}: guidance, accuracy and FD",
        "",
        f"Command: `{cmd}` ({wall / 60:.0f} min wall, one torch thread on a shared 2-core CPU). Each lit_gen row is "
        f"the {config} trained for the steps shown (far below the configs' own "
        "budgets: every model here is undertrained); the diffusers row is a class-conditional `UNet2DModel` "
        "(the diffusion config's U-Net layout, scale-shift embedding, parameters within 0.02 %) trained on the same "
        "batches for the diffusion row's steps with the same target, sampled by DDIM with the same number of steps "
        f"as the config's Heun sampler (Heun: 35 NFE per branch, DDIM: 18). {per_class} samples per class ({n} per "
        f"row), clamped to [-1, 1]. Accuracy: fraction classified as the requested class by the {metric} "
        f"classifier. FD: {metric} ({dims}-d classifier features) of the {n} samples against {test_text}; floor: "
        f"{n} training images ({per_class} per class) against the same test images. Per-class FD: mean over the ten "
        f"classes of the FD between class-c samples and the {class_test}, in the top {args.pca} principal "
        "directions of the training features (the digits test split is too small for full covariances), with its "
        "floor from the same training images. The uniform-noise row is the reference of samples that never left a "
        "uniform initialisation.",
        "",
        "| method | steps | params | w | accuracy | FD | FD floor | per-class FD | per-class floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| data (training {'images' if mnist else 'digits'}) | – | – | – | {floor['accuracy']:.1%} | "
        f"{fmt(floor['fd'])} | {fmt(floor['fd'])} | "
        f"{fmt(floor['fd_class'])} | {fmt(floor['fd_class'])} |",
        f"| uniform noise in [-1, 1] | – | – | – | {noise['accuracy']:.1%} | {fmt(noise['fd'])} | {fmt(floor['fd'])} | "
        f"{fmt(noise['fd_class'])} | {fmt(floor['fd_class'])} |",
    ]
    for name in args.methods:
        if "error" in info.get(name, {}):
            lines.append(f"| {label(name)} | {steps[name]} | – | – | failed: {info[name]['error']} |||||")
            continue
        for w in GUIDANCE:
            r = results[name][w]
            lines.append(f"| {label(name)} | {steps[name]} | {info[name]['params']:,} | {w:g} | {r['accuracy']:.1%} | "
                         f"{fmt(r['fd'])} | {fmt(floor['fd'])} | {fmt(r['fd_class'])} | {fmt(floor['fd_class'])} |")
    done = [name for name in args.methods if name in results]
    pairs = [verdicts(label(name), results[name], n) for name in done]
    lines += ["", "Training and sampling wall time (seconds, all four w): " + "; ".join(
        f"{label(name)} {info[name]['train_s']:.0f} + {info[name]['sample_s']:.0f}" for name in done) + "."]
    lines += ["", "Guidance raises accuracy above 10 %:", *[f"- {a}" for a, _ in pairs]]
    lines += ["", "FD against accuracy trade-off as w grows (accuracy keeps rising while FD passes its minimum):",
              *[f"- {t}" for _, t in pairs]]
    lines += ["", f"Samples at w = 2, one row per class (0 at the top): `{out.with_suffix('.png').name}`."]
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
