"""Contrastive divergence (Hinton 2002) with the energy regulariser of Du & Mordatch (2019).

``L = mean E(x⁺) − mean E(sg(x⁻)) + α (mean E(x⁺)² + mean E(x⁻)²)`` where x⁺ are data and x⁻ MCMC samples of
the model (persistent chains give PCD, Tieleman 2008). The gradient of the first two terms is the maximum
likelihood gradient when x⁻ ~ p_θ; the α term keeps energies near zero so MCMC step sizes stay meaningful.
"""

from __future__ import annotations

from torch import Tensor


def contrastive_divergence_loss(
    energy_pos: Tensor, energy_neg: Tensor, alpha: float = 0.1
) -> tuple[Tensor, dict[str, Tensor]]:
    """CD/PCD loss from energies of data (``energy_pos``) and of detached MCMC samples (``energy_neg``)."""
    cd = energy_pos.mean() - energy_neg.mean()
    reg = energy_pos.pow(2).mean() + energy_neg.pow(2).mean()
    return cd + alpha * reg, {"cd": cd.detach(), "reg": reg.detach()}
