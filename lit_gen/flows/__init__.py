"""Pure-torch flow matching: probability paths, couplings, the CFM loss and the change-of-variables likelihood.

Nothing here imports Lightning; :class:`lit_gen.models.FlowMatchingModule` wires the pieces into a module, and
:mod:`lit_gen.diffusion.ode` holds the ODE solvers that sample the trained flow. Equations in
``docs/algorithms.md#flow-matching``.
"""

from lit_gen.flows.couplings import (
    COUPLINGS,
    Coupling,
    ExactOTCoupling,
    IndependentCoupling,
    SinkhornCoupling,
    build_coupling,
    exact_ot_assignment,
    sinkhorn_log_plan,
    squared_distances,
)
from lit_gen.flows.likelihood import FlowLogProbOutput, divergence_fn, flow_log_prob, standard_normal_log_prob
from lit_gen.flows.loss import VelocityField, cfm_loss, sample_time
from lit_gen.flows.paths import (
    PATHS,
    AffinePath,
    BrownianBridgePath,
    LinearPath,
    ProbabilityPath,
    VPCosinePath,
    build_path,
)

__all__ = [
    "PATHS",
    "ProbabilityPath",
    "AffinePath",
    "LinearPath",
    "VPCosinePath",
    "BrownianBridgePath",
    "build_path",
    "COUPLINGS",
    "Coupling",
    "IndependentCoupling",
    "ExactOTCoupling",
    "SinkhornCoupling",
    "build_coupling",
    "exact_ot_assignment",
    "sinkhorn_log_plan",
    "squared_distances",
    "VelocityField",
    "cfm_loss",
    "sample_time",
    "FlowLogProbOutput",
    "divergence_fn",
    "flow_log_prob",
    "standard_normal_log_prob",
]
