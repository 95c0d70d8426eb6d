"""Test NLL of a 2-D energy model by quadrature of its partition function on a grid.

For p(x) = exp(−E(x)) / Z in 2-D, Z = ∫ exp(−E) is approximated by the midpoint rule on the n×n cell
centres of the box [−L, L]²:  log Z ≈ logsumexp_g(−E(g)) + log(h²),  h = 2L/n.  The test NLL is then
mean_i E(x_i) + log Z. Quadrature misses the mass outside the box, so the same quantity is recomputed on
[−2L, 2L]² with the same cell size (2n cells a side): a large change ("mass_escape") means the energy does
not normalise — its mass escapes to infinity — which is a property of the model, not noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def _check_grid(limit: float, n: int) -> None:
    if not (isinstance(limit, int | float) and math.isfinite(limit) and limit > 0):
        raise ValueError(f"limit must be a positive finite number (half-width of the box), got {limit!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (cells per side), got {n!r}")


def _placement(
    energy_fn: EnergyFn, device: torch.device | str | None
) -> tuple[torch.device, torch.dtype]:
    """Device and dtype to feed the energy: given device, else the module's parameters', else CPU float32."""
    dtype = torch.float32
    tensor = None
    if isinstance(energy_fn, nn.Module):
        tensor = next(iter(energy_fn.parameters()), None)
        if tensor is None:
            tensor = next(iter(energy_fn.buffers()), None)
    if tensor is not None and torch.is_floating_point(tensor):
        dtype = tensor.dtype
    if device is not None:
        return torch.device(device), dtype
    return (tensor.device if tensor is not None else torch.device("cpu")), dtype


def _cell_centres(limit: float, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    h = 2.0 * limit / n
    return (-limit + h * (torch.arange(n, dtype=torch.float64) + 0.5)).to(device=device, dtype=dtype)


def _grid_points(limit: float, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n*n, 2) points [x, y], row-major in y then x, so a reshape to (n, n) indexes [y, x]."""
    c = _cell_centres(limit, n, device, dtype)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _evaluate(energy_fn: EnergyFn, points: torch.Tensor, chunk: int) -> torch.Tensor:
    """E at each point, shape (N,), float64; the energy must return one value per point."""
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    out = []
    with torch.no_grad():
        for start in range(0, points.shape[0], chunk):
            batch = points[start : start + chunk]
            e = energy_fn(batch)
            if not isinstance(e, torch.Tensor) or e.numel() != batch.shape[0]:
                shape = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
                raise ValueError(
                    f"energy_fn must return one energy per point, shape ({batch.shape[0]},); got {shape}"
                )
            out.append(e.reshape(-1).to(torch.float64))
    return torch.cat(out)


def grid_log_partition(
    energy_fn: EnergyFn,
    limit: float = 6.0,
    n: int = 400,
    chunk: int = 40000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """log Z ≈ logsumexp(−E(g)) + log(h²) over the n×n cell centres g of [−L, L]², h = 2L/n.

    ``energy_fn`` maps (B, 2) points to energies (B,); it is called under ``torch.no_grad`` on chunks of
    ``chunk`` points, on ``device`` (default: the device of the module's parameters, else CPU). The module's
    train/eval mode is left as it is. Returns a float64 0-d tensor; NaN energies give a NaN result.
    """
    _check_grid(limit, n)
    dev, dtype = _placement(energy_fn, device)
    energies = _evaluate(energy_fn, _grid_points(limit, n, dev, dtype), chunk)
    return torch.logsumexp(-energies, dim=0) + 2.0 * math.log(2.0 * limit / n)


def grid_nll(
    energy_fn: EnergyFn,
    x_test: torch.Tensor,
    limit: float = 6.0,
    n: int = 400,
    chunk: int = 40000,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Test NLL of the 2-D density exp(−E)/Z with Z from :func:`grid_log_partition` (``docs/algorithms.md#grid-nll``).

    Returns float64 0-d tensors:
      - ``nll``: mean_i E(x_i) + log Z on [−L, L]² (n cells a side),
      - ``log_z``: that log Z,
      - ``nll_2L``, ``log_z_2L``: the same on [−2L, 2L]² with 2n cells a side (same cell size, so the two
        differ only by the mass in the wider box),
      - ``mass_escape``: |log_z_2L − log_z|; near 0 for a normalisable energy whose mass lies in the box.
    """
    if not isinstance(x_test, torch.Tensor) or x_test.dim() != 2 or x_test.shape[1] != 2:
        shape = tuple(x_test.shape) if isinstance(x_test, torch.Tensor) else type(x_test).__name__
        raise ValueError(f"grid_nll works on 2-D data: x_test must have shape (N, 2), got {shape}")
    if x_test.shape[0] == 0:
        raise ValueError("x_test is empty; pass at least one test point")
    dev, dtype = _placement(energy_fn, device)
    mean_energy = _evaluate(energy_fn, x_test.to(device=dev, dtype=dtype), chunk).mean()
    log_z = grid_log_partition(energy_fn, limit, n, chunk, dev)
    log_z_2l = grid_log_partition(energy_fn, 2.0 * limit, 2 * n, chunk, dev)
    return {
        "nll": mean_energy + log_z,
        "log_z": log_z,
        "nll_2L": mean_energy + log_z_2l,
        "log_z_2L": log_z_2l,
        "mass_escape": (log_z_2l - log_z).abs(),
    }


def energy_grid(
    energy_fn: EnergyFn,
    limit: float = 6.0,
    n: int = 200,
    chunk: int = 40000,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energies on the n×n cell centres of [−L, L]², for heat maps.

    Returns CPU tensors ``(xs, ys, E)`` with xs, ys of shape (n,) and ``E[i, j] = E((xs[j], ys[i]))``, the
    layout ``matplotlib``'s ``pcolormesh(xs, ys, E)`` / ``contourf`` expect. E is in the energy's dtype.
    """
    _check_grid(limit, n)
    dev, dtype = _placement(energy_fn, device)
    energies = _evaluate(energy_fn, _grid_points(limit, n, dev, dtype), chunk).to(dtype)
    centres = _cell_centres(limit, n, torch.device("cpu"), dtype)
    return centres, centres.clone(), energies.reshape(n, n).cpu()
