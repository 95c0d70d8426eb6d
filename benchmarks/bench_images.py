"""Image diffusion against its peers on MNIST 28×28: lit_gen, diffusers and denoising-diffusion-pytorch.

    python benchmarks/bench_images.py [--quick] [--threads 1] --out benchmarks/results/images.md
    python benchmarks/bench_images.py --ddaebm [--quick]   # DDAEBM rows: benchmarks/results/images_ddaebm.md
    python benchmarks/bench_images.py --steps 5 --samples 64 --n-test 200 --nfe 4 --out /tmp/images.md  # smoke

One run, three contenders, trained in lockstep on the very same batches: one seeded permutation of the 60,000
MNIST training images (``data/MNIST/raw``, scaled to [-1, 1]) cut into batches that lit_gen's ``Trainer.fit``
consumes; after each of lit_gen's steps a callback hands the same batch to each peer's plain training loop. So
data order, batch size and step count are identical, and the three libraries' steps interleave one by one, which
makes their ms/step comparable on a loaded machine. Every side gets Adam (lr 1e-3, linear warm-up from 1 % over the
first quarter of the steps), gradient-norm clipping at 1 and an EMA of decay 0.999 with warm-up, a cosine noise
schedule over T = 1000 steps and the ε-prediction loss, the one target all three libraries default to
(``configs/diffusion/mnist.yaml`` has the same network and optimiser but trains with v-prediction, which at these
budgets gives far cleaner samples; see its header):

- lit_gen: ``DiffusionModule`` with ``lit_gen.nn.UNet`` (channels 16, mult (1, 2, 2), 2 res blocks, attention at
  7×7) through ``lightning.Trainer.fit``; EMA ``lit_gen.utils.ema`` (warm-up ``min(d, (1+n)/(10+n))``); sampled
  with DDIM (η = 0, trailing spacing; NFE = steps), DPM-Solver++(2M) (``dpm_solver++``, log-SNR spacing;
  NFE = steps) and Heun (Karras σ, σ_max 80; NFE = 2·steps − 1, so 5/10/18 steps give 9/19/35 NFE);
- diffusers: ``UNet2DModel`` of the same layout (block widths (16, 32, 32), 2 layers per block, attention blocks at
  7×7, GroupNorm 16 groups, the time embedding as a scale and shift after each res block's second norm,
  ``resnet_time_scale_shift="scale_shift"``, as in lit_gen's U-Net: diffusers' default adds it before that norm,
  where a 16-channel block at 16 groups has one channel per group and the norm removes it),
  ``DDPMScheduler(beta_schedule="squaredcos_cap_v2")``, its ``EMAModel`` (default
  warm-up, the same ``(1+n)/(10+n)`` rule); sampled with ``DDIMScheduler`` (its default x̂0 clipping; trailing
  spacing as lit_gen's DDIM, and the "leading" spacing the training config hands it, rows marked *leading*) and
  ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++")`` (its default linspace spacing,
  ``lambda_min_clipped=-5.1``, which its documentation calls critical for the cosine schedule, and thresholding at
  ``sample_max_value=1``, i.e. x̂0 clipped to [-1, 1] as the other samplers do), both built from the training
  scheduler's config;
- denoising-diffusion-pytorch: ``Unet(dim=16, dim_mults=(1, 2, 2))`` (its default attention: linear attention at
  28 and 14, full attention at 7), ``GaussianDiffusion(objective="pred_noise", beta_schedule="cosine",
  auto_normalize=False)`` on the same [-1, 1] data, EMA from ``ema_pytorch`` (the EMA its own trainer uses; decay
  0.999 updated every step from step 1, its warm-up ``1 − (1 + n)^(−2/3)``); sampled with its DDIM
  (``sampling_timesteps``; NFE = sampling_timesteps).

Measured: FD-MNIST (:func:`lit_gen.metrics.mnist_sample_report`, the cached MNIST classifier's 128-d features) of
``--samples`` samples against ``--n-test`` seeded test images, at 10, 20 and 35 NFE (``--nfe``), next to the floor
(as many training images against the same test images); the best FD of each library over the NFE tried; ms per
training step (median over all lockstep steps; lit_gen's includes the Lightning loop around its step) and samples
per second on a fixed batch (``--speed-batch``) at 10 NFE, the contenders interleaved over ``--repeats`` rounds
(median), both as ratios to diffusers. Before training, every network's forward + backward on one batch is timed the
same interleaved way (the "network" row). Sample grids of every row go to ``images.png`` beside the table.

Budgets (one torch thread, a shared 2-core CPU): full 160 steps of batch 32 and 160 samples per FD row at 10, 20
and 35 NFE (20-30 minutes); ``--quick`` 80 steps, 64 samples, 10 and 35 NFE (5-10 minutes). A short CPU
run: at these budgets no library makes recognisable digits; the FD ratios between libraries at equal budget and the
speed ratios are what is compared.

``--ddaebm``: ``DDAEBMModule`` (``configs/ddaebm/mnist.yaml`` as shipped, cosine learning rates over the run) at 4
NFE against the lit_gen ``DiffusionModule`` above at 4, 10 and 35 NFE, both on the same batches; FD-MNIST only.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # denoising-diffusion-pytorch's sampling loop draws a tqdm bar

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from lit_gen.diffusion import CosineSchedule  # noqa: E402
from lit_gen.metrics import load_mnist_arrays, load_mnist_classifier, mnist_sample_report  # noqa: E402
from lit_gen.models import DiffusionModule  # noqa: E402
from lit_gen.nn import UNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIBS = ("lit_gen", "diffusers", "denoising-diffusion-pytorch")
EMA_DECAY = 0.999
LR = 1e-3
T = 1000


# --------------------------------------------------------------------------------------------------- data
def mnist_tensors(root: str) -> tuple[Tensor, Tensor]:
    """Training (60,000) and test (10,000) images as float32 ``(n, 1, 28, 28)`` in [-1, 1]."""
    arrays = load_mnist_arrays(root)
    scale = lambda x: (x.to(torch.float32) / 127.5 - 1.0).unsqueeze(1)  # noqa: E731
    return scale(arrays["x_train"]), scale(arrays["x_test"])


def batch_stream(train: Tensor, steps: int, batch: int, seed: int = 0) -> Tensor:
    """``steps * batch`` training images in a seeded order (epochs of fresh permutations), the batches in a row."""
    g = torch.Generator().manual_seed(seed)
    need = steps * batch
    order = torch.cat([torch.randperm(len(train), generator=g) for _ in range(math.ceil(need / len(train)))])
    return train[order[:need]].contiguous()


# ----------------------------------------------------------------------------------------------- networks
def lit_unet(shape: tuple[int, ...] = (1, 28, 28)) -> UNet:
    """``configs/diffusion/mnist.yaml``'s network (0.44M parameters)."""
    return UNet(shape, channels=16, channel_mult=(1, 2, 2), num_res_blocks=2, attention_resolutions=(7,))


def diffusers_unet() -> nn.Module:
    """diffusers' ``UNet2DModel`` laid out as lit_gen's (same widths, blocks and attention placement)."""
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(16, 32, 32),
                       layers_per_block=2, norm_num_groups=16, resnet_time_scale_shift="scale_shift",
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))


def ddpm_pytorch_unet() -> nn.Module:
    """denoising-diffusion-pytorch's ``Unet`` at base width 16, its default attention (within 8 % of 0.44M)."""
    from denoising_diffusion_pytorch import Unet

    return Unet(dim=16, dim_mults=(1, 2, 2), channels=1)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def warmup_lambda(warmup: int) -> Callable[[int], float]:
    """``LinearLR(start_factor=0.01, total_iters=warmup)`` as a multiplier, for the plain loops."""
    return lambda step: 0.01 + 0.99 * min(step, warmup) / max(warmup, 1)


# ------------------------------------------------------------------------------------------- contenders
Sampler = Callable[[int, int], Tensor]  # (n, seed) -> images in [-1, 1]


@dataclass
class Contender:
    """One library: its training step on a batch (``None`` for lit_gen, whose steps Trainer.fit runs), the
    networks to count and to time, and its samplers ``label -> (kind, NFE, target NFE, sampler)``."""

    lib: str
    net: nn.Module
    step: Callable[[Tensor], None] | None = None
    samplers: dict[str, tuple[str, int, int, Sampler]] = field(default_factory=dict)
    step_s: list[float] = field(default_factory=list)
    rng: Tensor | None = None  # a peer's own global-RNG state, so no library's draws shift another's


def lit_gen_contender(steps: int, warmup: int, nfes: list[int]) -> tuple[Contender, DiffusionModule]:
    L.seed_everything(0, verbose=False)
    model = DiffusionModule(
        net=lambda s: lit_unet(tuple(s)), data_shape=(1, 28, 28), schedule=CosineSchedule(T), prediction="eps",
        sampler="heun", sampler_steps=18, ema_decay=EMA_DECAY, ema_warmup=True, eval_metrics=False,
        optimizer=lambda p: torch.optim.Adam(p, lr=LR),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.01, end_factor=1.0,
                                                                 total_iters=warmup),
    )
    c = Contender("lit_gen", model.net)

    def sampler(kind: str, k: int, **kw: Any) -> Sampler:
        def run(n: int, seed: int) -> Tensor:
            return model.sample(n, sampler=kind, steps=k, generator=torch.Generator().manual_seed(seed), **kw)  # type: ignore[return-value]

        return run

    for nfe in nfes:
        c.samplers[f"DDIM-{nfe}"] = ("ddim", nfe, nfe, sampler("ddim", nfe))
        c.samplers[f"DPM-Solver++-{nfe}"] = ("dpm++", nfe, nfe, sampler("dpm_solver++", nfe))
        heun_steps = max(1, (nfe + 1) // 2)  # 2·steps − 1 ≤ nfe
        c.samplers[f"Heun-{heun_steps}"] = ("heun", 2 * heun_steps - 1, nfe, sampler("heun", heun_steps))
    return c, model


def diffusers_contender(warmup: int, nfes: list[int]) -> Contender:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    net = diffusers_unet()
    train_sched = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon")
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, warmup_lambda(warmup))
    ema = EMAModel(net.parameters(), decay=EMA_DECAY)  # default warm-up: min(decay, (1 + n) / (10 + n))

    def step(x0: Tensor) -> None:
        noise = torch.randn_like(x0)
        t = torch.randint(0, T, (x0.shape[0],))
        loss = (net(train_sched.add_noise(x0, noise, t), t).sample - noise).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        lr.step()
        ema.step(net.parameters())

    c = Contender("diffusers", net, step)
    ema_net: list[nn.Module] = []

    def averaged() -> nn.Module:
        if not ema_net:  # after training: the EMA weights in a copy of the network
            copy_ = copy.deepcopy(net).eval()
            ema.copy_to(copy_.parameters())
            ema_net.append(copy_)
        return ema_net[0]

    def sampler(cls: Any, k: int, **kw: Any) -> Sampler:
        @torch.no_grad()
        def run(n: int, seed: int) -> Tensor:
            unet = averaged()
            sched = cls.from_config(train_sched.config, **kw)
            sched.set_timesteps(k)
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 1, 28, 28, generator=g) * sched.init_noise_sigma
            for t in sched.timesteps:
                eps = unet(sched.scale_model_input(x, t), t).sample
                x = sched.step(eps, t, x).prev_sample
            return x

        return run

    for nfe in nfes:
        c.samplers[f"DDIM-{nfe}"] = ("ddim", nfe, nfe, sampler(DDIMScheduler, nfe, timestep_spacing="trailing"))
        # as built from the DDPMScheduler config, unchanged: "leading" spacing, first step at t = T - T/k
        c.samplers[f"DDIM-{nfe} leading"] = ("ddim-leading", nfe, nfe, sampler(DDIMScheduler, nfe))
        c.samplers[f"DPM-Solver++-{nfe}"] = ("dpm++", nfe, nfe, sampler(
            DPMSolverMultistepScheduler, nfe, algorithm_type="dpmsolver++", timestep_spacing="linspace",
            lambda_min_clipped=-5.1, thresholding=True, sample_max_value=1.0))
    return c


def ddpm_pytorch_contender(warmup: int, nfes: list[int]) -> Contender:
    from denoising_diffusion_pytorch import GaussianDiffusion
    from ema_pytorch import EMA

    torch.manual_seed(0)
    net = ddpm_pytorch_unet()
    kw: dict[str, Any] = dict(image_size=28, timesteps=T, objective="pred_noise", beta_schedule="cosine",
                              auto_normalize=False)
    diffusion = GaussianDiffusion(net, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, warmup_lambda(warmup))
    ema = EMA(net, beta=EMA_DECAY, update_after_step=0, update_every=1)

    def step(x0: Tensor) -> None:
        loss = diffusion(x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        lr.step()
        ema.update()

    c = Contender("denoising-diffusion-pytorch", net, step)

    def sampler(k: int) -> Sampler:
        def run(n: int, seed: int) -> Tensor:
            d = GaussianDiffusion(ema.ema_model.eval(), sampling_timesteps=k, **kw)
            torch.manual_seed(seed)  # it draws from the global generator
            return d.sample(batch_size=n).clone()

        return run

    for nfe in nfes:
        c.samplers[f"DDIM-{nfe}"] = ("ddim", nfe, nfe, sampler(nfe))
    return c


class Lockstep(L.Callback):
    """After each of lit_gen's training steps, every peer takes its step on the same batch; lit_gen's step time is
    the interval between consecutive ``on_train_batch_start`` calls less the peers' share of it. Each peer draws
    its noise and times from the global RNG with its own saved state (seeded ``1 + index``), restored around its
    step, so lit_gen's draws are those it would make training alone."""

    def __init__(self, lit: Contender, peers: list[Contender], progress: Callable[[int], None]) -> None:
        self.lit, self.peers, self.progress = lit, peers, progress
        for i, peer in enumerate(peers):
            peer.rng = torch.Generator().manual_seed(1 + i).get_state()
        self._start: float | None = None
        self._peer_s = 0.0

    def _close(self) -> None:
        if self._start is not None:
            self.lit.step_s.append(time.perf_counter() - self._start - self._peer_s)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        self._close()
        self._start, self._peer_s = time.perf_counter(), 0.0

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           idx: int) -> None:
        begin = time.perf_counter()
        for peer in self.peers:
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(peer.rng)  # type: ignore[arg-type]
                s = time.perf_counter()
                peer.step(batch)  # type: ignore[misc]
                peer.step_s.append(time.perf_counter() - s)
                peer.rng = torch.get_rng_state()
        self._peer_s = time.perf_counter() - begin
        self.progress(idx + 1)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._close()
        self._start = None


def _from_spec(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A YAML ``{class_path, init_args}`` entry as (class, init_args)."""
    import importlib

    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name), dict(spec.get("init_args", {}))


def ddaebm_from_config(batches: int) -> L.LightningModule:
    """``configs/ddaebm/mnist.yaml``'s ``DDAEBMModule`` as shipped. Its cosine schedules span the trainer's
    ``max_steps`` (batches; both optimizers step once per batch); one given an explicit ``T_max`` gets ``batches``."""
    import functools

    import yaml

    config = yaml.safe_load((ROOT / "configs" / "ddaebm" / "mnist.yaml").read_text())
    cls, kwargs = _from_spec(config["model"])
    for key, value in list(kwargs.items()):
        if isinstance(value, dict) and "class_path" in value:
            part, init = _from_spec(value)
            if key.endswith("lr_scheduler") and "T_max" in init:
                init["T_max"] = batches
            kwargs[key] = functools.partial(part, **init)
    L.seed_everything(0, verbose=False)
    return cls(data_shape=(1, 28, 28), eval_metrics=False, **kwargs)


# ------------------------------------------------------------------------------------------------ speed
def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each callable, run round-robin ``repeats`` times after one warm-up round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for rep in range(repeats + 1):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            if rep:
                times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def network_speed(batch: Tensor, repeats: int) -> dict[str, float]:
    """Forward + backward (ε-MSE) of each fresh network on one batch, interleaved: median seconds."""
    torch.manual_seed(0)
    nets = {"lit_gen": lit_unet(), "diffusers": diffusers_unet(), "denoising-diffusion-pytorch": ddpm_pytorch_unet()}
    t = torch.randint(0, T, (batch.shape[0],))
    calls: dict[str, Callable[[], Tensor]] = {
        "lit_gen": lambda: nets["lit_gen"](batch, t.float()),
        "diffusers": lambda: nets["diffusers"](batch, t).sample,
        "denoising-diffusion-pytorch": lambda: nets["denoising-diffusion-pytorch"](batch, t),
    }

    def fwd_bwd(name: str) -> Callable[[], None]:
        def run() -> None:
            nets[name].zero_grad(set_to_none=True)
            calls[name]().square().mean().backward()

        return run

    return interleaved({k: fwd_bwd(k) for k in calls}, repeats)


# ---------------------------------------------------------------------------------------------- scoring
def grid_png(rows: list[tuple[str, Tensor]], path: Path, per_row: int) -> None:
    """One strip of ``per_row`` samples per row, labelled, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    label_in, strip_in, row_in = 3.0, per_row * 0.45, 0.5
    fig, axes = plt.subplots(len(rows), 1, figsize=(label_in + strip_in + 0.1, row_in * len(rows) + 0.1),
                             squeeze=False)
    fig.subplots_adjust(left=label_in / (label_in + strip_in + 0.1), right=1 - 0.05 / (label_in + strip_in),
                        top=1 - 0.05 / (row_in * len(rows)), bottom=0.05 / (row_in * len(rows)), hspace=0.08)
    for ax, (label, x) in zip(axes[:, 0], rows, strict=True):
        strip = make_grid(((x[:per_row].clamp(-1, 1) + 1) / 2).cpu(), nrow=per_row, padding=1, pad_value=1.0)
        ax.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest", aspect="equal")
        ax.set_axis_off()
        ax.text(-0.01, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sample_in_chunks(run: Sampler, n: int, chunk: int, seed: int) -> Tensor:
    return torch.cat([run(min(chunk, n - i), seed + i) for i in range(0, n, chunk)])


# ------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, batch and samples (minutes)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (full 160, quick 80)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (full 32, quick 32)")
    parser.add_argument("--samples", type=int, default=None, help="samples per FD row (full 160, quick 64)")
    parser.add_argument("--n-test", type=int, default=1000, help="test images FD compares against")
    parser.add_argument("--nfe", type=int, nargs="*", default=None, help="NFE budgets (full 10 20 35, quick 10 35)")
    parser.add_argument("--speed-batch", type=int, default=None, help="batch of the speed tests (full 32, quick 16)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds of each speed test (5, quick 3)")
    parser.add_argument("--chunk", type=int, default=250, help="samples per sampler call")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--root", default=str(ROOT / "data"), help="folder holding MNIST/raw")
    parser.add_argument("--out", default="benchmarks/results/images.md")
    parser.add_argument("--ddaebm", action="store_true",
                        help="instead: DDAEBMModule at 4 NFE vs DiffusionModule at 4, 10 and 35 NFE (images_ddaebm.md)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.ddaebm:
        if args.out == parser.get_default("out"):
            args.out = "benchmarks/results/images_ddaebm.md"
        ddaebm_main(args)
        return
    steps = args.steps or (80 if args.quick else 160)
    batch = args.batch or 32
    n_samples = args.samples or (64 if args.quick else 160)
    args.repeats = args.repeats or (3 if args.quick else 5)
    speed_batch = args.speed_batch or (16 if args.quick else 32)
    warmup = max(1, steps // 4)
    nfes = sorted(set(args.nfe or ([10, 35] if args.quick else [10, 20, 35])))
    started = time.perf_counter()
    say = lambda msg: print(f"[{time.perf_counter() - started:7.1f} s] {msg}", flush=True)  # noqa: E731

    train, test_all = mnist_tensors(args.root)
    g = torch.Generator().manual_seed(0)
    test = test_all[torch.randperm(len(test_all), generator=g)[: args.n_test]]
    classifier = load_mnist_classifier(args.root, log=say)
    stream = batch_stream(train, steps, batch)
    floor_imgs = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:n_samples]]
    floor = mnist_sample_report(floor_imgs, test, None, classifier)["fd_mnist"]
    say(f"FD floor ({n_samples} training images vs {len(test)} test images): {floor:.2f}")

    net_s = network_speed(stream[:speed_batch], args.repeats)
    say("network fwd+bwd ms: " + ", ".join(f"{k} {1000 * v:.0f}" for k, v in net_s.items()))

    lit, model = lit_gen_contender(steps, warmup, nfes)
    lit_rng = torch.get_rng_state()  # lit_gen trains from here, as it does in --ddaebm mode
    peers = [diffusers_contender(warmup, nfes), ddpm_pytorch_contender(warmup, nfes)]
    contenders = [lit, *peers]
    params = {c.lib: count(c.net) for c in contenders}
    say("parameters: " + ", ".join(f"{k} {v:,}" for k, v in params.items()))

    def progress(done: int) -> None:
        if done % max(1, steps // 10) == 0 or done == steps:
            say(f"step {done}/{steps}: median ms/step " + ", ".join(
                f"{c.lib} {1000 * statistics.median(c.step_s or [math.nan]):.0f}" for c in contenders))

    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        gradient_clip_val=1.0, callbacks=[Lockstep(lit, peers, progress)])
    loader = torch.utils.data.DataLoader(stream, batch_size=batch, shuffle=False)  # type: ignore[arg-type]
    fit_start = time.perf_counter()
    torch.set_rng_state(lit_rng)
    trainer.fit(model, train_dataloaders=loader)
    fit_s = time.perf_counter() - fit_start
    say(f"trained {steps} steps in lockstep in {fit_s:.0f} s")

    # samples/s on a fixed batch at the smallest NFE that is ≥ 10 (or the largest tried), interleaved
    speed_nfe = min([k for k in nfes if k >= 10] or [max(nfes)])
    speed_fns = {(c.lib, label): (lambda run=run: run(speed_batch, 7))
                 for c in contenders for label, (kind, nfe, _, run) in c.samplers.items()
                 if nfe == speed_nfe and kind in ("ddim", "dpm++")}
    sample_s = interleaved(speed_fns, args.repeats)
    say("samples/s: " + ", ".join(f"{k[0]} {k[1]} {speed_batch / v:.1f}" for k, v in sample_s.items()))

    rows: list[dict[str, Any]] = []
    grids: list[tuple[str, Tensor]] = [("MNIST training images", floor_imgs)]
    for c in contenders:
        for label, (kind, nfe, target, run) in c.samplers.items():
            start = time.perf_counter()
            x = sample_in_chunks(run, n_samples, args.chunk, seed=1)
            seconds = time.perf_counter() - start
            fd = math.nan
            if torch.isfinite(x).all():
                fd = mnist_sample_report(x, test, None, classifier)["fd_mnist"]
            rows.append(dict(lib=c.lib, sampler=label, kind=kind, nfe=nfe, target=target, fd=fd,
                             sps=n_samples / seconds))
            grids.append((f"{c.lib} {label}", x))
            say(f"{c.lib} {label} ({nfe} NFE): FD {fd:.2f} in {seconds:.0f} s")

    write(args, dict(steps=steps, batch=batch, n_samples=n_samples, speed_batch=speed_batch, warmup=warmup,
                     speed_nfe=speed_nfe, floor=floor, fit_s=fit_s, wall_s=time.perf_counter() - started,
                     n_test=len(test)), params, net_s, contenders, sample_s, rows, grids)


def ddaebm_main(args: argparse.Namespace) -> None:
    """DDAEBM (4 generator evaluations) against the same diffusion model at 4, 10 and 35 NFE, same batches."""
    steps = args.steps or (80 if args.quick else 160)
    batch = args.batch or 32
    n_samples = args.samples or (64 if args.quick else 160)
    warmup = max(1, steps // 4)
    nfes = sorted(set(args.nfe or [4, 10, 35]))
    started = time.perf_counter()
    say = lambda msg: print(f"[{time.perf_counter() - started:7.1f} s] {msg}", flush=True)  # noqa: E731
    train, test_all = mnist_tensors(args.root)
    test = test_all[torch.randperm(len(test_all), generator=torch.Generator().manual_seed(0))[: args.n_test]]
    classifier = load_mnist_classifier(args.root, log=say)
    stream = batch_stream(train, steps, batch)
    floor_imgs = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:n_samples]]
    floor = mnist_sample_report(floor_imgs, test, None, classifier)["fd_mnist"]
    say(f"FD floor ({n_samples} training images vs {len(test)} test images): {floor:.2f}")

    def loader() -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(stream, batch_size=batch, shuffle=False)  # type: ignore[arg-type]

    def trainer(max_steps: int, **kw: Any) -> L.Trainer:
        return L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, **kw)

    lit, model = lit_gen_contender(steps, warmup, nfes)
    start = time.perf_counter()
    trainer(steps, gradient_clip_val=1.0, callbacks=[Lockstep(lit, [], lambda i: None)]).fit(
        model, train_dataloaders=loader())
    diffusion_s = time.perf_counter() - start
    say(f"DiffusionModule: {steps} steps in {diffusion_s:.0f} s")
    ddaebm = ddaebm_from_config(steps)
    start = time.perf_counter()
    fit = trainer(steps, inference_mode=False)
    fit.fit(ddaebm, train_dataloaders=loader())  # DDAEBM's max_steps counts batches
    if fit.global_step != steps or fit.current_epoch > 1:
        raise RuntimeError(f"DDAEBM trained {fit.global_step} steps over {fit.current_epoch} epochs; expected "
                           f"{steps} batches, one pass of the stream")
    ddaebm_s = time.perf_counter() - start
    say(f"DDAEBMModule: {steps} batches (two optimizer steps each) in {ddaebm_s:.0f} s")
    params = {"DDAEBMModule": {k: count(getattr(ddaebm, k)) for k in ("energy_net", "generator", "posterior")},
              "DiffusionModule": count(model.net)}

    samplers: list[tuple[str, str, int, Sampler]] = [
        ("DDAEBMModule", "generator (4 steps)", 4,
         lambda n, seed: ddaebm.sample(n, generator=torch.Generator().manual_seed(seed)))]  # type: ignore[list-item]
    samplers += [("DiffusionModule", label, nfe, run) for label, (_, nfe, _, run) in lit.samplers.items()]
    rows: list[dict[str, Any]] = []
    grids: list[tuple[str, Tensor]] = [("MNIST training images", floor_imgs)]
    for lib, label, nfe, run in samplers:
        start = time.perf_counter()
        x = sample_in_chunks(run, n_samples, args.chunk, seed=1)
        seconds = time.perf_counter() - start
        fd = mnist_sample_report(x, test, None, classifier)["fd_mnist"] if torch.isfinite(x).all() else math.nan
        rows.append(dict(lib=lib, sampler=label, nfe=nfe, fd=fd, sps=n_samples / seconds))
        grids.append((f"{lib} {label}", x))
        say(f"{lib} {label} ({nfe} NFE): FD {fd:.2f} in {seconds:.0f} s")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    grid_png(grids, png, per_row=16)
    cmd = "python benchmarks/bench_images.py --ddaebm" + (" --quick" if args.quick else "")
    d = params["DDAEBMModule"]
    lines = [
        "## DDAEBM vs diffusion on MNIST at few NFE",
        "",
        f"Command: `{cmd}` · {datetime.date.today()} · torch {torch.__version__} · cpu ({platform.machine()}, "
        f"{args.threads} thread{'s' if args.threads > 1 else ''}) · "
        f"wall {(time.perf_counter() - started) / 60:.1f} min",
        "",
        f"Both on the same {steps} batches of {batch} (the stream of `bench_images.py`). *DDAEBMModule*: "
        "`configs/ddaebm/mnist.yaml` as shipped (energy U-Net "
        f"{d['energy_net']:,}, generator U-Net {d['generator']:,} and posterior {d['posterior']:,} parameters; T = 4, "
        f"two optimizer steps per batch, cosine learning rates over the {steps} batches), "
        f"{ddaebm_s / steps * 1000:.0f} ms per batch. *DiffusionModule*: the lit_gen contender of the peers "
        f"table ({params['DiffusionModule']:,} parameters), {diffusion_s / steps * 1000:.0f} ms per step. "
        f"FD-MNIST of {n_samples} samples against {len(test)} test images; floor {floor:.2f}. A short CPU run: "
        "neither draws recognisable digits at this budget.",
        "",
        "| model | sampler | NFE | FD-MNIST | FD / floor | samples/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['lib']} | {r['sampler']} | {r['nfe']} | {r['fd']:.2f} | {r['fd'] / floor:.1f} | "
                     f"{r['sps']:.1f} |")
    lines += ["", f"![sample grids, one row per table row]({png.name})", ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} and {png}")


def write(args: argparse.Namespace, run: dict[str, Any], params: dict[str, int], net_s: dict[str, float],
          contenders: list[Contender], sample_s: dict[tuple[str, str], float], rows: list[dict[str, Any]],
          grids: list[tuple[str, Tensor]]) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    grid_png(grids, png, per_row=16)
    step_ms = {c.lib: 1000 * statistics.median(c.step_s) for c in contenders}
    floor = run["floor"]
    cmd = "python benchmarks/bench_images.py" + (" --quick" if args.quick else "")
    lines = [
        "## Image diffusion peers on MNIST: lit_gen vs diffusers vs denoising-diffusion-pytorch",
        "",
        f"Command: `{cmd}` · {datetime.date.today()} · torch {torch.__version__} · cpu "
        f"({platform.machine()}, {args.threads} thread{'s' if args.threads > 1 else ''}) · wall "
        f"{run['wall_s'] / 60:.1f} min (training {run['fit_s'] / 60:.1f} min)",
        "",
        f"A short CPU run: {run['steps']} steps at batch {run['batch']} ({run['steps'] * run['batch']:,} images, "
        f"{run['steps'] * run['batch'] / 60000:.2f} epochs), trained in lockstep on the same batches, same Adam "
        f"(lr {LR:g}, linear warm-up over {run['warmup']} steps), gradient-norm clip 1, EMA {EMA_DECAY} with "
        "warm-up, cosine schedule (T = 1000), ε-prediction; see the script's docstring for each library's "
        "settings. At this budget no library draws recognisable digits: the FD ratios between libraries at "
        "equal steps and NFE, and the speed ratios, are what is compared. FD-MNIST of "
        f"{run['n_samples']} samples against {run['n_test']} test images; floor = {run['n_samples']} training "
        f"images against the same test images: **{floor:.2f}**.",
        "",
        "| library | network | parameters | fwd+bwd ms (batch " + str(run["speed_batch"]) + ") | ratio | "
        "training ms/step (batch " + str(run["batch"]) + ") | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    nets = {"lit_gen": "lit_gen.nn.UNet 16·(1,2,2), 2 blocks, attn 7",
            "diffusers": "UNet2DModel (16,32,32), 2 layers, attn 7",
            "denoising-diffusion-pytorch": "Unet dim 16, mults (1,2,2)"}
    for lib in LIBS:
        lines.append(f"| {lib} | {nets[lib]} | {params[lib]:,} | {1000 * net_s[lib]:.0f} | "
                     f"{net_s[lib] / net_s['diffusers']:.2f} | {step_ms[lib]:.0f} | "
                     f"{step_ms[lib] / step_ms['diffusers']:.2f} |")
    lines += [
        "",
        "*fwd+bwd*: one network's forward and backward on a fixed batch before training, the three interleaved "
        f"({args.repeats} rounds, median). *training ms/step*: the median over all {run['steps']} lockstep steps "
        "(loss, backward, clip, optimizer, EMA; lit_gen's through `Trainer.fit`, Lightning's loop included). "
        "*ratio*: to diffusers.",
        "",
        "| library | sampler | NFE | FD-MNIST | FD / floor | FD / best peer at this NFE | samples/s (FD run) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    peers = [r for r in rows if r["lib"] != "lit_gen" and math.isfinite(r["fd"])]
    best_peer = {k: min((r["fd"] for r in peers if r["target"] == k), default=math.nan) for k in run_targets(rows)}
    for r in rows:
        bp = best_peer.get(r["target"], math.nan)
        lines.append(f"| {r['lib']} | {r['sampler']} | {r['nfe']} | {r['fd']:.2f} | {r['fd'] / floor:.1f} | "
                     f"{r['fd'] / bp:.2f} | {r['sps']:.1f} |")
    lines += [
        "",
        "Heun's NFE is 2·steps − 1, so its 9 and 19 NFE rows count against the 10 and 20 NFE budgets. "
        "diffusers' DPM-Solver++ runs with `lambda_min_clipped=-5.1` (its documentation: critical for the cosine "
        "schedule) and thresholding at 1 (x̂0 clipped to [-1, 1]); its DDIM with x̂0 clipping, trailing spacing "
        "(as lit_gen's) or, *leading*, the spacing its training config hands it (first step at t = T − T/k). "
        "*samples/s (FD run)*: while drawing the FD samples, one contender after the other (carries load noise; "
        "the goal below uses the interleaved figures).",
        "",
        "Best FD of each library over the samplers and NFE tried:",
        "",
        "| library | best sampler | NFE | FD-MNIST |",
        "|---|---|---:|---:|",
    ]
    for lib in LIBS:
        mine = [r for r in rows if r["lib"] == lib and math.isfinite(r["fd"])]
        if mine:
            b = min(mine, key=lambda r: r["fd"])
            lines.append(f"| {lib} | {b['sampler']} | {b['nfe']} | {b['fd']:.2f} |")
    lines += [
        "",
        f"Sampling speed at {run['speed_nfe']} NFE, batch {run['speed_batch']}, the samplers interleaved "
        f"({args.repeats} rounds, median):",
        "",
        "| library | sampler | samples/s | ratio to diffusers (same sampler) |",
        "|---|---|---:|---:|",
    ]
    sps = {k: run["speed_batch"] / v for k, v in sample_s.items()}
    for (lib, label), v in sps.items():
        ref = sps.get(("diffusers", label), math.nan)
        lines.append(f"| {lib} | {label} | {v:.2f} | {v / ref:.2f} |")
    lines += ["", "Goals (one seed each: at this budget FD moved by about 15 % between two lit_gen runs that differed "
              "only in their random noise and time draws, so FD ratios between 0.85 and 1.15 do not separate the "
              "libraries):", ""]
    lines += goals(rows, best_peer, step_ms, sps, run["speed_nfe"])
    lines += ["", f"![sample grids, one row per table row]({png.name})", ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} and {png}")


def run_targets(rows: list[dict[str, Any]]) -> list[int]:
    return sorted({r["target"] for r in rows})


def goals(rows: list[dict[str, Any]], best_peer: dict[int, float], step_ms: dict[str, float],
          sps: dict[tuple[str, str], float], speed_nfe: int) -> list[str]:
    notes = []
    for k in run_targets(rows):
        mine = [r for r in rows if r["lib"] == "lit_gen" and r["target"] == k and math.isfinite(r["fd"])]
        if not mine or not math.isfinite(best_peer.get(k, math.nan)):
            continue
        b = min(mine, key=lambda r: r["fd"])
        peer = min((r for r in rows if r["lib"] != "lit_gen" and r["target"] == k and math.isfinite(r["fd"])),
                   key=lambda r: r["fd"])
        ok = b["fd"] <= peer["fd"]
        notes.append(f"- FD at {k} NFE: lit_gen {b['sampler']} {b['fd']:.2f} vs best peer {peer['lib']} "
                     f"{peer['sampler']} {peer['fd']:.2f} (ratio {b['fd'] / peer['fd']:.2f}): goal "
                     f"{'met' if ok else 'missed'}.")
    best = {lib: min((r for r in rows if r["lib"] == lib and math.isfinite(r["fd"])), key=lambda r: r["fd"],
                     default=None) for lib in LIBS}
    if best["lit_gen"] is not None and any(best[lib] is not None for lib in LIBS[1:]):
        mine = best["lit_gen"]
        peer = min((best[lib] for lib in LIBS[1:] if best[lib] is not None), key=lambda r: r["fd"])
        notes.append(f"- FD at each library's best NFE: lit_gen {mine['sampler']} ({mine['nfe']} NFE) "
                     f"{mine['fd']:.2f} vs {peer['lib']} {peer['sampler']} ({peer['nfe']} NFE) {peer['fd']:.2f} (ratio "
                     f"{mine['fd'] / peer['fd']:.2f}): {'met' if mine['fd'] <= peer['fd'] else 'missed'}.")
    ratio = step_ms["lit_gen"] / step_ms["diffusers"]
    notes.append(f"- Training step: lit_gen {step_ms['lit_gen']:.0f} ms vs diffusers {step_ms['diffusers']:.0f} ms "
                 f"on the same network size ({ratio:.2f}×, goal ≤ 1.0×): {'met' if ratio <= 1.0 else 'missed'}.")
    for (lib, label), v in sps.items():
        ref = sps.get(("diffusers", label))
        if lib == "lit_gen" and ref:
            r = v / ref
            notes.append(f"- Sampling {label} ({speed_nfe} NFE): lit_gen {v:.2f} vs diffusers {ref:.2f} samples/s "
                         f"({r:.2f}×, goal ≥ 1.0×): {'met' if r >= 1.0 else 'missed'}.")
    return notes


if __name__ == "__main__":
    main()
