"""The filter step of :class:`robot.estimation.filter.ContactKalmanFilter` for ONE world, for the per-sample path.

The estimator runs on every state sample (200-500 Hz, in the backend's state callback), where the batched step's
cost is numpy call overhead on (1, 3) arrays, not arithmetic. This is the same step with the same formulas
(module docstring of :mod:`robot.estimation.filter`), specialised to ``N = 1``:

- attitude, heading and gyro-bias observer on Python floats (``math``), the rotation built once per step;
- the sole points and velocities from :meth:`robot.g1.kinematics.LegKinematics.sole_pos_vel` (no Jacobian);
- ``F P F^T`` with a preallocated ``F`` whose constant blocks are set once, ``Q`` and ``R`` diagonals looked up
  per contact pattern instead of rebuilt;
- the velocity gate's chi-square test evaluated only in double support, the only case where it can change
  which rows are used (with one or no stance foot the rule keeps the stance pattern whatever the test says).

Results equal the batched step to float64 rounding (a test runs both on a recorded noisy walk).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from robot.estimation.filter import ContactKalmanFilter


class OneWorldStep:
    """Constants and buffers of the one-world step of ``kf`` (built once; ``kf.cfg`` is read here only).

    ``gravity_m_per_s2`` (3,), ``huge`` (the variance of an unused measurement row) and ``nis_gate`` (the
    chi-square bound of a stance-velocity row) are the batched filter's.
    """

    def __init__(self, kf: ContactKalmanFilter, gravity_m_per_s2: np.ndarray, huge: float, nis_gate: float) -> None:
        c, x_dim = kf.cfg, kf.x.shape[1]
        self.gravity, self.nis_gate = tuple(np.asarray(gravity_m_per_s2, dtype=np.float64).tolist()), nis_gate
        self.h, self.h_t = kf.h, np.ascontiguousarray(kf.h.T)  # (M, X), (X, M)
        self.f = np.eye(x_dim)  # (X, X); the dt blocks are written per step
        self.imu = tuple(kf.kin.imu_m.tolist())
        self.vel_r = c.kinematic_vel_noise_m_per_s**2
        q_base = np.zeros(x_dim)
        q_base[3:6] = c.accel_noise_m_per_s2_sqrt_s**2
        q_base[12:15] = c.accel_bias_walk_m_per_s2_sqrt_s**2
        walk = {True: c.stance_foot_walk_m_per_sqrt_s**2, False: c.swing_foot_walk_m_per_sqrt_s**2}
        self.q_diag: dict[tuple[bool, bool], np.ndarray] = {}  # (X, X) diagonal process noise density
        self.r_diag: dict[tuple[bool, bool, bool, bool], np.ndarray] = {}  # (M, M) diagonal, per (stance, use_vel)
        for left in (False, True):
            for right in (False, True):
                qd = q_base.copy()
                qd[6:9], qd[9:12] = walk[left], walk[right]
                self.q_diag[left, right] = np.diag(qd)
                for vel_left in (False, True):
                    for vel_right in (False, True):
                        r = np.empty((2, 7))
                        r[:, 0:3] = c.kinematic_pos_noise_m**2
                        r[:, 3:6] = np.where([vel_left, vel_right], self.vel_r, huge)[:, None]
                        r[:, 6] = np.where([left, right], c.ground_height_noise_m**2, huge)
                        self.r_diag[left, right, vel_left, vel_right] = np.diag(r.reshape(-1))
        self.z = np.zeros((2, 7))  # (2, 7): sole (3), velocity (3), ground height 0 per foot

    def attitude(self, kf: ContactKalmanFilter, dt: float, quat_wxyz: np.ndarray, gyro: np.ndarray) -> list[float]:
        """Gyro bias observer and heading integration; sets ``kf.rot[0]``, ``kf.omega[0]``; the rotation as 9
        floats (row-major)."""
        c = kf.cfg
        w, x, y, z = quat_wxyz.tolist()
        n = math.sqrt(w * w + x * x + y * y + z * z)
        w, x, y, z = w / n, x / n, y / n, z / n
        q = [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ]  # fmt: skip
        p = kf._prev_quat_rot[0].ravel().tolist()
        kf._prev_quat_rot[0] = np.reshape(q, (3, 3))

        rel = [p[i] * q[j] + p[3 + i] * q[3 + j] + p[6 + i] * q[6 + j] for i in range(3) for j in range(3)]  # P^T Q
        cos = min(max((rel[0] + rel[4] + rel[8] - 1.0) / 2.0, -1.0), 1.0)
        angle = math.acos(cos)
        scale = 0.5 + angle**2 / 12.0 if angle < 1e-6 else angle / (2.0 * math.sin(max(angle, 1e-6)))
        step = ((rel[7] - rel[5]) * scale, (rel[2] - rel[6]) * scale, (rel[3] - rel[1]) * scale)
        g = gyro.tolist()
        ws, bias, bias_var = kf._window_sum[0], kf.gyro_bias[0], kf.gyro_bias_var[0]
        ws += np.array([g[i] * dt - step[i] for i in range(3)])
        kf._window_t[0] += dt
        bias_var += c.gyro_bias_walk_rad_per_s_sqrt_s**2 * dt
        if kf._window_t[0] >= c.gyro_bias_window_s:
            t = float(kf._window_t[0])
            r = 2.0 * c.attitude_noise_rad**2 / t**2 + c.gyro_noise_rad_per_s_sqrt_s**2 / t
            k = bias_var / (bias_var + r)
            bias += k * (ws / t - bias)
            bias_var *= 1.0 - k
            ws[:] = 0.0
            kf._window_t[0] = 0.0
        b = bias.tolist()
        om = [g[0] - b[0], g[1] - b[1], g[2] - b[2]]
        kf.omega[0] = om
        roll = math.atan2(q[7], q[8])
        pitch = -math.asin(min(max(q[6], -1.0), 1.0))
        cos_p = max(math.cos(pitch), 1e-3)
        yaw = float(kf.yaw_rad[0]) + dt * (math.sin(roll) * om[1] + math.cos(roll) * om[2]) / cos_p
        kf.yaw_rad[0] = yaw
        kf.yaw_var[0] += c.gyro_noise_rad_per_s_sqrt_s**2 * dt + float(bias_var[2]) * dt**2
        cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), *_cos_sin(yaw)
        rot = [
            cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr,
            sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr,
            -sp, cp * sr, cp * cr,
        ]  # fmt: skip
        kf.rot[0] = np.reshape(rot, (3, 3))
        return rot

    def step(
        self,
        kf: ContactKalmanFilter,
        dt: float,
        quat_wxyz: np.ndarray,
        gyro: np.ndarray,
        accel: np.ndarray,
        joint_pos_rad: np.ndarray,
        joint_vel_rad_per_s: np.ndarray,
    ) -> None:
        """Advance world 0 of ``kf`` by ``dt`` seconds with its (4,), (3,), (3,), (J,), (J,) readings."""
        c = kf.cfg
        r9 = self.attitude(kf, dt, quat_wxyz, gyro)
        rot = kf.rot[0]
        # --- prediction ---
        x = kf.x[0]
        xs = x.tolist()
        ab = [ai - bi for ai, bi in zip(accel.tolist(), xs[12:15], strict=True)]
        a = [r9[3 * i] * ab[0] + r9[3 * i + 1] * ab[1] + r9[3 * i + 2] * ab[2] + self.gravity[i] for i in range(3)]
        dt2 = 0.5 * dt**2
        x[0:6] = [xs[i] + (xs[3 + i] * dt + a[i] * dt2) for i in range(3)] + [xs[3 + i] + a[i] * dt for i in range(3)]
        f = self.f
        f[0, 3] = f[1, 4] = f[2, 5] = dt
        f[0:3, 12:15] = rot * -dt2
        f[3:6, 12:15] = rot * -dt
        sole, sole_vel = kf.kin.sole_pos_vel(joint_pos_rad, joint_vel_rad_per_s)  # (2, 3), (2, 3) base frame
        s = sole - kf.kin.imu_m  # (2, 3)
        s_world = s @ rot.T  # (2, 3)
        h_left, h_right = s_world[:, 2].tolist()
        low = min(h_left, h_right)
        stance = (h_left - low < c.contact_height_m, h_right - low < c.contact_height_m)
        kf.stance[0] = stance
        p = f @ kf.p[0] @ f.T
        p += self.q_diag[stance] * dt  # adding zeros off the diagonal is exact
        # --- measurements ---
        w0, w1, w2 = kf.omega[0].tolist()
        skew_t = np.array([[0.0, w2, -w1], [-w2, 0.0, w0], [w1, -w0, 0.0]])  # [w]_x^T: s [w]_x^T = w x s
        vel_meas = -((s @ skew_t + sole_vel) @ rot.T)  # (2, 3) world
        use_vel = stance
        if stance[0] and stance[1]:
            innov = vel_meas - x[3:6]  # (2, 3)
            cov = p[3:6, 3:6] + np.eye(3) * self.vel_r
            nis = np.einsum("li,ij,lj->l", innov, np.linalg.inv(cov), innov).tolist()
            ok = (nis[0] < self.nis_gate, nis[1] < self.nis_gate)
            use_vel = ok if ok[0] or ok[1] else stance
        z = self.z
        z[:, 0:3], z[:, 3:6] = s_world, vel_meas
        self._update(kf, p, z.reshape(-1), self.r_diag[stance + use_vel])

    def _update(self, kf: ContactKalmanFilter, p: np.ndarray, z: np.ndarray, r: np.ndarray) -> None:
        """Kalman update of world 0 from the predicted ``p`` (X, X), ``z`` (M,) and variances ``r`` (M, M) diagonal."""
        x = kf.x[0]
        ph = p @ self.h_t  # (X, M)
        s = self.h @ ph  # (M, M)
        s += r
        k = np.linalg.solve(s, ph.T)  # (M, X) = K^T
        x += (z - x @ self.h_t) @ k
        p = p - k.T @ ph.T
        kf.p[0] = 0.5 * (p + p.T)


def _cos_sin(angle: float) -> tuple[float, float]:
    return math.cos(angle), math.sin(angle)
