"""Reward terms of the walking task, as one pure function of the step's state.

Each term is a per-env array (N,) weighted by :class:`envs.locomotion.config.RewardConfig` (weights are per second)
and multiplied by the control period, so the sum does not depend on the control rate. The terms follow the
legged-robot recipes (legged_gym / unitree_rl_gym's G1 task, humanoid-gym's reference posture): velocity tracking
kernels, posture and smoothness penalties, a contact pattern that follows the gait clock, swing clearance, no slip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.g1.observations import projected_gravity
from envs.locomotion.config import RewardConfig
from robot.g1 import constants as C


@dataclass
class StepState:
    """What the reward terms read at one step; every array has the envs first (N, ...)."""

    base_quat: np.ndarray
    """(N, 4) pelvis orientation, wxyz."""
    base_lin_vel: np.ndarray
    """(N, 3) pelvis linear velocity in its own frame (m/s)."""
    base_ang_vel: np.ndarray
    """(N, 3) pelvis angular velocity in its own frame (rad/s)."""
    base_height: np.ndarray
    """(N,) pelvis height (m)."""
    joint_pos: np.ndarray
    """(N, 29) joint positions (rad)."""
    joint_vel: np.ndarray
    """(N, 29) joint velocities (rad/s)."""
    prev_joint_vel: np.ndarray
    """(N, 29) joint velocities of the previous step."""
    joint_torque: np.ndarray
    """(N, 29) the PD torques of this step, within the effort limits (Nm)."""
    action: np.ndarray
    """(N, 29) this step's actions."""
    last_action: np.ndarray
    """(N, 29) the previous step's actions."""
    foot_pos: np.ndarray
    """(N, 2, 3) sole positions, left then right (m)."""
    foot_vel: np.ndarray
    """(N, 2, 3) sole velocities (m/s)."""
    contact: np.ndarray
    """(N, 2) bool: the sole touches the ground."""
    stance: np.ndarray
    """(N, 2) bool: the gait clock puts the foot in stance."""
    command: np.ndarray
    """(N, 3) velocity command (vx, vy, yaw rate) in the body frame."""
    reference: np.ndarray
    """(N, 29) reference joint offsets from the default pose (:func:`envs.locomotion.gait.swing_reference_rad`)."""


def reward_terms(r: RewardConfig, dt: float, s: StepState) -> dict[str, np.ndarray]:
    """Weighted reward terms (N,) of one step, already multiplied by the control period ``dt``."""
    n = len(s.base_height)
    q_off = s.joint_pos - C.DEFAULT_JOINT_POS_RAD
    gravity = projected_gravity(s.base_quat)
    mid = 0.5 * (C.JOINT_LOWER_RAD + C.JOINT_UPPER_RAD)
    half = 0.5 * (C.JOINT_UPPER_RAD - C.JOINT_LOWER_RAD) * r.soft_limit_fraction
    beyond = np.clip(s.joint_pos - (mid + half), 0.0, None) + np.clip((mid - half) - s.joint_pos, 0.0, None)
    lin_err = np.sum((s.command[:, :2] - s.base_lin_vel[:, :2]) ** 2, axis=1)
    ang_err = (s.command[:, 2] - s.base_ang_vel[:, 2]) ** 2
    upper = list(C.WAIST_JOINT_IDS + C.ARM_JOINT_IDS)
    raw = {
        "ref_joint_pos": np.exp(-2.0 * np.linalg.norm((q_off - s.reference)[:, list(C.LEG_JOINT_IDS)], axis=1)),
        "tracking_lin_vel": np.exp(-lin_err / r.tracking_sigma),
        "tracking_ang_vel": np.exp(-ang_err / r.tracking_sigma),
        "lin_vel_z": s.base_lin_vel[:, 2] ** 2,
        "ang_vel_xy": np.sum(s.base_ang_vel[:, :2] ** 2, axis=1),
        "orientation": np.sum(gravity[:, :2] ** 2, axis=1),
        "base_height": (s.base_height - r.base_height_target_m) ** 2,
        "torques": np.sum(s.joint_torque**2, axis=1),
        "dof_acc": np.sum(((s.joint_vel - s.prev_joint_vel) / dt) ** 2, axis=1),
        "dof_vel": np.sum(s.joint_vel**2, axis=1),
        "action_rate": np.sum((s.action - s.last_action) ** 2, axis=1),
        "dof_pos_limits": np.sum(beyond, axis=1),
        "alive": np.ones(n),
        "hip_pos": np.sum((q_off - s.reference)[:, list(C.HIP_ROLL_YAW_JOINT_IDS)] ** 2, axis=1),
        "upper_body_pose": np.sum(q_off[:, upper] ** 2, axis=1),
        "contact": np.sum(s.contact == s.stance, axis=1).astype(np.float64),
        "feet_swing_height": np.sum((s.foot_pos[:, :, 2] - r.swing_height_m) ** 2 * ~s.contact, axis=1),
        "contact_no_vel": np.sum(np.sum(s.foot_vel**2, axis=2) * s.contact, axis=1),
    }
    return {k: getattr(r, k) * v * dt for k, v in raw.items()}
