"""Matplotlib figures for samples.

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API, not ``pyplot``: they need no GUI
backend (headless training writes PNGs) and importing this module leaves the user's backend alone (inline plots
in notebooks keep working; a notebook shows a returned figure by displaying it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor


def plot_samples_2d(
    samples: Tensor,
    data: Tensor | None = None,
    energy: Callable[[Tensor], Tensor] | None = None,
    title: str = "",
    path: str | Path | None = None,
    limit: float | None = None,
    resolution: int = 200,
) -> Figure:
    """Scatter ``samples`` (orange) over ``data`` (grey); with ``energy``, a heat map of exp(−E) underneath."""
    samples = samples.detach().float().cpu()
    fig = Figure(figsize=(5.5, 5.5), dpi=110)
    ax = fig.subplots()
    pts = samples if data is None else torch.cat([samples, data.float().cpu()])
    finite = pts[torch.isfinite(pts).all(dim=1)]
    if limit is None:
        ref = data.float().cpu() if data is not None else finite
        limit = float(ref.abs().quantile(0.995)) * 1.25 if len(ref) else 4.0
    if energy is not None:
        xs = torch.linspace(-limit, limit, resolution)
        gx, gy = torch.meshgrid(xs, xs, indexing="xy")
        grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)
        with torch.no_grad():
            e = energy(grid).float().cpu().reshape(resolution, resolution)
        density = torch.exp(-(e - e.min()))
        ax.imshow(density.numpy(), extent=(-limit, limit, -limit, limit), origin="lower", cmap="viridis")
    if data is not None:
        d = data.float().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=2, c="0.6" if energy is None else "white", alpha=0.4, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.6, label="samples")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> Tensor:
    """Save images in [-1, 1] as one PNG grid; returns the grid tensor (C, H, W) in [0, 1]."""
    from torchvision.utils import make_grid, save_image

    images = images.detach().float().cpu().clamp(-1, 1)
    nrow = nrow or max(1, int(len(images) ** 0.5))
    grid = make_grid((images + 1) / 2, nrow=nrow, padding=1)
    save_image(grid, str(path))
    return grid
