"""MCMC diagnostics for chains stored as ``(num_draws, num_chains, *event)``: acceptance, autocorrelation, ESS, R̂.

Effective sample size (Geyer 1992; chains combined as in Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, the
estimator of Stan). With M chains of N draws, per-chain autocovariances ``γ_m(t)`` (divided by N), within-chain
variance ``W = mean_m s_m²`` and between-chain variance ``B/N = var_m(x̄_m)``:

    var⁺ = (N − 1)/N · W + B/N,      ρ̂_t = 1 − (W − mean_m γ_m(t)) / var⁺
    P_k = ρ̂_{2k} + ρ̂_{2k+1},  summed while positive and forced non-increasing (initial monotone sequence)
    τ̂ = −1 + 2 Σ_k P_k,           ESS = M N / τ̂

Split-R̂ (Gelman et al. 2013; Vehtari et al. 2021): every chain is cut in two halves, then
``R̂ = sqrt(var⁺ / W)`` over the 2M half-chains. The rank-normalised form replaces the draws by the normal scores of
their pooled ranks, ``z = Φ⁻¹((r − 3/8) / (S + 1/4))``, and reports the larger of the R̂ of ``z`` (bulk) and of the
normal scores of the folded draws ``|x − median|`` (tails). See docs/algorithms.md#mcmc-diagnostics.

A coordinate that never varies has no defined autocorrelation: its ESS and R̂ are NaN, as in Stan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "MCMCDiagnostics",
    "acceptance_rate",
    "autocorrelation",
    "effective_sample_size",
    "split_rhat",
    "summarize",
]


def _check_chains(chains: object, min_draws: int, what: str) -> Tensor:
    if not isinstance(chains, Tensor):
        raise TypeError(f"{what}: chains must be a torch.Tensor (num_draws, num_chains, *event), "
                        f"got {type(chains).__name__}")
    if chains.dim() < 2:
        raise ValueError(
            f"{what}: chains must have shape (num_draws, num_chains, *event), got {tuple(chains.shape)}; "
            "for a single chain of scalars use x[:, None]"
        )
    if chains.shape[0] < min_draws or chains.shape[1] < 1:
        raise ValueError(
            f"{what} needs at least {min_draws} draws and one chain, got shape {tuple(chains.shape)} "
            "(num_draws, num_chains, *event)"
        )
    if not bool(torch.isfinite(chains).all()):
        raise ValueError(
            f"{what}: chains hold NaN or infinite values; a diverged chain has no meaningful statistics, "
            "find the step where it diverged (the samplers raise there) and rerun with a smaller step"
        )
    return chains.detach().double()


def acceptance_rate(chains: Tensor, per_chain: bool = False) -> Tensor:
    """Fraction of transitions that moved, from a stored trace of a Metropolis–Hastings chain.

    A rejected proposal repeats the state exactly, so ``rate = mean_t 1[x_t ≠ x_{t−1}]`` (any coordinate).

    Args:
        chains: ``(num_draws, num_chains, *event)``, every draw of every chain, at least two draws.
        per_chain: return one rate per chain ``(num_chains,)`` instead of the overall mean (0-d).
    """
    x = _check_chains(chains, 2, "acceptance_rate")
    moved = (x[1:] != x[:-1]).reshape(x.shape[0] - 1, x.shape[1], -1).any(-1).double()
    return moved.mean(0) if per_chain else moved.mean()


def _fft_autocov(x: Tensor) -> Tensor:
    """Biased autocovariance (divided by N) along dim 0 for every other index, by zero-padded FFT."""
    n = x.shape[0]
    xc = x - x.mean(0, keepdim=True)
    size = 1 << (2 * n - 1).bit_length()  # ≥ 2N − 1: no circular wrap-around
    f = torch.fft.rfft(xc, n=size, dim=0)
    return torch.fft.irfft(f.real**2 + f.imag**2, n=size, dim=0)[:n] / n


def autocorrelation(chains: Tensor) -> Tensor:
    """Normalised autocorrelation ``ρ_m(t) = γ_m(t) / γ_m(0)`` of each chain and coordinate, by FFT.

    ``γ_m(t) = (1/N) Σ_{s<N−t} (x_s − x̄)(x_{s+t} − x̄)`` (the biased estimator, positive semi-definite).

    Args:
        chains: ``(num_draws, num_chains, *event)``.

    Returns:
        float64 ``(num_draws, num_chains, *event)``, lag along dim 0, ``ρ(0) = 1`` (NaN for a constant chain).
    """
    x = _check_chains(chains, 2, "autocorrelation")
    acov = _fft_autocov(x)
    return acov / acov[:1]


def _split(x: Tensor) -> Tensor:
    """``(N, M, ...) -> (N // 2, 2M, ...)``: each chain's first and second half (the middle draw of odd N dropped)."""
    half = x.shape[0] // 2
    return torch.cat([x[:half], x[x.shape[0] - half:]], dim=1)


def _within_between(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(W, var⁺)`` over dim 1 (chains) for draws along dim 0."""
    n, m = x.shape[0], x.shape[1]
    w = x.var(0, correction=1).mean(0)
    between = x.mean(0).var(0, correction=1) if m > 1 else torch.zeros_like(w)
    return w, (n - 1) / n * w + between


def _normal_scores(x: Tensor) -> Tensor:
    """Rank-normalise the pooled draws of each coordinate: ``Φ⁻¹((r − 3/8)/(S + 1/4))`` with average ranks for ties
    (a rejected Metropolis–Hastings proposal repeats a value exactly)."""
    shape = x.shape
    flat = x.reshape(shape[0] * shape[1], -1).T.contiguous()  # (coords, S)
    s = flat.shape[1]
    ordered = flat.sort(dim=1).values
    left = torch.searchsorted(ordered, flat, right=False)
    right = torch.searchsorted(ordered, flat, right=True)
    rank = (left + right + 1).double() / 2.0  # 1-based average rank
    z = math.sqrt(2.0) * torch.erfinv(2.0 * (rank - 0.375) / (s + 0.25) - 1.0)
    return z.T.reshape(shape)


def _rhat(x: Tensor) -> Tensor:
    w, var_plus = _within_between(_split(x))
    return torch.sqrt(var_plus / w)


def split_rhat(chains: Tensor, rank_normalize: bool = True) -> Tensor:
    """Split potential scale reduction factor R̂ per coordinate (Gelman et al. 2013; Vehtari et al. 2021).

    ``R̂ = sqrt(var⁺ / W)`` over the half-chains, with ``var⁺ = (N−1)/N · W + B/N``. Near 1 (below 1.01 in Vehtari
    et al.'s advice) when the chains agree; well above 1 when they sit in different regions. With
    ``rank_normalize`` (the default) it is Vehtari et al.'s ``max(R̂_bulk, R̂_tail)`` on normal scores of the ranks,
    robust to heavy tails; otherwise the classic split-R̂ of the raw draws.

    Args:
        chains: ``(num_draws, num_chains, *event)``, at least 4 draws.

    Returns:
        float64 ``(*event)`` (0-d for scalar chains).
    """
    x = _check_chains(chains, 4, "split_rhat")
    if not rank_normalize:
        return _rhat(x)
    folded = (x - x.reshape(-1, *x.shape[2:]).median(0).values).abs()
    return torch.maximum(_rhat(_normal_scores(x)), _rhat(_normal_scores(folded)))


def effective_sample_size(chains: Tensor, split: bool = True, rank_normalize: bool = False) -> Tensor:
    """Effective sample size per coordinate, Geyer's initial monotone sequence over the combined chains.

    ``ESS = M N / τ̂`` with ``τ̂ = −1 + 2 Σ_k P_k`` and ``P_k = ρ̂_{2k} + ρ̂_{2k+1}`` the pair sums of the multi-chain
    autocorrelation ``ρ̂_t = 1 − (W − mean_m γ_m(t)) / var⁺`` (Geyer 1992; Vehtari et al. 2021, eq. 10): the sum
    stops before the first non-positive ``P_k``, and each ``P_k`` is capped by the one before. As in Stan, ``τ̂`` is
    bounded below by ``1 / log10(MN)``, so the ESS of anti-correlated chains stays below ``MN · log10(MN)``.

    Args:
        chains: ``(num_draws, num_chains, *event)``, at least 4 draws.
        split: cut every chain in halves first (Stan's default: a trend within a chain then lowers the ESS).
        rank_normalize: compute it on the normal scores of the ranks ("bulk ESS" of Vehtari et al.).

    Returns:
        float64 ``(*event)``, in draws (the i.i.d. value is ``num_draws · num_chains``).
    """
    x = _check_chains(chains, 4, "effective_sample_size")
    if rank_normalize:
        x = _normal_scores(x)
    if split:
        x = _split(x)
    n, m = x.shape[0], x.shape[1]
    acov = _fft_autocov(x)  # (N, M, ...)
    w, var_plus = _within_between(x)
    rho = 1.0 - (w - acov.mean(1)) / var_plus  # (N, ...)
    rho[0] = torch.where(torch.isnan(rho[0]), rho[0], torch.ones_like(rho[0]))  # ρ̂_0 = 1 by definition (as Stan)
    pairs = n // 2
    p = rho[: 2 * pairs].reshape(pairs, 2, *rho.shape[1:]).sum(1)  # P_k, k = 0 .. pairs − 1
    positive = (p > 0).to(torch.int8).cumprod(0).bool()  # initial positive sequence
    monotone = torch.cummin(p, dim=0).values  # initial monotone sequence
    tau = -1.0 + 2.0 * torch.where(positive, monotone, torch.zeros_like(p)).sum(0)
    total = n * m
    tau = torch.clamp(tau, min=1.0 / math.log10(total)) if total > 1 else tau
    return torch.where(torch.isfinite(var_plus) & (var_plus > 0), total / tau, torch.full_like(tau, math.nan))


@dataclass
class MCMCDiagnostics:
    """Per-coordinate ESS and split-R̂ of a set of chains, with the acceptance rate when the trace shows it.

    Attributes:
        ess: ``(*event)`` effective sample size (bulk, rank-normalised, split chains).
        rhat: ``(*event)`` rank-normalised split-R̂.
        acceptance_rate: fraction of transitions that moved (``None`` when not computed).
        num_draws, num_chains: the trace's size.
    """

    ess: Tensor
    rhat: Tensor
    acceptance_rate: float | None
    num_draws: int
    num_chains: int

    @property
    def min_ess(self) -> float:
        return float(self.ess.min())

    @property
    def max_rhat(self) -> float:
        return float(self.rhat.max())

    def as_dict(self) -> dict[str, float]:
        """Scalars for a logger: ``ess_min``, ``ess_mean``, ``rhat_max`` and ``acceptance_rate`` when known."""
        out = {"ess_min": self.min_ess, "ess_mean": float(self.ess.mean()), "rhat_max": self.max_rhat}
        if self.acceptance_rate is not None:
            out["acceptance_rate"] = self.acceptance_rate
        return out


def summarize(chains: Tensor, with_acceptance: bool = True) -> MCMCDiagnostics:
    """Bulk ESS, split-R̂ and (for a Metropolis–Hastings trace) the acceptance rate of ``chains``
    ``(num_draws, num_chains, *event)``. The acceptance rate from a trace is meaningless for unadjusted Langevin
    (every move is taken): pass ``with_acceptance=False`` there."""
    x = _check_chains(chains, 4, "summarize")
    return MCMCDiagnostics(
        ess=effective_sample_size(x, split=True, rank_normalize=True),
        rhat=split_rhat(x, rank_normalize=True),
        acceptance_rate=float(acceptance_rate(x)) if with_acceptance else None,
        num_draws=int(x.shape[0]),
        num_chains=int(x.shape[1]),
    )
