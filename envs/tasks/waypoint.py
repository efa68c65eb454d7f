"""Waypoint reaching: walk to a goal position and stop there.

Guidance cost (Diffuse-CLoC, Huang et al. 2025) on a predicted trajectory ``x0`` (B, H, D):

    G = sum_h (1 - e^{-2 d_h}) ||p_xy,h - g||^2 + e^{-2 d_h} ||v_xy,h||^2,   d_h = ||p_xy,h - g||,

far away it pulls the position to the goal, close by it asks for zero velocity (arrive and stop).
Sim reward: progress ``exp(-d / scale)`` plus a bonus once within ``reach_radius_m``.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.tasks.base import SimTask, world_to_heading


@dataclass
class WaypointTaskConfig:
    """Goal sampling and reward shape."""

    goal_distance_range_m: tuple[float, float] = (1.0, 3.0)
    """Distance of a new goal from the start."""
    reach_radius_m: float = 0.25
    """Within this distance the goal counts as reached."""
    distance_scale_m: float = 1.0
    """Length scale of the progress reward."""

    def __post_init__(self) -> None:
        lo, hi = self.goal_distance_range_m
        if not 0.0 <= lo <= hi:
            raise ValueError(f"goal_distance_range_m: expected 0 <= low <= high, got {(lo, hi)}")
        if self.reach_radius_m <= 0.0 or self.distance_scale_m <= 0.0:
            raise ValueError(
                f"reach_radius_m and distance_scale_m: expected > 0, got {self.reach_radius_m}, {self.distance_scale_m}"
            )

    def build(self) -> "WaypointTask":
        """The sim task this config describes."""
        return WaypointTask(self)


class WaypointTask(SimTask):
    """Sim side of waypoint reaching; params are the goal (gx, gy) in the world."""

    param_dim = 2

    def __init__(self, cfg: WaypointTaskConfig) -> None:
        self.cfg = cfg

    def sample_params(self, rng: np.random.Generator, planar: np.ndarray) -> np.ndarray:
        n = planar.shape[0]
        dist = rng.uniform(*self.cfg.goal_distance_range_m, size=n)
        angle = rng.uniform(-np.pi, np.pi, size=n)
        return planar[:, :2] + np.stack([dist * np.cos(angle), dist * np.sin(angle)], axis=-1)

    def command(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        """(goal x, goal y) in the heading frame and the distance, (N, 3)."""
        delta = world_to_heading(params - planar[:, :2], planar[:, 2])  # (N, 2)
        return np.concatenate([delta, np.linalg.norm(delta, axis=-1, keepdims=True)], axis=-1)

    def reward(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        dist = np.linalg.norm(params - planar[:, :2], axis=-1)
        return np.exp(-dist / self.cfg.distance_scale_m) + (dist < self.cfg.reach_radius_m)

    def metrics(self, planar: np.ndarray, params: np.ndarray) -> dict[str, np.ndarray]:
        dist = np.linalg.norm(params - planar[:, :2], axis=-1)
        return {"goal_distance_m": dist, "goal_reached": (dist < self.cfg.reach_radius_m).astype(np.float64)}


@dataclass
class WaypointCostConfig:
    """Where the planner's state holds position and velocity."""

    pos_xy_idx: tuple[int, int] = (0, 1)
    """Feature indices of planar position."""
    vel_xy_idx: tuple[int, int] = (3, 4)
    """Feature indices of planar velocity."""

    def __post_init__(self) -> None:
        for name in ("pos_xy_idx", "vel_xy_idx"):
            idx = getattr(self, name)
            if len(idx) != 2 or min(idx) < 0:
                raise ValueError(f"{name}: expected two non-negative indices, got {idx}")


class WaypointCost(nn.Module):
    """``G(x0, params)`` of the module docstring; params (B, 2) = goal (x, y) in the state's frame."""

    param_dim: int
    param_names: list[str]

    def __init__(self, cfg: WaypointCostConfig) -> None:
        super().__init__()
        self.px_idx = int(cfg.pos_xy_idx[0])
        self.py_idx = int(cfg.pos_xy_idx[1])
        self.vx_idx = int(cfg.vel_xy_idx[0])
        self.vy_idx = int(cfg.vel_xy_idx[1])
        self.param_dim = 2
        self.param_names = ["goal_x_m", "goal_y_m"]

    def forward(self, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x0 (B, H, D) physical trajectory, params (B, 2) -> (B,) cost."""
        p = torch.stack([x0[:, :, self.px_idx], x0[:, :, self.py_idx]], dim=-1)  # (B, H, 2)
        v = torch.stack([x0[:, :, self.vx_idx], x0[:, :, self.vy_idx]], dim=-1)  # (B, H, 2)
        dist_sq = ((p - params[:, None, :]) ** 2).sum(dim=-1)  # (B, H)
        # sqrt with a floor keeps the gradient finite at the goal itself.
        blend = torch.exp(-2.0 * torch.sqrt(dist_sq + 1e-12))  # (B, H)
        cost = (1.0 - blend) * dist_sq + blend * (v * v).sum(dim=-1)  # (B, H)
        return cost.sum(dim=1)
