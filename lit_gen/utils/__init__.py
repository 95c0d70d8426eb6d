"""Small helpers shared by the Lightning modules (no Lightning imports here)."""

from lit_gen.utils.ema import ExponentialMovingAverage, ema_decay_schedule

__all__ = ["ExponentialMovingAverage", "ema_decay_schedule"]
