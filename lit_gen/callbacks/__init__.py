"""Lightning callbacks and plugins: sample plots, sample writers, atomic checkpoint writes."""

from lit_gen.callbacks.checkpoint_io import AtomicCheckpointIO, BrokenCheckpointError
from lit_gen.callbacks.plots import SamplePlotCallback
from lit_gen.callbacks.writer import SampleWriter

__all__ = ["AtomicCheckpointIO", "BrokenCheckpointError", "SamplePlotCallback", "SampleWriter"]
