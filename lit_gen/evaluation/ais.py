"""AIS likelihood of an energy model in the test report, in any dimension.

The energy's normaliser log Z of ``exp(−E)`` is estimated by annealed importance sampling along the geometric path,
with MALA transitions (:func:`lit_gen.mcmc.ais.ais_bracket`; ``docs/algorithms.md#annealed-importance-sampling``),
from a Gaussian fitted to the training data (the module's ``data_mean``/``data_std``) for vectors, and for images
from the uniform law on their cube ``[−1, 1]^D``: dequantised pixels live there, and the density scored in bits per
dimension is that of the model on the cube, ``exp(−E) / ∫_cube exp(−E)``. An energy network is unconstrained outside
the cube, and a briefly trained one often decreases along rays through the data, so ``∫_{R^D} exp(−E)`` need not be
finite: with a Gaussian base AIS would then return the distance its chains travelled, not a normaliser. The anneal
for images runs in ``u = atanh(x)`` (:class:`lit_gen.mcmc.ais_box.BoxReparametrization`, the same normaliser), where
no move can leave the cube: in x, MNIST's background pixels sit within 2/256 of the face and MALA rejected every move.
The MALA step is tuned per temperature on pilot chains (:func:`lit_gen.mcmc.ais_tuning.tune_ais_step_sizes`, target
acceptance 0.57) before the real chains run. The test NLL of the first ``max_points`` test points is bracketed:
forward AIS gives a stochastic lower bound, reverse AIS started at the test points an upper bound to the extent they
resemble model samples. Vectors report nats per point (``ais_nll_lower``/``ais_nll_upper``); images bits per dimension
after uniform dequantisation (``ais_bpd_lower``/``ais_bpd_upper``), with ``ais_log_z``, its standard error and the
ESS of the forward weights.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from lit_gen.diffusion.likelihood import bits_per_dim, dequantize
from lit_gen.evaluation.base import Evaluator
from lit_gen.evaluation.progress import evaluation_status
from lit_gen.mcmc import MALA
from lit_gen.mcmc.ais import ais_bracket
from lit_gen.mcmc.ais_box import BoxReparametrization
from lit_gen.mcmc.ais_tuning import tune_ais_step_sizes

__all__ = ["AISLikelihood"]


MIN_ACCEPTANCE = 0.01


class AISLikelihood(Evaluator):
    """Forward/reverse AIS bracket of the test NLL under ``exp(−module.energy)``.

    When the forward MALA moves are almost never accepted (below ``MIN_ACCEPTANCE``) the chains stay where the base
    put them, the bracket is the base's and not the model's, and :meth:`report` warns, naming the rate and the
    ``step_size``; the figures are still reported (with ``ais_acceptance``) so the run is not lost. When the reverse
    estimate of log Z falls below the forward one (``ais_bracket_inverted = 1``: the test points are far from the
    model's samples, so the reverse side is no bound) it warns too, and only the lower side stands.

    Args:
        num_chains: forward chains (and at most as many reverse chains from test points).
        num_steps: annealing steps (one MALA move each). The bracket's width shrinks roughly as 1/num_steps; in
            784 dimensions a few thousand steps bring it to a few tenths of a bit per dimension.
        step_size: MALA step size, in units of the data's per-feature variance for vectors and of u = atanh(x) for
            images: the fixed step with ``tune=False``, the pilot's first step otherwise.
        max_points: test points whose NLL is bracketed.
        tune: tune the step per temperature on ``pilot_chains`` separate chains first (target acceptance 0.57).
        pilot_chains: chains of that pilot.
    """

    def __init__(self, num_chains: int = 64, num_steps: int = 200, step_size: float = 0.05,
                 max_points: int = 256, tune: bool = True, pilot_chains: int = 16) -> None:
        super().__init__()
        self.num_chains = int(num_chains)
        self.num_steps = int(num_steps)
        self.step_size = float(step_size)
        self.max_points = int(max_points)
        if not isinstance(tune, bool):
            raise TypeError(f"tune must be True or False, got {tune!r}")
        self.tune = tune
        self.pilot_chains = int(pilot_chains)
        self._points: list[Tensor] = []

    def update(self, module: Any, batch: Tensor, batch_idx: int, split: str) -> None:
        held = sum(len(p) for p in self._points)
        if held < self.max_points:
            self._points.append(batch[: self.max_points - held].detach())

    def report(self, module: Any) -> dict[str, float]:
        points, self._points = self._points, []
        if not points or sum(len(p) for p in points) < 2:
            return {}
        x = torch.cat(points).to(module.device)
        is_image = len(module.data_shape) == 3
        gen = torch.Generator(device=x.device).manual_seed(0)
        if is_image:
            x = dequantize(x, generator=torch.Generator().manual_seed(0)).to(module.device)
        energy, data = module.energy, x
        if is_image:  # the model on the data's cube, annealed in u = atanh(x) (see the module docstring)
            box = BoxReparametrization(torch.full(x.shape[1:], -1.0, device=x.device),
                                       torch.full(x.shape[1:], 1.0, device=x.device))
            energy, base, data = box.energy(module.energy), box.base(), box.from_box(x)
            step = self.step_size
        else:
            std = module.data_std.clamp_min(1e-3)
            base = Independent(Normal(module.data_mean, std), len(module.data_shape))
            step = self.step_size * float(std.mean()) ** 2  # whitened units: the mean std sets the scale
        sampler = MALA(step_size=step)
        what = (f"test NLL: AIS bracket, {self.num_chains} chains × {self.num_steps} steps each way "
                f"({x.shape[0]} data points)")
        with evaluation_status(module, what), torch.inference_mode(False), torch.enable_grad():
            tuned = None
            if self.tune and self.num_steps > 1:
                tuned = tune_ais_step_sizes(energy, base, self.num_steps, sampler, num_chains=self.pilot_chains,
                                            warmup=min(30, self.num_steps),
                                            generator=torch.Generator(device=x.device).manual_seed(1))
            res = ais_bracket(energy, base, data, num_chains=self.num_chains, num_steps=self.num_steps,
                              sampler=sampler, generator=gen,
                              step_sizes=None if tuned is None else tuned.step_sizes)
            if is_image:  # −log p_x = −log p_u + log|dx/du|, averaged over the points
                with torch.no_grad():
                    jacobian = float(box.log_det(data).double().mean())
                res.nll_lower += jacobian
                res.nll_upper += jacobian
        out: dict[str, float] = {}
        if is_image:
            dim = x[0].numel()
            out["ais_bpd_lower"] = float(bits_per_dim(torch.tensor(-res.nll_lower), dim))
            out["ais_bpd_upper"] = float(bits_per_dim(torch.tensor(-res.nll_upper), dim))
        else:
            out["ais_nll_lower"] = res.nll_lower
            out["ais_nll_upper"] = res.nll_upper
        out.update(ais_log_z=res.forward.log_z, ais_log_z_stderr=res.forward.stderr, ais_ess=res.forward.ess,
                   ais_log_z_reverse=res.reverse.log_z, ais_log_z_reverse_stderr=res.reverse.stderr,
                   ais_acceptance=res.forward.acceptance_rate, ais_num_chains=self.num_chains,
                   ais_num_steps=self.num_steps, ais_n_points=int(x.shape[0]))
        if tuned is not None:
            out.update(ais_step_size_min=float(tuned.step_sizes.min()), ais_step_size_max=float(tuned.step_sizes.max()),
                       ais_pilot_acceptance=float(tuned.accept_probs.mean()))
        # Forward log Ẑ is a lower bound of log Z whatever the model; reverse log Ẑ an upper bound only when its chains
        # start at model samples. Test points far from the model break that, and the "upper" can fall below the lower.
        slack = 4.0 * max(res.forward.stderr, res.reverse.stderr)
        inverted = res.reverse.log_z < res.forward.log_z - slack
        out["ais_bracket_inverted"] = float(inverted)
        if inverted:
            unit = "bits/dim" if is_image else "nats"
            low = out["ais_bpd_lower"] if is_image else out["ais_nll_lower"]
            warnings.warn(
                f"AIS: the reverse estimate of log Z ({res.reverse.log_z:.4g}) lies below the forward one "
                f"({res.forward.log_z:.4g}) by more than 4 standard errors: the test points are far from the model's "
                "samples, so the reverse (upper) side of the bracket does not hold. Only the forward side does: the "
                f"model's test NLL is at least {low:.4g} {unit} (in expectation).",
                stacklevel=2,
            )
        rate = res.forward.acceptance_rate
        if not math.isnan(rate) and rate < MIN_ACCEPTANCE:
            warnings.warn(
                f"AIS: the MALA transitions accepted {rate:.2%} of their moves (step_size={self.step_size:g}, "
                f"tuned: {self.tune}), so the chains never left the base and the reported likelihood bracket is the "
                "base's, not the model's; keep tune=True or lower AISLikelihood(step_size=...) (the modules' "
                f"ais_step_size) until ais_acceptance is well above {MIN_ACCEPTANCE:.0%}",
                stacklevel=2,
            )
        return out
