"""Mixed precision: bf16-mixed training on CPU for every module, bf16-mixed in every GPU config, and gradient
clipping on unscaled gradients under 16-mixed (loss scaling), for the manual-optimization module too.

16-mixed: Lightning turns ``precision="16-mixed"`` on CPU into bf16-mixed, but accepts the fp16 ``MixedPrecision``
plugin with a CPU ``GradScaler`` given explicitly: float16 autocast and loss scaling then run on CPU as on a GPU.
With plain SGD (lr η) and clipping to a norm c below the gradient's, every step that the scaler does not skip
moves the parameters by exactly ``η c`` (up to the float32 rounding of the weights). Clipping the loss-scaled
gradient instead would give ``η c / scale``: off by the scale factor (256 here).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.plugins.precision import MixedPrecision
from scale_helpers import MODULES, LossRecorder, make_data, make_module, make_trainer, num_optimizers

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _DtypeProbe(L.Callback):
    """Records the dtypes of the first linear layer's outputs during training batches."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        first = next(m for m in pl_module.modules() if isinstance(m, torch.nn.Linear))
        first.register_forward_hook(lambda mod, inp, out: self.dtypes.add(out.dtype))


@pytest.mark.parametrize("name", MODULES)
def test_bf16_mixed_trains_on_cpu_without_nan(name: str) -> None:
    L.seed_everything(0, verbose=False)
    module = make_module(name)
    before = [p.detach().clone() for p in module.parameters()]
    recorder, probe = LossRecorder(), _DtypeProbe()
    trainer = make_trainer(8, precision="bf16-mixed", callbacks=[recorder, probe])
    trainer.fit(module, make_data(name=name))
    assert torch.bfloat16 in probe.dtypes  # autocast really ran the network in bfloat16
    assert len(recorder.losses) == 8 and all(torch.isfinite(torch.tensor(recorder.losses)))
    params = list(module.parameters())
    assert all(torch.isfinite(p).all() for p in params)
    assert all(p.dtype == torch.float32 for p in params)  # mixed: the weights stay float32
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))


def _gpu_trainer_configs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        trainer = (yaml.safe_load(path.read_text()) or {}).get("trainer") or {}
        if trainer.get("accelerator") in ("gpu", "cuda", "auto"):  # method GPU configs say auto
            out.append((str(path.relative_to(CONFIGS)), trainer))
    return out


def test_every_gpu_config_uses_bf16_mixed() -> None:
    configs = _gpu_trainer_configs()
    assert len(configs) >= 4  # one GPU config per method at least
    wrong = {name: trainer.get("precision") for name, trainer in configs if trainer.get("precision") != "bf16-mixed"}
    assert not wrong, f"GPU configs without precision: bf16-mixed: {wrong}"


class _StepSizes(L.Callback):
    """Norm of each optimizer's parameter change over every step it really takes (skipped steps never run)."""

    def __init__(self) -> None:
        self.sizes: dict[int, list[float]] = {}
        self.scales: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for i, optimizer in enumerate(trainer.optimizers):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            saved: list[torch.Tensor] = []
            self.sizes[i] = []

            def pre(opt: Any, args: Any, kwargs: Any, params: list = params, saved: list = saved) -> None:
                saved[:] = [p.detach().clone() for p in params]

            def post(opt: Any, args: Any, kwargs: Any, i: int = i, params: list = params, saved: list = saved) -> None:
                change = torch.sqrt(sum(((p.detach() - s) ** 2).sum() for p, s in zip(params, saved, strict=True)))
                self.sizes[i].append(float(change))
                self.scales.append(float(trainer.precision_plugin.scaler.get_scale()))

            optimizer.register_step_pre_hook(pre)
            optimizer.register_step_post_hook(post)


@pytest.mark.parametrize("name", ["ddaebm", "ebm"])
def test_16_mixed_clips_unscaled_gradients(name: str) -> None:
    # clip below the gradient norms of an untrained net, so every step is clipped; η·c = 1e-3 is large enough
    # that float32 rounding of the weights (~3e-8 per entry) stays below 1e-4 of the measured step
    lr, clip = 1.0, 1e-3
    sgd = partial(torch.optim.SGD, lr=lr)
    if name == "ddaebm":  # manual optimization: the module clips, through Lightning's precision plugin
        module = make_module(name, energy_optimizer=sgd, generator_optimizer=sgd, energy_lr_scheduler=None,
                             generator_lr_scheduler=None, gradient_clip_val=clip)
        clip_args: dict[str, Any] = {}
    else:  # automatic optimization: the Trainer clips
        module = make_module(name, optimizer=sgd, lr_scheduler=None)
        clip_args = {"gradient_clip_val": clip}
    L.seed_everything(0, verbose=False)
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=256.0))
    sizes = _StepSizes()
    trainer = make_trainer(12, plugins=[plugin], callbacks=[sizes], **clip_args)
    trainer.fit(module, make_data(name=name))
    assert all(len(s) > 0 for s in sizes.sizes.values()), sizes.sizes  # every optimizer took real steps
    assert len(sizes.sizes) == num_optimizers(name)
    taken = torch.tensor([s for per_opt in sizes.sizes.values() for s in per_opt])
    # each taken step moves by η·c; clipping before unscaling would move by η·c/scale (scale >= 1 throughout)
    assert min(sizes.scales) > 1.0
    torch.testing.assert_close(taken, torch.full_like(taken, lr * clip), rtol=1e-3, atol=0.0)
