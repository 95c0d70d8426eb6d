"""2D toy distributions with the FFJORD conventions (Grathwohl et al., 2019, ``lib/toy_data.py``).

Scalings follow that code, so numbers are comparable with the literature: ``8gaussians`` (radius 4,
std 0.5, whole set ÷ 1.414), ``25gaussians`` (centres (2i, 2j), std 0.1, ÷ 2.828, as in the DDAEBM
authors' toy code), ``unequal_gaussians`` (ours: 4 modes at (±2, ±2), std 0.5 / 1.414 like ``8gaussians``, weights
∝ 10 : 4 : 2 : 1, a factor 10 between the heaviest and the lightest mode, for the mode-weight test of replica
exchange; docs/algorithms.md#tempered-and-adapted-training-chains), ``swissroll`` (sklearn
``make_swiss_roll(noise=1.0)[:, [0, 2]] / 5``),
``2spirals``, ``pinwheel`` (5 arms, radial std 0.3, tangential std 0.1, rate 0.25, ×2),
``checkerboard``, ``rings``, ``moons`` (×2 + (−1, −0.2)), ``circles`` (factor 0.5, noise 0.08, ×3).

All sets are drawn from a ``torch.Generator``; the sklearn-based ones take their numpy seed from it,
so one generator seed reproduces every set. Exact densities are known for the Gaussian mixtures and
for ``checkerboard`` (uniform on its squares); :func:`toy_log_prob` returns them.

Class labels (:func:`sample_toy2d_labeled`, ``Toy2DDataModule(conditional=True)``) exist for the sets made of parts:
the mixtures ``8gaussians``, ``25gaussians``, ``unequal_gaussians`` and ``wrapped_gaussians`` (the component index,
in the order of the mixture's means), ``moons`` (0 upper, 1 lower half-moon), ``circles`` (0 outer, 1 inner),
``rings`` (0 outermost .. 3 innermost), ``pinwheel`` (the arm, 0..4) and ``2spirals`` (0 the first spiral, 1 its
point reflection). Drawing with labels gives exactly the points drawn without them, for the same generator.
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
    "TOY_LABELED_DATASETS",
    "UNEQUAL_WEIGHTS",
    "GaussianMixture",
    "Toy2DDataModule",
    "sample_toy2d",
    "sample_toy2d_labeled",
    "toy_log_prob",
    "toy_mixture",
    "toy_num_classes",
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


#: mode weights of ``unequal_gaussians`` (normalised by the mixture), heaviest first
UNEQUAL_WEIGHTS: tuple[float, ...] = (10.0, 4.0, 2.0, 1.0)


def _unequal_gaussians() -> GaussianMixture:
    """``p(x) = Σ_k w_k N(x; μ_k, s² I)``, ``w ∝ (10, 4, 2, 1)``, ``μ_k`` the corners (±2, ±2), ``s = 0.5/1.414``.

    Neighbouring modes are 4 apart, ≈ 11 standard deviations: an energy barrier of ≈ 16 nats that short-run
    Langevin chains do not cross, so only a sampler that moves mass between modes gets the weights right.
    """
    means = torch.tensor([(2.0, 2.0), (-2.0, 2.0), (-2.0, -2.0), (2.0, -2.0)], dtype=torch.float64)
    return GaussianMixture(torch.tensor(UNEQUAL_WEIGHTS, dtype=torch.float64), means, 0.5 / 1.414)


def _swissroll(n: int, generator: torch.Generator | None) -> Tensor:
    from sklearn.datasets import make_swiss_roll

    x = make_swiss_roll(n_samples=n, noise=1.0, random_state=_numpy_seed(generator))[0]
    return torch.from_numpy(x[:, [0, 2]] / 5.0)


def _circles(n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=_numpy_seed(generator))
    return torch.from_numpy(x * 3.0), torch.from_numpy(y).long()


def _moons(n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=0.1, random_state=_numpy_seed(generator))
    return torch.from_numpy(x * 2.0 + np.array([-1.0, -0.2])), torch.from_numpy(y).long()


def _rings(n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    # Four concentric circles of radii (1, .75, .5, .25) × 3, evenly spaced angles, N(0, .08²) noise.
    counts = [n // 4] * 3 + [n - 3 * (n // 4)]
    parts = []
    for radius, m in zip((1.0, 0.75, 0.5, 0.25), counts, strict=True):
        theta = torch.arange(m, dtype=torch.float64) * (2 * math.pi / max(m, 1))
        parts.append(torch.stack([torch.cos(theta), torch.sin(theta)], dim=1) * radius)
    x = torch.cat(parts) * 3.0
    ring = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    perm = torch.randperm(n, generator=generator)
    x, ring = x[perm], ring[perm]
    return x + 0.08 * torch.randn(n, 2, generator=generator, dtype=torch.float64), ring


def _pinwheel(n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
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
    perm = torch.randperm(n, generator=generator)
    return 2.0 * x[perm], labels[perm]


def _two_spirals(n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    t = torch.sqrt(rand(n)) * 540.0 * (2 * math.pi) / 360.0
    dx = -torch.cos(t) * t + rand(n) * 0.5
    dy = torch.sin(t) * t + rand(n) * 0.5
    sign = torch.ones(n, dtype=torch.float64)
    sign[n - n // 2 :] = -1.0  # second spiral is the point reflection of the first
    x = torch.stack([dx, dy], dim=1) * sign[:, None] / 3.0
    x = x + 0.1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    perm = torch.randperm(n, generator=generator)
    return x[perm], (sign < 0).long()[perm]


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
    "unequal_gaussians": _unequal_gaussians,
}

_Sampler = Callable[[int, torch.Generator | None], Tensor]
_LabeledSampler = Callable[[int, torch.Generator | None], tuple[Tensor, Tensor]]

# The sets with class labels: (number of classes, sampler of (points, labels)).
_LABELED: dict[str, tuple[int, _LabeledSampler]] = {
    "8gaussians": (8, lambda n, g: _eight_gaussians().sample_with_labels(n, g)),
    "25gaussians": (25, lambda n, g: _twentyfive_gaussians().sample_with_labels(n, g)),
    "unequal_gaussians": (4, lambda n, g: _unequal_gaussians().sample_with_labels(n, g)),
    "2spirals": (2, _two_spirals),
    "pinwheel": (5, _pinwheel),
    "rings": (4, _rings),
    "moons": (2, _moons),
    "circles": (2, _circles),
    "wrapped_gaussians": (6, lambda n, g: wrapped_gaussians().sample_with_labels(n, g)),
}


def _points_only(name: str) -> _Sampler:
    sampler = _LABELED[name][1]
    return lambda n, g: sampler(n, g)[0]


# The registry of samplers; new sets (e.g. the planned torus sets) are added here (and to _LABELED when their
# points come in classes).
_SAMPLERS: dict[str, _Sampler] = {
    "8gaussians": _points_only("8gaussians"),
    "25gaussians": _points_only("25gaussians"),
    "unequal_gaussians": _points_only("unequal_gaussians"),
    "swissroll": _swissroll,
    "2spirals": _points_only("2spirals"),
    "pinwheel": _points_only("pinwheel"),
    "checkerboard": _checkerboard,
    "rings": _points_only("rings"),
    "moons": _points_only("moons"),
    "circles": _points_only("circles"),
    "wrapped_gaussians": _points_only("wrapped_gaussians"),  # periodic, on [-π, π)²
}

TOY_DATASETS: tuple[str, ...] = tuple(_SAMPLERS)
#: the toy sets with class labels (``Toy2DDataModule(conditional=True)`` accepts these)
TOY_LABELED_DATASETS: tuple[str, ...] = tuple(name for name in TOY_DATASETS if name in _LABELED)


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


def toy_num_classes(name: str) -> int | None:
    """Number of classes of the toy set ``name`` (see the module docstring), or None when it has no labels."""
    _check_name(name)
    entry = _LABELED.get(name)
    return None if entry is None else entry[0]


def _no_labels_message(name: str) -> str:
    return (f"toy dataset {name!r} has no class labels; the sets with labels are: {', '.join(TOY_LABELED_DATASETS)} "
            f"(or set conditional: false)")


def sample_toy2d_labeled(name: str, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw ``n`` points of the toy set ``name`` with their class labels: ``(x (n, 2) float32, y (n,) long)``.

    ``x`` equals ``sample_toy2d(name, n, generator)`` for the same generator state. Raises ValueError for a set
    without labels (those with labels: :data:`TOY_LABELED_DATASETS`).
    """
    _check_name(name)
    if name not in _LABELED:
        raise ValueError(_no_labels_message(name))
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if n == 0:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    x, y = _LABELED[name][1](n, generator)
    return x.to(torch.float32).contiguous(), y.to(torch.long).contiguous()


def toy_mixture(name: str) -> GaussianMixture | None:
    """The exact :class:`GaussianMixture` behind ``name`` (scaled coordinates), or None if not a mixture."""
    _check_name(name)
    factory = _MIXTURES.get(name)
    return None if factory is None else factory()


def toy_log_prob(name: str) -> Callable[[Tensor], Tensor] | None:
    """Exact ``log p(x)`` of the toy set ``name`` (``(n, 2) -> (n,)``), or None when it is not known.

    Known for ``8gaussians``, ``25gaussians`` and ``unequal_gaussians`` (mixtures), ``checkerboard`` (piecewise
    uniform) and ``wrapped_gaussians`` (a wrapped mixture on the torus ``[−π, π)²``, :mod:`lit_gen.data.torus`).
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
        conditional: serve ``(x, y)`` batches with the class labels of the set (:data:`TOY_LABELED_DATASETS`;
            e.g. the component index of a mixture); the points are the same as with ``conditional=False``.

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
        conditional: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, conditional=conditional)
        self.name = _check_name(name)
        if self.conditional and name not in _LABELED:
            raise ValueError(f"Toy2DDataModule(conditional=True): {_no_labels_message(name)}")
        self.n_train = check_positive_int(n_train, "n_train")
        self.n_val = check_positive_int(n_val, "n_val")
        self.n_test = check_positive_int(n_test, "n_test")
        self.log_prob: Callable[[Tensor], Tensor] | None = toy_log_prob(name)
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (2,)

    @property
    def num_classes(self) -> int | None:
        """The set's number of classes when ``conditional`` (e.g. 8 for ``8gaussians``), else None."""
        return toy_num_classes(self.name) if self.conditional else None

    def load_splits(self) -> dict[str, Tensor | tuple[Tensor, Tensor]]:
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        draw = sample_toy2d_labeled if self.conditional else sample_toy2d
        out = {}
        for key, (split, n) in enumerate(sizes.items()):
            g = torch.Generator().manual_seed(derive_seed(self.seed, key))
            out[split] = draw(self.name, n, generator=g)
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Fresh points from the same distribution (e.g. for data-vs-data metric floors)."""
        return sample_toy2d(self.name, n, generator=generator)

    def true_nll(self, split: str = "test") -> float | None:
        """``−mean log p(x)`` over ``split`` under the exact density, or None when it is not known."""
        if self.log_prob is None:
            return None
        return float(-self.log_prob(self.tensor(split)).to(torch.float64).mean())
