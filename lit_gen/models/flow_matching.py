"""``FlowMatchingModule``: conditional flow matching (Lipman et al. 2023; Liu et al. 2023; Tong et al. 2024).

A velocity network ``v_θ(x, t)`` is regressed on the conditional velocity of a probability path between a source
point ``x0`` (Gaussian noise or a point of another data set, ``t = 0``) and a data point ``x1`` (``t = 1``),
``L = E_{t, (x0, x1) ~ π, ε} ‖v_θ(x_t, t) − u_t(x_t | x0, x1)‖²``, with the pairs ``π`` from a coupling (independent,
minibatch exact OT, or entropic OT). Samples integrate ``dx/dt = v_θ(x, t)`` from ``t = 0`` to 1 with a solver of
:mod:`lit_gen.diffusion.ode`, from an EMA copy of the network; ``log_prob`` is the change of variables of
:mod:`lit_gen.flows.likelihood`. Reflow (Liu et al. 2023) retrains on the model's own pairs ``(x0, ψ(x0))``:
see :meth:`FlowMatchingModule.reflow_pairs` and ``docs/algorithms.md#flow-matching``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lit_gen.diffusion.ode import FIXED_STEP_METHODS, METHODS, Method, odeint
from lit_gen.evaluation import Evaluator, FlowLikelihood
from lit_gen.flows import (
    Coupling,
    IndependentCoupling,
    ProbabilityPath,
    build_coupling,
    build_path,
    cfm_loss,
    flow_log_prob,
    standard_normal_log_prob,
)
from lit_gen.models.base import GenerativeModule, NetFactory, build_network, refuse_labels
from lit_gen.utils.ema import ExponentialMovingAverage

__all__ = ["FlowMatchingModule"]


def _check_method(method: str, what: str) -> str:
    if method not in METHODS:
        raise ValueError(f"{what} must be one of {list(METHODS)}, got {method!r}")
    return method


class FlowMatchingModule(GenerativeModule):
    """A flow-matching model: velocity network, probability path, coupling, source, ODE sampler and EMA.

    Args:
        net: velocity network factory ``net(x, τ) -> x``-shaped (e.g. ``lit_gen.nn.TimeMLP``, ``lit_gen.nn.UNet``),
            called with ``τ = time_scale · t`` for the flow time ``t ∈ [0, 1]``.
        data_shape: shape of one data point (linked from the data module by the CLI).
        prob_path: the probability path, a :class:`~lit_gen.flows.ProbabilityPath` or a shorthand: ``linear``
            (``LinearPath(sigma_min, sigma)``: rectified flow / I-CFM / OT-CFM), ``vp_cosine`` or
            ``brownian_bridge`` (``sigma``; SB-CFM). (Not ``path``: that name is the file of ``ArrayDataModule``,
            and Lightning refuses a module and a data module logging one hyper-parameter name with two values.)
        coupling: a :class:`~lit_gen.flows.Coupling` or a shorthand: ``independent``, ``ot`` (minibatch exact OT)
            or ``sinkhorn`` (entropic OT with ``reg = 2·sigma²``, Tong et al.'s SB-CFM choice).
        source: ``"gaussian"`` (``N(0, I)``) or a data module (``class_path`` in YAML) whose training split is
            sampled for ``x0``: data → data transport. It must hold its training split in memory
            (``tensor("train")``) with the data's shape; ``log_prob`` (and the test NLL) needs its ``log_prob``.
        sigma, sigma_min: noise of the named path (see ``prob_path``); ``sigma`` also sets the Sinkhorn
            regularisation.
        time_scale: the network sees ``time_scale · t``; 1000 matches the diffusion time steps that
            ``TimeMLP``/``UNet``'s sinusoidal embeddings were built for.
        sample_method: ODE solver of ``sample``: ``euler``, ``midpoint``, ``heun``, ``rk4`` (``sample_steps`` equal
            steps; NFE = stages · steps) or ``dopri5`` (adaptive, ``rtol``/``atol``; its NFE is reported).
        sample_steps: steps of a fixed-step ``sample_method``.
        rtol, atol: tolerances of ``dopri5``.
        pairs: a file written by :meth:`save_reflow_pairs`: train on its fixed ``(x0, x1)`` pairs (reflow)
            instead of source draws coupled with the data batches (which then only set the batch size). Needs
            ``coupling="independent"``.
        ema_decay: EMA decay of the sampling network; ``None`` samples from the raw weights.
        ema_warmup: use the warm-up decay ``min(d, (1+n)/(10+n))``.
        test_nll_samples: test points whose NLL (change of variables, RK4 with ``test_nll_steps``) enters the test
            report (nats for vectors, bits/dim for images); 0 (or a source without a density) turns it off.
        test_nll_steps: RK4 steps of that NLL (``nfe = 4 · steps``; Hutchinson divergence above 16 dims).
        optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points, val_max_points: see
            :class:`GenerativeModule`.
    """

    def __init__(
        self,
        net: NetFactory,
        data_shape: Sequence[int] = (2,),
        prob_path: ProbabilityPath | str = "linear",
        coupling: Coupling | str = "independent",
        source: str | L.LightningDataModule = "gaussian",
        sigma: float = 0.0,
        sigma_min: float = 0.0,
        time_scale: float = 1000.0,
        sample_method: Method = "midpoint",
        sample_steps: int = 32,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        pairs: str | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        test_nll_samples: int = 512,
        test_nll_steps: int = 32,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_metrics: bool = True,
        eval_max_points: int = 10000,
        mmd_max_points: int = 4000,
        val_max_points: int = 2000,
        num_classes: int | None = None,
    ) -> None:
        refuse_labels("FlowMatchingModule", num_classes)
        super().__init__(data_shape, optimizer, lr_scheduler, eval_metrics, eval_max_points, mmd_max_points,
                         val_max_points)
        ignore = ["net", "optimizer", "lr_scheduler"]
        ignore += [name for name, value in (("prob_path", prob_path), ("coupling", coupling), ("source", source))
                   if not isinstance(value, str)]
        self.save_hyperparameters(ignore=ignore)
        if isinstance(source, str) and source != "gaussian":
            raise ValueError(
                "source must be 'gaussian' or a data module (class_path in YAML, e.g. lit_gen.data.Toy2DDataModule), "
                f"got {source!r}"
            )
        if coupling == "sinkhorn" and not sigma > 0:
            raise ValueError(
                "coupling='sinkhorn' uses the regularisation 2·sigma²: set sigma > 0 (e.g. 0.1 with "
                "prob_path='brownian_bridge' for SB-CFM), or give a lit_gen.flows.SinkhornCoupling with its own reg"
            )
        if not (isinstance(time_scale, (int, float)) and time_scale > 0):
            raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
        if isinstance(sample_steps, bool) or not isinstance(sample_steps, int) or sample_steps <= 0:
            raise ValueError(f"sample_steps must be a positive integer, got {sample_steps!r}")
        if test_nll_samples < 0 or test_nll_steps < 1:
            raise ValueError(
                f"need test_nll_samples >= 0 and test_nll_steps >= 1; got {test_nll_samples}, {test_nll_steps}"
            )
        self.net = build_network(net, self.data_shape)
        self.prob_path = build_path(prob_path, sigma=sigma, sigma_min=sigma_min)
        self.coupling = build_coupling(coupling, reg=2.0 * float(sigma) ** 2 if sigma > 0 else 0.02)
        if pairs is not None and not isinstance(self.coupling, IndependentCoupling):
            raise ValueError(
                f"reflow pairs are already coupled; train on them with coupling='independent', not {self.coupling!r}"
            )
        self.source = source
        self.time_scale = float(time_scale)
        self.sample_method = _check_method(sample_method, "sample_method")
        self.sample_steps = int(sample_steps)
        self.rtol, self.atol = float(rtol), float(atol)
        self.pairs = pairs
        self.ema = ExponentialMovingAverage(self.net, ema_decay, ema_warmup) if ema_decay is not None else None
        self.test_nll_samples = int(test_nll_samples)
        self.test_nll_steps = int(test_nll_steps)
        self._source_points: Tensor | None = None
        self._pairs: tuple[Tensor, Tensor] | None = None

    def configure_evaluators(self) -> list[Evaluator]:
        """The base evaluators and, when the source has a density, the NLL of the first ``test_nll_samples``
        test points."""
        evaluators = super().configure_evaluators()
        if self.test_nll_samples > 0 and self.source_log_prob() is not None:
            evaluators.append(FlowLikelihood(self.test_nll_samples, 4 * self.test_nll_steps))
        return evaluators

    # ----------------------------------------------------------------- source
    def source_points(self) -> Tensor:
        """The training split of the source data module (set up on first use), on the CPU."""
        if self._source_points is None:
            dm = self.source
            if callable(getattr(dm, "prepare_data", None)):
                dm.prepare_data()
            if callable(getattr(dm, "setup", None)):
                dm.setup("fit")
            getter = getattr(dm, "tensor", None)
            points = getter("train") if callable(getter) else None
            if not isinstance(points, Tensor):
                raise ValueError(
                    f"the source data module {type(dm).__name__} holds no training split in memory "
                    "(tensor('train')); use an in-memory data module (Toy2DDataModule, ArrayDataModule, ...)"
                )
            if tuple(points.shape[1:]) != self.data_shape:
                raise ValueError(
                    f"the source data have shape {tuple(points.shape[1:])} per point but the data {self.data_shape}: "
                    "a source must live in the data's space"
                )
            self._source_points = points.detach().to("cpu", torch.float32)
        return self._source_points

    def draw_source(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
        """``n`` source points ``x0``: ``N(0, I)`` draws or uniform draws (with replacement) from the source split.

        Drawn on the generator's device (the model's, or the CPU for the source split, without a generator) and
        moved to ``device`` (default: the model's)."""
        device = self.device if device is None else device
        if isinstance(self.source, str):
            where = generator.device if generator is not None else device
            return torch.randn((n, *self.data_shape), generator=generator, device=where, dtype=dtype).to(device)
        points = self.source_points()
        where = generator.device if generator is not None else torch.device("cpu")
        idx = torch.randint(len(points), (n,), generator=generator, device=where).cpu()
        return points[idx].to(device=device, dtype=dtype)

    def source_log_prob(self) -> Callable[[Tensor], Tensor] | None:
        """The source's log-density ``x -> (B,)``: the standard normal's, a source data module's ``log_prob``, or
        ``None`` when the source has none."""
        if isinstance(self.source, str):
            return standard_normal_log_prob
        fn = getattr(self.source, "log_prob", None)
        if not callable(fn):
            return None
        return lambda x: fn(x.detach().cpu().to(torch.float64)).to(x.device)

    # ----------------------------------------------------------------- training
    def reflow_training_pairs(self) -> tuple[Tensor, Tensor]:
        """The ``(x0, x1)`` pairs of the ``pairs`` file (loaded on first use, checked)."""
        if self._pairs is None:
            if self.pairs is None:
                raise ValueError("no reflow pairs: set pairs to a file written by save_reflow_pairs")
            saved = torch.load(self.pairs, map_location="cpu", weights_only=True)
            if not (isinstance(saved, dict) and isinstance(saved.get("x0"), Tensor) and isinstance(saved.get("x1"),
                                                                                                     Tensor)):
                raise ValueError(f"{self.pairs} is not a reflow-pairs file: expected a dict with tensors x0 and x1")
            x0, x1 = saved["x0"], saved["x1"]
            if x0.shape != x1.shape or tuple(x0.shape[1:]) != self.data_shape or len(x0) == 0:
                raise ValueError(
                    f"{self.pairs} holds pairs of shapes {tuple(x0.shape)} and {tuple(x1.shape)}; expected two "
                    f"equal non-empty batches of data shape {self.data_shape}"
                )
            self._pairs = (x0.float(), x1.float())
        return self._pairs

    def velocity(self, use_ema: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
        """``v(x, t)`` for ``t`` (B,) in [0, 1]: the (EMA) network evaluated at ``time_scale · t``."""
        net: nn.Module = self.ema.module if (use_ema and self.ema is not None) else self.net
        scale = self.time_scale

        def v(x: Tensor, t: Tensor) -> Tensor:
            return net(x, t * scale)

        return v

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x1 = self.check_batch(batch)
        if self.pairs is not None:
            p0, p1 = self.reflow_training_pairs()
            idx = torch.randint(len(p0), (x1.shape[0],))
            x0, x1 = p0[idx].to(x1), p1[idx].to(x1)
        else:
            x0 = self.draw_source(x1.shape[0], device=x1.device, dtype=x1.dtype)
            x0, x1 = self.coupling(x0, x1)
        loss = cfm_loss(self.velocity(), self.prob_path, x0, x1)
        self.check_finite(loss, "the flow-matching loss", "Lower the learning rate or enable gradient clipping.")
        if self.logs_this_step():
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer step, then the EMA update (here, not in ``on_train_batch_end``, for the same reason as
        :meth:`lit_gen.models.DiffusionModule.optimizer_step`: checkpoints saved at the batch end include it)."""
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    # ----------------------------------------------------------------- sampling
    def _integrate(self, x0: Tensor, t0: float, t1: float, num_steps: int | None, method: str | None,
                   use_ema: bool) -> tuple[Tensor, int]:
        method = _check_method(method or self.sample_method, "method")
        steps = self.sample_steps if num_steps is None else num_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {steps!r}")
        v = self.velocity(use_ema)
        batch, dtype = x0.shape[0], x0.dtype
        t_dtype = torch.promote_types(dtype, torch.float32)

        def field(t: float, x: Tensor) -> Tensor:
            return v(x, torch.full((batch,), t, device=x.device, dtype=t_dtype)).to(dtype)

        was_training = self.training
        self.eval()
        try:
            if method in FIXED_STEP_METHODS:
                sol = odeint(field, x0, t0, t1, method, num_steps=steps)  # type: ignore[arg-type]
            else:
                sol = odeint(field, x0, t0, t1, "dopri5", rtol=self.rtol, atol=self.atol)
        finally:
            self.train(was_training)
        return sol.x, sol.nfe  # type: ignore[return-value]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        num_steps: int | None = None,
        method: Method | None = None,
        generator: torch.Generator | None = None,
        use_ema: bool = True,
        return_nfe: bool = False,
        x0: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, int]:
        """Draw ``n`` samples by integrating ``dx/dt = v(x, t)`` from source draws (or the given ``x0``) at ``t = 0``
        to ``t = 1``, with ``method``/``num_steps`` (default ``sample_method``/``sample_steps``). With
        ``return_nfe=True`` also returns the number of network evaluations."""
        if n <= 0:
            raise ValueError(f"number of samples must be positive, got {n}")
        if x0 is None:
            x0 = self.draw_source(n, generator)
        elif x0.shape != (n, *self.data_shape):
            raise ValueError(f"x0 has shape {tuple(x0.shape)}, expected {(n, *self.data_shape)}")
        x, nfe = self._integrate(x0.to(self.device), 0.0, 1.0, num_steps, method, use_ema)
        return (x, nfe) if return_nfe else x

    @torch.no_grad()
    def encode(self, x: Tensor, num_steps: int | None = None, method: Method | None = None,
               use_ema: bool = True) -> Tensor:
        """The source point of each data point: the flow integrated backwards, from ``t = 1`` to ``t = 0``."""
        x = self.check_batch(x).to(self.device)
        return self._integrate(x, 1.0, 0.0, num_steps, method, use_ema)[0]

    # ----------------------------------------------------------------- reflow
    @torch.no_grad()
    def reflow_pairs(self, n: int, num_steps: int | None = None, method: Method | None = None,
                     generator: torch.Generator | None = None, batch_size: int = 4096, use_ema: bool = True
                     ) -> tuple[Tensor, Tensor]:
        """``n`` pairs ``(x0, x1 = ψ(x0))`` of source draws and the model's own samples from them, on the CPU.

        Training a new flow on them (``pairs``, coupling ``independent``) is the second rectification of Liu et
        al. (2023): the new flow's paths cross less, so few-step sampling improves. The two-stage workflow is in
        ``docs/algorithms.md#flow-matching``.
        """
        if n <= 0 or batch_size <= 0:
            raise ValueError(f"n and batch_size must be positive, got {n} and {batch_size}")
        sources, targets = [], []
        for start in range(0, n, batch_size):
            k = min(batch_size, n - start)
            x0 = self.draw_source(k, generator)
            x1 = self.sample(k, num_steps=num_steps, method=method, use_ema=use_ema, x0=x0)
            sources.append(x0.cpu())
            targets.append(x1.cpu())  # type: ignore[union-attr]
        return torch.cat(sources), torch.cat(targets)

    def save_reflow_pairs(self, file: str | Path, n: int, **kwargs: Any) -> Path:
        """Write :meth:`reflow_pairs` ``(n, **kwargs)`` to ``file`` (``torch.save`` of ``{"x0", "x1"}``), the
        ``pairs`` file of a reflow run."""
        x0, x1 = self.reflow_pairs(n, **kwargs)
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x0": x0, "x1": x1}, file)
        return file

    # ----------------------------------------------------------------- likelihood
    def log_prob(self, x: Tensor, num_steps: int | None = None, method: Method = "rk4",
                 generator: torch.Generator | None = None, use_ema: bool = True) -> Tensor:
        """``log p(x)`` in nats per sample by the change of variables along the flow
        (:func:`lit_gen.flows.flow_log_prob`; ``method`` with ``num_steps`` or ``test_nll_steps``; exact divergence
        up to 16 dims, Hutchinson above). Needs a source with a density (Gaussian, or a data module's
        ``log_prob``)."""
        source_lp = self.source_log_prob()
        if source_lp is None:
            raise ValueError(
                f"log_prob needs the source's density, and the source {type(self.source).__name__} has no log_prob: "
                "use source='gaussian', or a source data module with a known density"
            )
        x = self.check_batch(x).to(self.device)
        method = _check_method(method, "method")  # type: ignore[assignment]
        was_training = self.training
        self.eval()
        try:
            out = flow_log_prob(self.velocity(use_ema), x, source_lp, method, num_steps or self.test_nll_steps,
                                generator=generator, rtol=self.rtol, atol=self.atol)
        finally:
            self.train(was_training)
        return out.log_prob
