"""The shared sampler interface: any energy callable, any grad mode, no parameter gradients, clear errors."""

from __future__ import annotations

import pytest
import torch
from _mcmc_targets import gaussian_2d

from lit_gen.mcmc import HMC, MALA, SAMPLERS, Langevin, MCMCResult, MCMCSampler, energy_and_grad

SAMPLER_FACTORIES = [lambda: Langevin(0.05), lambda: MALA(0.05), lambda: HMC(0.1, 3)]
IDS = ["langevin", "mala", "hmc"]


def _mlp_energy() -> torch.nn.Module:
    class MLPEnergy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).squeeze(-1)

    torch.manual_seed(0)
    return MLPEnergy()


def test_registry_names_the_three_samplers() -> None:
    assert SAMPLERS == {"langevin": Langevin, "mala": MALA, "hmc": HMC}
    assert all(issubclass(cls, MCMCSampler) for cls in SAMPLERS.values())


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_module_energy_gets_no_parameter_gradients(make) -> None:
    energy = _mlp_energy()
    x0 = torch.randn(32, 2)
    result = make().run(energy, x0, 5, generator=torch.Generator().manual_seed(0))
    assert isinstance(result, MCMCResult)
    assert all(p.grad is None for p in energy.parameters())
    assert not result.x.requires_grad and result.x.shape == x0.shape
    assert set(result.stats) >= {"acceptance_rate", "mean_energy", "grad_norm", "steps"}
    assert all(isinstance(v, float) for v in result.stats.values())


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "grad"])
def test_runs_under_any_grad_mode(make, mode: str) -> None:
    energy = _mlp_energy()
    ctx = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode, "grad": torch.enable_grad}[mode]
    reference = make().run(energy, torch.ones(16, 2), 4, generator=torch.Generator().manual_seed(1)).x
    with ctx():
        x0 = torch.ones(16, 2)  # an inference tensor under inference_mode
        result = make().run(energy, x0, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(result.x, reference)
    assert torch.equal(x0, torch.ones(16, 2))  # the caller's tensor is untouched


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_reproducible_with_a_generator(make) -> None:
    target = gaussian_2d()
    x0 = torch.zeros(64, 2, dtype=torch.float64)
    a = make().run(target, x0, 10, generator=torch.Generator().manual_seed(7))
    b = make().run(target, x0, 10, generator=torch.Generator().manual_seed(7))
    c = make().run(target, x0, 10, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.x, b.x) and a.stats == b.stats
    assert not torch.equal(a.x, c.x)


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_stats_are_those_of_the_last_evaluation(make) -> None:
    target = gaussian_2d()
    x0 = torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    result = make().run(target, x0, 3, generator=torch.Generator().manual_seed(4))
    last = result.x
    if isinstance(make(), Langevin):
        # ULA's last gradient evaluation is at the state before the final move: rerun one step fewer with the
        # same noise to get that state.
        last = make().run(target, x0, 2, generator=torch.Generator().manual_seed(4)).x
    e, g = energy_and_grad(target, last)
    assert result.stats["mean_energy"] == pytest.approx(float(e.mean()), rel=1e-9)
    assert result.stats["grad_norm"] == pytest.approx(float(g.norm(dim=1).mean()), rel=1e-9)
    assert result.stats["steps"] == 3.0


def test_energy_and_grad_is_exact_and_works_under_inference_mode() -> None:
    target = gaussian_2d()
    x = torch.randn(10, 2, dtype=torch.float64)
    with torch.inference_mode():
        e, g = energy_and_grad(target, x)
    torch.testing.assert_close(g, (x - target.mean) @ target.precision)
    torch.testing.assert_close(e, target(x))


class _ForeignEnergy:
    """Stands in for another library's energy object: a callable with its own parameters."""

    def __init__(self) -> None:
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x**2).sum(1)


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_accepts_plain_functions_and_foreign_callables(make) -> None:
    foreign = _ForeignEnergy()
    for energy in (lambda x: (x**2).sum(1), foreign):
        result = make().run(energy, torch.randn(8, 2), 3)
        assert torch.isfinite(result.x).all()
    assert foreign.scale.grad is None


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_wrong_energy_shape_is_a_clear_error(make) -> None:
    net = torch.nn.Linear(2, 1)  # returns (B, 1)
    with pytest.raises(ValueError, match=r"energy must return shape \(B,\)"):
        make().run(net, torch.randn(8, 2), 3)
    with pytest.raises(ValueError, match=r"energy must return shape \(B,\)"):
        make().run(lambda x: (x**2).sum(), torch.randn(8, 2), 3)


@pytest.mark.parametrize("make", SAMPLER_FACTORIES, ids=IDS)
def test_bad_arguments_are_rejected(make) -> None:
    sampler = make()
    energy = lambda x: (x**2).sum(1)  # noqa: E731
    for steps in (0, -3):
        with pytest.raises(ValueError, match="num_steps"):
            sampler.run(energy, torch.randn(4, 2), steps)
    with pytest.raises(TypeError, match="num_steps"):
        sampler.run(energy, torch.randn(4, 2), 2.0)
    with pytest.raises(TypeError, match="floating-point"):
        sampler.run(energy, torch.ones(4, 2, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="callable"):
        sampler.run("not an energy", torch.randn(4, 2), 2)
    with pytest.raises(ValueError, match="does not depend on x"):
        sampler.run(lambda x: torch.zeros(x.shape[0]), torch.randn(4, 2), 2)


def test_energy_without_x_dependence_through_parameters_has_zero_gradient() -> None:
    bias = torch.nn.Parameter(torch.tensor(1.0))
    x0 = torch.randn(4, 2)
    x = Langevin(0.1, noise_scale=0.0).run(lambda x: bias * torch.ones(x.shape[0]), x0, 3).x
    torch.testing.assert_close(x, x0)
