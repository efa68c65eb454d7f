"""A synthetic planar point-mass dataset: the guided-sampling demo's embedded default data.

State ``[x, y, vx, vy]`` (m, m/s), action ``[ax, ay]`` (m/s^2), ``dt`` seconds per step, semi-implicit Euler with
linear drag. A smooth random behaviour policy (Ornstein-Uhlenbeck accelerations, the action noise BeyondMimic
records its experts with) gives trajectories that curve, speed up and slow down, so that a planner trained on
them has a real distribution to steer. Everything is generated from a seed in well under a second.
"""

from dataclasses import dataclass

import torch


@dataclass
class PointMassConfig:
    """Dynamics and behaviour policy of the synthetic dataset."""

    dt_s: float = 0.1
    """control period"""
    drag_per_s: float = 0.5
    """linear velocity damping"""
    max_accel_mps2: float = 2.0
    """action bound"""
    ou_theta: float = 0.8
    """Ornstein-Uhlenbeck mean reversion of the accelerations"""
    ou_sigma: float = 1.2
    """Ornstein-Uhlenbeck noise scale"""

    def __post_init__(self) -> None:
        if self.dt_s <= 0 or self.max_accel_mps2 <= 0:
            raise ValueError(f"expected dt_s > 0 and max_accel_mps2 > 0, got {self.dt_s}, {self.max_accel_mps2}")


def step(states: torch.Tensor, actions: torch.Tensor, config: PointMassConfig) -> torch.Tensor:
    """Next states ``(..., 4)`` from states ``(..., 4)`` and actions ``(..., 2)`` (clipped to the bound)."""
    a = actions.clamp(-config.max_accel_mps2, config.max_accel_mps2)
    v = states[..., 2:] * (1.0 - config.drag_per_s * config.dt_s) + a * config.dt_s
    p = states[..., :2] + v * config.dt_s
    return torch.cat([p, v], dim=-1)


def rollout(
    num_episodes: int, length: int, config: PointMassConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Episodes ``states (N, L, 4)`` and ``actions (N, L, 2)`` from random starts (positions within 1 m)."""
    s = torch.cat([torch.rand(num_episodes, 2, generator=generator) * 2 - 1, torch.zeros(num_episodes, 2)], dim=-1)
    a = torch.randn(num_episodes, 2, generator=generator)
    states, actions = [], []
    dt = config.dt_s
    for _ in range(length):
        a = a - config.ou_theta * a * dt + config.ou_sigma * (dt**0.5) * torch.randn(a.shape, generator=generator)
        a = a.clamp(-config.max_accel_mps2, config.max_accel_mps2)
        states.append(s)
        actions.append(a)
        s = step(s, a, config)
    return torch.stack(states, dim=1), torch.stack(actions, dim=1)


def windows(states: torch.Tensor, actions: torch.Tensor, window: int, stride: int = 1) -> dict[str, torch.Tensor]:
    """All windows of ``window`` steps of each episode: ``states (M, window, 4)``, ``actions (M, window, 2)``."""
    if states.shape[1] < window:
        raise ValueError(f"episodes of {states.shape[1]} steps are shorter than the window of {window}")
    s = states.unfold(1, window, stride).permute(0, 1, 3, 2)  # (N, M', window, 4)
    a = actions.unfold(1, window, stride).permute(0, 1, 3, 2)  # (N, M', window, 2)
    return {"states": s.reshape(-1, window, states.shape[-1]), "actions": a.reshape(-1, window, actions.shape[-1])}
