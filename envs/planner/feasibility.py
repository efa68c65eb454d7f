"""Safety constraints of the G1 on planner states, and the feasibility guidance term that steers plans away from them.

**Constraint signals** follow FISOR's convention (Zheng et al., ICLR 2024): ``h > 0`` where a constraint is
violated, ``h < 0`` where it holds. Each signal is a margin scaled to ``[-1, 1]``: -1 well inside the safe set, 0
on its boundary, +1 one margin past it. Computed from recorded (or predicted) quantities:

- **fall**: the pelvis drops below the fall line (``fall_height_m``, the environments' own) or tilts past it
  (``up_z < min_up_z``, the z component of the pelvis' up axis: 0.5 is 60 deg); read from the planner state's
  ``root_height`` and tilt columns (:mod:`envs.planner.state`);
- **joint limits**: a joint within ``joint_margin_rad`` of its range's end (``robot.g1.constants``); read from the
  joint angles;
- **keep-out region** (only with ``keepout_radius_m > 0``): the pelvis inside a disc of that radius on the floor, a
  region the robot must not enter (a marked zone, a work cell) that no geometry shows. The disc's centre is an input
  beside the state, relative to the pelvis in its heading frame (:func:`region_offset`, :data:`REGION_DIM` columns),
  so one critic serves any region of that size.

``h(s) = max`` of the signals (the joint-limit one only when asked: :class:`ConstraintConfig`). A
Hamilton-Jacobi critic (:mod:`policies.feasibility`) learns from these the value
``V_h(s)``: positive where a violation will come whatever the robot does next (Fisac et al. 2019; FISOR eq. 6-8).

**Guidance** (:class:`FeasibilityCost`, on predicted states; :class:`FeasibleActionCost`, ``Q_h`` of the measured
state and the plan's action now; :class:`KeepOutCost`, a keep-out critic's ``V_h`` along the plan's predicted path,
the region given per call): ``G(x) = sum_t relu(V_h(x_t) - threshold)`` over the plan's future
states ``x_t`` (the history is given, not planned). Its gradient moves predicted states that the critic classes
infeasible back toward the feasible set; states already feasible cost nothing, so a plan the critic is content with
is left as it is. The critic is any module mapping planner states ``(..., S)`` to ``(...)``; the exported planner
carries it as one more gated term.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.planner.costs import PlanFrameFeatures, points_to_plan_frame
from envs.planner.state import PLANNER_STATE_DIM, planner_state_names
from robot.g1 import constants as C

_NAMES = planner_state_names()
REGION_DIM = 2
"""Columns a keep-out critic reads after the planner state: the region's centre relative to the pelvis (x, y, m),
in the pelvis' heading frame."""
HEIGHT_IDX = _NAMES.index("root_height")
"""Planner-state column of the pelvis height."""
TILT_COL0 = (_NAMES.index("root_rot6d_xx"), _NAMES.index("root_rot6d_xy"))
"""Planner-state columns of the pelvis' x axis (x, y components, yaw removed)."""
TILT_COL1 = (_NAMES.index("root_rot6d_yx"), _NAMES.index("root_rot6d_yy"))
"""Planner-state columns of the pelvis' y axis (x, y components, yaw removed)."""


@dataclass
class ConstraintConfig:
    """Where the G1's constraints lie and how wide their margins are."""

    fall_height_m: float = C.FALL_HEIGHT_M
    """The fall line of the pelvis height (the walking environments end an episode below it)."""
    height_margin_m: float = 0.1
    """Height margin: h = -1 this far above the fall line, +1 this far below."""
    min_up_z: float = 0.5
    """The fall line of the tilt: z of the pelvis' up axis (0.5: 60 deg, as the environments)."""
    up_z_margin: float = 0.25
    """Tilt margin in the same units."""
    joint_margin_rad: float = 0.05
    """A joint this close to the end of its range is on the boundary; at the end, h = +1."""
    joint_limits: bool = False
    """Count the joint-limit signal in ``h``. Off by default: the walking expert itself runs its ankle-roll joints
    into their ranges' ends (in 17 % of the randomized collection's steps, 0.1 rad past them: MuJoCo's limits are
    soft), so with it 40 % of the expert's states are violations and a critic learns walking itself infeasible."""
    keepout_radius_m: float = 0.0
    """Radius of the keep-out disc the pelvis must stay out of; 0: no keep-out constraint. A critic trained with it
    reads the disc's centre beside the state (module docstring)."""
    keepout_margin_m: float = 0.25
    """Keep-out margin: h = -1 this far outside the disc, +1 this far inside."""

    def __post_init__(self) -> None:
        for name in ("height_margin_m", "up_z_margin", "joint_margin_rad", "keepout_margin_m"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        if self.keepout_radius_m < 0.0:
            raise ValueError(f"keepout_radius_m: expected >= 0 (0: none), got {self.keepout_radius_m}")

    @property
    def keepout(self) -> bool:
        """Whether the constraint set holds a keep-out region."""
        return self.keepout_radius_m > 0.0


def up_z(state: np.ndarray) -> np.ndarray:
    """z of the pelvis' up axis ``(...)`` from planner states ``(..., S)``: the third column of the tilt rotation
    is the cross product of the first two, whose z needs only their x and y."""
    ax, ay = state[..., TILT_COL0[0]], state[..., TILT_COL0[1]]
    bx, by = state[..., TILT_COL1[0]], state[..., TILT_COL1[1]]
    return ax * by - ay * bx


def fall_signal(state: np.ndarray, cfg: ConstraintConfig) -> np.ndarray:
    """``h_fall (...)`` of planner states ``(..., S)``, in [-1, 1] (module docstring)."""
    if state.shape[-1] != PLANNER_STATE_DIM:
        raise ValueError(f"fall_signal: expected planner states (..., {PLANNER_STATE_DIM}), got {state.shape}")
    height = (cfg.fall_height_m - state[..., HEIGHT_IDX]) / cfg.height_margin_m
    tilt = (cfg.min_up_z - up_z(state)) / cfg.up_z_margin
    return np.clip(np.maximum(height, tilt), -1.0, 1.0)


def joint_limit_signal(joint_pos: np.ndarray, cfg: ConstraintConfig) -> np.ndarray:
    """``h_joint (...)`` of joint angles ``(..., 29)`` (SDK order), in [-1, 1]: the worst joint's margin."""
    if joint_pos.shape[-1] != C.NUM_JOINTS:
        raise ValueError(f"joint_limit_signal: expected joint angles (..., {C.NUM_JOINTS}), got {joint_pos.shape}")
    inside = np.minimum(joint_pos - C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD - joint_pos)  # (..., J) >= 0 inside
    worst = inside.min(axis=-1)
    return np.clip((cfg.joint_margin_rad - worst) / cfg.joint_margin_rad, -1.0, 1.0)


def region_offset(center_xy: np.ndarray, root_xy: np.ndarray, yaw_rad: np.ndarray) -> np.ndarray:
    """A region's centre ``(..., 2)`` (world, m) relative to pelvises at ``root_xy (..., 2)`` with headings
    ``yaw_rad (...)``, in each heading frame: what a keep-out critic reads beside the planner state (the plan-frame
    transform of :func:`envs.planner.costs.points_to_plan_frame`, one pose per row)."""
    return points_to_plan_frame(center_xy, root_xy, yaw_rad)


def keepout_signal(offset_xy: np.ndarray, cfg: ConstraintConfig) -> np.ndarray:
    """``h_keepout (...)`` of region offsets ``(..., 2)`` (:func:`region_offset`), in [-1, 1]: > 0 with the pelvis
    inside the disc of ``cfg.keepout_radius_m``."""
    if not cfg.keepout:
        raise ValueError("keepout_signal: the constraint config has no keep-out region (keepout_radius_m = 0)")
    dist = np.linalg.norm(offset_xy, axis=-1)
    return np.clip((cfg.keepout_radius_m - dist) / cfg.keepout_margin_m, -1.0, 1.0)


def constraint_signal(
    state: np.ndarray, joint_pos: np.ndarray, cfg: ConstraintConfig, region: np.ndarray | None = None
) -> np.ndarray:
    """``h = max(h_fall, h_joint, h_keepout)`` per step ``(...)`` (``h_joint`` only with ``cfg.joint_limits``,
    ``h_keepout`` only with a keep-out radius, from the region offsets ``region (..., 2)``): > 0 where a constraint
    is violated."""
    h = fall_signal(state, cfg)
    if cfg.joint_limits:
        h = np.maximum(h, joint_limit_signal(joint_pos, cfg))
    if cfg.keepout:
        if region is None:
            raise ValueError("constraint_signal: a keep-out constraint needs the region offsets")
        h = np.maximum(h, keepout_signal(region, cfg))
    return h


class _CriticCost(nn.Module):
    """What the two feasibility terms share: a frozen critic module, the history length of the plan window, the
    threshold above which the critic's value costs, and no parameters of their own."""

    param_dim: int
    param_names: list[str]
    history: int
    state_dim: int
    threshold: float

    def __init__(self, critic: nn.Module, history: int, threshold: float = 0.0) -> None:
        super().__init__()
        if history < 1:
            raise ValueError(f"history: expected >= 1, got {history}")
        self.critic = critic
        self.history = int(history)
        self.state_dim = PLANNER_STATE_DIM
        self.threshold = float(threshold)
        self.param_dim = 0
        self.param_names = []


class FeasibilityCost(_CriticCost):
    """``G(x) = sum_{t >= history} relu(V_h(x_t) - threshold)`` on the planner states of a plan (module docstring).

    ``critic`` maps planner states ``(N, S)`` to ``(N,)`` (a trained :class:`policies.feasibility.StateFeasibility`
    or any such module); it is applied to the future steps of ``x (B, H, S[+A])``. No parameters of its own.
    """

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x (B, H, D) physical plan with the planner state in its first S columns, params (B, 0) -> (B,)."""
        future = x[:, self.history :, : self.state_dim]  # (B, F, S)
        b, f = future.shape[0], future.shape[1]
        v = self.critic(future.reshape(b * f, self.state_dim)).reshape(b, f)  # (B, F)
        return torch.relu(v - self.threshold).sum(dim=1)


class FeasibleActionCost(_CriticCost):
    """``G(x) = relu(max_i Q_h,i(s_t, a_t..a_{t+K-1}) - threshold)``: FISOR's state-action feasibility of the
    actions the plan takes from now (``a_t``, the first planned action, what the action head reads besides the
    planned states, and with a chunk critic the K - 1 after it) in the state the robot is in (``s_t``, the last
    history step, measured). Unlike :class:`FeasibilityCost` it does not depend on the planner predicting the
    danger: the state is the robot's own. ``critic`` maps ``(N, S), (N, K * A)`` to ``(E, N)``
    (:class:`policies.feasibility.StateActionFeasibility`, whose ``action_chunk`` is K)."""

    chunk: int

    def __init__(self, critic: nn.Module, history: int, threshold: float = 0.0) -> None:
        super().__init__(critic, history, threshold)
        self.chunk = int(getattr(critic, "action_chunk", 1))

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x (B, H, S + A) physical plan (token ``history + k`` holds ``(s_{t+k+1}, a_{t+k})``), params (B, 0)
        -> (B,)."""
        s_now = x[:, self.history - 1, : self.state_dim]  # (B, S)
        chunk = x[:, self.history : self.history + self.chunk, self.state_dim :]  # (B, K, A)
        if chunk.shape[1] != self.chunk:
            raise ValueError("FeasibleActionCost: the plan's horizon is shorter than the critic's action chunk")
        q = self.critic(s_now, chunk.reshape(chunk.shape[0], -1)).max(dim=0).values  # (B,)
        return torch.relu(q - self.threshold)


class KeepOutCost(_CriticCost):
    """``G(x, c) = sum_{t >= history} relu(V_h(x_t, c_t) - threshold)``: a keep-out critic's value along the plan.

    ``c`` (the term's two parameters) is the region's centre in the plan frame (:mod:`envs.planner.costs`: origin
    at the pelvis now, x ahead); ``c_t`` is that centre relative to the *predicted* pelvis of step ``t``, in its
    predicted heading frame, from the plan's integrated path (:class:`envs.planner.costs.PlanFrameFeatures`).
    ``critic`` maps ``(N, S + 2)`` to ``(N,)`` (a :class:`policies.feasibility.StateFeasibility` trained with a
    keep-out radius). Gradients reach every planned velocity through the path, so a plan heading into the region
    bends round it; the critic's value depends on speed and heading as well as distance (it learned how far the
    robot needs to turn or stop), which a hand-written distance barrier does not know. A region farther than
    ``max_offset_m`` (how far the critic's regions were drawn) is read as one at that distance: a network's value
    outside the range it was trained on means nothing."""

    max_offset_m: float

    def __init__(
        self,
        critic: nn.Module,
        history: int,
        ctrl_dt_s: float,
        threshold: float = 0.0,
        max_offset_m: float = float("inf"),
    ) -> None:
        super().__init__(critic, history, threshold)
        if max_offset_m <= 0.0:
            raise ValueError(f"max_offset_m: expected > 0, got {max_offset_m}")
        self.max_offset_m = float(max_offset_m)
        self.features = PlanFrameFeatures(history, ctrl_dt_s, bodies=False)
        self.param_dim = REGION_DIM
        self.param_names = ["region_x", "region_y"]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x (B, H, S + A) physical plan, params (B, 2) region centre (plan frame) -> (B,)."""
        f = self.features(x)[:, self.history :]  # (B, F, 6 + 2K)
        dx = params[:, 0:1] - f[:, :, 0]
        dy = params[:, 1:2] - f[:, :, 1]
        c, s = torch.cos(f[:, :, 2]), torch.sin(f[:, :, 2])
        rel = torch.stack([c * dx + s * dy, -s * dx + c * dy], dim=-1)  # (B, F, 2) in each step's heading frame
        if self.max_offset_m < 1e9:  # a region farther than the critic's were drawn reads as one at that distance
            dist = torch.linalg.vector_norm(rel, dim=-1, keepdim=True).clamp_min(1e-6)
            rel = rel * (self.max_offset_m / dist).clamp(max=1.0)
        states = torch.cat([x[:, self.history :, : self.state_dim], rel], dim=-1)
        b, n = states.shape[0], states.shape[1]
        v = self.critic(states.reshape(b * n, states.shape[2])).reshape(b, n)
        return torch.relu(v - self.threshold).sum(dim=1)
