"""Denoiser networks: the :class:`Denoiser` contract, FISOR's residual MLP and the trajectory transformer."""

from policies.diffusion.denoisers.base import Denoiser, check_denoiser_inputs
from policies.diffusion.denoisers.mlp import ResidualMLPConfig, ResidualMLPDenoiser
from policies.diffusion.denoisers.transformer import (
    ATTENTION_KINDS,
    TrajectoryTransformer,
    TrajectoryTransformerConfig,
    build_attention_mask,
)

__all__ = [
    "ATTENTION_KINDS",
    "Denoiser",
    "ResidualMLPConfig",
    "ResidualMLPDenoiser",
    "TrajectoryTransformer",
    "TrajectoryTransformerConfig",
    "build_attention_mask",
    "check_denoiser_inputs",
]
