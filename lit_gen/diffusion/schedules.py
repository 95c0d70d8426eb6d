"""Noise schedules of variance-preserving diffusion: ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε``.

Time is in schedule units: ``t ∈ [0, T−1]`` with ``T = num_timesteps``; step ``t`` is the ``t+1``-th noising
step of Ho et al. (2020), so ``ᾱ_0 = 1 − β_0 < 1``. "Step −1" is the clean data (``ᾱ = 1``), which is how
:meth:`NoiseSchedule.posterior` spells the last denoising step.

Every quantity is derived from ``log ᾱ``, held in a table computed in float64 and stored in float32 as a
non-persistent buffer (it is a function of the constructor arguments, so it never needs a checkpoint). Working
in ``log ᾱ`` keeps ``1 − ᾱ = −expm1(log ᾱ)`` accurate where ``ᾱ`` is close to 1 (the small-noise end), which a
float32 ``ᾱ`` table would not. Fractional ``t`` interpolates ``log ᾱ`` linearly between integer steps, and
:meth:`NoiseSchedule.t_from_edm_sigma` inverts that interpolation exactly.

:class:`DDAEBMSchedule` is the few-step chain of DDAEBM, which also tabulates its starting level (levels
``0..T``). Each step ``x_{t−1} → x_t`` is the Gaussian kernel ``N(sqrt(1 − β_t) x_{t−1}, β_t I)`` of
:mod:`lit_gen.diffusion.kernels`, whose posterior gives :meth:`NoiseSchedule.posterior`
(``docs/algorithms.md#gaussian-noise-kernel``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lit_gen.diffusion.kernels import gaussian_log_prob, posterior_coefficients, transition_log_prob
from lit_gen.utils.config import RecordsInit

__all__ = [
    "NoiseSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "SigmoidSchedule",
    "VPSchedule",
    "DDAEBMSchedule",
    "vp_variance",
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


class NoiseSchedule(RecordsInit, nn.Module):
    """Base class: a table of ``log ᾱ_t`` for ``t = 0..T−1`` and everything derived from it.

    Subclasses implement :meth:`_log_alpha_bar_table` (float64, shape (:attr:`num_levels`,), strictly
    decreasing) and may override :meth:`log_alpha_bar` and :meth:`_t_from_neg_log_alpha_bar` with a closed form.

    Derived quantities, with ``ᾱ = ᾱ(t)``:
    ``σ(t) = sqrt(1 − ᾱ)``, ``SNR(t) = ᾱ / (1 − ᾱ)`` and the EDM noise level
    ``σ_EDM(t) = sqrt((1 − ᾱ) / ᾱ)`` of the change of variables ``y = x / sqrt(ᾱ)`` that turns the
    variance-preserving process into the variance-exploding ``y = x_0 + σ_EDM ε`` (Karras et al., 2022).
    """

    log_alpha_bars: Tensor
    _min_timesteps = 2
    _t_range = "[0, T-1]"

    def __init__(self, num_timesteps: int) -> None:
        super().__init__()
        low = self._min_timesteps
        if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, numbers.Integral) or num_timesteps < low:
            raise ValueError(f"num_timesteps must be an integer >= {low}, got {num_timesteps!r}")
        self.num_timesteps = int(num_timesteps)

    @property
    def num_levels(self) -> int:
        """Number of tabulated times (``t = 0..num_levels − 1``): ``num_timesteps`` here, one more in a
        schedule that also tabulates the level its chain starts from (:class:`DDAEBMSchedule`)."""
        return self.num_timesteps

    def _build(self) -> None:
        """Compute the float64 table once the subclass has stored its parameters."""
        table = self._log_alpha_bar_table().to(torch.float64)
        if table.shape != (self.num_levels,):
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
        hi = self.num_levels - 1
        if torch.compiler.is_compiling():  # a data-dependent check would break the graph
            return t.clamp(0.0, float(hi))
        # NaN fails both comparisons and is reported here rather than silently indexed.
        inside = (t >= -_T_TOLERANCE) & (t <= hi + _T_TOLERANCE)
        if not bool(inside.all()):
            bad = t[~inside]
            raise ValueError(
                f"diffusion time t must lie in {self._t_range} = [0, {hi}] (schedule units); got {bad.numel()} "
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
        lo = t.floor().clamp(max=self.num_levels - 2)
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
        idx = torch.searchsorted(table, u.contiguous()).clamp(1, self.num_levels - 1)
        lo, hi = table[idx - 1], table[idx]
        t = (idx - 1).to(u.dtype) + (u - lo) / (hi - lo)
        return t.clamp(0.0, float(self.num_levels - 1))

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
        """Per-step ``β_t = 1 − ᾱ_t / ᾱ_{t−1}`` (with ``ᾱ_{−1} = 1``), shape (num_levels,)."""
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

        i.e. the Gaussian posterior of the kernel ``N(x_t; sqrt(ᾱ_{t|s}) x_s, β_{t|s} I)`` under the prior
        ``q(x_s | x_0)`` (:func:`lit_gen.diffusion.kernels.posterior_coefficients`).
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
        coef_x0, coef_xt, var = posterior_coefficients(
            (0.5 * la_s).exp(), one_minus_s, (0.5 * (la_t - la_s)).exp(), beta_ts, marginal_var=one_minus_t
        )
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


def _vp_neg_log_alpha_bar(tau: Tensor, beta_min: float, beta_max: float) -> Tensor:
    """``−log ᾱ(τ) = ½ τ² (β_max − β_min) + τ β_min`` of the VP SDE with linear ``β(τ)``."""
    return 0.5 * tau.square() * (beta_max - beta_min) + tau * beta_min


def vp_variance(tau: Tensor, beta_min: float, beta_max: float) -> Tensor:
    """``var(τ) = 1 − exp(−½ τ² (β_max − β_min) − τ β_min)``: the VP-SDE marginal variance (Song et al., 2021)."""
    return -torch.expm1(-_vp_neg_log_alpha_bar(tau, beta_min, beta_max))


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
        return _vp_neg_log_alpha_bar(tau, self.beta_min, self.beta_max)

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


def _gather(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """``values[t]`` reshaped to broadcast against ``like`` (B, ...), in ``like``'s float dtype."""
    out = values[t.long()]
    dtype = like.dtype if like.is_floating_point() else out.dtype
    return out.to(dtype).reshape(-1, *([1] * (like.dim() - 1)))


class DDAEBMSchedule(NoiseSchedule):
    """The few-step (T = 4) VP schedule of DDAEBM, with its pair sampler and the DDPM posterior of each step.

    Geng et al. (2024), "Improving adversarial energy-based model via diffusion process" (ICML), following the
    discretisation of Xiao et al. (2022, "Tackling the generative learning trilemma with denoising diffusion
    GANs"). With ``τ_i = (i/T)(1 − ε) + ε``, ``i = 0..T``, and the VP-SDE variance :func:`vp_variance`::

        β_0 = var(τ_0),   β_i = min(1 − ᾱ_i / ᾱ_{i−1}, 0.999),   ᾱ_i = ∏_{j≤i} (1 − β_j),   a_i = sqrt(1 − β_i).

    ᾱ is the cumulative product of the (clipped) betas so that the forward chain, the pair sampler and the
    posterior all describe one Markov chain (without clipping ``ᾱ_i = 1 − var(τ_i)`` exactly). Level 0 is the
    data with a tiny noise (``sqrt(ᾱ_0) ≈ 0.99995`` for β_min = 0.1); level T should be close to N(0, I)
    because sampling starts there: with β_min = 0.1, β_max = 20 and T = 4, ``sqrt(ᾱ_T) ≈ 0.0066``.

    As a :class:`NoiseSchedule` it tabulates the ``T + 1`` levels ``t = 0..T`` (:attr:`num_levels`), while
    :attr:`num_timesteps` is T, the number of denoising steps ``x_{t+1} → x_t`` (and of generator calls when
    sampling); a network's time input is the index ``t ∈ {0..T−1}`` of the *target* level of a step, and
    "level −1" of :meth:`posterior` is the clean data. It is not registered in :data:`SCHEDULES`: the
    Denoiser-based samplers assume a chain that ends at the clean data, DDAEBM's ends at level 0.

    Every per-sample method takes integer level indices of shape (B,) (an integer or integral float tensor)
    and reads the float32 tables :attr:`alpha_bars`, :attr:`betas` and the posterior coefficients, computed
    in float64 (the numbers of the authors' code); the log-ᾱ methods of the base class (``log_alpha_bar``,
    ``snr``, ``edm_sigma``, ``posterior``) read the float64 table of the same chain. The tables follow the
    module across devices and are not saved in checkpoints.

    Args:
        num_timesteps: T, the number of denoising steps (and network evaluations when sampling).
        beta_min, beta_max: VP-SDE rates; choose them so that ``sqrt(ᾱ_T)`` times the data scale is small.
        eps: the smallest diffusion time ε.
    """

    alpha_bars: Tensor
    step_betas: Tensor
    post_coef_x0: Tensor
    post_coef_xt: Tensor
    post_var: Tensor
    _min_timesteps = 1
    _t_range = "[0, T]"

    def __init__(
        self, num_timesteps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0, eps: float = 1e-3
    ) -> None:
        super().__init__(num_timesteps)
        if not (0.0 <= beta_min < beta_max) or not math.isfinite(beta_max):
            raise ValueError(f"need 0 <= beta_min < beta_max < inf, got beta_min={beta_min}, beta_max={beta_max}")
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must lie in (0, 1), got {eps}")
        self.beta_min, self.beta_max, self.eps = float(beta_min), float(beta_max), float(eps)
        self._build()
        betas = self._betas64()
        alpha_bars = torch.cumprod(1.0 - betas, dim=0)
        # q(x_t | x_{t+1}, x_0) for t = 0..T-1: prior q(x_t | x_0), kernel N(x_{t+1}; a_{t+1} x_t, β_{t+1} I).
        ab_t, ab_next, beta_next = alpha_bars[:-1], alpha_bars[1:], betas[1:]
        post_coef_x0, post_coef_xt, post_var = posterior_coefficients(
            ab_t.sqrt(), 1.0 - ab_t, (1.0 - beta_next).sqrt(), beta_next, marginal_var=1.0 - ab_next
        )
        for name, value in (("alpha_bars", alpha_bars), ("step_betas", betas), ("post_var", post_var),
                            ("post_coef_x0", post_coef_x0), ("post_coef_xt", post_coef_xt)):
            self.register_buffer(name, value.to(torch.float32), persistent=False)

    @property
    def num_levels(self) -> int:
        """``T + 1``: the levels ``t = 0..T`` of the chain."""
        return self.num_timesteps + 1

    def _betas64(self) -> Tensor:
        tau = torch.arange(self.num_levels, dtype=torch.float64) / self.num_timesteps * (1.0 - self.eps) + self.eps
        var = vp_variance(tau, self.beta_min, self.beta_max)
        alpha_from_var = 1.0 - var
        return torch.cat([var[:1], (1.0 - alpha_from_var[1:] / alpha_from_var[:-1]).clamp(max=0.999)])

    def _log_alpha_bar_table(self) -> Tensor:
        return torch.cumsum(torch.log1p(-self._betas64()), 0)

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}, beta_min={self.beta_min}, beta_max={self.beta_max}"

    @property
    def betas(self) -> Tensor:
        """Per-level ``β_t``, ``t = 0..T`` (float32 table, shape (T + 1,))."""
        return self.step_betas

    def alpha_bar(self, t: Tensor) -> Tensor:
        """ᾱ_t for level indices t (shape (B,))."""
        return self.alpha_bars[self._check_index(t, self.num_timesteps).long()]

    def sigma(self, t: Tensor) -> Tensor:
        """``sqrt(1 − ᾱ_t)``: the noise level of x_t given x_0."""
        return (1.0 - self.alpha_bar(t)).sqrt()

    def _check_index(self, t: Tensor, top: int) -> Tensor:
        if not isinstance(t, Tensor) or t.dim() != 1:
            raise ValueError(f"time indices must be a tensor of shape (B,), got {getattr(t, 'shape', t)!r}")
        # The value check synchronises with the device, so it runs on CPU tensors only (tests, user calls).
        if t.device.type != "cpu" or not t.numel():
            return t
        fractional = t.is_floating_point() and not torch.equal(t, t.round())
        if t.min() < 0 or t.max() > top or fractional:
            raise ValueError(f"time indices must be integers in [0, {top}], got values in "
                             f"[{float(t.min())}, {float(t.max())}]")
        return t

    def sample_times(self, batch: int, device: torch.device | str | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
        """Uniform step indices t ∈ {0..T−1} (int64, shape (batch,)) for training pairs."""
        return torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)

    # ----------------------------------------------------------------- forward chain
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε``."""
        ab = _gather(self.alpha_bars, self._check_index(t, self.num_timesteps), x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def _step_kernel(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """``(a_{t+1}, β_{t+1})`` of the step ``x_t → x_{t+1}``, broadcast against ``like``."""
        beta = _gather(self.betas, self._check_index(t, self.num_timesteps - 1) + 1, like)
        return (1.0 - beta).sqrt(), beta

    def q_step(self, x_t: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """One forward step ``x_{t+1} = a_{t+1} x_t + sqrt(β_{t+1}) ε'`` (t ∈ {0..T−1})."""
        a, beta = self._step_kernel(t, x_t)
        return a * x_t + beta.sqrt() * noise

    def q_pair(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A training pair ``(x_t, x_{t+1})`` from data ``x0`` at step indices ``t`` ∈ {0..T−1}."""
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        noise2 = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return x_t, self.q_step(x_t, t, noise2)

    def transition_log_prob(self, x_next: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``log N(x_{t+1}; a_{t+1} x_t, β_{t+1} I)`` summed over data dims, shape (B,), in float32 or wider."""
        a, beta = self._step_kernel(t, x_t.float())
        return transition_log_prob(x_next.float(), x_t.float(), a, beta)

    # ---------------------------------------------------------------------- posterior
    def posterior_mean_var(self, x0: Tensor, x_next: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of ``q(x_t | x_{t+1}, x_0)`` (DDPM posterior; variance broadcastable)."""
        t = self._check_index(t, self.num_timesteps - 1)
        mean = _gather(self.post_coef_x0, t, x0) * x0 + _gather(self.post_coef_xt, t, x_next) * x_next
        return mean, _gather(self.post_var, t, x0)

    def posterior_sample(self, x0: Tensor, x_next: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t ∼ q(x_t | x_{t+1}, x_0)``; the mean only where t = 0 (the last sampling step)."""
        mean, var = self.posterior_mean_var(x0, x_next, t)
        keep = (t != 0).to(mean.dtype).reshape(-1, *([1] * (mean.dim() - 1)))
        return mean + keep * var.sqrt() * noise

    def posterior_log_prob(self, x_t: Tensor, x0: Tensor, x_next: Tensor, t: Tensor,
                           var_floor: float = 0.0) -> Tensor:
        """``log q(x_t | x_{t+1}, x_0)`` summed over data dims, shape (B,), variance floored at ``var_floor``."""
        mean, var = self.posterior_mean_var(x0.float(), x_next.float(), t)
        return gaussian_log_prob(x_t.float(), mean, var.clamp(min=var_floor))


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
