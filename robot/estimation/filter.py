"""Contact-aided Kalman filter of the G1 base over N worlds at once: leg kinematics fused with the IMU.

Design: the filter of Bloesch et al., "State Estimation for Legged Robots: Consistent Fusion of Leg Kinematics
and IMU" (RSS 2012) — base position and velocity plus one position per foot, the accelerometer driving the
prediction and the leg kinematics measuring each foot relative to the base — with the attitude taken from the
IMU's own gravity-referenced orientation instead of being a filter state. That makes every Jacobian constant
and the filter linear (the variant run on MIT Cheetah 3, Bledt et al., IROS 2018), so it is exact, cheap and
batches over worlds; the invariant EKF of Hartley et al. (IJRR 2020) would add orientation to the state for
better consistency when the attitude itself is uncertain, which the G1's IMU already resolves.

State per world, in the world frame, for the IMU point ``p`` (the accelerometer's location)::

    x = [p (3), v (3), f_L (3), f_R (3), b_a (3)]          (15)

Prediction over ``dt`` with the accelerometer ``a_m`` (specific force, IMU frame) and attitude ``R``::

    a = R (a_m - b_a) + g,   p += v dt + a dt^2 / 2,   v += a dt,   f_i, b_a random walks,

where a foot's walk is small in stance (it does not slip) and large in swing. Measurements, per foot ``i``
(``s_i = fk_i(q) - r_imu`` the sole relative to the IMU in the base frame, ``w`` the bias-corrected gyro)::

    f_i - p = R s_i                         (always: the leg kinematics)
    v       = -R (w x s_i + J_i dq)          (stance: the sole does not move)
    f_i,z   = 0                              (stance: flat ground at the height of the first sample)

so ``H`` is constant and only the measurement variances change with contact (swing rows get a huge variance,
which keeps every shape fixed across worlds). Assumptions: flat, level ground; a stance foot does not slip
(a velocity row whose normalised innovation exceeds a chi-square gate is dropped in double support); contact
is inferred from kinematics (a sole within ``contact_height_m`` of the lowest sole, in the gravity direction),
since the G1 has no foot sensors.

The heading is integrated from the gyro, ``psi_dot = (sin(phi) w_y + cos(phi) w_z) / cos(theta)``, with roll and
pitch from the IMU quaternion. The gyro bias is observed by comparing the gyro's rotation with the reported
orientation's over windows of ``gyro_bias_window_s`` (a per-axis scalar Kalman filter), so in the long run the
heading follows the IMU's; over seconds it is the gyro integral.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from robot.estimation.one_world import OneWorldStep
from robot.g1.kinematics import LegKinematics, quat_to_matrix

GRAVITY_M_PER_S2 = np.array([0.0, 0.0, -9.81])
STATE_DIM = 15
MEAS_DIM = 14
_HUGE = 1e8
_NIS_GATE_3DOF = 16.27  # chi-square, 3 degrees of freedom, p = 0.999


@dataclass
class FilterConfig:
    """Noise figures (continuous-time densities unless said otherwise) and contact thresholds of the filter."""

    accel_noise_m_per_s2_sqrt_s: float = 0.05
    """Accelerometer noise plus unmodelled vibration: the velocity walks by this times sqrt(dt)."""
    accel_bias_walk_m_per_s2_sqrt_s: float = 0.005
    """Accelerometer bias random walk."""
    gyro_noise_rad_per_s_sqrt_s: float = 0.005
    """Gyro white noise density (grows the heading variance)."""
    gyro_bias_walk_rad_per_s_sqrt_s: float = 1e-4
    """Gyro bias random walk."""
    stance_foot_walk_m_per_sqrt_s: float = 0.01
    """How far a stance foot may creep (rolling sole, small slip)."""
    swing_foot_walk_m_per_sqrt_s: float = 3.0
    """A swinging foot's position is free: a large walk."""
    kinematic_pos_noise_m: float = 0.004
    """Std of the leg-kinematics sole position (encoders, link tolerances, sole rolling)."""
    kinematic_vel_noise_m_per_s: float = 0.06
    """Std of the stance-foot velocity measurement (encoder velocity noise, impacts, rolling)."""
    ground_height_noise_m: float = 0.01
    """Std of the flat-ground pseudo-measurement of a stance sole's height."""
    attitude_noise_rad: float = 0.002
    """Std of the reported orientation (for the gyro bias observer)."""
    gyro_bias_window_s: float = 0.2
    """Length of the windows over which the gyro is compared with the reported orientation."""
    contact_height_m: float = 0.03
    """A sole within this height of the lowest sole is taken to be in stance."""
    init_vel_std_m_per_s: float = 0.5
    """Initial velocity std."""
    init_accel_bias_std_m_per_s2: float = 0.1
    """Initial accelerometer bias std."""
    init_gyro_bias_std_rad_per_s: float = 0.01
    """Initial gyro bias std."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0.0:
                raise ValueError(f"{f.name}: expected > 0, got {getattr(self, f.name)}")


def _rotvec_from_matrix(rot: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) rotation vectors (angles below pi)."""
    cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    vee = np.stack(
        [rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0], rot[..., 1, 0] - rot[..., 0, 1]], -1
    )
    scale = np.where(angle < 1e-6, 0.5 + angle**2 / 12.0, angle / (2.0 * np.sin(np.maximum(angle, 1e-6))))
    return vee * scale[..., None]


def _tilt_and_yaw(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll, pitch, yaw (Z-Y-X) of (..., 3, 3) rotations."""
    roll = np.arctan2(rot[..., 2, 1], rot[..., 2, 2])
    pitch = -np.arcsin(np.clip(rot[..., 2, 0], -1.0, 1.0))
    yaw = np.arctan2(rot[..., 1, 0], rot[..., 0, 0])
    return roll, pitch, yaw


def _rot_zyx(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rows = (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )
    return np.stack([np.stack(r, -1) for r in rows], -2)


def _measurement_matrix() -> np.ndarray:
    h = np.zeros((MEAS_DIM, STATE_DIM))
    for i in range(2):
        r, f = 7 * i, 6 + 3 * i
        h[r : r + 3, 0:3], h[r : r + 3, f : f + 3] = -np.eye(3), np.eye(3)  # f_i - p
        h[r + 3 : r + 6, 3:6] = np.eye(3)  # v
        h[r + 6, f + 2] = 1.0  # f_i,z
    return h


class ContactKalmanFilter:
    """The filter of the module docstring for ``num_worlds`` robots; arrays carry a leading ``N``.

    With one world :meth:`step` takes the specialised path of :mod:`robot.estimation.one_world` (same results
    to float64 rounding, several times faster); ``reference=True`` keeps the batched path (what it is tested
    against). The noise figures of ``cfg`` are read at construction.
    """

    def __init__(
        self,
        num_worlds: int,
        cfg: FilterConfig | None = None,
        kinematics: LegKinematics | None = None,
        reference: bool = False,
    ) -> None:
        self.cfg = cfg or FilterConfig()
        self.kin = kinematics or LegKinematics.from_links()
        self.n = num_worlds
        self.h = _measurement_matrix()  # (M, X)
        self.x = np.zeros((self.n, STATE_DIM))
        self.p = np.zeros((self.n, STATE_DIM, STATE_DIM))
        self.yaw_rad = np.zeros(self.n)
        self.yaw_var = np.zeros(self.n)
        self.gyro_bias = np.zeros((self.n, 3))
        self.gyro_bias_var = np.zeros((self.n, 3))
        self.stance = np.ones((self.n, 2), dtype=bool)
        self.rot = np.broadcast_to(np.eye(3), (self.n, 3, 3)).copy()
        self.omega = np.zeros((self.n, 3))
        self._prev_quat_rot = np.broadcast_to(np.eye(3), (self.n, 3, 3)).copy()
        self._window_sum = np.zeros((self.n, 3))
        self._window_t = np.zeros(self.n)
        self._one = (
            OneWorldStep(self, GRAVITY_M_PER_S2, _HUGE, _NIS_GATE_3DOF) if self.n == 1 and not reference else None
        )

    def initialize(
        self,
        mask: np.ndarray,
        quat_wxyz: np.ndarray,
        joint_pos_rad: np.ndarray,
        base_xy_m: np.ndarray | None = None,
        lin_vel_m_per_s: np.ndarray | None = None,
    ) -> None:
        """(Re)start the worlds in ``mask`` (N,) bool at their current reading, both feet on the ground at z = 0.

        ``base_xy_m`` (N, 2), the pelvis origin, and ``lin_vel_m_per_s`` (N, 3), the IMU point, default to zero.
        """
        c = self.cfg
        rot = quat_to_matrix(quat_wxyz)  # (N, 3, 3)
        _, _, yaw = _tilt_and_yaw(rot)
        s = (rot[:, None] @ self._sole_from_imu(joint_pos_rad)[..., None])[..., 0]  # (N, 2, 3)
        x = np.zeros((self.n, STATE_DIM))
        x[:, 0:2] = (0.0 if base_xy_m is None else base_xy_m) + (rot @ self.kin.imu_m)[:, :2]
        x[:, 2] = -s[:, :, 2].min(axis=1)  # the lower sole on the floor
        x[:, 3:6] = 0.0 if lin_vel_m_per_s is None else lin_vel_m_per_s
        x[:, 6:12] = (x[:, None, 0:3] + s).reshape(self.n, 6)
        var = np.r_[[1e-6] * 3, [c.init_vel_std_m_per_s**2] * 3, [1e-4] * 6, [c.init_accel_bias_std_m_per_s2**2] * 3]
        m = np.asarray(mask, dtype=bool)
        self.x[m], self.p[m] = x[m], np.diag(var)
        self.yaw_rad[m], self.yaw_var[m] = yaw[m], 0.0
        self.gyro_bias[m], self.gyro_bias_var[m] = 0.0, c.init_gyro_bias_std_rad_per_s**2
        self._prev_quat_rot[m], self._window_sum[m], self._window_t[m] = rot[m], 0.0, 0.0
        self.rot[m] = rot[m]

    def _sole_from_imu(self, joint_pos_rad: np.ndarray) -> np.ndarray:
        return self.kin.feet(joint_pos_rad).sole_pos_m - self.kin.imu_m  # (N, 2, 3) base frame

    def _attitude(self, dt: np.ndarray, quat_wxyz: np.ndarray, gyro: np.ndarray) -> None:
        """Gyro bias observer and heading integration; sets ``self.rot`` and ``self.omega``."""
        c = self.cfg
        quat_rot = quat_to_matrix(quat_wxyz)  # (N, 3, 3)
        quat_step = _rotvec_from_matrix(np.swapaxes(self._prev_quat_rot, -1, -2) @ quat_rot)  # (N, 3) body frame
        self._prev_quat_rot = quat_rot
        self._window_sum += gyro * dt[:, None] - quat_step
        self._window_t += dt
        self.gyro_bias_var += c.gyro_bias_walk_rad_per_s_sqrt_s**2 * dt[:, None]
        ready = self._window_t >= c.gyro_bias_window_s
        if np.any(ready):
            t = self._window_t[ready, None]
            z = self._window_sum[ready] / t
            r = 2.0 * c.attitude_noise_rad**2 / t**2 + c.gyro_noise_rad_per_s_sqrt_s**2 / t
            k = self.gyro_bias_var[ready] / (self.gyro_bias_var[ready] + r)
            self.gyro_bias[ready] += k * (z - self.gyro_bias[ready])
            self.gyro_bias_var[ready] *= 1.0 - k
            self._window_sum[ready], self._window_t[ready] = 0.0, 0.0
        self.omega = gyro - self.gyro_bias
        roll, pitch, _ = _tilt_and_yaw(quat_rot)
        w = self.omega
        cos_p = np.maximum(np.cos(pitch), 1e-3)
        self.yaw_rad = self.yaw_rad + dt * (np.sin(roll) * w[:, 1] + np.cos(roll) * w[:, 2]) / cos_p
        self.yaw_var += c.gyro_noise_rad_per_s_sqrt_s**2 * dt + self.gyro_bias_var[:, 2] * dt**2
        self.rot = _rot_zyx(roll, pitch, self.yaw_rad)

    def step(
        self,
        dt_s: np.ndarray,
        quat_wxyz: np.ndarray,
        gyro_rad_per_s: np.ndarray,
        accel_m_per_s2: np.ndarray,
        joint_pos_rad: np.ndarray,
        joint_vel_rad_per_s: np.ndarray,
    ) -> None:
        """Advance every world by ``dt_s`` (N,) with its readings (N, 4), (N, 3), (N, 3), (N, J), (N, J)."""
        if self._one is not None:
            q, dq = np.asarray(joint_pos_rad)[0], np.asarray(joint_vel_rad_per_s)[0]
            self._one.step(
                self, float(np.asarray(dt_s).reshape(-1)[0]), quat_wxyz[0], gyro_rad_per_s[0], accel_m_per_s2[0], q, dq
            )
            return
        c = self.cfg
        dt = np.asarray(dt_s, dtype=np.float64)
        self._attitude(dt, quat_wxyz, gyro_rad_per_s)
        rot, x = self.rot, self.x
        # --- prediction ---
        a = (rot @ (accel_m_per_s2 - x[:, 12:15])[..., None])[..., 0] + GRAVITY_M_PER_S2  # (N, 3)
        dt1, dt2 = dt[:, None], 0.5 * dt[:, None] ** 2
        x[:, 0:3] += x[:, 3:6] * dt1 + a * dt2
        x[:, 3:6] += a * dt1
        f = np.broadcast_to(np.eye(STATE_DIM), (self.n, STATE_DIM, STATE_DIM)).copy()
        f[:, 0:3, 3:6] = np.eye(3) * dt[:, None, None]
        f[:, 0:3, 12:15] = -rot * dt2[..., None]
        f[:, 3:6, 12:15] = -rot * dt1[..., None]
        fk = self.kin.feet(joint_pos_rad)
        s = fk.sole_pos_m - self.kin.imu_m  # (N, 2, 3) base frame
        s_world = (rot[:, None] @ s[..., None])[..., 0]  # (N, 2, 3)
        heights = s_world[..., 2]
        self.stance = heights - heights.min(axis=1, keepdims=True) < c.contact_height_m  # (N, 2)
        foot_q = np.where(self.stance, c.stance_foot_walk_m_per_sqrt_s, c.swing_foot_walk_m_per_sqrt_s) ** 2
        q_diag = np.zeros((self.n, STATE_DIM))
        q_diag[:, 3:6] = c.accel_noise_m_per_s2_sqrt_s**2
        q_diag[:, 6:12] = np.repeat(foot_q, 3, axis=1)
        q_diag[:, 12:15] = c.accel_bias_walk_m_per_s2_sqrt_s**2
        self.p = f @ self.p @ np.swapaxes(f, -1, -2)
        self.p[:, np.arange(STATE_DIM), np.arange(STATE_DIM)] += q_diag * dt[:, None]
        # --- measurements ---
        rel_vel = np.cross(self.omega[:, None], s) + self.kin.sole_velocity(fk, joint_vel_rad_per_s)  # (N, 2, 3)
        vel_meas = -(rot[:, None] @ rel_vel[..., None])[..., 0]  # (N, 2, 3) world
        use_vel = self._gate_velocity(vel_meas)  # (N, 2)
        z = np.concatenate([s_world, vel_meas, np.zeros((self.n, 2, 1))], axis=2).reshape(self.n, MEAS_DIM)
        r = np.empty((self.n, 2, 7))
        r[..., 0:3] = c.kinematic_pos_noise_m**2
        r[..., 3:6] = np.where(use_vel, c.kinematic_vel_noise_m_per_s**2, _HUGE)[..., None]
        r[..., 6] = np.where(self.stance, c.ground_height_noise_m**2, _HUGE)
        self._update(z, r.reshape(self.n, MEAS_DIM))

    def step_one(
        self,
        dt_s: float,
        quat_wxyz: np.ndarray,
        gyro_rad_per_s: np.ndarray,
        accel_m_per_s2: np.ndarray,
        joint_pos_rad: np.ndarray,
        joint_vel_rad_per_s: np.ndarray,
    ) -> None:
        """:meth:`step` of a one-world filter with unbatched readings (4,), (3,), (3,), (J,), (J,)."""
        if self._one is None:
            raise ValueError(f"step_one: expected a one-world filter built with reference=False, got {self.n} worlds")
        self._one.step(self, float(dt_s), quat_wxyz, gyro_rad_per_s, accel_m_per_s2, joint_pos_rad, joint_vel_rad_per_s)

    def _gate_velocity(self, vel_meas: np.ndarray) -> np.ndarray:
        """Stance feet whose velocity row is used: in double support a foot whose normalised innovation fails
        the chi-square gate (it slips or has not landed) is dropped, unless both fail."""
        innov = vel_meas - self.x[:, None, 3:6]  # (N, 2, 3)
        cov = self.p[:, None, 3:6, 3:6] + np.eye(3) * self.cfg.kinematic_vel_noise_m_per_s**2  # (N, 1, 3, 3)
        nis = np.einsum("nli,nlij,nlj->nl", innov, np.linalg.inv(cov), innov)  # (N, 2)
        ok = self.stance & (nis < _NIS_GATE_3DOF)
        return np.where(np.any(ok, axis=1, keepdims=True), ok, self.stance)

    def _update(self, z: np.ndarray, r: np.ndarray) -> None:
        """Kalman update with the constant ``H`` and per-world diagonal measurement variances ``r`` (N, M)."""
        h, p = self.h, self.p
        ph = p @ h.T  # (N, X, M)
        s = h @ ph  # (N, M, M)
        s[:, np.arange(MEAS_DIM), np.arange(MEAS_DIM)] += r
        k = np.linalg.solve(s, np.swapaxes(ph, -1, -2))  # (N, M, X) = K^T
        innov = z - self.x @ h.T  # (N, M)
        self.x += (innov[:, None, :] @ k)[:, 0]
        self.p = p - np.swapaxes(k, -1, -2) @ ph.swapaxes(-1, -2)
        self.p = 0.5 * (self.p + np.swapaxes(self.p, -1, -2))
