"""Observation builders: pure functions of a robot state plus command history.

The same functions build the policy input in the gymnasium env, the vectorized env and the deploy runtime,
so a policy sees identical numbers in sim and on the robot (hand-rebuilt observations are the classic sim2sim
bug). Everything is numpy and broadcasts over leading batch dimensions ``(..., X)``.

Policy observation (velocity walking, as in unitree_rl_gym's G1 task and BeyondMimic), in this order::

    gyro * ang_vel_scale            (3)   body angular velocity from the IMU, rad/s
    projected gravity               (3)   unit gravity vector in the IMU frame
    command                         (3)   task command, e.g. (vx, vy, yaw rate)
    gait clock (optional)           (2)   sin, cos of 2 pi phase; only when ``gait_period_s > 0``
    joint_pos - default_joint_pos   (J)   rad
    joint_vel * joint_vel_scale     (J)   rad/s
    last action                     (J)   the previous policy output (unscaled)

Actions map to position targets as ``q* = q_default + action_scale * a`` (:func:`joint_targets_from_action`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot.g1 import constants as C
from robot.messages import RobotState

COMMAND_DIM = 3


@dataclass
class ObservationConfig:
    """Scales of the policy observation terms."""

    ang_vel_scale: float = 0.25
    """Multiplier of the gyro reading."""
    joint_vel_scale: float = 0.05
    """Multiplier of the joint velocities."""
    clip: float = 100.0
    """Symmetric clip of the whole observation (guards the network against sensor glitches)."""
    gait_period_s: float = 0.0
    """Period of the gait clock (sin, cos of the phase) added after the command; 0 leaves it out."""

    def __post_init__(self) -> None:
        for name in ("ang_vel_scale", "joint_vel_scale", "clip"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        if self.gait_period_s < 0.0:
            raise ValueError(f"gait_period_s: expected >= 0 (0 = no gait clock), got {self.gait_period_s}")

    @property
    def clock_dim(self) -> int:
        """Entries of the gait clock term (0 or 2)."""
        return 2 if self.gait_period_s > 0.0 else 0


def observation_mirror_map(num_joints: int, cfg: ObservationConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index and sign vectors ``(perm, sign)`` with ``obs_mirrored = obs[..., perm] * sign`` for the G1.

    Mirroring about the sagittal plane: gyro (x, z) and command (vy, yaw rate) flip sign, gravity y flips, the
    gait clock moves by half a cycle (sin and cos flip: the other foot leads), joints swap left/right with roll
    and yaw axes negated (:data:`robot.g1.constants.MIRROR_JOINT_INDEX`).
    """
    if num_joints != C.NUM_JOINTS:
        raise ValueError(f"num_joints: the mirror map is the G1's ({C.NUM_JOINTS} joints), got {num_joints}")
    clock = cfg.clock_dim if cfg is not None else 0
    perm = list(range(9 + clock))
    sign = [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0] + [-1.0] * clock
    for block in range(3):
        start = 9 + clock + block * num_joints
        perm += [start + int(i) for i in C.MIRROR_JOINT_INDEX]
        sign += list(C.MIRROR_JOINT_SIGN)
    return np.array(perm), np.array(sign)


def gait_phase(time_s: np.ndarray | float, period_s: float) -> np.ndarray:
    """Gait phase in [0, 1) after ``time_s`` seconds of walking (the left foot's; the right is +0.5)."""
    return np.mod(np.asarray(time_s, dtype=np.float64) / period_s, 1.0)


def observation_dim(num_joints: int, cfg: ObservationConfig | None = None) -> int:
    """Length of the policy observation for ``num_joints`` joints (with ``cfg``'s gait clock, if any)."""
    clock = cfg.clock_dim if cfg is not None else 0
    return 3 + 3 + COMMAND_DIM + clock + 3 * num_joints


def observation_names(joint_names: tuple[str, ...] | list[str], cfg: ObservationConfig | None = None) -> list[str]:
    """One name per observation entry (exported with policies as metadata)."""
    names = [f"gyro_{a}" for a in "xyz"] + [f"gravity_{a}" for a in "xyz"] + [f"command_{i}" for i in range(3)]
    if cfg is not None and cfg.clock_dim:
        names += ["gait_clock_sin", "gait_clock_cos"]
    for prefix in ("joint_pos_rel", "joint_vel", "last_action"):
        names += [f"{prefix}/{n}" for n in joint_names]
    return names


def quat_rotate_inverse(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Express world vectors in the frame of ``quat`` (world-from-body): ``R^T v``. (..., 4), (..., 3) -> (..., 3)."""
    w = quat_wxyz[..., :1]
    u = quat_wxyz[..., 1:]
    t = 2.0 * np.cross(u, vec)
    return vec - w * t + np.cross(u, t)


def quat_rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate body vectors into the world: ``R v``. (..., 4), (..., 3) -> (..., 3)."""
    w = quat_wxyz[..., :1]
    u = quat_wxyz[..., 1:]
    t = 2.0 * np.cross(u, vec)
    return vec + w * t + np.cross(u, t)


def projected_gravity(quat_wxyz: np.ndarray) -> np.ndarray:
    """Unit gravity direction in the body frame; (0, 0, -1) when upright. (..., 4) -> (..., 3)."""
    down = np.broadcast_to(np.array([0.0, 0.0, -1.0]), (*quat_wxyz.shape[:-1], 3))
    return quat_rotate_inverse(quat_wxyz, down)


def yaw_from_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    """Heading angle (rad) of a world-from-body quaternion. (..., 4) -> (...)."""
    w, x, y, z = (quat_wxyz[..., i] for i in range(4))
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def policy_observation(
    joint_pos_rad: np.ndarray,
    joint_vel_rad_per_s: np.ndarray,
    imu_quat_wxyz: np.ndarray,
    imu_gyro_rad_per_s: np.ndarray,
    command: np.ndarray,
    last_action: np.ndarray,
    default_joint_pos_rad: np.ndarray,
    cfg: ObservationConfig,
    phase: np.ndarray | float | None = None,
) -> np.ndarray:
    """The policy observation (module docstring), float32. Inputs (..., J/4/3/3/J), output (..., 9 [+2] + 3J).

    ``phase`` (..., ) in [0, 1) is the gait phase (:func:`gait_phase`); required iff ``cfg.gait_period_s > 0``.
    """
    if command.shape[-1] != COMMAND_DIM:
        raise ValueError(f"command: expected last dimension {COMMAND_DIM}, got shape {command.shape}")
    clock: list[np.ndarray] = []
    if cfg.clock_dim:
        if phase is None:
            raise ValueError(f"phase: required with a gait clock (gait_period_s={cfg.gait_period_s})")
        angle = 2.0 * np.pi * np.broadcast_to(np.asarray(phase, dtype=np.float64), command.shape[:-1])
        clock = [np.sin(angle)[..., None], np.cos(angle)[..., None]]
    elif phase is not None:
        raise ValueError("phase: given, but the observation config has no gait clock (gait_period_s=0)")
    obs = np.concatenate(
        [
            imu_gyro_rad_per_s * cfg.ang_vel_scale,
            projected_gravity(imu_quat_wxyz),
            command,
            *clock,
            joint_pos_rad - default_joint_pos_rad,
            joint_vel_rad_per_s * cfg.joint_vel_scale,
            last_action,
        ],
        axis=-1,
    )  # (..., 9 + 3J)
    return np.clip(obs, -cfg.clip, cfg.clip).astype(np.float32)


def observation_from_state(
    state: RobotState,
    command: np.ndarray,
    last_action: np.ndarray,
    default_joint_pos_rad: np.ndarray,
    cfg: ObservationConfig,
    phase: float | None = None,
) -> np.ndarray:
    """:func:`policy_observation` of one :class:`robot.messages.RobotState` (deploy entry point), (9 [+2] + 3J,)."""
    return policy_observation(
        state.joint_pos_rad,
        state.joint_vel_rad_per_s,
        state.imu_quat_wxyz,
        state.imu_gyro_rad_per_s,
        np.asarray(command, dtype=np.float64),
        np.asarray(last_action, dtype=np.float64),
        default_joint_pos_rad,
        cfg,
        phase,
    )


def joint_targets_from_action(
    action: np.ndarray, default_joint_pos_rad: np.ndarray, action_scale_rad: np.ndarray
) -> np.ndarray:
    """Position targets ``q_default + scale * a``, (..., J)."""
    return default_joint_pos_rad + action_scale_rad * action


def root_planar_state(
    base_pos_m: np.ndarray,
    base_quat_wxyz: np.ndarray,
    base_lin_vel_world_m_per_s: np.ndarray,
    yaw_rate_rad_per_s: np.ndarray,
) -> np.ndarray:
    """Planar root state ``(x, y, yaw, vx, vy, yaw_rate)`` in the world frame, (..., 6).

    This is the layout the task costs index by default (position 0:2, velocity 3:5, yaw rate 5).
    """
    yaw = yaw_from_quat(base_quat_wxyz)
    return np.concatenate(
        [
            base_pos_m[..., :2],
            yaw[..., None],
            base_lin_vel_world_m_per_s[..., :2],
            np.asarray(yaw_rate_rad_per_s)[..., None],
        ],
        axis=-1,
    )
