"""Behaviour cloning with a deterministic MLP actor (OSRL's BC; Pomerleau 1991).

    pi(s) = tanh(MLP(s))  in [-1, 1]^A,     L = E_{(s, a) ~ D} [ mean_A (pi(s) - a)^2 ]

BC-All and BC-Safe share this model: BC-Safe only sees the episodes whose cost is under the limit
(``envs.safe_rl.filter_safe_episodes``), a data-side choice.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from policies.base import Policy
from policies.baselines.bc.config import BCConfig
from policies.critics import mlp
from policies.normalizer import Normalizer


class BC(Policy):
    """Deterministic behaviour cloning: obs ``(B, S)`` -> actions ``(B, A)`` in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, config: Optional[BCConfig] = None) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"BC: expected obs_dim >= 1 and act_dim >= 1, got {obs_dim}, {act_dim}")
        self.config = config if config is not None else BCConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.obs_normalizer = Normalizer(obs_dim)  # identity unless the trainer fits it
        self.actor = nn.Sequential(mlp(obs_dim, self.config.hidden, act_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``(B, A)`` for observations ``(B, S)`` (differentiable)."""
        return self.actor(self.obs_normalizer.normalize(obs))

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared error to the data's actions (``observations (B, S)``, ``actions (B, A)``)."""
        if "observations" not in batch or "actions" not in batch:
            raise KeyError(f"BC batch: expected keys ['observations', 'actions'], got {sorted(batch)}")
        loss = F.mse_loss(self(batch["observations"]), batch["actions"])
        return loss, {"actor_loss": float(loss.detach())}

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """``(S,) -> (A,)`` or ``(B, S) -> (B, A)``."""
        if obs.shape[-1] != self.obs_dim or obs.dim() not in (1, 2):
            raise ValueError(
                f"BC.act: expected obs of shape (S,) or (B, S) with S = {self.obs_dim}, got {list(obs.shape)}"
            )
        return self(obs.unsqueeze(0))[0] if obs.dim() == 1 else self(obs)
