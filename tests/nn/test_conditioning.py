"""Class conditioning of every network (``num_classes``, forward argument ``y``; ``lit_gen.nn.conditioning``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from lit_gen.nn import (
    ClassEmbedding,
    ConvEnergyNet,
    ConvPosterior,
    EnergyMLP,
    FourierTimeEnergyMLP,
    GeneratorMLP,
    PosteriorMLP,
    TimeEnergyMLP,
    TimeMLP,
    UNet,
    UNetEnergy,
    UNetGenerator,
)

SMALL_UNET = dict(channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(8,), groups=4)
B = 3
T = torch.tensor([3.0, 500.0, 998.0])
K = 4


@dataclass
class Net:
    build: Callable[..., nn.Module]  # build(**extra)
    call: Callable[..., Tensor]  # call(net, x, **y_kwarg)
    shape: tuple[int, ...]
    # (state-dict entries, parameters + buffers, sha1 of "key:shape;..." ) of the unconditional network (the U-Nets
    # with their scale-shift residual blocks): num_classes=0 must leave the module exactly as it is without classes.
    structure: tuple[int, int, str]


NETS = {
    "TimeMLP": Net(lambda **k: TimeMLP((3,), hidden=16, depth=2, time_dim=8, **k),
                   lambda n, x, **y: n(x, T, **y), (3,), (26, 2259, "31bd14289579")),
    "TimeEnergyMLP": Net(lambda **k: TimeEnergyMLP((3,), hidden=16, depth=2, time_dim=8, **k),
                         lambda n, x, **y: n(x, T, **y), (3,), (26, 2225, "73beb79a9f38")),
    "EnergyMLP": Net(lambda **k: EnergyMLP((3,), hidden=16, depth=2, **k),
                     lambda n, x, **y: n(x, **y), (3,), (6, 353, "3e667213e1d3")),
    "EnergyMLP-sn": Net(lambda **k: EnergyMLP((3,), hidden=16, depth=2, spectral_norm=True, **k),
                        lambda n, x, **y: n(x, **y), (3,), (12, 421, "d8ea5432a984")),
    "FourierTimeEnergyMLP": Net(
        lambda **k: FourierTimeEnergyMLP((3,), num_features=8, hidden=16, depth=2, time_dim=8, **k),
        lambda n, x, **y: n(x, T, **y), (3,), (27, 2457, "e653d2e820ba")),
    "ConvEnergyNet": Net(lambda **k: ConvEnergyNet((1, 8, 8), channels=4, **k),
                         lambda n, x, **y: n(x, **y), (1, 8, 8), (12, 1941, "561ef9527fd4")),
    "UNet": Net(lambda **k: UNet((1, 8, 8), **SMALL_UNET, **k),
                lambda n, x, **y: n(x, T, **y), (1, 8, 8), (128, 45953, "3442dfe3199f")),
    "UNetEnergy": Net(lambda **k: UNetEnergy((1, 8, 8), **SMALL_UNET, **k),
                      lambda n, x, **y: n(x, T, **y), (1, 8, 8), (128, 45953, "aadbc136c63e")),
    "GeneratorMLP": Net(lambda **k: GeneratorMLP((3,), latent_dim=2, hidden=16, depth=2, time_dim=8, **k),
                        lambda n, x, **y: n(x, T, torch.ones(B, 2), **y), (3,), (26, 2291, "7f09eb0c9e26")),
    "PosteriorMLP": Net(lambda **k: PosteriorMLP((3,), latent_dim=2, hidden=16, depth=2, time_dim=8, **k),
                        lambda n, x, **y: n(x, x + 1, T, **y)[0], (3,), (26, 2324, "95619dd2da0c")),
    "UNetGenerator": Net(lambda **k: UNetGenerator((1, 8, 8), latent_dim=4, **SMALL_UNET, **k),
                         lambda n, x, **y: n(x, T, torch.ones(B, 4), **y), (1, 8, 8), (134, 48225, "6c4d12d8e2a6")),
    "ConvPosterior": Net(lambda **k: ConvPosterior((1, 8, 8), latent_dim=4, channels=4, **k),
                         lambda n, x, **y: n(x, x + 1, T, **y)[0], (1, 8, 8), (22, 2516, "aae65b19c7d5")),
}
NAMES = list(NETS)


def _make(name: str, **extra) -> nn.Module:
    torch.manual_seed(0)
    net = NETS[name].build(**extra)
    for m in net.modules():  # the U-Nets' zero-initialised output conv would hide every input, y included
        if isinstance(getattr(m, "conv_out", None), nn.Conv2d):
            torch.manual_seed(2)
            nn.init.normal_(m.conv_out.weight, std=0.1)
    return net


def _x(name: str) -> Tensor:
    return torch.randn(B, *NETS[name].shape, generator=torch.Generator().manual_seed(1))


def _structure(net: nn.Module) -> tuple[int, int, str]:
    sd = net.state_dict()
    desc = ";".join(f"{k}:{tuple(v.shape)}" for k, v in sd.items())
    return len(sd), sum(v.numel() for v in sd.values()), hashlib.sha1(desc.encode()).hexdigest()[:12]


@pytest.mark.parametrize("name", NAMES)
def test_num_classes_zero_is_the_unconditional_network(name: str) -> None:
    spec = NETS[name]
    default, zero = _make(name), _make(name, num_classes=0)
    assert _structure(default) == _structure(zero) == spec.structure
    assert not any("class" in k for k in zero.state_dict())
    x = _x(name)
    with torch.no_grad():
        assert torch.equal(spec.call(default, x), spec.call(zero, x, y=None))
    with pytest.raises(ValueError, match="this network was built without num_classes; set num_classes in the network "
                                         "config or do not pass labels"):
        spec.call(zero, x, y=torch.zeros(B, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_conditioning_adds_only_the_class_embedding(name: str) -> None:
    uncond, cond = _make(name).state_dict(), _make(name, num_classes=K).state_dict()
    extra = set(cond) - set(uncond)
    assert set(uncond) <= set(cond) and len(extra) == 1 and next(iter(extra)).endswith("class_embedding.weight")
    assert cond[next(iter(extra))].shape[0] == K + 1  # K classes and the null class
    # The embedding is created last, so the same seed draws the same other parameters.
    assert all(torch.equal(uncond[k], cond[k]) for k in uncond)


@pytest.mark.parametrize("name", NAMES)
def test_output_depends_on_y_and_the_null_class_is_y_none(name: str) -> None:
    spec = NETS[name]
    net = _make(name, num_classes=K).eval()  # eval: spectral norm's power iteration would change every call
    x = _x(name)
    with torch.no_grad():
        a = spec.call(net, x, y=torch.tensor([0, 1, 2]))
        b = spec.call(net, x, y=torch.tensor([3, 0, 1]))
        none = spec.call(net, x)
        null = spec.call(net, x, y=torch.full((B,), K))
        broadcast = spec.call(net, x, y=2)
        each = spec.call(net, x, y=torch.tensor([2, 2, 2]))
    assert (a - b).reshape(B, -1).abs().amax(1).min() > 1e-6  # every sample changes with its label
    assert torch.equal(none, null)
    assert torch.equal(broadcast, each)


@pytest.mark.parametrize("name", NAMES)
def test_label_errors(name: str) -> None:
    spec = NETS[name]
    net = _make(name, num_classes=K)
    x = _x(name)
    for bad in (K + 1, -1):
        with pytest.raises(ValueError, match=rf"class label {bad} is out of range for num_classes={K}"):
            spec.call(net, x, y=torch.tensor([0, bad, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        spec.call(net, x, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        spec.call(net, x, y=torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_the_class_embedding(name: str) -> None:
    spec = NETS[name]
    net = _make(name, num_classes=K)
    spec.call(net, _x(name), y=torch.tensor([0, 2, 2])).pow(2).sum().backward()
    emb = next(m for m in net.modules() if isinstance(m, ClassEmbedding))
    grad_rows = emb.weight.grad.abs().sum(1)
    assert torch.isfinite(emb.weight.grad).all()
    assert grad_rows[0] > 0 and grad_rows[2] > 0
    assert grad_rows[1] == 0 and grad_rows[3] == 0 and grad_rows[K] == 0  # unused labels, the null class


@pytest.mark.parametrize("build", [lambda **k: EnergyMLP((3,), hidden=16, depth=2, **k),
                                   lambda **k: ConvEnergyNet((1, 8, 8), channels=4, **k)])
def test_class_logits_is_the_jem_reading(build) -> None:
    torch.manual_seed(0)
    net = build(num_classes=K, class_logits=True)
    assert not any(isinstance(m, ClassEmbedding) for m in net.modules())
    x = torch.randn(B, *net.data_shape)
    y = torch.tensor([0, 3, 1])
    f = net.logits(x)
    assert f.shape == (B, K)
    torch.testing.assert_close(net(x, y=y), -f[torch.arange(B), y])
    torch.testing.assert_close(net(x), -torch.logsumexp(f, 1))
    torch.testing.assert_close(net(x, y=torch.tensor([K, 0, K])), torch.stack([net(x)[0], -f[1, 0], net(x)[2]]))
    # E(x, y) − E(x) = −log p(y | x)
    torch.testing.assert_close(net(x, y=y) - net(x), -f.log_softmax(1)[torch.arange(B), y])
    with pytest.raises(ValueError, match="class label 5 is out of range"):
        net(x, y=torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="needs num_classes"):
        build(class_logits=True)
    with pytest.raises(ValueError, match="class_logits=True"):
        build(num_classes=K).logits(x)


def test_bad_num_classes() -> None:
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="num_classes must be an int >= 0"):
            TimeMLP((2,), num_classes=bad)
