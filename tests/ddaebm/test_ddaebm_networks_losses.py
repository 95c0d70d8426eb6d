"""DDAEBM networks (generator, posterior, mapping) and the two losses."""

from __future__ import annotations

import pytest
import torch

from lit_gen.ddaebm import (
    ConvPosterior,
    DDAEBMSchedule,
    GeneratorMLP,
    PosteriorMLP,
    UNetGenerator,
    diag_gaussian_nll,
    energy_step_loss,
    generator_step_loss,
    kl_to_standard_normal,
)


def test_vector_networks_shapes_latent_use_and_no_batch_coupling() -> None:
    torch.manual_seed(0)
    g = GeneratorMLP((3,), latent_dim=2, hidden=32, depth=2)
    q = PosteriorMLP((3,), latent_dim=2, hidden=32, depth=1, min_logvar=-4.0)
    x, t, z = torch.randn(8, 3), torch.tensor([0, 1, 2, 3] * 2), torch.randn(8, 2)
    out = g(x, t, z)
    assert out.shape == (8, 3)
    assert not torch.allclose(out, g(x, t, torch.randn(8, 2)))  # z matters
    torch.testing.assert_close(g(x[:3], t[:3], z[:3]), out[:3])  # a sample does not depend on its batch
    mean, logvar = q(x, torch.randn(8, 3), t)
    assert mean.shape == logvar.shape == (8, 2) and (logvar > -4.0).all()
    with pytest.raises(ValueError, match=r"latent z of shape \(8, 2\)"):
        g(x, t, torch.randn(8, 5))
    with pytest.raises(ValueError, match="latent_dim"):
        GeneratorMLP((3,), latent_dim=0)


def test_image_networks_shapes_and_range() -> None:
    g = UNetGenerator((1, 8, 8), latent_dim=6, channels=8, channel_mult=(1, 2), num_res_blocks=1,
                      attention_resolutions=(4,))
    torch.nn.init.normal_(g.conv_out.weight)  # the U-Net's output conv starts at zero
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 2, 3])
    out = g(x, t, torch.randn(3, 6))
    assert out.shape == x.shape and out.abs().max() <= 1.0
    assert not torch.allclose(out, g(x, t, torch.randn(3, 6)))
    q = ConvPosterior((1, 8, 8), latent_dim=6, channels=8, channel_mult=(1, 2))
    mean, logvar = q(x, torch.randn_like(x), t)
    assert mean.shape == logvar.shape == (3, 6)
    with pytest.raises(ValueError, match="PosteriorMLP"):
        ConvPosterior((4,), latent_dim=2)


def test_gaussian_helpers_match_torch_distributions() -> None:
    mean, logvar, z = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    normal = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    std = torch.distributions.Normal(torch.zeros(5, 4), torch.ones(5, 4))
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar),
                               torch.distributions.kl_divergence(normal, std).sum(1))
    const = 0.5 * 4 * torch.log(torch.tensor(2 * torch.pi))
    torch.testing.assert_close(diag_gaussian_nll(z, mean, logvar), -normal.log_prob(z).sum(1) - const)


class _Quadratic(torch.nn.Module):
    """E(x, t) = ½ c ‖x‖², whose gradient −c x is known."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = torch.nn.Parameter(torch.tensor(c))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.c * x.pow(2).sum(1)


def test_energy_step_loss_is_cd_plus_r1_on_the_conditional_log_density() -> None:
    s = DDAEBMSchedule(4)
    energy = _Quadratic(1.5)
    x_t, x_next, x_fake = torch.randn(16, 2), torch.randn(16, 2), torch.randn(16, 2, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3] * 4)
    cd = 0.75 * (x_t.pow(2).sum(1).mean() - x_fake.detach().pow(2).sum(1).mean())
    loss0, _ = energy_step_loss(energy, s, x_t, x_next, x_fake, t, r1_gamma=0.0)
    torch.testing.assert_close(loss0, cd)
    beta = s.betas[t + 1][:, None]
    a = (1 - beta).sqrt()
    grad = -1.5 * x_t + a * (x_next - a * x_t) / beta  # ∇_x[−E + log N(x_{t+1}; a x, β)]
    loss, parts = energy_step_loss(energy, s, x_t, x_next, x_fake, t, r1_gamma=0.02)
    torch.testing.assert_close(parts["r1"], grad.pow(2).sum(1).mean())
    torch.testing.assert_close(loss, cd + 0.01 * grad.pow(2).sum(1).mean())
    loss.backward()
    assert energy.c.grad is not None and x_fake.grad is None  # the fake is a constant for θ


def test_generator_step_loss_parts_and_gradients() -> None:
    torch.manual_seed(0)
    s = DDAEBMSchedule(4)
    energy = _Quadratic(1.0)
    energy.requires_grad_(False)
    g = GeneratorMLP((2,), 2, hidden=16, depth=1)
    q = PosteriorMLP((2,), 2, hidden=16, depth=1)
    t = torch.tensor([0, 1, 2, 3] * 4)
    x_t, x_next, z = torch.randn(16, 2), torch.randn(16, 2), torch.randn(16, 2)
    x_fake = s.posterior_sample(g(x_next, t, z), x_next, t, torch.randn(16, 2))
    loss, parts = generator_step_loss(energy, g, q, s, x_t, x_next, x_fake, z, t, entropy_weight=0.1,
                                      recon_var_floor=1e-2, generator_rng=torch.Generator().manual_seed(1))
    expected_kl_gen = (0.5 * x_fake.pow(2).sum(1) - s.transition_log_prob(x_next, x_fake, t)).mean()
    torch.testing.assert_close(parts["kl_gen"], expected_kl_gen.detach())
    torch.testing.assert_close(loss.detach(), parts["kl_gen"] + 0.1 * parts["entropy_nll"] + parts["kl_prior"]
                               + parts["recon"])
    loss.backward()
    assert all(p.grad is not None for p in g.parameters())
    assert all(p.grad is not None for p in q.parameters())
    assert energy.c.grad is None
