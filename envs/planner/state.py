"""The planner state of the G1: what a diffusion planner predicts per step (BeyondMimic's body-position state).

Liao et al. 2025: yaw-normalised body positions and velocities relative to the root, plus the root pose and
twist in the current yaw frame. With ``R_y`` the rotation about world z by the root's heading ``psi``, the
state of one step is, in this order (``S = 13 + 6 K``, K = ``len(robot.g1.constants.TRACKED_BODIES)`` = 13):

=====================  ====  =================================================================================
``root_height``        1     pelvis height above the floor (m)
``root_rot6d``         6     first two columns of ``R_y^T R_root`` (tilt; yaw removed), column-major
``root_lin_vel``       3     ``R_y^T v_root`` (m/s): forward, left, up in the heading frame
``root_ang_vel``       3     ``R_y^T R_root w_body`` (rad/s): roll, pitch and yaw rates in the heading frame
``body_pos``           3K    ``R_y^T (p_b - p_root)`` (m) per tracked body
``body_lin_vel``       3K    ``R_y^T v_b`` (m/s) per tracked body (world velocity, heading frame)
=====================  ====  =================================================================================

Pure numpy functions of the simulator's (or the robot's estimator's) quantities; :class:`PlannerStateEstimator`
turns a base pose and twist plus joint readings into the state by forward kinematics, and both data collection
and the deploy runtime go through it. Tracked bodies are taken at their centres of mass.
:func:`planner_state_mirror_map` is the left-right mirror of the state about the heading frame's x-z plane,
consistent with :func:`robot.g1.constants.mirror_joint_values`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.g1.observations import quat_rotate, yaw_from_quat
from robot.g1 import constants as C
from robot.g1.body_kinematics import BodyKinematics

NUM_TRACKED_BODIES = len(C.TRACKED_BODIES)
ROOT_STATE_DIM = 13
"""Height (1), tilt as 6D rotation (6), linear (3) and angular (3) velocity."""
PLANNER_STATE_DIM = ROOT_STATE_DIM + 6 * NUM_TRACKED_BODIES
"""Length of one planner state vector."""


def _rotate_z(vec: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors by ``angle`` (...) about z (broadcast over any extra middle axes of ``vec``)."""
    c, s = np.cos(angle), np.sin(angle)
    while c.ndim < vec.ndim - 1:
        c, s = c[..., None], s[..., None]
    x, y = vec[..., 0], vec[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, vec[..., 2]], axis=-1)


def planner_state(
    root_pos_m: np.ndarray,
    root_quat_wxyz: np.ndarray,
    root_lin_vel_world_m_per_s: np.ndarray,
    root_ang_vel_body_rad_per_s: np.ndarray,
    body_pos_m: np.ndarray,
    body_lin_vel_world_m_per_s: np.ndarray,
) -> np.ndarray:
    """The planner state (see module docstring). Shapes (..., 3), (..., 4), (..., 3), (..., 3), (..., K, 3),
    (..., K, 3) -> (..., S)."""
    if body_pos_m.shape[-2:] != (NUM_TRACKED_BODIES, 3) or body_lin_vel_world_m_per_s.shape != body_pos_m.shape:
        raise ValueError(
            f"body arrays: expected (..., {NUM_TRACKED_BODIES}, 3) each, got {body_pos_m.shape} and "
            f"{body_lin_vel_world_m_per_s.shape}"
        )
    heading = -yaw_from_quat(root_quat_wxyz)  # rotation that removes the yaw
    ex = np.broadcast_to(np.array([1.0, 0.0, 0.0]), root_lin_vel_world_m_per_s.shape)
    ey = np.broadcast_to(np.array([0.0, 1.0, 0.0]), root_lin_vel_world_m_per_s.shape)
    col0 = _rotate_z(quat_rotate(root_quat_wxyz, ex), heading)
    col1 = _rotate_z(quat_rotate(root_quat_wxyz, ey), heading)
    lin = _rotate_z(root_lin_vel_world_m_per_s, heading)
    ang = _rotate_z(quat_rotate(root_quat_wxyz, root_ang_vel_body_rad_per_s), heading)
    rel = _rotate_z(body_pos_m - root_pos_m[..., None, :], heading)  # (..., K, 3)
    vel = _rotate_z(body_lin_vel_world_m_per_s, heading)  # (..., K, 3)
    lead = root_pos_m.shape[:-1]
    return np.concatenate(
        [root_pos_m[..., 2:3], col0, col1, lin, ang, rel.reshape(*lead, -1), vel.reshape(*lead, -1)], axis=-1
    )


def linear_velocity_columns() -> np.ndarray:
    """``(1 + K, 3)`` column indices of the root's and every tracked body's linear velocity (x, y, z in the heading
    frame): what a base-velocity error shifts, all by the same vector (body velocities are the base's plus terms of
    the joints and the attitude)."""
    body = ROOT_STATE_DIM + 3 * NUM_TRACKED_BODIES + np.arange(3 * NUM_TRACKED_BODIES).reshape(NUM_TRACKED_BODIES, 3)
    return np.concatenate([np.arange(7, 10)[None], body])


def planner_state_names() -> list[str]:
    """Column names of the planner state, in order."""
    names = ["root_height"] + [f"root_rot6d_{c}{a}" for c in ("x", "y") for a in "xyz"]
    names += [f"root_lin_vel_{a}" for a in "xyz"] + [f"root_ang_vel_{a}" for a in "xyz"]
    names += [f"{b}_pos_{a}" for b in C.TRACKED_BODIES for a in "xyz"]
    names += [f"{b}_lin_vel_{a}" for b in C.TRACKED_BODIES for a in "xyz"]
    return names


def planner_state_mirror_map() -> tuple[np.ndarray, np.ndarray]:
    """``(perm, sign)`` with ``mirrored = state[..., perm] * sign`` (reflection y -> -y of the heading frame).

    Polar vectors (positions, linear velocities) flip y; the angular velocity, a pseudo-vector, flips x and z;
    the tilt columns transform as ``M R M`` with ``M = diag(1, -1, 1)``; left and right bodies swap.
    """
    polar, axial = np.array([1.0, -1.0, 1.0]), np.array([-1.0, 1.0, -1.0])
    perm = list(range(ROOT_STATE_DIM))
    sign = [1.0, *polar, *(-polar), *polar, *axial]
    base = ROOT_STATE_DIM
    for block in range(2):  # positions, then velocities
        start = base + block * 3 * NUM_TRACKED_BODIES
        for k in range(NUM_TRACKED_BODIES):
            src = start + 3 * int(C.MIRROR_TRACKED_BODY_INDEX[k])
            perm += [src, src + 1, src + 2]
            sign += list(polar)
    return np.array(perm), np.array(sign)


class PlannerStateEstimator:
    """The planner state from what a robot reports: base pose and twist plus joint angles and velocities.

    Forward kinematics of the whole G1 tree (:class:`robot.g1.body_kinematics.BodyKinematics`, numpy only) give
    the tracked bodies' world centres of mass and their world velocities (MuJoCo's ``xipos`` and
    ``mj_objectVelocity`` of the body, the quantities the data-collection sensors record), then
    :func:`planner_state` normalises them. The deploy runtime uses it with the simulator's base pose and velocity,
    or with a state estimator's on a real robot; it needs no MuJoCo.
    """

    def __init__(self, model: Any | None = None) -> None:
        """``model``: a compiled ``mujoco.MjModel`` whose link placements and centres of mass to use (e.g. a
        randomised one); None for the G1 of :mod:`robot.g1.links`."""
        if model is None:
            self.kinematics = BodyKinematics.from_links(C.TRACKED_BODIES)
        else:
            self.kinematics = BodyKinematics.from_model(model, C.TRACKED_BODIES)

    def __call__(
        self,
        base_pos_m: np.ndarray,
        base_quat_wxyz: np.ndarray,
        base_lin_vel_world_m_per_s: np.ndarray,
        base_ang_vel_body_rad_per_s: np.ndarray,
        joint_pos_rad: np.ndarray,
        joint_vel_rad_per_s: np.ndarray,
    ) -> np.ndarray:
        """One planner state ``(S,)``: shapes (3,), (4,), (3,), (3,), (J,), (J,), joints in SDK motor order."""
        for name, arr, n in (
            ("base_pos_m", base_pos_m, 3),
            ("base_quat_wxyz", base_quat_wxyz, 4),
            ("base_lin_vel_world_m_per_s", base_lin_vel_world_m_per_s, 3),
            ("base_ang_vel_body_rad_per_s", base_ang_vel_body_rad_per_s, 3),
            ("joint_pos_rad", joint_pos_rad, C.NUM_JOINTS),
            ("joint_vel_rad_per_s", joint_vel_rad_per_s, C.NUM_JOINTS),
        ):
            if np.shape(arr) != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {np.shape(arr)}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: expected finite values, got {arr}")
        body_pos, body_vel = self.kinematics(
            base_pos_m,
            base_quat_wxyz,
            base_lin_vel_world_m_per_s,
            base_ang_vel_body_rad_per_s,
            joint_pos_rad,
            joint_vel_rad_per_s,
        )
        return planner_state(
            np.asarray(base_pos_m, dtype=np.float64),
            np.asarray(base_quat_wxyz, dtype=np.float64),
            np.asarray(base_lin_vel_world_m_per_s, dtype=np.float64),
            np.asarray(base_ang_vel_body_rad_per_s, dtype=np.float64),
            body_pos,
            body_vel,
        )
