"""Forward kinematics of the G1 legs in numpy: sole points and their Jacobians in the pelvis frame.

The state estimator needs, every tick, where each sole is relative to the pelvis and how fast it moves there,
from the twelve leg joint readings alone. For a serial chain of revolute joints with link placements
``(p_k, R_k)`` (child frame in the parent frame) and unit hinge axes ``a_k`` (joint frame),

    T_foot(q) = prod_k [R_k, p_k] Rot(a_k, q_k),        x_foot = T_foot(q) (s, 1),

with ``s`` the sole point in the ankle-roll frame, and column ``k`` of the positional Jacobian is
``J_k = (R^{0k} a_k) x (x_foot - o_k)`` where ``o_k`` and ``R^{0k}`` are the origin and orientation of joint
``k`` in the pelvis frame (Siciliano et al., "Robotics: Modelling, Planning and Control", 2009, section 3.1).
Both legs are evaluated together and every function broadcasts over leading batch dimensions ``(..., 12)``.

The numbers are read once, either from :mod:`robot.g1.links` (no MuJoCo needed: the runtime path) or from a
compiled model (:meth:`LegKinematics.from_model`, e.g. a user MJCF); a test checks both against MuJoCo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.g1 import constants as C
from robot.g1.links import FOOT_SITE_POS_M, IMU_SITE_POS_M, LINKS, joint_axis

SIDES = ("left", "right")
LEG_JOINT_SUFFIXES = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")
"""Leg joints from the pelvis down; in SDK order they are joints 0-5 (left) and 6-11 (right)."""
NUM_LEG_JOINTS = 2 * len(LEG_JOINT_SUFFIXES)
_YZX, _ZXY = np.array([1, 2, 0]), np.array([2, 0, 1])  # the axial vector of a skew matrix: (M_yz, M_zx, M_xy)


def quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices of (..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices ``[v]_x`` of (..., 3) vectors -> (..., 3, 3)."""
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack(
        [np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)],
        axis=-2,
    )


@dataclass(frozen=True)
class LegFK:
    """Result of :meth:`LegKinematics.feet`: sole points and their Jacobians in the pelvis frame."""

    sole_pos_m: np.ndarray
    """(..., 2, 3) sole centre of the left and right foot."""
    jacobian: np.ndarray
    """(..., 2, 3, 6) d sole / d (six joints of that leg, pelvis down)."""
    sole_rot: np.ndarray
    """(..., 2, 3, 3) orientation of each ankle-roll (foot) frame."""


class LegKinematics:
    """Both G1 legs as two six-joint chains (see module docstring); ``feet(q)`` is the forward kinematics."""

    def __init__(
        self, link_pos_m: np.ndarray, link_rot: np.ndarray, axes: np.ndarray, sole_m: np.ndarray, imu_m: np.ndarray
    ) -> None:
        """``link_pos_m`` (2, 6, 3) and ``link_rot`` (2, 6, 3, 3): each leg link in its parent; ``axes`` (2, 6, 3)
        unit hinge axes; ``sole_m`` (2, 3) sole point in each ankle-roll frame; ``imu_m`` (3,) IMU in the pelvis."""
        shapes = {"link_pos_m": (2, 6, 3), "link_rot": (2, 6, 3, 3), "axes": (2, 6, 3), "sole_m": (2, 3)}
        for name, shape in shapes.items():
            if np.shape(locals()[name]) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {np.shape(locals()[name])}")
        self.link_pos_m = np.asarray(link_pos_m, dtype=np.float64)
        self.link_rot = np.asarray(link_rot, dtype=np.float64)
        self.axes = np.asarray(axes, dtype=np.float64) / np.linalg.norm(axes, axis=-1, keepdims=True)
        self.sole_m = np.asarray(sole_m, dtype=np.float64)
        self.imu_m = np.asarray(imu_m, dtype=np.float64).reshape(3)
        k = skew(self.axes)  # (2, 6, 3, 3)
        self._k, self._kk = k, k @ k  # Rodrigues: Rot(a, q) = I + sin q K + (1 - cos q) K^2
        # one robot (sole_pos_vel): per joint [p_k, b_k, A_k] with b_k = R_k^link a_k and
        # A_k = R_k^link Rot(a_k, q_k) = R_k^link + sin q_k R_k^link K_k + (1 - cos q_k) R_k^link K_k^2
        self._placements = np.stack([self.link_pos_m, (self.link_rot @ self.axes[..., None])[..., 0]], -1)
        self._link_k, self._link_kk = self.link_rot @ self._k, self.link_rot @ self._kk  # (2, 6, 3, 3)
        self._sole_cols = np.zeros((2, 3, 5))
        self._sole_cols[..., 0] = self.sole_m
        # rows 0-5: x - o_k = sum_{j > k} R_{j-1} p_j (with R_5 s as the last term); row 6: x = sum_j R_{j-1} p_j
        self._to_sole = np.triu(np.ones((7, 7)), 1)
        self._to_sole[6] = 1.0
        self.joint_ids = np.array([C.joint_index(f"{s}_{j}_joint") for s in SIDES for j in LEG_JOINT_SUFFIXES])

    @classmethod
    def from_links(cls) -> LegKinematics:
        """From the link table of :mod:`robot.g1.links` (what :func:`robot.g1.model.build_g1_model` compiles)."""
        by_joint = {link.joint: link for link in LINKS if link.joint is not None}
        pos, rot, axes = np.zeros((2, 6, 3)), np.zeros((2, 6, 3, 3)), np.zeros((2, 6, 3))
        for i, side in enumerate(SIDES):
            for k, suffix in enumerate(LEG_JOINT_SUFFIXES):
                link = by_joint[f"{side}_{suffix}_joint"]
                pos[i, k] = link.pos_m
                rot[i, k] = quat_to_matrix(np.array(link.quat_wxyz))
                axes[i, k] = joint_axis(link.joint)
        sole = np.array([FOOT_SITE_POS_M, FOOT_SITE_POS_M])
        return cls(pos, rot, axes, sole, np.array(IMU_SITE_POS_M))

    @classmethod
    def from_model(cls, model: Any) -> LegKinematics:
        """From a compiled ``mujoco.MjModel`` (read by attribute, so this module never imports MuJoCo).

        Expects the G1 bodies and joints by name, sole sites ``left_foot`` / ``right_foot`` and the IMU site.
        """
        pos, rot, axes, sole = np.zeros((2, 6, 3)), np.zeros((2, 6, 3, 3)), np.zeros((2, 6, 3)), np.zeros((2, 3))
        for i, side in enumerate(SIDES):
            for k, suffix in enumerate(LEG_JOINT_SUFFIXES):
                joint = model.joint(f"{side}_{suffix}_joint")
                body = model.body(int(joint.bodyid[0]))
                pos[i, k], rot[i, k] = body.pos, quat_to_matrix(body.quat)
                axes[i, k] = joint.axis
                if np.any(joint.pos != 0.0):
                    raise ValueError(f"{joint.name}: expected the hinge at its body origin, got pos {joint.pos}")
            sole[i] = model.site(f"{side}_foot").pos
        return cls(pos, rot, axes, sole, np.array(model.site(C.IMU_SITE).pos))

    def leg_joints(self, joint_pos_rad: np.ndarray) -> np.ndarray:
        """(..., J) joints in SDK order (or (..., 12) leg joints already) -> (..., 2, 6)."""
        q = np.asarray(joint_pos_rad, dtype=np.float64)
        if q.shape[-1] == C.NUM_JOINTS:
            q = q[..., self.joint_ids]
        elif q.shape[-1] != NUM_LEG_JOINTS:
            raise ValueError(f"joint positions: expected (..., {C.NUM_JOINTS}) or (..., 12), got {q.shape}")
        return q.reshape(*q.shape[:-1], 2, 6)

    def feet(self, joint_pos_rad: np.ndarray) -> LegFK:
        """Sole points, foot orientations and leg Jacobians for (..., J) or (..., 12) joint positions."""
        q = self.leg_joints(joint_pos_rad)  # (..., 2, 6)
        lead = q.shape[:-1]  # (..., 2)
        s, c1 = np.sin(q)[..., None, None], (1.0 - np.cos(q))[..., None, None]
        joint_rot = np.eye(3) + s * self._k + c1 * self._kk  # (..., 2, 6, 3, 3)
        rot = np.broadcast_to(np.eye(3), (*lead, 3, 3))
        pos = np.zeros((*lead, 3))
        origins, axes_p = [], []
        for k in range(6):
            pos = pos + (rot @ self.link_pos_m[:, k, :, None])[..., 0]
            rot = rot @ self.link_rot[:, k]
            origins.append(pos)
            axes_p.append((rot @ self.axes[:, k, :, None])[..., 0])
            rot = rot @ joint_rot[..., k, :, :]
        sole = pos + (rot @ self.sole_m[..., None])[..., 0]  # (..., 2, 3)
        o = np.stack(origins, axis=-2)  # (..., 2, 6, 3)
        a = np.stack(axes_p, axis=-2)  # (..., 2, 6, 3)
        jac = np.cross(a, sole[..., None, :] - o)  # (..., 2, 6, 3)
        return LegFK(sole, np.swapaxes(jac, -1, -2), rot)

    def sole_pos_vel(self, joint_pos_rad: np.ndarray, joint_vel_rad_per_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sole points and velocities (2, 3), pelvis frame, of ONE robot: ``feet(q).sole_pos_m`` and
        ``sole_velocity(feet(q), dq)`` in about a tenth of the time (the state estimator's per-sample path).

        With ``R_{k-1}`` the orientation of joint ``k``'s parent frame, ``p_k`` its placement, ``b_k = R_k^link a_k``
        its hinge axis in the parent frame and ``A_k = R_k^link Rot(a_k, q_k)``::

            o_k = o_{k-1} + R_{k-1} p_k,   a^0_k = R_{k-1} b_k,   R_k = R_{k-1} A_k,   x = o_6 + R_5 s,
            dx/dt = sum_k dq_k a^0_k x (x - o_k),

        so each joint costs one small matrix product for both legs at once (``R_{k-1} [p_k, b_k, A_k]``), the
        lever arms come from one product with a constant triangular matrix and no Jacobian is formed.
        """
        q = np.asarray(joint_pos_rad, dtype=np.float64)
        dq = np.asarray(joint_vel_rad_per_s, dtype=np.float64)
        if q.shape == (C.NUM_JOINTS,) and dq.shape == (C.NUM_JOINTS,):
            q, dq = q[self.joint_ids], dq[self.joint_ids]
        elif q.shape != (NUM_LEG_JOINTS,) or dq.shape != (NUM_LEG_JOINTS,):
            raise ValueError(f"one robot's joints: expected ({C.NUM_JOINTS},) or (12,), got {q.shape}, {dq.shape}")
        q, dq = q.reshape(2, 6, 1, 1), dq.reshape(2, 6, 1)
        chain = np.empty((2, 6, 3, 5))  # per call, so one LegKinematics may serve several threads
        chain[..., :2] = self._placements
        chain[..., 2:] = self.link_rot + np.sin(q) * self._link_k + (1.0 - np.cos(q)) * self._link_kk  # A_k
        mapped = np.empty((2, 7, 3, 5))  # R_{k-1} [p_k, b_k, A_k] = [R_{k-1} p_k, a^0_k, R_k]; k = 6: the sole
        mapped[:, 0] = chain[:, 0]
        for k in range(1, 6):
            np.matmul(mapped[:, k - 1, :, 2:], chain[:, k], out=mapped[:, k])
        np.matmul(mapped[:, 5, :, 2:], self._sole_cols, out=mapped[:, 6])
        lever = self._to_sole @ mapped[..., 0]  # (2, 7, 3): x - o_k for k < 6, then x
        # sum_k (dq_k a_k) x (x - o_k) is the axial vector of M - M^T with M = sum_k (dq_k a_k) (x - o_k)^T
        m = np.swapaxes(mapped[:, :6, :, 1] * dq, -1, -2) @ lever[:, :6]  # (2, 3, 3)
        m = m - np.swapaxes(m, -1, -2)
        return lever[:, 6], m[:, _YZX, _ZXY]

    def sole_velocity(self, fk: LegFK, joint_vel_rad_per_s: np.ndarray) -> np.ndarray:
        """(..., 2, 3) sole velocities relative to the pelvis, in the pelvis frame: ``J dq``."""
        dq = self.leg_joints(joint_vel_rad_per_s)  # (..., 2, 6)
        return (fk.jacobian @ dq[..., None])[..., 0]
