import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lit_gen.nn import (
    ACTIVATIONS,
    ConvEnergyNet,
    EnergyMLP,
    TimeEnergyMLP,
    TimeMLP,
    UNet,
    UNetEnergy,
    UNetGenerator,
    get_activation,
)

VECTOR_SHAPES = [(2,), (5,)]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)]
ALL_SHAPES = VECTOR_SHAPES + IMAGE_SHAPES
SMALL_UNET = dict(channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(8, 16), groups=4)
B = 3


def _t(b: int = B) -> torch.Tensor:
    return torch.tensor([0.0, 499.5, 999.0])[:b]


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_mlp_shapes(shape):
    torch.manual_seed(0)
    x = torch.randn(B, *shape)
    assert TimeMLP(shape, hidden=16, depth=2, time_dim=8)(x, _t()).shape == x.shape
    assert TimeEnergyMLP(shape, hidden=16, depth=2, time_dim=8)(x, _t()).shape == (B,)
    assert EnergyMLP(shape, hidden=16, depth=2)(x).shape == (B,)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_image_net_shapes(shape):
    torch.manual_seed(0)
    x = torch.randn(B, *shape)
    assert UNet(shape, **SMALL_UNET)(x, _t()).shape == x.shape
    assert UNetEnergy(shape, **SMALL_UNET)(x, _t()).shape == (B,)
    assert ConvEnergyNet(shape, channels=4)(x).shape == (B,)


def test_default_unet_configuration_runs_on_32x32():
    # The defaults (64 channels, 3 levels, attention at 16x16) must build and run; batch of 1 keeps it quick.
    net = UNet((3, 32, 32))
    assert any(isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__ for m in net.modules())
    assert net(torch.randn(1, 3, 32, 32), torch.tensor([10.0])).shape == (1, 3, 32, 32)


def test_scalar_time_is_broadcast():
    torch.manual_seed(0)
    net = TimeMLP((2,), hidden=16, depth=1, time_dim=8)
    x = torch.randn(4, 2)
    torch.testing.assert_close(net(x, 7.0), net(x, torch.full((4,), 7.0)))
    torch.testing.assert_close(net(x, torch.tensor(7.0)), net(x, torch.full((4,), 7.0)))
    with pytest.raises(ValueError, match="time t"):
        net(x, torch.zeros(3))


def test_time_conditioning_changes_output():
    torch.manual_seed(0)
    x = torch.randn(4, 2)
    net = TimeMLP((2,), hidden=16, depth=2, time_dim=8)
    assert not torch.allclose(net(x, 10.0), net(x, 500.0))
    energy = TimeEnergyMLP((2,), hidden=16, depth=2, time_dim=8)
    assert not torch.allclose(energy(x, 10.0), energy(x, 500.0))


def _assert_all_grads(net: nn.Module) -> None:
    for name, p in net.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"zero gradient at {name}"


def test_gradients_reach_every_parameter_of_the_mlps():
    torch.manual_seed(0)
    x = torch.randn(8, 2)
    t = torch.rand(8) * 999
    for net, out in [
        (m := TimeMLP((2,), hidden=16, depth=2, time_dim=8), lambda m=m: m(x, t).pow(2).sum()),
        (m := TimeEnergyMLP((2,), hidden=16, depth=2, time_dim=8), lambda m=m: m(x, t).sum()),
        (m := EnergyMLP((2,), hidden=16, depth=2), lambda m=m: m(x).sum()),
    ]:
        out().backward()
        _assert_all_grads(net)


def test_unet_zero_init_output_and_gradient_flow():
    torch.manual_seed(0)
    net = UNet((1, 8, 8), **SMALL_UNET)
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([3.0, 800.0])
    assert torch.count_nonzero(net(x, t)) == 0  # zero-initialised output conv
    # With a non-zero output layer every parameter (attention included) must receive gradient.
    nn.init.normal_(net.conv_out.weight, std=0.1)
    net(x, t).pow(2).sum().backward()
    _assert_all_grads(net)


def test_energies_have_input_gradients_for_mcmc():
    torch.manual_seed(0)
    cases = [
        (EnergyMLP((2,), hidden=16), torch.randn(5, 2), ()),
        (TimeEnergyMLP((2,), hidden=16), torch.randn(5, 2), (torch.full((5,), 3.0),)),
        (ConvEnergyNet((1, 8, 8), channels=4), torch.randn(5, 1, 8, 8), ()),
        (UNetEnergy((1, 8, 8), **SMALL_UNET), torch.randn(5, 1, 8, 8), (torch.full((5,), 3.0),)),
    ]
    for net, x, extra in cases:
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x, *extra).sum(), x)
        assert grad.shape == x.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_unet_energy_matches_definition():
    torch.manual_seed(0)
    net = UNetEnergy((1, 8, 8), **SMALL_UNET)
    x = torch.randn(3, 1, 8, 8)
    t = torch.tensor([1.0, 2.0, 3.0])
    # Untrained (zero output conv): E = ½‖x‖².
    torch.testing.assert_close(net(x, t), 0.5 * x.flatten(1).pow(2).sum(1))
    nn.init.normal_(net.unet.conv_out.weight, std=0.1)
    expected = 0.5 * (x - net.unet(x, t)).flatten(1).pow(2).sum(1)
    torch.testing.assert_close(net(x, t), expected)


def test_groupnorm_groups_are_gcd_safe():
    net = UNet((1, 8, 8), channels=8, channel_mult=(1, 3), num_res_blocks=1, groups=32)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_channels % m.num_groups == 0 for m in norms)
    assert {m.num_groups for m in norms if m.num_channels == 24} == {8}  # gcd(24, 32)


def test_unet_rejects_bad_sizes_and_configs():
    with pytest.raises(ValueError, match="divisible by 8"):
        UNet((1, 28, 28), channels=8, channel_mult=(1, 2, 2, 2))
    with pytest.raises(ValueError, match="divisible by 2"):
        UNet((1, 7, 7), channels=8, channel_mult=(1, 2))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        UNet((2,))
    with pytest.raises(ValueError, match="num_heads"):
        UNet((1, 8, 8), channels=6, channel_mult=(1,), num_heads=4)
    with pytest.raises(ValueError, match="channel_mult"):
        UNet((1, 8, 8), channel_mult=())
    with pytest.raises(ValueError, match="dropout"):
        UNet((1, 8, 8), dropout=1.5)
    net = UNet((1, 8, 8), **SMALL_UNET)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        net(torch.randn(2, 1, 16, 16), torch.zeros(2))


def test_other_nets_reject_bad_input():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        ConvEnergyNet((5,))
    with pytest.raises(TypeError, match="data_shape"):
        EnergyMLP(2)
    with pytest.raises(ValueError, match="positive"):
        TimeMLP((0,))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        EnergyMLP((2,))(torch.randn(4, 3))


def test_activation_names():
    for name in ["silu", "relu", "gelu", "leaky_relu", "softplus", "elu"]:
        assert name in ACTIVATIONS
        assert isinstance(get_activation(name), nn.Module)
        net = EnergyMLP((2,), hidden=8, depth=1, activation=name)
        assert any(isinstance(m, type(get_activation(name))) for m in net.modules())
    with pytest.raises(ValueError, match="silu") as info:
        EnergyMLP((2,), activation="swishy")
    assert "swishy" in str(info.value) and "softplus" in str(info.value)


@pytest.mark.parametrize(
    "net",
    [
        lambda: EnergyMLP((2,), hidden=16, spectral_norm=True),
        lambda: ConvEnergyNet((1, 8, 8), 4, spectral_norm=True),
    ],
)
def test_spectral_norm_wraps_every_weight_layer(net):
    torch.manual_seed(0)
    net = net()
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    # Power iteration runs once per training forward; after a few, each linear map has spectral norm ≈ 1.
    x = torch.randn(4, *net.data_shape)
    for _ in range(30):
        net(x)
    for m in layers:
        if isinstance(m, nn.Linear):
            assert torch.linalg.matrix_norm(m.weight.detach(), ord=2) == pytest.approx(1.0, abs=1e-2)


def test_no_spectral_norm_by_default():
    net = EnergyMLP((2,))
    assert not any(parametrize.is_parametrized(m) for m in net.modules())


def test_time_mlp_fits_a_simple_denoising_target():
    # A smoke test of learnability: regress the time-dependent map (x, t) -> x * (1 - t/1000).
    torch.manual_seed(0)
    net = TimeMLP((2,), hidden=32, depth=2, time_dim=16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def loss_on(n: int) -> torch.Tensor:
        x, t = torch.randn(n, 2), torch.rand(n) * 999
        return (net(x, t) - x * (1 - t / 1000)[:, None]).pow(2).mean()

    for _ in range(150):
        opt.zero_grad()
        loss_on(64).backward()
        opt.step()
    # The target has mean square E[(1 - u)^2] = 1/3 per coordinate; a working net gets far below it.
    with torch.no_grad():
        assert loss_on(1024).item() < 0.02


def test_time_dtypes_are_handled():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 8, 8)
    net = UNet((1, 8, 8), **SMALL_UNET)
    nn.init.normal_(net.conv_out.weight, std=0.1)
    ref = net(x, torch.tensor([1.0, 2.0, 3.0]))
    # Integer steps and float64 times give the same result on a float32 model.
    torch.testing.assert_close(net(x, torch.tensor([1, 2, 3])), ref)
    torch.testing.assert_close(net(x, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)), ref)
    # A float64 model runs in float64 end to end.
    out64 = net.double()(x.double(), torch.tensor([1, 2, 3]))
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), ref, atol=1e-5, rtol=1e-4)
    mlp = TimeEnergyMLP((2,), hidden=8).double()
    assert mlp(torch.randn(2, 2, dtype=torch.float64), 5).dtype == torch.float64


@pytest.mark.parametrize("channels,groups", [(16, 32), (8, 8), (8, 4), (32, 1)])
def test_unet_output_depends_on_time_and_class_at_every_group_width(channels, groups):
    """The embedding must survive GroupNorm: with one channel per group (channels 16 and 32 at the default 32
    groups, or groups == channels) a per-channel shift added before the norm is removed exactly, so a block that
    adds t and y there outputs the same for every t and y (relative change ~1e-7). After the norm it moves them."""
    torch.manual_seed(0)
    net = UNet((1, 8, 8), channels=channels, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(),
               groups=groups, num_classes=3)
    nn.init.normal_(net.conv_out.weight, std=0.1)  # the zero-initialised output conv would hide everything
    x = torch.randn(4, 1, 8, 8)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / a.norm())

    with torch.no_grad():
        base = net(x, torch.full((4,), 10.0), y=y0)
        assert rel(base, net(x, torch.full((4,), 900.0), y=y0)) > 0.02
        assert rel(base, net(x, torch.full((4,), 10.0), y=y1)) > 0.02
    # and every block's projection of the embedding is trained (a removed shift gets ~1e-11 gradients)
    net(x, torch.full((4,), 10.0), y=y0).square().sum().backward()
    for name, module in net.named_modules():
        if name.endswith("time_proj"):
            assert module.weight.grad.abs().amax() > 1e-4, f"{name} receives no gradient"


def test_unet_zero_init_embedding_starts_unconditional_and_learns_t_and_y():
    """adaLN-Zero start (Peebles & Xie 2023): with every scale-shift projection at zero each block is the
    unconditional one, so outputs match exactly across t and y; the projections still get gradients, and one SGD
    step makes the network depend on both. All other parameters are drawn exactly as by default."""
    kwargs = dict(channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(), groups=4, num_classes=3)
    torch.manual_seed(0)
    default = UNet((1, 8, 8), **kwargs)
    torch.manual_seed(0)
    net = UNet((1, 8, 8), zero_init_embedding=True, **kwargs)
    for (name, p_default), (_, p) in zip(default.named_parameters(), net.named_parameters(), strict=True):
        if "time_proj" in name:
            assert p.abs().amax() == 0, name
        else:
            torch.testing.assert_close(p, p_default, rtol=0, atol=0, msg=name)
    nn.init.normal_(net.conv_out.weight, std=0.1)
    x = torch.randn(4, 1, 8, 8)
    t0, t1 = torch.full((4,), 10.0), torch.full((4,), 900.0)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        base = net(x, t0, y=y0)
        torch.testing.assert_close(net(x, t1, y=y0), base, rtol=0, atol=0)
        torch.testing.assert_close(net(x, t0, y=y1), base, rtol=0, atol=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    target = torch.randn(4, 1, 8, 8)
    (net(x, t0, y=y0) - target).square().sum().backward()
    for name, module in net.named_modules():
        if name.endswith("time_proj"):
            assert module.weight.grad.abs().amax() > 1e-4, f"{name} receives no gradient"
    opt.step()
    with torch.no_grad():
        base = net(x, t0, y=y0)
        assert float((net(x, t1, y=y0) - base).norm() / base.norm()) > 1e-3
        assert float((net(x, t0, y=y1) - base).norm() / base.norm()) > 1e-3


@pytest.mark.parametrize("make", [
    lambda: UNetEnergy((1, 8, 8), channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(),
                       zero_init_embedding=True),
    lambda: UNetGenerator((1, 8, 8), latent_dim=4, channels=8, channel_mult=(1, 2), num_res_blocks=1,
                          attention_resolutions=(), zero_init_embedding=True),
])
def test_unet_wrappers_pass_zero_init_embedding_through(make):
    projections = [m for n, m in make().named_modules() if n.endswith("time_proj") and isinstance(m, nn.Linear)]
    assert projections and all(p.weight.abs().amax() == 0 and p.bias.abs().amax() == 0 for p in projections)


def test_unet_rejects_a_non_bool_zero_init_embedding():
    with pytest.raises(ValueError, match="zero_init_embedding must be true or false"):
        UNet((1, 8, 8), channels=8, channel_mult=(1, 2), zero_init_embedding="yes")
