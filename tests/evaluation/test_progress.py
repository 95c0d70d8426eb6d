"""Long test-report steps show progress on a terminal and stay silent elsewhere; chunking changes no figure."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from lit_gen.evaluation import FlowLikelihood
from lit_gen.evaluation.progress import evaluation_progress, evaluation_status, shows_progress


class _Module:
    """A stand-in with a density: log N(x; 0, I), counting the points of each ``log_prob`` call."""

    data_shape = (2,)

    def __init__(self, trainer: object | None) -> None:
        self._trainer = trainer
        self.calls: list[int] = []

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.calls.append(len(x))
        return -0.5 * (x**2).sum(1) - torch.log(torch.tensor(2 * torch.pi))


def _trainer(bar: bool, rank_zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(progress_bar_callback=object() if bar else None, is_global_zero=rank_zero,
                           datamodule=None)


def test_progress_only_where_the_trainer_shows_a_bar() -> None:
    assert not shows_progress(_Module(None))
    assert not shows_progress(_Module(_trainer(bar=False)))
    assert not shows_progress(_Module(_trainer(bar=True, rank_zero=False)))
    assert shows_progress(_Module(_trainer(bar=True)))


def test_the_bar_counts_every_point_and_the_nll_is_the_unchunked_one(monkeypatch) -> None:
    advanced: list[int] = []
    real = evaluation_progress

    def recording(module, description, total):  # noqa: ANN001, ANN202
        ctx = real(module, description, total)

        class _Wrap:
            def __enter__(self):  # noqa: ANN204
                advance = ctx.__enter__()
                return lambda n: (advanced.append(n), advance(n))

            def __exit__(self, *exc):  # noqa: ANN002, ANN204
                return ctx.__exit__(*exc)

        return _Wrap()

    import lit_gen.evaluation.likelihood as likelihood

    monkeypatch.setattr(likelihood, "evaluation_progress", recording)
    x = torch.randn(1100, 2, generator=torch.Generator().manual_seed(0))
    module = _Module(_trainer(bar=True))
    ev = FlowLikelihood(num_points=1100, nfe_per_point=8)
    ev.update(module, x, 0, "test")
    report = ev.report(module)
    assert module.calls == [512, 512, 76] and advanced == [512, 512, 76]
    exact = float(0.5 * (x**2).sum(1).mean() + torch.log(torch.tensor(2 * torch.pi)))
    assert abs(report["nll"] - exact) < 1e-5 and report["nll_nfe"] == 8.0


def test_status_and_progress_are_no_ops_without_a_bar() -> None:
    module = _Module(None)
    with evaluation_progress(module, "nothing", 10) as advance:
        advance(3)  # no bar, no error
    with evaluation_status(module, "nothing"):
        pass
