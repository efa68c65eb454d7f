"""Guidance costs for the G1 planner: the task costs applied to planner-state trajectories.

The G1 planner state (:mod:`envs.planner.state`) is yaw-normalised and translation-free: each step holds its
root velocity and yaw rate in *its own* heading frame and the tracked bodies relative to the root. Joystick
tracking reads those velocities directly. Waypoints and obstacles need positions, so
:class:`PlanFrameFeatures` integrates the root's planar motion over the window (trapezoid rule, step
``ctrl_dt_s``) into the **plan frame**: origin at the current root (the last history step, index ``Hh - 1``),
x along the current heading. Goals and obstacles are given in that frame at each tick
(:func:`points_to_plan_frame`, :func:`scene_params_to_plan_frame`); the existing costs
(:class:`envs.tasks.WaypointCost`, :class:`envs.tasks.ObstacleCost`) then apply unchanged to the features.

Feature layout ``(B, H, F)``, ``F = 6 + 2 K``: ``x, y, yaw, vx, vy, yaw_rate`` of the root (plan frame; the
velocities rotated into it), then ``x, y`` of each tracked body (plan frame). Everything is differentiable and
TorchScript-able, so guidance gradients flow from a goal back through the integration into every velocity.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.planner.state import NUM_TRACKED_BODIES, ROOT_STATE_DIM, planner_state_names
from envs.tasks.base import world_to_heading
from envs.tasks.joystick import JoystickCost, JoystickCostConfig
from envs.tasks.obstacles import ObstacleCost, ObstacleCostConfig
from envs.tasks.sdf import BOX_PARAMS, CYLINDER_PARAMS
from envs.tasks.waypoint import WaypointCost, WaypointCostConfig
from robot.g1 import constants as C

_NAMES = planner_state_names()
ROOT_VEL_IDX = (_NAMES.index("root_lin_vel_x"), _NAMES.index("root_lin_vel_y"))
"""Planner-state columns of the root's planar velocity (its own heading frame)."""
ROOT_YAW_RATE_IDX = _NAMES.index("root_ang_vel_z")
"""Planner-state column of the yaw rate."""
BODY_POS_START = ROOT_STATE_DIM
"""First planner-state column of the tracked bodies' relative positions (x, y, z per body)."""
FEATURE_NAMES = ["x", "y", "yaw", "vx", "vy", "yaw_rate"] + [f"{b}_{a}" for b in C.TRACKED_BODIES for a in ("x", "y")]
"""Columns of :class:`PlanFrameFeatures`' output."""
FEATURE_DIM = len(FEATURE_NAMES)


def body_feature_xy_idx(body: str) -> tuple[int, int]:
    """Feature columns ``(x, y)`` of ``"pelvis"`` (the root) or a tracked body (plan frame)."""
    if body == "pelvis":
        return 0, 1
    if body not in C.TRACKED_BODIES:
        raise ValueError(f"body: expected 'pelvis' or one of {list(C.TRACKED_BODIES)}, got {body!r}")
    k = 6 + 2 * C.TRACKED_BODIES.index(body)
    return k, k + 1


class PlanFrameFeatures(nn.Module):
    """Planner-state trajectory ``(B, H, S[+A])`` to plan-frame features ``(B, H, F)`` (module docstring);
    ``bodies=False`` stops after the root's six columns (for a cost that reads the root's path only)."""

    anchor: int
    dt: float
    body_x_idx: list[int]

    def __init__(self, history: int, ctrl_dt_s: float, bodies: bool = True) -> None:
        super().__init__()
        if history < 1 or ctrl_dt_s <= 0.0:
            raise ValueError(f"expected history >= 1 and ctrl_dt_s > 0, got {history}, {ctrl_dt_s}")
        self.anchor = history - 1
        self.dt = float(ctrl_dt_s)
        self.vx_idx, self.vy_idx = ROOT_VEL_IDX
        self.yaw_rate_idx = ROOT_YAW_RATE_IDX
        self.body_x_idx = [BODY_POS_START + 3 * k for k in range(NUM_TRACKED_BODIES)] if bodies else []

    def _integrate(self, rate: torch.Tensor) -> torch.Tensor:
        """Trapezoid integral of ``rate (B, H, ...)`` over the window, zero at the anchor step."""
        inc = 0.5 * self.dt * (rate[:, 1:] + rate[:, :-1])  # (B, H-1, ...)
        total = torch.cat([torch.zeros_like(rate[:, :1]), torch.cumsum(inc, dim=1)], dim=1)  # (B, H, ...)
        return total - total[:, self.anchor : self.anchor + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, H, D)`` with the planner state in its first S columns -> ``(B, H, F)``."""
        yaw_rate = x[:, :, self.yaw_rate_idx]  # (B, H)
        yaw = self._integrate(yaw_rate)  # (B, H)
        c, s = torch.cos(yaw), torch.sin(yaw)
        vx_own, vy_own = x[:, :, self.vx_idx], x[:, :, self.vy_idx]
        vel = torch.stack([c * vx_own - s * vy_own, s * vx_own + c * vy_own], dim=-1)  # (B, H, 2) plan frame
        pos = self._integrate(vel)  # (B, H, 2)
        cols = [pos[..., 0], pos[..., 1], yaw, vel[..., 0], vel[..., 1], yaw_rate]
        for i in self.body_x_idx:
            bx, by = x[:, :, i], x[:, :, i + 1]  # relative to the root, in the step's heading frame
            cols.append(pos[..., 0] + c * bx - s * by)
            cols.append(pos[..., 1] + s * bx + c * by)
        return torch.stack(cols, dim=-1)


class OnPlanFrame(nn.Module):
    """A task cost evaluated on :class:`PlanFrameFeatures` of the planner's trajectory."""

    param_dim: int
    param_names: list[str]

    def __init__(self, cost: nn.Module, features: PlanFrameFeatures) -> None:
        super().__init__()
        self.cost = cost
        self.features = features
        self.param_dim = int(cost.param_dim)
        self.param_names = list(cost.param_names)

    def forward(self, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x0 (B, H, S + A) physical plan, params (B, P) -> (B,)."""
        return self.cost(self.features(x0), params)


@dataclass
class G1CostConfig:
    """Which guidance costs a G1 planner carries and how they read the plan."""

    yaw_rate_weight: float = 1.0
    """Joystick: weight of the yaw-rate term relative to planar velocity."""
    obstacle_bodies: tuple[str, ...] = ("pelvis", "left_ankle_roll_link", "right_ankle_roll_link")
    """Tracked bodies kept clear of obstacles."""
    obstacle_body_radii_m: tuple[float, ...] = (0.25, 0.12, 0.12)
    """Clearance radius of each of those bodies."""
    obstacle_boxes: int = 1
    """Box slots in the obstacle parameters."""
    obstacle_cylinders: int = 2
    """Cylinder slots in the obstacle parameters."""
    barrier_delta_m: float = 0.05
    """Relaxation distance of the log barrier."""
    barrier_activation_m: float = 0.3
    """Clearance (beyond each body's radius) from which the barrier acts; 0: everywhere, as published. Cut off, a
    goal close behind a wall stays reachable (with the route round it: 0 of 16 trials reached it with the barrier
    uncut at full weight)."""

    def __post_init__(self) -> None:
        if len(self.obstacle_bodies) != len(self.obstacle_body_radii_m):
            raise ValueError(
                f"obstacle_bodies and obstacle_body_radii_m: expected equal lengths, got "
                f"{len(self.obstacle_bodies)} and {len(self.obstacle_body_radii_m)}"
            )
        for body in self.obstacle_bodies:
            body_feature_xy_idx(body)


def g1_joystick_cost(cfg: G1CostConfig) -> JoystickCost:
    """Joystick cost on the planner state: each step's own-heading velocity against the (vx, vy, yaw) command."""
    return JoystickCost(
        JoystickCostConfig(vel_xy_idx=ROOT_VEL_IDX, yaw_rate_idx=ROOT_YAW_RATE_IDX, yaw_rate_weight=cfg.yaw_rate_weight)
    )


def g1_waypoint_cost(history: int, ctrl_dt_s: float) -> OnPlanFrame:
    """Waypoint cost on the integrated root path; params: goal (x, y) in the plan frame."""
    cost = WaypointCost(WaypointCostConfig(pos_xy_idx=(0, 1), vel_xy_idx=(3, 4)))
    return OnPlanFrame(cost, PlanFrameFeatures(history, ctrl_dt_s))


def g1_obstacle_cost(cfg: G1CostConfig, history: int, ctrl_dt_s: float) -> OnPlanFrame:
    """Obstacle barrier on the integrated body paths; params: the scene in the plan frame."""
    cost = ObstacleCost(
        ObstacleCostConfig(
            num_boxes=cfg.obstacle_boxes,
            num_cylinders=cfg.obstacle_cylinders,
            body_xy_idx=[body_feature_xy_idx(b) for b in cfg.obstacle_bodies],
            body_radii_m=list(cfg.obstacle_body_radii_m),
            delta_m=cfg.barrier_delta_m,
            activation_m=cfg.barrier_activation_m,
        )
    )
    return OnPlanFrame(cost, PlanFrameFeatures(history, ctrl_dt_s))


def points_to_plan_frame(points_xy: np.ndarray, root_xy: np.ndarray, yaw_rad: np.ndarray) -> np.ndarray:
    """World points ``(..., 2)`` into the plan frame of a root at ``root_xy (..., 2)`` with heading ``yaw``."""
    return world_to_heading(np.asarray(points_xy, dtype=np.float64) - root_xy, yaw_rad)


def scene_params_to_plan_frame(
    params: np.ndarray, num_boxes: int, num_cylinders: int, root_xy: np.ndarray, yaw_rad: float
) -> np.ndarray:
    """World obstacle parameters (:meth:`ObstacleScene.to_params`) ``(P,)`` into the plan frame."""
    expected = num_boxes * BOX_PARAMS + num_cylinders * CYLINDER_PARAMS
    if params.shape != (expected,):
        raise ValueError(f"obstacle params: expected ({expected},) for {num_boxes} boxes, {num_cylinders} cylinders")
    out = np.array(params, dtype=np.float64)
    for k in range(num_boxes):
        o = k * BOX_PARAMS
        out[o : o + 2] = points_to_plan_frame(params[o : o + 2], root_xy, yaw_rad)
        out[o + 4] = params[o + 4] - yaw_rad
    base = num_boxes * BOX_PARAMS
    for k in range(num_cylinders):
        o = base + k * CYLINDER_PARAMS
        out[o : o + 2] = points_to_plan_frame(params[o : o + 2], root_xy, yaw_rad)
    return out
