"""Optimisation helpers: learning-rate schedules whose length follows the run (``CosineToEndLR``)."""

from lit_gen.optim.schedules import CosineToEndLR, span_run

__all__ = ["CosineToEndLR", "span_run"]
