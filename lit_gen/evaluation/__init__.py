"""Evaluation as composable pieces: each :class:`Evaluator` is one validation/test measurement.

A module lists its evaluators in ``configure_evaluators``; the base module runs them and writes the test report
(:func:`write_report`). Built-in evaluators: :class:`SampleDistances` (SW1/MMD² and floors), :class:`FDDigits`,
:class:`FDMNIST`, :class:`FlowLikelihood` (probability-flow NLL), :class:`AISLikelihood` (the NLL bracket of an energy),
:class:`DenoisingPSNR`, :class:`EnergyOOD` and :class:`GridNLL`.
"""

from lit_gen.evaluation.ais import AISLikelihood
from lit_gen.evaluation.base import Evaluator
from lit_gen.evaluation.denoising import DenoisingPSNR, energy_denoiser
from lit_gen.evaluation.energy import EnergyOOD, GridNLL
from lit_gen.evaluation.fd_digits import FDDigits
from lit_gen.evaluation.fd_mnist import FDMNIST
from lit_gen.evaluation.jem import JEMAccuracy, jem_logits_available
from lit_gen.evaluation.likelihood import FlowLikelihood
from lit_gen.evaluation.report import format_value, write_report
from lit_gen.evaluation.sample_distances import SampleDistances
from lit_gen.evaluation.subsample import EvalSubsample, eval_seed, subsample_indices

__all__ = [
    "AISLikelihood", "DenoisingPSNR", "EnergyOOD", "EvalSubsample", "Evaluator", "FDDigits", "FDMNIST",
    "FlowLikelihood", "energy_denoiser", "GridNLL", "JEMAccuracy", "SampleDistances", "eval_seed", "format_value",
    "jem_logits_available", "subsample_indices", "write_report",
]
