"""Pure-torch training objectives for energy-based models."""

from lit_gen.losses.contrastive_divergence import contrastive_divergence_loss
from lit_gen.losses.score_matching import denoising_score_matching_loss, sliced_score_matching_loss

__all__ = ["contrastive_divergence_loss", "denoising_score_matching_loss", "sliced_score_matching_loss"]
