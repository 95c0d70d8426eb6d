"""2D toy distributions with the FFJORD conventions (Grathwohl et al., 2019, ``lib/toy_data.py``).

Scalings follow that code, so numbers are comparable with the literature: ``8gaussians`` (radius 4,
std 0.5, whole set ÷ 1.414), ``25gaussians`` (centres (2i, 2j), std 0.1, ÷ 2.828, as in the DDAEBM
authors' toy code), ``swissroll`` (sklearn ``make_swiss_roll(noise=1.0)[:, [0, 2]] / 5``),
``2spirals``, ``pinwheel`` (5 arms, radial std 0.3, tangential std 0.1, rate 0.25, ×2),
``checkerboard``, ``rings``, ``moons`` (×2 + (−1, −0.2)), ``circles`` (factor 0.5, noise 0.08, ×3).

All sets are drawn from a ``torch.Generator``; the sklearn-based ones take their numpy seed from it,
so one generator seed reproduces every set. Exact densities are known for the Gaussian mixtures and
for ``checkerboard`` (uniform on its squares); :func:`toy_log_prob` returns them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lit_gen.data.base import InMemoryDataModule, check_positive_int, derive_seed
from lit_gen.data.mixture import GaussianMixture
from lit_gen.data.torus import wrapped_gaussians

__all__ = [
    "TOY_DATASETS",
    "GaussianMixture",
    "Toy2DDataModule",
    "sample_toy2d",
    "toy_log_prob",
    "toy_mixture",
]


def _numpy_seed(generator: torch.Generator | None) -> int:
    # Drawn from the torch stream so that sklearn-based sets follow the caller's generator seed.
    return int(torch.randint(0, 2**31 - 1, (), generator=generator))


def _eight_gaussians() -> GaussianMixture:
    d = 1.0 / math.sqrt(2.0)
    unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (d, d), (d, -d), (-d, d), (-d, -d)]
    means = torch.tensor(unit, dtype=torch.float64) * 4.0 / 1.414
    return GaussianMixture(torch.ones(8), means, 0.5 / 1.414)


def _twentyfive_gaussians() -> GaussianMixture:
    grid = torch.arange(-2, 3, dtype=torch.float64) * 2.0
    means = torch.cartesian_prod(grid, grid) / 2.828
    return GaussianMixture(torch.ones(25), means, 0.1 / 2.828)


def _swissroll(n: int, generator: torch.Generator | None) -> Tensor:
    from sklearn.datasets import make_swiss_roll

    x = make_swiss_roll(n_samples=n, noise=1.0, random_state=_numpy_seed(generator))[0]
    return torch.from_numpy(x[:, [0, 2]] / 5.0)


def _circles(n: int, generator: torch.Generator | None) -> Tensor:
    from sklearn.datasets import make_circles

    x = make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=_numpy_seed(generator))[0]
    return torch.from_numpy(x * 3.0)


def _moons(n: int, generator: torch.Generator | None) -> Tensor:
    from sklearn.datasets import make_moons

    x = make_moons(n_samples=n, noise=0.1, random_state=_numpy_seed(generator))[0]
    return torch.from_numpy(x * 2.0 + np.array([-1.0, -0.2]))


def _rings(n: int, generator: torch.Generator | None) -> Tensor:
    # Four concentric circles of radii (1, .75, .5, .25) × 3, evenly spaced angles, N(0, .08²) noise.
    counts = [n // 4] * 3 + [n - 3 * (n // 4)]
    parts = []
    for radius, m in zip((1.0, 0.75, 0.5, 0.25), counts, strict=True):
        theta = torch.arange(m, dtype=torch.float64) * (2 * math.pi / max(m, 1))
        parts.append(torch.stack([torch.cos(theta), torch.sin(theta)], dim=1) * radius)
    x = torch.cat(parts) * 3.0
    x = x[torch.randperm(n, generator=generator)]
    return x + 0.08 * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def _pinwheel(n: int, generator: torch.Generator | None) -> Tensor:
    # Johnson et al. (2016) pinwheel: Gaussian blobs at radius 1 bent by angle rate·exp(r).
    num_arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
    labels = torch.arange(n) % num_arms
    feats = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    feats = feats * torch.tensor([radial_std, tangential_std], dtype=torch.float64)
    feats[:, 0] += 1.0
    angles = labels.to(torch.float64) * (2 * math.pi / num_arms) + rate * torch.exp(feats[:, 0])
    c, s = torch.cos(angles), torch.sin(angles)
    # Row vector times [[c, -s], [s, c]], as FFJORD's einsum("ti,tij->tj").
    x = torch.stack([feats[:, 0] * c + feats[:, 1] * s, -feats[:, 0] * s + feats[:, 1] * c], dim=1)
    return 2.0 * x[torch.randperm(n, generator=generator)]


def _two_spirals(n: int, generator: torch.Generator | None) -> Tensor:
    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    t = torch.sqrt(rand(n)) * 540.0 * (2 * math.pi) / 360.0
    dx = -torch.cos(t) * t + rand(n) * 0.5
    dy = torch.sin(t) * t + rand(n) * 0.5
    sign = torch.ones(n, dtype=torch.float64)
    sign[n - n // 2 :] = -1.0  # second spiral is the point reflection of the first
    x = torch.stack([dx, dy], dim=1) * sign[:, None] / 3.0
    x = x + 0.1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return x[torch.randperm(n, generator=generator)]


def _checkerboard(n: int, generator: torch.Generator | None) -> Tensor:
    x1 = torch.rand(n, generator=generator, dtype=torch.float64) * 4 - 2
    x2_ = torch.rand(n, generator=generator, dtype=torch.float64)
    x2_ = x2_ - torch.randint(0, 2, (n,), generator=generator).to(torch.float64) * 2
    x2 = x2_ + torch.remainder(torch.floor(x1), 2)
    return torch.stack([x1, x2], dim=1) * 2.0


def _checkerboard_log_prob(x: Tensor) -> Tensor:
    """Exact log density of ``checkerboard``: uniform, 1/32, on the 8 dark 2×2 squares of [−4, 4)²."""
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2), got {tuple(x.shape)}")
    u = torch.floor(x.to(torch.float64) / 2.0)
    inside = (u >= -2).all(dim=1) & (u <= 1).all(dim=1) & (torch.remainder(u.sum(dim=1), 2) == 0)
    out = torch.full((x.shape[0],), -math.log(32.0), dtype=torch.float64, device=x.device)
    out = out.masked_fill(~inside, -math.inf)
    return out.masked_fill(torch.isnan(x).any(dim=1), math.nan).to(torch.float32)


_MIXTURES: dict[str, Callable[[], GaussianMixture]] = {
    "8gaussians": _eight_gaussians,
    "25gaussians": _twentyfive_gaussians,
}

# The registry of samplers; new sets (e.g. the planned torus sets) are added here.
_SAMPLERS: dict[str, Callable[[int, torch.Generator | None], Tensor]] = {
    "8gaussians": lambda n, g: _eight_gaussians().sample(n, g),
    "25gaussians": lambda n, g: _twentyfive_gaussians().sample(n, g),
    "swissroll": _swissroll,
    "2spirals": _two_spirals,
    "pinwheel": _pinwheel,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "moons": _moons,
    "circles": _circles,
    "wrapped_gaussians": lambda n, g: wrapped_gaussians().sample(n, g),  # periodic, on [-π, π)²
}

TOY_DATASETS: tuple[str, ...] = tuple(_SAMPLERS)


def _check_name(name: str) -> str:
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy dataset {name!r}; valid names are: {', '.join(TOY_DATASETS)}")
    return name


def sample_toy2d(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` points of the toy set ``name`` as a float32 tensor ``(n, 2)`` (CPU).

    Reproducible: the same generator seed gives the same points, for every set.
    """
    _check_name(name)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if n == 0:
        return torch.empty(0, 2)
    x = _SAMPLERS[name](n, generator)
    return x.to(torch.float32).contiguous()


def toy_mixture(name: str) -> GaussianMixture | None:
    """The exact :class:`GaussianMixture` behind ``name`` (scaled coordinates), or None if not a mixture."""
    _check_name(name)
    factory = _MIXTURES.get(name)
    return None if factory is None else factory()


def toy_log_prob(name: str) -> Callable[[Tensor], Tensor] | None:
    """Exact ``log p(x)`` of the toy set ``name`` (``(n, 2) -> (n,)``), or None when it is not known.

    Known for ``8gaussians`` and ``25gaussians`` (mixtures), ``checkerboard`` (piecewise uniform) and
    ``wrapped_gaussians`` (a wrapped mixture on the torus ``[−π, π)²``, :mod:`lit_gen.data.torus`).
    """
    mixture = toy_mixture(name)
    if mixture is not None:
        return mixture.log_prob
    if name == "checkerboard":
        return _checkerboard_log_prob
    if name == "wrapped_gaussians":
        return wrapped_gaussians().log_prob
    return None


class Toy2DDataModule(InMemoryDataModule):
    """Seeded, independent train/val/test draws from a 2D toy distribution.

    Args:
        name: one of :data:`TOY_DATASETS`.
        n_train, n_val, n_test: sizes of the three draws.
        batch_size: training (and evaluation) batch size.
        seed: seeds the three draws (independent streams) and the training order.

    ``log_prob`` is the exact density when known (else None); ``true_nll()`` is then
    ``−mean log p(x_test)``, the floor no model beats in expectation.
    """

    def __init__(
        self,
        name: str = "swissroll",
        n_train: int = 20000,
        n_val: int = 5000,
        n_test: int = 5000,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.name = _check_name(name)
        self.n_train = check_positive_int(n_train, "n_train")
        self.n_val = check_positive_int(n_val, "n_val")
        self.n_test = check_positive_int(n_test, "n_test")
        self.log_prob: Callable[[Tensor], Tensor] | None = toy_log_prob(name)
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (2,)

    def load_splits(self) -> dict[str, Tensor]:
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        out = {}
        for key, (split, n) in enumerate(sizes.items()):
            g = torch.Generator().manual_seed(derive_seed(self.seed, key))
            out[split] = sample_toy2d(self.name, n, generator=g)
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Fresh points from the same distribution (e.g. for data-vs-data metric floors)."""
        return sample_toy2d(self.name, n, generator=generator)

    def true_nll(self, split: str = "test") -> float | None:
        """``−mean log p(x)`` over ``split`` under the exact density, or None when it is not known."""
        if self.log_prob is None:
            return None
        return float(-self.log_prob(self.tensor(split)).to(torch.float64).mean())
