"""Feature normalisation held as module buffers, so its statistics travel with weights and exports."""

import torch
from torch import nn

NORMALIZER_MODES = ("gaussian", "minmax")


class Normalizer(nn.Module):
    """``normalize(x) = (x - offset) / scale`` over the last dimension ``(..., D)``.

    ``gaussian``: offset = mean, scale = std; ``minmax``: maps [min, max] to [-1, 1]. Scales are floored at
    ``min_scale`` so constant features do not divide by zero.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"Normalizer: expected a feature dimension >= 1, got {dim}")
        self.dim = dim
        self.register_buffer("offset", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.jit.unused
    def fit(self, data: torch.Tensor, mode: str = "gaussian", min_scale: float = 1e-3) -> "Normalizer":
        """Set the statistics from ``data (..., D)``; returns self."""
        if mode not in NORMALIZER_MODES:
            raise ValueError(f"normalizer mode: expected one of {NORMALIZER_MODES}, got {mode!r}")
        if data.shape[-1] != self.dim:
            raise ValueError(f"normalizer data: expected last dimension {self.dim}, got shape {tuple(data.shape)}")
        flat = data.reshape(-1, self.dim).double()
        if flat.shape[0] < 2 or not bool(torch.isfinite(flat).all()):
            raise ValueError("normalizer data: expected at least 2 finite rows, got too few rows or NaN/inf")
        if mode == "gaussian":
            offset, scale = flat.mean(0), flat.std(0)
        else:
            lo, hi = flat.min(0).values, flat.max(0).values
            offset, scale = (hi + lo) / 2, (hi - lo) / 2
        self.offset.copy_(offset.float())
        self.scale.copy_(scale.clamp_min(min_scale).float())
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units to normalised features."""
        return (x - self.offset) / self.scale

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features to physical units."""
        return x * self.scale + self.offset
