"""MLP critics: an ensemble of Q heads ``Q(s, a) -> (E, B)`` and a state value ``V(s) -> (B,)``.

FISOR and IQL use 2 Q heads and one V, each an MLP(256, 256) with ReLU and a linear output.
"""

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``Linear -> activation`` for every hidden width, then a linear output layer."""
    if in_dim < 1 or out_dim < 1 or any(width < 1 for width in hidden):
        raise ValueError(f"mlp: expected positive sizes, got in {in_dim}, hidden {list(hidden)}, out {out_dim}")
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class EnsembleQ(nn.Module):
    """``E`` independent Q heads on ``concat(s, a)``: ``(B, S), (B, A) -> (E, B)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), num_heads: int = 2) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads: expected >= 1, got {num_heads}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.heads = nn.ModuleList([mlp(obs_dim + act_dim, hidden, 1) for _ in range(num_heads)])

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        if obs.shape[-1] != self.obs_dim or act.shape[-1] != self.act_dim or obs.shape[:-1] != act.shape[:-1]:
            raise ValueError(
                f"Q(s, a): expected (B, {self.obs_dim}) and (B, {self.act_dim}), got {list(obs.shape)} and "
                f"{list(act.shape)}"
            )
        x = torch.cat([obs, act], dim=-1)  # (B, S + A)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])  # (E, B)


class StateValue(nn.Module):
    """``V(s)``: ``(B, S) -> (B,)``."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"V(s): expected (B, {self.obs_dim}), got {list(obs.shape)}")
        return self.net(obs).squeeze(-1)  # (B,)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, rate: float) -> None:
    """``target <- (1 - rate) target + rate source`` for every parameter; buffers are copied.

    Used for the critics' target networks (rate 0.005) and FISOR's EMA actor (rate 0.001).
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"polyak rate: expected a value in (0, 1], got {rate}")
    for tgt, src in zip(target.parameters(), source.parameters(), strict=True):
        tgt.lerp_(src, rate)
    for tgt, src in zip(target.buffers(), source.buffers(), strict=True):
        tgt.copy_(src)
