"""Sensor model of the simulated G1: MEMS IMU noise and drifting biases, encoder noise, attitude error.

What a real G1 publishes differs from the simulator's exact numbers in the ways that matter to a state
estimator (the classic continuous-time IMU model; Woodman, "An introduction to inertial navigation",
Cambridge UCAM-CL-TR-696, 2007, and the IEEE Std 952-1997 Allan-variance terms):

    gyro  = w_true + b_g + n_g,      b_g(t + dt) = b_g(t) + sigma_bg sqrt(dt) xi,
    accel = f_true + b_a + n_a,      b_a(t + dt) = b_a(t) + sigma_ba sqrt(dt) xi,

with ``n`` white per sample, ``xi ~ N(0, I)`` and turn-on biases ``b(0) ~ N(0, sigma_0^2 I)``. The reported
orientation is the IMU's own attitude filter: tilt is gravity-referenced (white error), heading is integrated
and drifts at a constant rate drawn once per reset. Joint readings get white encoder noise.

:meth:`SensorModelConfig.g1_mems` holds the defaults for the G1's class of IMU. Unitree does not publish the
part; the numbers are those of a consumer/industrial 6-axis MEMS IMU of the Bosch BMI088 class (datasheet
BST-BMI088-DS001): gyro noise density 0.014 deg/s/sqrt(Hz), accelerometer 175 ug/sqrt(Hz) (per-sample std at
the robot's 500 Hz state rate with a ~230 Hz output bandwidth), a residual turn-on bias after the boot-time
calibration of a tenth of the datasheet's offsets, and bias random walks an order of magnitude above the
datasheet's bias instability so that an estimator is exercised within a 60 s run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

_G = 9.80665
_BANDWIDTH_HZ = 230.0


@dataclass
class SensorModelConfig:
    """Noise, bias and attitude-error figures of the simulated sensors; all zero (the default) is ideal."""

    gyro_noise_rad_per_s: float = 0.0
    """Std of the white noise of each gyro sample."""
    gyro_bias_init_rad_per_s: float = 0.0
    """Std of the turn-on gyro bias (per axis, drawn at every reset)."""
    gyro_bias_walk_rad_per_s_sqrt_s: float = 0.0
    """Gyro bias random walk: the bias std grows by this times sqrt(elapsed seconds)."""
    accel_noise_m_per_s2: float = 0.0
    """Std of the white noise of each accelerometer sample."""
    accel_bias_init_m_per_s2: float = 0.0
    """Std of the turn-on accelerometer bias (per axis)."""
    accel_bias_walk_m_per_s2_sqrt_s: float = 0.0
    """Accelerometer bias random walk (std growth per sqrt(second))."""
    joint_pos_noise_rad: float = 0.0
    """Std of the white noise of each joint position reading (encoder quantisation and backlash)."""
    joint_vel_noise_rad_per_s: float = 0.0
    """Std of the white noise of each joint velocity reading (differentiated encoder)."""
    attitude_noise_rad: float = 0.0
    """Std of the white error of the reported orientation, per body axis (rotation-vector components)."""
    heading_drift_rad_per_s: float = 0.0
    """Std of the constant heading drift rate of the IMU's attitude filter (drawn at every reset)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{f.name}: expected a finite value >= 0, got {value}")

    @property
    def ideal(self) -> bool:
        """True when every figure is zero (the simulator's exact readings)."""
        return all(getattr(self, f.name) == 0.0 for f in fields(self))

    @classmethod
    def g1_mems(cls) -> SensorModelConfig:
        """Defaults of the G1's class of MEMS IMU and encoders (see module docstring for where they come from)."""
        return cls(
            gyro_noise_rad_per_s=math.radians(0.014) * math.sqrt(_BANDWIDTH_HZ),  # 3.7e-3 rad/s
            gyro_bias_init_rad_per_s=math.radians(0.1),  # datasheet offset +-1 deg/s, calibrated at boot
            gyro_bias_walk_rad_per_s_sqrt_s=1e-4,
            accel_noise_m_per_s2=175e-6 * _G * math.sqrt(_BANDWIDTH_HZ),  # 0.026 m/s^2
            accel_bias_init_m_per_s2=0.02,  # datasheet offset +-20 mg = 0.2 m/s^2, a tenth after calibration
            accel_bias_walk_m_per_s2_sqrt_s=1e-3,
            joint_pos_noise_rad=5e-4,
            joint_vel_noise_rad_per_s=0.02,
            attitude_noise_rad=math.radians(0.1),
            heading_drift_rad_per_s=math.radians(0.01),  # 0.6 deg per minute
        )


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """(3,) rotation vector -> (4,) unit quaternion (w, x, y, z)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([1.0, *(0.5 * rotvec)]) / math.sqrt(1.0 + 0.25 * angle * angle)
    return np.array([math.cos(0.5 * angle), *(math.sin(0.5 * angle) / angle * rotvec)])


class SensorModel:
    """Applies :class:`SensorModelConfig` to exact readings; holds the bias and heading-error state."""

    def __init__(self, cfg: SensorModelConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        """Draw new turn-on biases and a new heading drift rate; zero the heading error."""
        cfg, rng = self.cfg, self.rng
        self.gyro_bias_rad_per_s = rng.normal(0.0, 1.0, 3) * cfg.gyro_bias_init_rad_per_s
        self.accel_bias_m_per_s2 = rng.normal(0.0, 1.0, 3) * cfg.accel_bias_init_m_per_s2
        self.heading_drift_rad_per_s = float(rng.normal()) * cfg.heading_drift_rad_per_s
        self.heading_error_rad = 0.0

    def advance(self, dt_s: float) -> None:
        """Let the biases walk and the heading error grow over ``dt_s`` seconds."""
        if dt_s <= 0.0:
            return
        cfg, rng = self.cfg, self.rng
        root = math.sqrt(dt_s)
        if cfg.gyro_bias_walk_rad_per_s_sqrt_s > 0.0:
            self.gyro_bias_rad_per_s += rng.normal(0.0, cfg.gyro_bias_walk_rad_per_s_sqrt_s * root, 3)
        if cfg.accel_bias_walk_m_per_s2_sqrt_s > 0.0:
            self.accel_bias_m_per_s2 += rng.normal(0.0, cfg.accel_bias_walk_m_per_s2_sqrt_s * root, 3)
        self.heading_error_rad += self.heading_drift_rad_per_s * dt_s

    def imu(
        self, quat_wxyz: np.ndarray, gyro_rad_per_s: np.ndarray, accel_m_per_s2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reported (orientation, gyro, accelerometer) from exact ones: ``R_z(heading error) q exp(noise)``."""
        cfg, rng = self.cfg, self.rng
        gyro = gyro_rad_per_s + self.gyro_bias_rad_per_s
        accel = accel_m_per_s2 + self.accel_bias_m_per_s2
        if cfg.gyro_noise_rad_per_s > 0.0:
            gyro = gyro + rng.normal(0.0, cfg.gyro_noise_rad_per_s, 3)
        if cfg.accel_noise_m_per_s2 > 0.0:
            accel = accel + rng.normal(0.0, cfg.accel_noise_m_per_s2, 3)
        quat = np.asarray(quat_wxyz, dtype=np.float64)
        if self.heading_error_rad != 0.0:
            quat = _quat_mul(quat_from_rotvec(np.array([0.0, 0.0, self.heading_error_rad])), quat)
        if cfg.attitude_noise_rad > 0.0:
            quat = _quat_mul(quat, quat_from_rotvec(rng.normal(0.0, cfg.attitude_noise_rad, 3)))
        return quat, gyro, accel

    def joints(self, joint_pos_rad: np.ndarray, joint_vel_rad_per_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reported (joint positions, joint velocities) from exact ones."""
        cfg, rng = self.cfg, self.rng
        q, dq = joint_pos_rad, joint_vel_rad_per_s
        if cfg.joint_pos_noise_rad > 0.0:
            q = q + rng.normal(0.0, cfg.joint_pos_noise_rad, q.shape)
        if cfg.joint_vel_noise_rad_per_s > 0.0:
            dq = dq + rng.normal(0.0, cfg.joint_vel_noise_rad_per_s, dq.shape)
        return q, dq
