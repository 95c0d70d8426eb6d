"""Lightning callbacks: sample plots, sample writers."""

from lit_gen.callbacks.plots import SamplePlotCallback
from lit_gen.callbacks.writer import SampleWriter

__all__ = ["SamplePlotCallback", "SampleWriter"]
