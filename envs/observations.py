"""Observation builders: pure functions of a robot state plus command history.

The same functions build the policy input in the gymnasium env, the vectorized env and the deploy runtime,
so a policy sees identical numbers in sim and on the robot (hand-rebuilt observations are the classic sim2sim
bug). Everything is numpy and broadcasts over leading batch dimensions ``(..., X)``.

Policy observation (velocity walking, FACTS §4), in this order::

    gyro * ang_vel_scale            (3)   body angular velocity from the IMU, rad/s
    projected gravity               (3)   unit gravity vector in the IMU frame
    command                         (3)   task command, e.g. (vx, vy, yaw rate)
    joint_pos - default_joint_pos   (J)   rad
    joint_vel * joint_vel_scale     (J)   rad/s
    last action                     (J)   the previous policy output (unscaled)

Actions map to position targets as ``q* = q_default + action_scale * a`` (:func:`joint_targets_from_action`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    def __post_init__(self) -> None:
        for name in ("ang_vel_scale", "joint_vel_scale", "clip"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")


def observation_dim(num_joints: int) -> int:
    """Length of the policy observation for ``num_joints`` joints."""
    return 3 + 3 + COMMAND_DIM + 3 * num_joints


def observation_names(joint_names: tuple[str, ...] | list[str]) -> list[str]:
    """One name per observation entry (exported with policies as metadata)."""
    names = [f"gyro_{a}" for a in "xyz"] + [f"gravity_{a}" for a in "xyz"] + [f"command_{i}" for i in range(3)]
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
) -> np.ndarray:
    """The policy observation (module docstring), float32. Inputs (..., J/4/3/3/J), output (..., 9 + 3J)."""
    if command.shape[-1] != COMMAND_DIM:
        raise ValueError(f"command: expected last dimension {COMMAND_DIM}, got shape {command.shape}")
    obs = np.concatenate(
        [
            imu_gyro_rad_per_s * cfg.ang_vel_scale,
            projected_gravity(imu_quat_wxyz),
            command,
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
) -> np.ndarray:
    """:func:`policy_observation` of one :class:`robot.messages.RobotState` (deploy entry point), (9 + 3J,)."""
    return policy_observation(
        state.joint_pos_rad,
        state.joint_vel_rad_per_s,
        state.imu_quat_wxyz,
        state.imu_gyro_rad_per_s,
        np.asarray(command, dtype=np.float64),
        np.asarray(last_action, dtype=np.float64),
        default_joint_pos_rad,
        cfg,
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
