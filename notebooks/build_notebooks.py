"""Write the tutorial notebooks (outputs cleared) from the cell sources below: `python notebooks/build_notebooks.py`.

Each notebook runs on one CPU thread in a few minutes (`pytest --nbmake notebooks`, part of `make test-all`).
Edit the sources here and re-run the script rather than editing the .ipynb files by hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import functools
import time

import lightning as L
import matplotlib.pyplot as plt
import torch

%matplotlib inline
torch.set_num_threads(1)  # the tutorials are sized for one CPU thread
L.seed_everything(0)


def quiet_trainer(max_steps: int) -> L.Trainer:
    \"\"\"A CPU trainer without logger, checkpoints, progress bar or validation: the notebook does the evaluation.\"\"\"
    return L.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                     inference_mode=False)
"""

DIFFUSION = [
    new_markdown_cell("""\
# 1 · Diffusion on toy data: schedules, samplers, NFE vs quality

A denoising diffusion model (Ho et al. 2020) corrupts data by `x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε` and learns
to undo it; samplers integrate the reverse process in a chosen number of network evaluations (NFE). This notebook
trains `lit_gen.models.DiffusionModule` on the 2D swiss roll for a minute on CPU, then compares DDPM, DDIM, Heun
(Karras et al. 2022) and Euler–Maruyama at several step counts by the sliced Wasserstein-1 distance (SW1) to
held-out data — next to the data-vs-data floor, the score of a perfect model."""),
    new_code_cell(SETUP),
    new_markdown_cell("""\
## Noise schedules

Every schedule exposes `alpha_bar(t)`; the signal-to-noise ratio `ᾱ/(1 − ᾱ)` decides where the model spends its
capacity. The cosine schedule (Nichol & Dhariwal 2021) keeps ᾱ away from 0 for longer than the linear one."""),
    new_code_cell("""\
from lit_gen.diffusion import CosineSchedule, LinearSchedule, SigmoidSchedule

schedules = {"linear": LinearSchedule(1000), "cosine": CosineSchedule(1000), "sigmoid": SigmoidSchedule(1000)}
t = torch.arange(1000)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, schedule in schedules.items():
    ab = schedule.alpha_bar(t)
    axes[0].plot(t, ab, label=name)
    axes[1].plot(t, torch.log(ab / (1 - ab)), label=name)
axes[0].set(xlabel="t", ylabel="ᾱ(t)")
axes[1].set(xlabel="t", ylabel="log SNR")
axes[0].legend()
plt.show()"""),
    new_markdown_cell("## Train a DiffusionModule (v-prediction, cosine schedule) for 1500 steps"),
    new_code_cell("""\
from lit_gen.data import Toy2DDataModule
from lit_gen.metrics import sliced_wasserstein
from lit_gen.models import DiffusionModule
from lit_gen.nn import TimeMLP

data = Toy2DDataModule(name="swissroll", n_train=5000, n_val=500, n_test=2000, batch_size=256)
model = DiffusionModule(
    net=functools.partial(TimeMLP, hidden=128, depth=3),
    schedule=CosineSchedule(1000),
    prediction="v",
    sampler="ddim",
    sampler_steps=35,
    ema_decay=0.999,
    eval_metrics=False,
    optimizer=lambda params: torch.optim.Adam(params, lr=2e-3),
)
start = time.perf_counter()
quiet_trainer(1500).fit(model, datamodule=data)
print(f"trained in {time.perf_counter() - start:.0f} s")

test = data.tensor("test")
floor = float(sliced_wasserstein(data.tensor("train")[: len(test)], test))
print(f"data-vs-data SW1 floor: {floor:.4f}")"""),
    new_markdown_cell("""\
## NFE vs quality

`model.sample(n, sampler=..., steps=..., return_nfe=True)` runs any sampler on the EMA network. Heun is second
order (NFE = 2·steps − 1); DDIM with η = 0 is a first-order probability-flow ODE solver; DDPM and Euler–Maruyama
inject noise at every step and need more steps."""),
    new_code_cell("""\
generator = torch.Generator().manual_seed(0)
results = {}
for name, kwargs in [("ddim", {}), ("ddpm", {}), ("heun", {"sigma_max": 80.0}), ("euler_maruyama", {})]:
    for steps in (5, 10, 25, 50):
        x, nfe = model.sample(len(test), sampler=name, steps=steps, return_nfe=True, generator=generator, **kwargs)
        results.setdefault(name, []).append((nfe, float(sliced_wasserstein(x, test))))
for name, rows in results.items():
    print(f"{name:15s}", "  ".join(f"NFE {nfe:3d}: SW1 {sw:.3f}" for nfe, sw in rows))

plt.figure(figsize=(5, 3.5))
for name, rows in results.items():
    plt.plot(*zip(*rows), marker="o", label=name)
plt.axhline(floor, color="grey", ls="--", label="floor")
plt.xscale("log")
plt.yscale("log")
plt.xlabel("NFE")
plt.ylabel("SW1 to test data")
plt.legend()
plt.show()"""),
    new_code_cell("""\
from lit_gen.utils.plotting import plot_samples_2d

samples = model.sample(2000, generator=torch.Generator().manual_seed(1))  # the default: DDIM, 35 steps
plot_samples_2d(samples, data=test, title="DDIM-35 samples (orange) over test data (grey)")"""),
    new_markdown_cell("""\
The same model from the command line: `lit-gen fit --config configs/diffusion/toy2d.yaml --test_after_fit true`
(6000 steps; `BENCHMARKS.md` has the full sampler × NFE × EMA table)."""),
]

EBM = [
    new_markdown_cell("""\
# 2 · EBM samplers and energy landscapes

An energy-based model defines `p(x) ∝ exp(−E(x))`. Sampling needs MCMC on `E`: `lit_gen.mcmc` has unadjusted
Langevin, MALA and HMC, each working on any callable `energy(x) -> (B,)`. We first run them on a known energy (a
Gaussian mixture, so exact samples exist), then train an `EBMModule` by contrastive divergence with a replay
buffer (Du & Mordatch 2019) and look at the landscape it learned."""),
    new_code_cell(SETUP),
    new_code_cell("""\
from lit_gen.data import toy_mixture
from lit_gen.mcmc import HMC, MALA, Langevin, UniformInit
from lit_gen.metrics import sliced_wasserstein
from lit_gen.utils.plotting import plot_samples_2d

mixture = toy_mixture("8gaussians")        # exact log_prob and sampler
energy = lambda x: -mixture.log_prob(x)     # noqa: E731  E(x) = −log p(x)
exact = mixture.sample(2000, generator=torch.Generator().manual_seed(0))
floor = float(sliced_wasserstein(mixture.sample(2000, generator=torch.Generator().manual_seed(1)), exact))
print(f"SW1 between two exact draws (the floor): {floor:.4f}")"""),
    new_markdown_cell("""\
## Three samplers on a known energy

ULA's step `x ← x − η∇E + sqrt(2η) ξ` is biased by O(η); MALA adds a Metropolis–Hastings correction; HMC moves
along leapfrog trajectories. Chains started uniformly on the box [−4, 4]² reach the mixture quickly: compare SW1 to
exact samples per number of gradient evaluations (the floor above is what two exact draws score)."""),
    new_code_cell("""\
init = UniformInit(torch.full((2,), -4.0), torch.full((2,), 4.0))
samplers = {"Langevin η=0.02": (Langevin(step_size=0.02), 1), "MALA η=0.05": (MALA(step_size=0.05), 1),
            "HMC ε=0.1, L=5": (HMC(step_size=0.1, num_leapfrog=5), 5)}
finals = {}
for name, (sampler, grads_per_step) in samplers.items():
    g = torch.Generator().manual_seed(0)
    x = init.sample(2000, (2,), g)
    done, curve = 0, []
    for steps in (5, 20, 80, 300):
        result = sampler.run(energy, x, steps - done, generator=g)
        x, done = result.x, steps
        curve.append((steps * grads_per_step, float(sliced_wasserstein(x, exact))))
    finals[name] = x
    acc = "" if name.startswith("Langevin") else f"  acceptance {float(result.stats['acceptance_rate']):.2f}"
    print(f"{name:16s}", "  ".join(f"{n:4d} grads: SW1 {s:.3f}" for n, s in curve) + acc)

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, (name, x) in zip(axes, finals.items()):
    ax.scatter(*exact.T, s=2, c="grey", alpha=0.4)
    ax.scatter(*x.T, s=2, c="tab:orange")
    ax.set(title=name, xlim=(-4, 4), ylim=(-4, 4))
plt.show()"""),
    new_markdown_cell("""\
## ... but local samplers do not cross between modes

Start every chain in one mode instead. The mixture gives each mode 1/8 of the mass, yet after 300 steps a much
larger share of the chains is still in the mode it started in: crossing the low-density gaps between modes is
slow, and HMC's longer moves help only partly. This is why `EBMModule`'s replay buffer restarts 5% of its chains
from the uniform box at every draw."""),
    new_code_cell("""\
def mode_occupancy(x: torch.Tensor) -> torch.Tensor:
    \"\"\"Fraction of the points whose nearest mixture mean is each of the 8 means.\"\"\"
    nearest = torch.cdist(x, mixture.means).argmin(1)
    return torch.bincount(nearest, minlength=mixture.num_components).float() / len(x)


for name, (sampler, _) in samplers.items():
    g = torch.Generator().manual_seed(0)
    start = mixture.means[0] + 0.1 * torch.randn(2000, 2, generator=g)
    x = sampler.run(energy, start, 300, generator=g).x
    print(f"{name:16s} share still in the starting mode: {float(mode_occupancy(x)[0]):.3f} (equilibrium 0.125)")"""),
    new_markdown_cell("""\
## Train an EBM by contrastive divergence

`EBMModule` minimises `mean E(x⁺) − mean E(sg(x⁻)) + α(mean E(x⁺)² + mean E(x⁻)²)` with negatives x⁻ from 20
Langevin steps on persistent chains (a replay buffer restarting 5% of the chains from uniform noise)."""),
    new_code_cell("""\
from lit_gen.data import Toy2DDataModule
from lit_gen.metrics import grid_nll
from lit_gen.models import EBMModule
from lit_gen.nn import EnergyMLP

data = Toy2DDataModule(name="8gaussians", n_train=5000, n_val=500, n_test=2000, batch_size=256)
ebm = EBMModule(
    energy_net=functools.partial(EnergyMLP, hidden=128, depth=3),
    sampler=Langevin(step_size=0.01),
    mcmc_steps=20,
    chain_init="replay",
    alpha=0.1,
    sample_steps=300,
    sample_sampler=MALA(step_size=0.01),
    eval_metrics=False,
    optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, betas=(0.0, 0.999)),
)
start = time.perf_counter()
quiet_trainer(800).fit(ebm, datamodule=data)
print(f"trained in {time.perf_counter() - start:.0f} s")"""),
    new_markdown_cell("""\
## The learned landscape

`grid_nll` normalises `exp(−E)` on a grid (log Z by quadrature on [−6, 6]²), so the learned density gets a test
NLL that can be compared with the true one of the mixture."""),
    new_code_cell("""\
test = data.tensor("test")
with torch.no_grad():
    nll = grid_nll(ebm.energy, test, limit=6.0, n=200)
print(f"test NLL of the EBM: {float(nll['nll']):.3f} nats   true NLL: {data.true_nll('test'):.3f} nats")
samples = ebm.sample(2000, generator=torch.Generator().manual_seed(0))
print(f"SW1 of 300-step MALA samples: {float(sliced_wasserstein(samples, test)):.3f}")
plot_samples_2d(samples, data=test, energy=ebm.energy_for_plot, title="exp(−E) with MALA samples", limit=4.0)"""),
    new_markdown_cell("""\
The density `exp(−E)` is a better model than its long-run samples suggest: the test NLL is a few tenths of a nat
above the true one after 800 steps, while chains run longer than in training drift to where the energy was never
corrected (the "non-convergent" behaviour that Nijkamp et al. 2019 describe). Train longer, or sample with as many
steps as in training, to close the gap."""),
    new_markdown_cell("""\
From the command line: `lit-gen fit --config configs/ebm/toy2d.yaml --test_after_fit true` (its test report adds
`mass_escape`: how much mass the energy leaves outside the data box)."""),
]

DCD = [
    new_markdown_cell("""\
# 3 · Diffusion contrastive divergence (DCD) for denoising

DCD (Luo et al. 2023, *Training Energy-Based Models with Diffusion Contrastive Divergences*) replaces the EBM's own
Langevin kernel in contrastive divergence by a parameter-free Gaussian kernel `x̃ = x + s ξ`. The negatives are
then samples of the recovery posterior `p(x'|x̃) ∝ exp(−E(x') − ‖x̃ − x'‖²/(2s²))`, which is nearly Gaussian for
small `s`, so a few Langevin steps from `x̃` suffice (lit_gen implements the form derived in
[docs/algorithms.md](../docs/algorithms.md#diffusion-contrastive-divergence)).

A trained energy is a prior for denoising: for `y = x + σ n`, minimise `E(x) + ‖y − x‖²/(2σ²)` (MAP), or average a
Langevin chain on it (posterior mean). We train `DCDModule` on the sklearn 8×8 digits (bundled, no download) and
measure PSNR."""),
    new_code_cell(SETUP),
    new_code_cell("""\
from lit_gen.data import DigitsDataModule
from lit_gen.mcmc import Langevin
from lit_gen.models import DCDModule
from lit_gen.nn import ConvEnergyNet

data = DigitsDataModule(batch_size=128)
print("data shape:", data.data_shape, " range:", data.data_range)
dcd = DCDModule(
    energy_net=functools.partial(ConvEnergyNet, channels=16, channel_mult=(1, 2)),
    data_shape=data.data_shape,
    kernel="ve",
    noise=0.2,                 # s
    sampler=Langevin(),        # exact Langevin on the recovery posterior, step c·s²
    mcmc_steps=5,
    step_scale=0.1,
    alpha=0.1,
    eval_metrics=False,
    optimizer=lambda params: torch.optim.Adam(params, lr=3e-4, betas=(0.0, 0.999)),
)
trainer = quiet_trainer(600)
trainer.gradient_clip_val = 1.0
start = time.perf_counter()
trainer.fit(dcd, datamodule=data)
print(f"trained in {time.perf_counter() - start:.0f} s")"""),
    new_markdown_cell("""\
## Denoise held-out digits

`lit_gen.denoise.denoise(energy, y, sigma, method=...)` works with any energy. PSNR on the [−1, 1] range is
`10 log10(4 / MSE)`; the noisy input is the baseline to beat."""),
    new_code_cell("""\
from lit_gen.denoise import denoise


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4.0 / (a - b).pow(2).mean()))


clean = data.tensor("test")[:128]
g = torch.Generator().manual_seed(0)
rows = []
for sigma in (0.1, 0.2, 0.3):
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    mapped = denoise(dcd.energy, noisy, sigma, method="map", steps=100, clamp=(-1.0, 1.0))
    mean = denoise(dcd.energy, noisy, sigma, method="mean", steps=200, clamp=(-1.0, 1.0), generator=g)
    rows.append((sigma, psnr(noisy, clean), psnr(mapped, clean), psnr(mean, clean)))
    print(f"σ = {sigma}: PSNR noisy {rows[-1][1]:.2f} dB, MAP {rows[-1][2]:.2f} dB, mean {rows[-1][3]:.2f} dB")"""),
    new_code_cell("""\
fig, axes = plt.subplots(3, 8, figsize=(10, 4))
for i in range(8):
    for row, (img, label) in enumerate([(clean, "clean"), (noisy, "noisy σ=0.3"), (mean, "denoised")]):
        axes[row, i].imshow(img[i, 0].detach(), cmap="gray", vmin=-1, vmax=1)
        axes[row, i].axis("off")
        if i == 0:
            axes[row, i].set_title(label, fontsize=8, loc="left")
plt.show()"""),
    new_markdown_cell("""\
Both estimates beat the noisy input at every σ. The chain mean is the minimum-MSE estimate only when the energy is
the true prior; with an energy trained for 600 steps the MAP estimate can come out ahead."""),
    new_markdown_cell("""\
The full run: `lit-gen fit --config configs/dcd/digits.yaml --test_after_fit true` (3000 steps, wider network);
its test report gives the PSNR at σ ∈ {0.1, 0.2, 0.3}. `configs/dcd/toy2d.yaml` trains DCD on 2D mixtures and
reports the grid NLL next to the true NLL."""),
]

DDAEBM = [
    new_markdown_cell("""\
# 4 · DDAEBM: few-step generation with an adversarial EBM inside a diffusion

DDAEBM (Geng et al. 2024, *Improving Adversarial Energy-Based Model via Diffusion Process*) splits generation into
T = 4 denoising steps. At each step a conditional energy `E_θ(x_t, t)` is trained against a generator
`G_φ(x_{t+1}, t, z) → x̂_0` (with a latent z and a posterior network q_ψ(z | x_t, x_{t+1}, t)); the generator is
trained on the symmetric Jeffrey divergence. Sampling calls the generator T times — 4 NFE — and never the
energy; the energy stays available as a density model."""),
    new_code_cell(SETUP),
    new_code_cell("""\
from lit_gen.data import Toy2DDataModule
from lit_gen.ddaebm import GeneratorMLP, PosteriorMLP
from lit_gen.metrics import sliced_wasserstein
from lit_gen.models import DDAEBMModule
from lit_gen.nn import TimeEnergyMLP

data = Toy2DDataModule(name="pinwheel", n_train=5000, n_val=500, n_test=2000, batch_size=200)
adam = lambda params: torch.optim.Adam(params, lr=1e-3, betas=(0.0, 0.9))  # noqa: E731
model = DDAEBMModule(
    energy_net=functools.partial(TimeEnergyMLP, hidden=128, depth=3),
    generator_net=functools.partial(GeneratorMLP, hidden=128, depth=3),
    posterior_net=functools.partial(PosteriorMLP, hidden=128, depth=2),
    latent_dim=2,
    num_timesteps=4,
    beta_min=0.1,
    beta_max=20.0,
    r1_gamma=0.02,
    energy_optimizer=adam,
    generator_optimizer=adam,
    eval_metrics=False,
)
start = time.perf_counter()
quiet_trainer(2 * 1000).fit(model, datamodule=data)   # global_step counts both optimizers' steps
print(f"trained in {time.perf_counter() - start:.0f} s")"""),
    new_markdown_cell("""\
## Samples in 4 network evaluations

The schedule's last level is N(0, I) up to `sqrt(ᾱ_T)` of the data, so sampling from pure noise matches training."""),
    new_code_cell("""\
test = data.tensor("test")
floor = float(sliced_wasserstein(data.tensor("train")[: len(test)], test))
samples, nfe = model.sample(len(test), generator=torch.Generator().manual_seed(0), return_nfe=True)
print(f"NFE = {nfe}; SW1 {float(sliced_wasserstein(samples, test)):.3f} (floor {floor:.3f})")
print(f"sqrt(ᾱ_T) = {float(model.schedule.alpha_bars[-1].sqrt()):.4f}: x_T is N(0, I) up to that fraction of x_0")"""),
    new_markdown_cell("## The trajectory x_T → x_0 and the energy at t = 0"),
    new_code_cell("""\
fig, axes = plt.subplots(1, 5, figsize=(16, 3.3))
g = torch.Generator().manual_seed(1)
x = torch.randn(2000, 2, generator=g)
axes[0].scatter(*x.T, s=1)
axes[0].set_title("x_T ~ N(0, I)")
net = model.ema.module if model.ema is not None else model.generator
with torch.no_grad():
    for i, step in enumerate(reversed(range(model.schedule.num_timesteps))):
        t = torch.full((len(x),), step, dtype=torch.long)
        x0 = net(x, t, torch.randn(len(x), model.latent_dim, generator=g))
        x = model.schedule.posterior_sample(x0, x, t, torch.randn(x.shape, generator=g))
        axes[i + 1].scatter(*x.T, s=1)
        axes[i + 1].set_title(f"x_{step}")
for ax in axes:
    ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5))
plt.show()

from lit_gen.utils.plotting import plot_samples_2d

plot_samples_2d(samples, data=test, energy=model.energy_for_plot, title="exp(−E(x, 0)) with 4-NFE samples",
                limit=3.5)"""),
    new_markdown_cell("""\
The samples follow the arms after 1000 iterations; the energy at t = 0 is another matter. It is trained only against
the generator's fakes, which sit on the data, so far from the data nothing pins it down: `exp(−E(x, 0))` can put
mass where there are no data (`lit-gen test` reports `energy_map_nll` and `energy_map_mass_escape`, the NLL change
when the grid is doubled; the authors' toy models show it too)."""),
    new_markdown_cell("""\
From the command line: `lit-gen fit --config configs/ddaebm/toy2d.yaml --test_after_fit true` (8000 steps on
pinwheel); `configs/ddaebm/cifar10.yaml` is the paper's image setting (GPU)."""),
]

NOTEBOOKS = {
    "01_diffusion_toy.ipynb": DIFFUSION,
    "02_ebm_samplers.ipynb": EBM,
    "03_dcd_denoising.ipynb": DCD,
    "04_ddaebm_few_step.ipynb": DDAEBM,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding gives no spurious diff
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
