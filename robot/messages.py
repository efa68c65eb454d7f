"""Messages exchanged with a robot: one state sample and one per-joint motor command.

Per-joint arrays are ``(J,)`` float64 in the robot's joint order (SDK motor order for the G1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RobotState:
    """One proprioceptive sample as the robot reports it."""

    joint_pos_rad: np.ndarray
    """(J,) joint positions."""
    joint_vel_rad_per_s: np.ndarray
    """(J,) joint velocities."""
    imu_quat_wxyz: np.ndarray
    """(4,) orientation of the IMU frame in the world (w, x, y, z)."""
    imu_gyro_rad_per_s: np.ndarray
    """(3,) angular velocity in the IMU frame."""
    imu_accel_m_per_s2: np.ndarray
    """(3,) specific force in the IMU frame (reads +9.81 on z when standing still)."""
    timestamp_s: float
    """Robot clock at the time of the sample."""
    joint_torque_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(J,) estimated joint torques, empty when the backend cannot measure them."""
    damping: bool = False
    """True while the safety layer holds the robot in damping mode."""
    base_pos_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(3,) pelvis position in the world, empty when the backend has no estimate (the simulator knows it; a
    real robot needs a state estimator). Diffusion planners need it; the walking expert does not."""
    base_lin_vel_m_per_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(3,) pelvis linear velocity in the world frame, empty when the backend has no estimate."""
    estimator_fault: str = ""
    """Why the attached base-state estimator has no valid estimate (NaN input, frozen IMU, joint out of range,
    ...); empty when it has one or when no estimator is attached."""

    def copy(self) -> RobotState:
        """Deep copy (states are published across threads)."""
        return RobotState(
            self.joint_pos_rad.copy(),
            self.joint_vel_rad_per_s.copy(),
            self.imu_quat_wxyz.copy(),
            self.imu_gyro_rad_per_s.copy(),
            self.imu_accel_m_per_s2.copy(),
            self.timestamp_s,
            self.joint_torque_nm.copy(),
            self.damping,
            self.base_pos_m.copy(),
            self.base_lin_vel_m_per_s.copy(),
            self.estimator_fault,
        )


@dataclass
class RobotCommand:
    """Per-joint motor command: ``tau = kp (q* - q) + kd (dq* - dq) + tau_ff``, evaluated by the motor."""

    q_target_rad: np.ndarray
    """(J,) position targets."""
    dq_target_rad_per_s: np.ndarray
    """(J,) velocity targets."""
    kp_nm_per_rad: np.ndarray
    """(J,) position gains."""
    kd_nms_per_rad: np.ndarray
    """(J,) velocity gains."""
    tau_ff_nm: np.ndarray
    """(J,) feed-forward torques."""

    @classmethod
    def position(cls, q_target_rad: np.ndarray, kp_nm_per_rad: np.ndarray, kd_nms_per_rad: np.ndarray) -> RobotCommand:
        """Pure position command (zero velocity target and feed-forward)."""
        q = np.asarray(q_target_rad, dtype=np.float64)
        zeros = np.zeros_like(q)
        return cls(
            q.copy(),
            zeros,
            np.asarray(kp_nm_per_rad, float).copy(),
            np.asarray(kd_nms_per_rad, float).copy(),
            zeros.copy(),
        )

    def copy(self) -> RobotCommand:
        """Deep copy."""
        return RobotCommand(
            self.q_target_rad.copy(),
            self.dq_target_rad_per_s.copy(),
            self.kp_nm_per_rad.copy(),
            self.kd_nms_per_rad.copy(),
            self.tau_ff_nm.copy(),
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The five arrays in declaration order."""
        return (
            self.q_target_rad,
            self.dq_target_rad_per_s,
            self.kp_nm_per_rad,
            self.kd_nms_per_rad,
            self.tau_ff_nm,
        )
