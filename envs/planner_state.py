"""The planner state of the G1: what a diffusion planner predicts per step (BeyondMimic's body-position state).

FACTS.md section 3: yaw-normalised body positions and velocities relative to the root, plus the root pose and
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

Pure numpy functions of the simulator's (or the robot's estimator's) quantities, used unchanged by data
collection and the deploy runtime. :func:`planner_state_mirror_map` is the left-right mirror of the state about
the heading frame's x-z plane, consistent with :func:`robot.g1.constants.mirror_joint_values`.
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.observations import quat_rotate, yaw_from_quat
from robot.g1 import constants as C

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


def add_tracked_body_sensors(spec: mujoco.MjSpec) -> None:
    """Add world position and linear velocity sensors ``<body>_pos`` / ``<body>_vel`` of every tracked body."""
    for body in C.TRACKED_BODIES:
        for kind, suffix in ((mujoco.mjtSensor.mjSENS_FRAMEPOS, "pos"), (mujoco.mjtSensor.mjSENS_FRAMELINVEL, "vel")):
            sensor = spec.add_sensor()
            sensor.name = f"{body}_{suffix}"
            sensor.type = kind
            sensor.objtype = mujoco.mjtObj.mjOBJ_BODY
            sensor.objname = body


def tracked_body_sensor_columns(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``sensordata`` holding the tracked bodies' positions and velocities, (K, 3) each."""
    try:
        pos = [model.sensor(f"{b}_pos").adr[0] + np.arange(3) for b in C.TRACKED_BODIES]
        vel = [model.sensor(f"{b}_vel").adr[0] + np.arange(3) for b in C.TRACKED_BODIES]
    except KeyError as exc:
        raise KeyError(
            f"{exc}: the model lacks the tracked-body sensors; build it with add_tracked_body_sensors"
        ) from None
    return np.array(pos), np.array(vel)
