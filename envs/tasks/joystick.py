"""Joystick velocity tracking: follow a commanded (vx, vy, yaw rate) in the heading frame.

Guidance cost (BeyondMimic, Liao et al. 2025; Diffuse-CLoC, Huang et al. 2025) on a predicted trajectory
``x0`` (B, H, D):

    G = 1/2 sum_h ||v_xy,h - v_cmd||^2 + w_yaw / 2 sum_h (omega_h - omega_cmd)^2,

with the velocity expressed in the same frame as the command (the planner's yaw-normalised frame).
Sim reward: ``exp(-||v_xy - v_cmd||^2 / sigma) + w_yaw exp(-(omega - omega_cmd)^2 / sigma)``.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.tasks.base import SimTask, world_to_heading


@dataclass
class JoystickTaskConfig:
    """Command ranges and reward shape of the joystick task."""

    vx_range_m_per_s: tuple[float, float] = (-1.0, 1.0)
    """Forward speed command range."""
    vy_range_m_per_s: tuple[float, float] = (-0.5, 0.5)
    """Lateral speed command range."""
    yaw_rate_range_rad_per_s: tuple[float, float] = (-1.0, 1.0)
    """Turn rate command range."""
    tracking_sigma: float = 0.25
    """Width of the exponential tracking reward, (m/s)^2."""
    yaw_weight: float = 0.5
    """Weight of yaw-rate tracking relative to planar velocity."""

    def __post_init__(self) -> None:
        for name in ("vx_range_m_per_s", "vy_range_m_per_s", "yaw_rate_range_rad_per_s"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: expected (low, high) with low <= high, got {(lo, hi)}")
        if self.tracking_sigma <= 0.0 or self.yaw_weight < 0.0:
            raise ValueError(
                f"tracking_sigma > 0 and yaw_weight >= 0 expected, got {self.tracking_sigma}, {self.yaw_weight}"
            )

    def build(self) -> "JoystickTask":
        """The sim task this config describes."""
        return JoystickTask(self)


class JoystickTask(SimTask):
    """Sim side of joystick tracking; params are the command (vx, vy, yaw_rate)."""

    param_dim = 3

    def __init__(self, cfg: JoystickTaskConfig) -> None:
        self.cfg = cfg

    def sample_params(self, rng: np.random.Generator, planar: np.ndarray) -> np.ndarray:
        n = planar.shape[0]
        lows = np.array(
            [self.cfg.vx_range_m_per_s[0], self.cfg.vy_range_m_per_s[0], self.cfg.yaw_rate_range_rad_per_s[0]]
        )
        highs = np.array(
            [self.cfg.vx_range_m_per_s[1], self.cfg.vy_range_m_per_s[1], self.cfg.yaw_rate_range_rad_per_s[1]]
        )
        return rng.uniform(lows, highs, size=(n, 3))

    def command(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        return params.copy()

    def _errors(self, planar: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v_heading = world_to_heading(planar[:, 3:5], planar[:, 2])  # (N, 2)
        lin_sq = np.sum((v_heading - params[:, :2]) ** 2, axis=-1)
        yaw_sq = (planar[:, 5] - params[:, 2]) ** 2
        return lin_sq, yaw_sq

    def reward(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        lin_sq, yaw_sq = self._errors(planar, params)
        sigma = self.cfg.tracking_sigma
        return np.exp(-lin_sq / sigma) + self.cfg.yaw_weight * np.exp(-yaw_sq / sigma)

    def metrics(self, planar: np.ndarray, params: np.ndarray) -> dict[str, np.ndarray]:
        lin_sq, yaw_sq = self._errors(planar, params)
        return {"lin_vel_error_m_per_s": np.sqrt(lin_sq), "yaw_rate_error_rad_per_s": np.sqrt(yaw_sq)}


@dataclass
class JoystickCostConfig:
    """Where the planner's state holds the velocities, and the yaw weight."""

    vel_xy_idx: tuple[int, int] = (3, 4)
    """Feature indices of planar velocity in the predicted state."""
    yaw_rate_idx: int = 5
    """Feature index of the yaw rate; -1 to track planar velocity only."""
    yaw_rate_weight: float = 1.0
    """Weight of the yaw-rate term."""

    def __post_init__(self) -> None:
        if len(self.vel_xy_idx) != 2 or min(self.vel_xy_idx) < 0:
            raise ValueError(f"vel_xy_idx: expected two non-negative indices, got {self.vel_xy_idx}")
        if self.yaw_rate_idx < -1:
            raise ValueError(f"yaw_rate_idx: expected >= 0 or -1 (unused), got {self.yaw_rate_idx}")
        if self.yaw_rate_weight < 0.0:
            raise ValueError(f"yaw_rate_weight: expected >= 0, got {self.yaw_rate_weight}")


class JoystickCost(nn.Module):
    """``G(x0, params)`` of the module docstring; params (B, 3) = (vx, vy, yaw_rate) commands."""

    param_dim: int
    param_names: list[str]

    def __init__(self, cfg: JoystickCostConfig) -> None:
        super().__init__()
        self.vx_idx = int(cfg.vel_xy_idx[0])
        self.vy_idx = int(cfg.vel_xy_idx[1])
        self.yaw_rate_idx = int(cfg.yaw_rate_idx)
        self.yaw_rate_weight = float(cfg.yaw_rate_weight)
        self.param_dim = 3
        self.param_names = ["vx_cmd_m_per_s", "vy_cmd_m_per_s", "yaw_rate_cmd_rad_per_s"]

    def forward(self, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x0 (B, H, D) physical trajectory, params (B, 3) -> (B,) cost."""
        v = torch.stack([x0[:, :, self.vx_idx], x0[:, :, self.vy_idx]], dim=-1)  # (B, H, 2)
        err = v - params[:, None, 0:2]  # (B, H, 2)
        cost = 0.5 * (err * err).sum(dim=(1, 2))  # (B,)
        if self.yaw_rate_idx >= 0:
            yaw_err = x0[:, :, self.yaw_rate_idx] - params[:, 2:3]  # (B, H)
            cost = cost + 0.5 * self.yaw_rate_weight * (yaw_err * yaw_err).sum(dim=1)
        return cost
