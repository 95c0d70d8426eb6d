"""Noise schedules of variance-preserving diffusion: ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε``.

Time is in schedule units: ``t ∈ [0, T−1]`` with ``T = num_timesteps``; step ``t`` is the ``t+1``-th noising
step of Ho et al. (2020), so ``ᾱ_0 = 1 − β_0 < 1``. "Step −1" is the clean data (``ᾱ = 1``), which is how
:meth:`NoiseSchedule.posterior` spells the last denoising step.

Every quantity is derived from ``log ᾱ``, held in a table computed in float64 and stored in float32 as a
non-persistent buffer (it is a function of the constructor arguments, so it never needs a checkpoint). Working
in ``log ᾱ`` keeps ``1 − ᾱ = −expm1(log ᾱ)`` accurate where ``ᾱ`` is close to 1 (the small-noise end), which a
float32 ``ᾱ`` table would not. Fractional ``t`` interpolates ``log ᾱ`` linearly between integer steps, and
:meth:`NoiseSchedule.t_from_edm_sigma` inverts that interpolation exactly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = [
    "NoiseSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "SigmoidSchedule",
    "VPSchedule",
    "SCHEDULES",
    "get_schedule",
]

# Slack for t a hair outside [0, T-1] from float round-off (e.g. t recovered from a σ by inversion).
_T_TOLERANCE = 1e-3


def _working(table: Tensor) -> Tensor:
    """The table in at least float32: a half-precision module cast must not cost the schedule its accuracy."""
    return table.float() if table.dtype in (torch.float16, torch.bfloat16) else table


def _broadcast_to_data(coef: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample coefficient (B,) to (B, 1, ..., 1) so that it multiplies a batch x (B, ...)."""
    if coef.dim() == 0:
        return coef
    if coef.dim() != 1 or coef.shape[0] != x.shape[0]:
        raise ValueError(
            f"a per-sample coefficient must have shape (B,) = ({x.shape[0]},) to match the batch of shape "
            f"{tuple(x.shape)}; got shape {tuple(coef.shape)}"
        )
    return coef.reshape(-1, *([1] * (x.dim() - 1)))


class NoiseSchedule(nn.Module):
    """Base class: a table of ``log ᾱ_t`` for ``t = 0..T−1`` and everything derived from it.

    Subclasses implement :meth:`_log_alpha_bar_table` (float64, shape (T,), strictly decreasing) and may
    override :meth:`log_alpha_bar` and :meth:`_t_from_neg_log_alpha_bar` with a closed form.

    Derived quantities, with ``ᾱ = ᾱ(t)``:
    ``σ(t) = sqrt(1 − ᾱ)``, ``SNR(t) = ᾱ / (1 − ᾱ)`` and the EDM noise level
    ``σ_EDM(t) = sqrt((1 − ᾱ) / ᾱ)`` of the change of variables ``y = x / sqrt(ᾱ)`` that turns the
    variance-preserving process into the variance-exploding ``y = x_0 + σ_EDM ε`` (Karras et al., 2022).
    """

    log_alpha_bars: Tensor

    def __init__(self, num_timesteps: int) -> None:
        super().__init__()
        if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, numbers.Integral) or num_timesteps < 2:
            raise ValueError(f"num_timesteps must be an integer >= 2, got {num_timesteps!r}")
        self.num_timesteps = int(num_timesteps)

    def _build(self) -> None:
        """Compute the float64 table once the subclass has stored its parameters."""
        table = self._log_alpha_bar_table().to(torch.float64)
        if table.shape != (self.num_timesteps,):
            raise RuntimeError(f"{type(self).__name__}: log ᾱ table has shape {tuple(table.shape)}")
        if not torch.isfinite(table).all() or not (table < 0).all() or not (table.diff() < 0).all():
            raise ValueError(
                f"{type(self).__name__} with these parameters does not give 1 > ᾱ_0 > ᾱ_1 > ... > 0 "
                f"(log ᾱ ranges over [{table.min().item():.4g}, {table.max().item():.4g}]); "
                "check that the betas are in (0, 1) and increasing noise"
            )
        # A plain attribute, not a buffer: Module.to() leaves it alone, so _apply can re-derive the buffer.
        self._table64 = table
        self.register_buffer("log_alpha_bars", table.to(torch.float32), persistent=False)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> NoiseSchedule:
        """After ``.to()``/``.double()``/``.half()``, rebuild the table from float64 in the new dtype (at least
        float32), so a cast never rounds ``log ᾱ`` through half precision and ``.double()`` gets exact values."""
        super()._apply(fn, recurse)
        buf = self.log_alpha_bars
        dtype = torch.float64 if buf.dtype == torch.float64 else torch.float32
        self.log_alpha_bars = self._table64.to(device=buf.device, dtype=dtype)
        return self

    def _log_alpha_bar_table(self) -> Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ time handling
    def _check_t(self, t: Tensor) -> Tensor:
        if not isinstance(t, Tensor):
            raise TypeError(f"t must be a torch.Tensor of diffusion times, got {type(t).__name__}")
        t = t if t.is_floating_point() else t.to(_working(self.log_alpha_bars).dtype)
        hi = self.num_timesteps - 1
        if torch.compiler.is_compiling():  # a data-dependent check would break the graph
            return t.clamp(0.0, float(hi))
        # NaN fails both comparisons and is reported here rather than silently indexed.
        inside = (t >= -_T_TOLERANCE) & (t <= hi + _T_TOLERANCE)
        if not bool(inside.all()):
            bad = t[~inside]
            raise ValueError(
                f"diffusion time t must lie in [0, T-1] = [0, {hi}] (schedule units); got {bad.numel()} "
                f"value(s) outside, e.g. {bad.flatten()[0].item()!r}; map a continuous τ ∈ (0, 1] to τT − 1."
            )
        return t.clamp(0.0, float(hi))

    def _dtype_for(self, t: Tensor) -> torch.dtype:
        return torch.promote_types(_working(self.log_alpha_bars).dtype, t.dtype)

    # ------------------------------------------------------------------ core quantities
    def log_alpha_bar(self, t: Tensor) -> Tensor:
        """``log ᾱ(t)``; linear interpolation of the integer-step table at fractional ``t``."""
        t = self._check_t(t)
        table = _working(self.log_alpha_bars).to(self._dtype_for(t))
        t = t.to(table.dtype)
        lo = t.floor().clamp(max=self.num_timesteps - 2)
        w = t - lo
        i = lo.long()
        return torch.lerp(table[i], table[i + 1], w)

    def alpha_bar(self, t: Tensor) -> Tensor:
        """``ᾱ(t) = ∏_{s ≤ t} (1 − β_s)``, the signal variance at time ``t``."""
        return self.log_alpha_bar(t).exp()

    def one_minus_alpha_bar(self, t: Tensor) -> Tensor:
        """``1 − ᾱ(t)``, computed as ``−expm1(log ᾱ)`` to stay accurate where ᾱ ≈ 1."""
        return -torch.expm1(self.log_alpha_bar(t))

    def sigma(self, t: Tensor) -> Tensor:
        """Noise standard deviation ``sqrt(1 − ᾱ(t))`` of the variance-preserving process."""
        return self.one_minus_alpha_bar(t).sqrt()

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio ``ᾱ / (1 − ᾱ) = 1 / expm1(−log ᾱ)``."""
        return 1.0 / torch.expm1(-self.log_alpha_bar(t))

    def edm_sigma(self, t: Tensor) -> Tensor:
        """EDM noise level ``sqrt((1 − ᾱ)/ᾱ) = sqrt(expm1(−log ᾱ))`` (Karras et al., 2022, VP ↔ VE)."""
        return torch.expm1(-self.log_alpha_bar(t)).sqrt()

    def _t_from_neg_log_alpha_bar(self, u: Tensor) -> Tensor:
        """Inverse of ``t ↦ −log ᾱ(t)`` for the piecewise-linear interpolation, clamped to [0, T−1]."""
        table = -_working(self.log_alpha_bars).to(u.dtype)  # increasing
        idx = torch.searchsorted(table, u.contiguous()).clamp(1, self.num_timesteps - 1)
        lo, hi = table[idx - 1], table[idx]
        t = (idx - 1).to(u.dtype) + (u - lo) / (hi - lo)
        return t.clamp(0.0, float(self.num_timesteps - 1))

    def t_from_edm_sigma(self, s: Tensor) -> Tensor:
        """Time ``t`` at which ``edm_sigma(t) = s`` (monotone inverse), clamped to ``[0, T−1]``.

        Uses ``−log ᾱ = log(1 + s²)``; within an integer step ``−log ᾱ`` is linear in ``t``, so the inverse of
        the interpolated schedule is exact. ``s`` below ``edm_sigma(0)`` maps to 0, above ``edm_sigma(T−1)``
        to ``T−1``.
        """
        if not isinstance(s, Tensor):
            raise TypeError(f"s must be a torch.Tensor of EDM noise levels, got {type(s).__name__}")
        if bool((s < 0).any()) or bool(torch.isnan(s).any()):
            raise ValueError("EDM noise levels s must be non-negative numbers (got a negative value or NaN)")
        s = s if s.is_floating_point() else s.float()
        s = s.to(self._dtype_for(s))
        return self._t_from_neg_log_alpha_bar(torch.log1p(s.square()))

    # ------------------------------------------------------------------ forward process and posterior
    @property
    def betas(self) -> Tensor:
        """Per-step ``β_t = 1 − ᾱ_t / ᾱ_{t−1}`` (with ``ᾱ_{−1} = 1``), shape (T,)."""
        table = _working(self.log_alpha_bars)
        prev = torch.cat([table.new_zeros(1), table[:-1]])
        return -torch.expm1(table - prev)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw from ``q(x_t | x_0)``: ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε`` with ``ε = noise``."""
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
        la = self.log_alpha_bar(t)
        a = _broadcast_to_data(la.exp(), x0)
        b = _broadcast_to_data((-torch.expm1(la)).sqrt(), x0)
        return a.sqrt().to(x0.dtype) * x0 + b.to(x0.dtype) * noise

    def posterior(self, x_t: Tensor, x0: Tensor, t: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``q(x_s | x_t, x_0)`` for ``s < t``; ``s < 0`` is the clean data (``ᾱ_s = 1``).

        With ``ᾱ_{t|s} = ᾱ_t/ᾱ_s`` and ``β_{t|s} = 1 − ᾱ_{t|s}`` (Ho et al., 2020, eq. 6–7, generalised to
        strided steps as in Song et al., 2021)::

            mean = sqrt(ᾱ_s) β_{t|s} / (1 − ᾱ_t) · x_0 + sqrt(ᾱ_{t|s}) (1 − ᾱ_s) / (1 − ᾱ_t) · x_t
            β̃    = (1 − ᾱ_s) / (1 − ᾱ_t) · β_{t|s}

        Returns ``(mean, β̃, β_{t|s})``; the variances have shape (B,).
        """
        if x_t.shape != x0.shape:
            raise ValueError(f"x_t {tuple(x_t.shape)} and x0 {tuple(x0.shape)} must have the same shape")
        if not isinstance(s, Tensor):
            raise TypeError(f"s must be a torch.Tensor of diffusion times, got {type(s).__name__}")
        if bool((s >= t).any()):
            raise ValueError("posterior q(x_s | x_t, x_0) needs s < t for every sample (s < 0: clean data)")
        la_t = self.log_alpha_bar(t)
        clean = s < 0
        la_s = torch.where(clean, torch.zeros_like(la_t), self.log_alpha_bar(s.clamp(min=0)).to(la_t.dtype))
        one_minus_t = -torch.expm1(la_t)
        one_minus_s = -torch.expm1(la_s)
        beta_ts = -torch.expm1(la_t - la_s)
        coef_x0 = (0.5 * la_s).exp() * beta_ts / one_minus_t
        coef_xt = (0.5 * (la_t - la_s)).exp() * one_minus_s / one_minus_t
        var = one_minus_s / one_minus_t * beta_ts
        dtype = x_t.dtype
        coef_x0 = _broadcast_to_data(coef_x0, x0).to(dtype)
        coef_xt = _broadcast_to_data(coef_xt, x_t).to(dtype)
        mean = coef_x0 * x0 + coef_xt * x_t
        return mean, var, beta_ts

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}"


class LinearSchedule(NoiseSchedule):
    """β linear from ``beta_start`` to ``beta_end``; ``ᾱ_t = ∏_{s≤t} (1 − β_s)`` (Ho et al., 2020)."""

    def __init__(self, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        super().__init__(num_timesteps)
        if not 0.0 < beta_start <= beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start=}, {beta_end=}")
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self._build()

    def _log_alpha_bar_table(self) -> Tensor:
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_timesteps, dtype=torch.float64)
        return torch.cumsum(torch.log1p(-betas), 0)

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}, beta_start={self.beta_start}, beta_end={self.beta_end}"


def _clipped_table(f: Tensor, max_beta: float) -> Tensor:
    """log ᾱ_t for ``ᾱ_t = f[t+1]/f[0]`` with every step's β clipped at ``max_beta``.

    ``f`` is a continuous ᾱ on the grid τ = 0, 1/T, ..., 1; clipping β keeps ᾱ_{T−1} > 0 where f(1) = 0.
    """
    log_ratio = torch.log(f[1:]) - torch.log(f[:-1])  # log(1 − β_t), −inf where f hits 0
    log_ratio = log_ratio.clamp(min=math.log1p(-max_beta))
    return torch.cumsum(log_ratio, 0)


class CosineSchedule(NoiseSchedule):
    """``ᾱ_t = f(t+1)/f(0)``, ``f(τT) = cos²((τ + s)/(1 + s) · π/2)``, β clipped at ``max_beta``.

    Nichol & Dhariwal (2021), "Improved denoising diffusion probabilistic models", eq. 17; the clip at 0.999
    prevents the singularity at τ = 1. The last step has ᾱ ≈ 2e-9 (T = 1000): sampling starts from pure noise.
    """

    def __init__(self, num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> None:
        super().__init__(num_timesteps)
        if s <= 0:
            raise ValueError(f"cosine offset s must be positive, got {s}")
        if not 0.0 < max_beta < 1.0:
            raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
        self.s = float(s)
        self.max_beta = float(max_beta)
        self._build()

    def _log_alpha_bar_table(self) -> Tensor:
        tau = torch.linspace(0.0, 1.0, self.num_timesteps + 1, dtype=torch.float64)
        f = torch.cos((tau + self.s) / (1.0 + self.s) * (math.pi / 2)).square()
        return _clipped_table(f, self.max_beta)

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}, s={self.s}, max_beta={self.max_beta}"


class SigmoidSchedule(NoiseSchedule):
    """``ᾱ_t = g(t+1)/g(0)`` with a sigmoid-shaped ``g`` of ``τ = (t+1)/T``::

        g(τ) = (sig(end/τ₀) − sig(((end − start)τ + start)/τ₀)) / (sig(end/τ₀) − sig(start/τ₀))

    τ₀ = ``tau`` is the temperature; β is clipped at ``max_beta`` as in the cosine schedule.
    Jabri et al. (2022), "Scalable adaptive computation for iterative generation"; Chen (2023), "On the
    importance of noise scheduling for diffusion models", Algorithm 1 (its ``sigmoid_schedule``).
    """

    def __init__(
        self,
        num_timesteps: int = 1000,
        start: float = -3.0,
        end: float = 3.0,
        tau: float = 1.0,
        max_beta: float = 0.999,
    ) -> None:
        super().__init__(num_timesteps)
        if not start < end:
            raise ValueError(f"sigmoid schedule needs start < end, got start={start}, end={end}")
        if tau <= 0:
            raise ValueError(f"sigmoid temperature tau must be positive, got {tau}")
        if not 0.0 < max_beta < 1.0:
            raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
        self.start, self.end, self.tau, self.max_beta = float(start), float(end), float(tau), float(max_beta)
        self._build()

    def _log_alpha_bar_table(self) -> Tensor:
        tau = torch.linspace(0.0, 1.0, self.num_timesteps + 1, dtype=torch.float64)
        v_start = torch.sigmoid(torch.tensor(self.start / self.tau, dtype=torch.float64))
        v_end = torch.sigmoid(torch.tensor(self.end / self.tau, dtype=torch.float64))
        v = torch.sigmoid((tau * (self.end - self.start) + self.start) / self.tau)
        g = (v_end - v) / (v_end - v_start)
        return _clipped_table(g.clamp(min=0.0), self.max_beta)

    def extra_repr(self) -> str:
        return (
            f"num_timesteps={self.num_timesteps}, start={self.start}, end={self.end}, tau={self.tau}, "
            f"max_beta={self.max_beta}"
        )


class VPSchedule(NoiseSchedule):
    """Continuous VP SDE with linear ``β(τ) = β_min + τ(β_max − β_min)`` (Song et al., 2021, "Score-based
    generative modeling through stochastic differential equations"), sampled at ``τ = (t + 1)/T``::

        ᾱ(τ) = exp(−½ τ² (β_max − β_min) − τ β_min)

    The closed form is used at fractional ``t`` too, and :meth:`t_from_edm_sigma` solves the quadratic.
    """

    def __init__(self, num_timesteps: int = 1000, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        super().__init__(num_timesteps)
        if not 0.0 < beta_min <= beta_max:
            raise ValueError(f"need 0 < beta_min <= beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self._build()

    def _neg_log_alpha_bar_tau(self, tau: Tensor) -> Tensor:
        return 0.5 * tau.square() * (self.beta_max - self.beta_min) + tau * self.beta_min

    def _log_alpha_bar_table(self) -> Tensor:
        tau = torch.arange(1, self.num_timesteps + 1, dtype=torch.float64) / self.num_timesteps
        return -self._neg_log_alpha_bar_tau(tau)

    def log_alpha_bar(self, t: Tensor) -> Tensor:
        t = self._check_t(t)
        t = t.to(self._dtype_for(t))
        return -self._neg_log_alpha_bar_tau((t + 1.0) / self.num_timesteps)

    def _t_from_neg_log_alpha_bar(self, u: Tensor) -> Tensor:
        # Positive root of ½ a τ² + b τ − u = 0, written as 2u / (b + sqrt(b² + 2au)) to avoid cancellation.
        a, b = self.beta_max - self.beta_min, self.beta_min
        tau = 2.0 * u / (b + torch.sqrt(b * b + 2.0 * a * u))
        return (tau * self.num_timesteps - 1.0).clamp(0.0, float(self.num_timesteps - 1))

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}, beta_min={self.beta_min}, beta_max={self.beta_max}"


SCHEDULES: dict[str, type[NoiseSchedule]] = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "sigmoid": SigmoidSchedule,
    "vp": VPSchedule,
}


def get_schedule(name: str, **kwargs: float | int) -> NoiseSchedule:
    """Build a schedule by name (``linear``, ``cosine``, ``sigmoid``, ``vp``) with its keyword arguments."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](**kwargs)
