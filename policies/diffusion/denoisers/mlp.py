"""Residual MLP denoiser: the FISOR / IDQL actor noise network, extended to short token sequences.

FISOR (Zheng et al., ICLR 2024) reuses the IDQL (Hansen-Estruch et al. 2023) reverse network for a single
action (H = 1):

    e_t   = MLP_128,128(FourierFeatures_64(t))                       time embedding, mish inside
    h     = Linear_256(concat(a_t, s, e_t))
    h     = h + Linear_256(mish(Linear_1024(LayerNorm(Dropout(h)))))  x 3 residual blocks
    eps   = Linear_|a|(mish(h))

with learnable Fourier features ``[cos(2 pi t W), sin(2 pi t W)]``, ``W ~ N(0, 0.2^2)`` of shape (32, 1).

Steer feeds the step ``t + 1`` (so the clean marker ``t = -1`` becomes 0 and FISOR's steps ``1..T`` are
unchanged), embeds every token's step with the shared Fourier features and flattens them over the H tokens
before the time MLP, so a trajectory may carry an independent noise level per token. For H = 1 this is
exactly FISOR's network. Classifier-free guidance (Ho & Salimans 2022) replaces the condition of the samples
flagged in ``drop_cond`` by a learned null condition.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from torch import nn

from policies.diffusion.denoisers.base import Denoiser, check_denoiser_inputs


@dataclass
class ResidualMLPConfig:
    """Sizes of the residual MLP denoiser (defaults: FISOR's actor)."""

    x_dim: int
    """features D per token (the action dimension for FISOR)"""
    horizon: int = 1
    """tokens H per sample (1 = a single action, as in FISOR)"""
    cond_dim: int = 0
    """size of the flat condition vector (the state for FISOR); 0 = unconditional"""
    num_train_steps: int = 5
    """training diffusion steps T (FISOR: 5)"""
    time_features: int = 64
    """number of learnable Fourier features per token step (even)"""
    time_hidden: int = 128
    """width of the two-layer time MLP"""
    width: int = 256
    """width of the residual trunk"""
    num_blocks: int = 3
    """number of residual blocks"""
    expansion: int = 4
    """hidden width of a block = expansion * width"""
    dropout: float = 0.1
    """dropout probability at the entry of every residual block"""

    def __post_init__(self) -> None:
        for name in (
            "x_dim",
            "horizon",
            "num_train_steps",
            "time_hidden",
            "width",
            "num_blocks",
            "expansion",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.cond_dim, int) or self.cond_dim < 0:
            raise ValueError(f"cond_dim: expected an integer >= 0 (0 = unconditional), got {self.cond_dim!r}")
        if not isinstance(self.time_features, int) or self.time_features < 2 or self.time_features % 2:
            raise ValueError(f"time_features: expected an even integer >= 2, got {self.time_features!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")


class LearnableFourierFeatures(nn.Module):
    """Learnable Fourier features ``f(t) = [cos(2 pi t W), sin(2 pi t W)]``, ``W`` of shape ``(F / 2,)``.

    ``W ~ N(0, std^2)`` at initialisation (IDQL / FISOR: std 0.2). Maps ``(...)`` float steps to ``(..., F)``.
    """

    def __init__(self, num_features: int, std: float = 0.2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_features // 2) * std)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = 2.0 * math.pi * t.unsqueeze(-1) * self.weight  # (..., F / 2)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (..., F)


class ResidualBlock(nn.Module):
    """``h + Linear(mish(Linear_{e w}(LayerNorm(Dropout(h)))))`` (the IDQL / FISOR ``MLPResNetBlock``)."""

    def __init__(self, width: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, expansion * width)
        self.down = nn.Linear(expansion * width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.up(self.norm(self.dropout(h)))  # (B, e W)
        return h + self.down(F.mish(y))  # (B, W)


class ResidualMLPDenoiser(Denoiser):
    """FISOR's residual MLP over a flattened ``(B, H, D)`` trajectory with per-token diffusion steps.

    Shapes: ``x_t`` (B, H, D), ``t`` (B, H) long in ``[-1, T - 1]``, ``cond`` (B, cond_dim) or ``None`` when
    ``cond_dim == 0``, ``drop_cond`` (B,) bool or ``None`` (ignored when ``cond_dim == 0``); returns (B, H, D).
    Wrong shapes raise ``ValueError`` naming the expected and the received shape.
    """

    def __init__(self, config: ResidualMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon = config.horizon
        self.x_dim = config.x_dim
        self.cond_dim = config.cond_dim
        self.num_train_steps = config.num_train_steps
        self.time_features = LearnableFourierFeatures(config.time_features)
        self.time_mlp = nn.Sequential(
            nn.Linear(config.horizon * config.time_features, config.time_hidden),
            nn.Mish(),
            nn.Linear(config.time_hidden, config.time_hidden),
        )
        # A cond_dim of 0 keeps an empty parameter so the scripted forward has one code path.
        self.null_cond = nn.Parameter(torch.zeros(config.cond_dim))
        in_dim = config.horizon * config.x_dim + config.cond_dim + config.time_hidden
        self.input = nn.Linear(in_dim, config.width)
        self.blocks = nn.ModuleList(
            [ResidualBlock(config.width, config.expansion, config.dropout) for _ in range(config.num_blocks)]
        )
        self.output = nn.Linear(config.width, config.horizon * config.x_dim)
        self.flatten_tokens = Rearrange("b h d -> b (h d)")
        self.unflatten_tokens = Rearrange("b (h d) -> b h d", h=config.horizon)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        drop_cond: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Predict (epsilon, x0 or v) for ``x_t`` (B, H, D) at per-token steps ``t`` (B, H) -> (B, H, D)."""
        check_denoiser_inputs(x_t, t, drop_cond, self.horizon, self.x_dim)
        batch = x_t.shape[0]
        steps = (t + 1).to(x_t.dtype)  # (B, H), clean token -> 0
        time = self.flatten_tokens(self.time_features(steps))  # (B, H F)
        time = self.time_mlp(time)  # (B, T_h)
        parts = [self.flatten_tokens(x_t)]  # (B, H D)
        if self.cond_dim > 0:
            if cond is None:
                raise ValueError(
                    f"cond: expected shape ({batch}, {self.cond_dim}) for this conditional model, got None "
                    "(pass drop_cond=True for an unconditional prediction)"
                )
            if cond.dim() != 2 or cond.shape[0] != batch or cond.shape[1] != self.cond_dim:
                raise ValueError(f"cond: expected shape ({batch}, {self.cond_dim}), got {list(cond.shape)}")
            if drop_cond is not None:
                null = self.null_cond.to(cond.dtype).expand(batch, self.cond_dim)  # (B, C)
                cond = torch.where(drop_cond.unsqueeze(-1), null, cond)  # (B, C)
            parts.append(cond)
        elif cond is not None:
            raise ValueError(f"cond: expected None for an unconditional model (cond_dim 0), got {list(cond.shape)}")
        parts.append(time)
        h = self.input(torch.cat(parts, dim=-1))  # (B, W)
        for block in self.blocks:
            h = block(h)  # (B, W)
        out = self.output(F.mish(h))  # (B, H D)
        return self.unflatten_tokens(out)  # (B, H, D)
