"""Matplotlib figures for samples: 2-D scatters (with an energy heat map), pair plots, image grids.

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API, not ``pyplot``: they need no GUI
backend (headless training writes PNGs) and importing this module leaves the user's backend alone (inline plots
in notebooks keep working; a notebook shows a returned figure by displaying it).

:func:`plot_samples` picks the picture for the data's shape: a scatter for 2-D points, a pair plot of the first
coordinates for other vectors, side-by-side grids of samples and real images (upscaled to a readable size) for
``(C, H, W)`` data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

SAMPLE_COLOUR = "tab:orange"
DATA_COLOUR = "0.55"
ENERGY_LABEL = "exp(−(E − min E)): unnormalised density"


def plot_samples(
    samples: Tensor,
    data: Tensor | None = None,
    energy: Callable[[Tensor], Tensor] | None = None,
    title: str = "",
    path: str | Path | None = None,
) -> Figure | None:
    """The figure for ``samples`` of any shape (``None`` for shapes with no picture, e.g. ``(C, L)``).

    ``(n, 2)``: :func:`plot_samples_2d` (``energy`` as a heat map); ``(n, d)``: :func:`plot_pairs`;
    ``(n, C, H, W)``: :func:`plot_image_grids` with ``data`` as the real images beside the samples.
    """
    if samples.dim() == 2 and samples.shape[1] == 2:
        return plot_samples_2d(samples, data, energy=energy, title=title, path=path)
    if samples.dim() == 2:
        return plot_pairs(samples, data, title=title, path=path)
    if samples.dim() == 4:
        return plot_image_grids(samples, data, title=title, path=path)
    return None


def _finite_rows(x: Tensor) -> Tensor:
    x = x.detach().float().cpu()
    return x[torch.isfinite(x).all(dim=1)]


def plot_samples_2d(
    samples: Tensor,
    data: Tensor | None = None,
    energy: Callable[[Tensor], Tensor] | None = None,
    title: str = "",
    path: str | Path | None = None,
    limit: float | None = None,
    resolution: int = 200,
) -> Figure:
    """Scatter ``samples`` (orange) over ``data`` (grey); with ``energy``, a heat map of exp(−E) underneath,
    with a colour bar. The view is ``[−limit, limit]²`` (default: from the data, so a few exploding samples
    do not shrink it)."""
    samples = samples.detach().float().cpu()
    fig = Figure(figsize=(6.4 if energy is not None else 5.5, 5.5), dpi=110)
    ax = fig.subplots()
    if limit is None:
        ref = _finite_rows(data) if data is not None else _finite_rows(samples)
        limit = float(ref.abs().quantile(0.995)) * 1.25 if len(ref) else 4.0
        limit = limit if math.isfinite(limit) and limit > 0 else 4.0
    if energy is not None:
        xs = torch.linspace(-limit, limit, resolution)
        gx, gy = torch.meshgrid(xs, xs, indexing="xy")
        grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)
        with torch.no_grad():
            e = energy(grid).float().cpu().reshape(resolution, resolution)
        density = torch.exp(-(e - e.min()))
        image = ax.imshow(density.numpy(), extent=(-limit, limit, -limit, limit), origin="lower", cmap="viridis")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=ENERGY_LABEL)
    if data is not None:
        d = data.detach().float().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=2, c=DATA_COLOUR if energy is None else "white", alpha=0.4, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c=SAMPLE_COLOUR, alpha=0.6, label="samples")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def _view(ref: Tensor) -> tuple[float, float]:
    """Axis limits of one coordinate: its 0.5–99.5 % range, widened by a quarter."""
    if len(ref) == 0:
        return -4.0, 4.0
    low, high = float(ref.quantile(0.005)), float(ref.quantile(0.995))
    pad = 0.25 * (high - low) or 1.0
    return low - pad, high + pad


def plot_pairs(
    samples: Tensor,
    data: Tensor | None = None,
    title: str = "",
    path: str | Path | None = None,
    max_dims: int = 4,
    max_points: int = 2000,
) -> Figure:
    """Pair plot of the first ``max_dims`` coordinates of vector samples over data: scatters of each pair off the
    diagonal, histograms of each coordinate on it (samples orange, data grey). At most ``max_points`` points of
    each are drawn; the views come from the data (or the samples without data)."""
    samples = samples.detach().float().cpu().flatten(1)
    d = samples.shape[1]
    k = max(1, min(d, max_dims))
    s = samples[:max_points, :k]
    ref = _finite_rows(data.detach().float().cpu().flatten(1)[:max_points, :k]) if data is not None else None
    views = [_view(ref[:, i] if ref is not None else _finite_rows(s)[:, i]) for i in range(k)]
    fig = Figure(figsize=(2.3 * k + 0.6, 2.3 * k + 0.8), dpi=100)
    axes = fig.subplots(k, k, squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if i == j:
                bins = torch.linspace(*views[i], 41).numpy()
                if ref is not None:
                    ax.hist(ref[:, i].numpy(), bins=bins, density=True, color=DATA_COLOUR, alpha=0.6,
                            histtype="stepfilled", label="data")
                ax.hist(s[:, i].clamp(*views[i]).numpy(), bins=bins, density=True, color=SAMPLE_COLOUR, alpha=0.6,
                        histtype="stepfilled", label="samples")
                ax.set_yticks([])
            else:
                if ref is not None:
                    ax.scatter(ref[:, j], ref[:, i], s=1, c=DATA_COLOUR, alpha=0.3, label="data")
                ax.scatter(s[:, j], s[:, i], s=1, c=SAMPLE_COLOUR, alpha=0.4, label="samples")
                ax.set_ylim(*views[i])
            ax.set_xlim(*views[j])
            ax.tick_params(labelsize=6)
            if i == k - 1:
                ax.set_xlabel(f"x{j + 1}", fontsize=8)
            if j == 0 and i != j:
                ax.set_ylabel(f"x{i + 1}", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    shown = f"all {d} coordinates" if k == d else f"first {k} of {d} coordinates"
    fig.suptitle(f"{title}\n{shown}" if title else shown, fontsize=9)
    top = 1 - 0.75 / fig.get_figheight()  # room for the two title lines; tight_layout costs a second per plot here
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.08, top=top, wspace=0.25, hspace=0.25)
    if path is not None:
        fig.savefig(path)
    return fig


def upscale_images(images: Tensor, min_size: int = 64) -> Tensor:
    """Nearest-neighbour upscaling of ``(n, C, H, W)`` images by an integer factor so that each side is at least
    ``min_size`` pixels (images already that large are returned unchanged)."""
    factor = max(1, math.ceil(min_size / max(1, min(images.shape[-2:]))))
    if factor == 1:
        return images
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def image_grid(images: Tensor, nrow: int | None = None, min_size: int = 64) -> Tensor:
    """Images in [−1, 1] as one ``(3, H, W)`` grid in [0, 1], each image upscaled to at least ``min_size`` pixels."""
    from torchvision.utils import make_grid

    images = images.detach().float().cpu().clamp(-1, 1)
    if images.shape[1] not in (1, 3):  # e.g. 2 or 4 channels: show the first
        images = images[:, :1]
    nrow = nrow or max(1, int(math.ceil(len(images) ** 0.5)))
    return make_grid((upscale_images(images, min_size) + 1) / 2, nrow=nrow, padding=2, pad_value=1.0)


def plot_image_grids(
    samples: Tensor,
    data: Tensor | None = None,
    title: str = "",
    path: str | Path | None = None,
    min_size: int = 64,
    max_images: int = 64,
) -> Figure:
    """A grid of sample images, with a grid of as many real images (``data``) beside it; every image is upscaled
    (nearest neighbour) to at least ``min_size`` pixels and the figure is sized to show the grids pixel for pixel."""
    panels = [("samples", image_grid(samples[:max_images], min_size=min_size))]
    if data is not None and len(data):
        n = min(len(samples), max_images)
        panels.append(("data", image_grid(data[:n], min_size=min_size)))
    dpi = 100
    height = max(g.shape[1] for _, g in panels)
    width = sum(g.shape[2] for _, g in panels)
    fig = Figure(figsize=(width / dpi + 0.3 * len(panels), height / dpi + 0.7), dpi=dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, grid) in zip(axes, panels, strict=True):
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None, min_size: int = 1) -> Tensor:
    """Save images in [-1, 1] as one PNG grid (each upscaled to ``min_size`` pixels); returns the grid (C, H, W)
    in [0, 1]."""
    from torchvision.utils import save_image

    grid = image_grid(images, nrow=nrow, min_size=min_size)
    save_image(grid, str(path))
    return grid
