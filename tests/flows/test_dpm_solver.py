"""DPM-Solver++(2M) and the probability-flow ODE sampler, driven by the exact denoiser of a Gaussian
(``GaussianDenoiser``: E[x0 | x_t] is linear in x_t): the moments of N(μ, Σ) come back at 10–20 steps, the
error against a converged solution of the same ODE falls at second order, and DPM-Solver++ beats DDIM at equal
NFE; both are reachable by name through ``build_sampler`` and ``DiffusionModule.sample``."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from lit_gen.diffusion import CosineSchedule, GaussianDenoiser, LinearSchedule
from lit_gen.diffusion.samplers import (
    PFODE,
    DPMSolverPP,
    build_sampler,
    ddim_sample,
    dpm_solver_pp_sample,
    pf_ode_sample,
)
from lit_gen.diffusion.samplers.dpm_solver import noise_levels

MU = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])
N = 20_000


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_pp_reproduces_the_gaussian_moments(schedule, steps: int) -> None:  # noqa: ANN001
    den = GaussianDenoiser(MU, COV, schedule)
    out = dpm_solver_pp_sample(den, schedule, (N, 2), steps, generator=_gen(), dtype=torch.float64)
    assert out.nfe == steps
    x = out.x
    # 4 standard errors of the sample moments, plus the start at σ_max = 80 (N(0, I) ignores x0/81: ≤ 1.5%)
    mean_tol = 4 * math.sqrt(float(COV.diagonal().max()) / N) + 0.015
    cov_tol = 4 * math.sqrt(2.0 / N) + {10: 0.12, 20: 0.06}[steps]
    assert float((x.mean(0) - MU.double()).abs().max()) < mean_tol
    assert float((torch.cov(x.T) - COV.double()).abs().max()) < cov_tol


def test_dpm_solver_pp_is_second_order_and_beats_ddim() -> None:
    sched = LinearSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    top = float(sched.edm_sigma(torch.tensor([999.0])))  # start where DDIM starts (t = T − 1)
    x_T = torch.randn(2000, 2, generator=_gen(), dtype=torch.float64)
    run = partial(dpm_solver_pp_sample, den, sched, (2000, 2), x_T=x_T, dtype=torch.float64, sigma_max=top)
    ref = run(400).x
    errs = {n: float((run(n).x - ref).square().mean().sqrt()) for n in (10, 20, 40, 80)}
    assert errs[20] < 0.03
    assert errs[20] / errs[40] > 3.2 and errs[40] / errs[80] > 3.2  # → 4: second order once h is small
    for n in (10, 20):  # DDIM (first order) at the same NFE is several times further off
        ddim = ddim_sample(den, sched, (2000, 2), n, x_T=x_T, dtype=torch.float64).x
        assert errs[n] < 0.25 * float((ddim - ref).square().mean().sqrt())


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun", "rk4", "dopri5"])
def test_pf_ode_sampler_reproduces_the_gaussian(method: str) -> None:
    sched = LinearSchedule()
    den = GaussianDenoiser(MU, COV, sched)
    steps = 20
    out = pf_ode_sample(den, sched, (N, 2), steps, method=method, generator=_gen(), dtype=torch.float64)
    stages = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
    if method in stages:
        assert out.nfe == stages[method] * steps + 1
    cov_tol = 4 * math.sqrt(2.0 / N) + {"euler": 0.25, "heun": 0.12}.get(method, 0.03)
    assert float((out.x.mean(0) - MU.double()).abs().max()) < 4 * math.sqrt(1.0 / N) + 0.015
    assert float((torch.cov(out.x.T) - COV.double()).abs().max()) < cov_tol


def test_names_and_module_sampling() -> None:
    assert isinstance(build_sampler("dpm_solver++", 12), DPMSolverPP)
    pf = build_sampler("pf_ode", 5, {"method": "rk4"})
    assert isinstance(pf, PFODE) and pf.options["method"] == "rk4"
    from lit_gen.models import DiffusionModule
    from lit_gen.nn import TimeMLP

    torch.manual_seed(0)
    model = DiffusionModule(partial(TimeMLP, hidden=8, depth=1, time_dim=8), schedule=LinearSchedule(100),
                            sampler="dpm_solver++", sampler_steps=7, eval_metrics=False, test_nll_samples=0)
    x, nfe = model.sample(16, return_nfe=True, generator=_gen())
    assert x.shape == (16, 2) and nfe == 7 and torch.isfinite(x).all()
    x, nfe = model.sample(16, sampler="pf_ode", steps=3, method="midpoint", return_nfe=True)
    assert nfe == 7 and torch.isfinite(x).all()


def test_noise_levels_and_errors() -> None:
    sched = LinearSchedule()
    for spacing in ("logsnr", "karras", "time_uniform"):
        s = noise_levels(sched, 10, spacing)  # type: ignore[arg-type]
        assert len(s) == 10 and s[0] == pytest.approx(80.0) and all(a > b for a, b in zip(s, s[1:], strict=False))
        assert s[-1] == pytest.approx(float(sched.edm_sigma(torch.tensor([0.0]))), rel=1e-4)
    assert noise_levels(sched, 1) == [pytest.approx(80.0)]
    with pytest.raises(ValueError, match="spacing must be one of"):
        noise_levels(sched, 5, "uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        noise_levels(sched, 5, sigma_max=1e6)
    with pytest.raises(ValueError, match="method must be one of"):
        pf_ode_sample(GaussianDenoiser(MU, COV, sched), sched, (4, 2), 3, method="rk45")  # type: ignore[arg-type]
