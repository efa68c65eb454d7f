"""Conversions between our :mod:`robot.messages` and the ``unitree_hg`` IDL messages, with the CRC filled in.

Motor slot ``i`` is joint ``i`` of :data:`robot.g1.constants.JOINT_NAMES` (Unitree motor order); slots past the
robot's joints are sent disabled (``mode`` 0, all zeros). Quaternions are (w, x, y, z) on both sides.
"""

from __future__ import annotations

import math

import numpy as np

from robot.messages import RobotCommand, RobotState
from robot.unitree.crc import NUM_MOTORS, lowcmd_crc, lowstate_crc
from robot.unitree.msgs import (
    MODE_MACHINE_G1_29DOF,
    MODE_PR,
    MOTOR_MODE_ENABLE,
    IMUState_,
    LowCmd_,
    LowState_,
    MotorCmd_,
    MotorState_,
)


def lowcmd_from_command(command: RobotCommand, mode_machine: int, mode_pr: int = MODE_PR, sequence: int = 0) -> LowCmd_:
    """A LowCmd driving the first ``J`` motor slots with ``command`` (already safety-filtered), CRC filled in.

    ``sequence`` goes to ``reserve[0]`` (0 on the real robot; robot doubles echo it for latency measurements).
    """
    arrays = [np.asarray(a, dtype=np.float64).tolist() for a in command.arrays()]
    num_joints = len(arrays[0])
    if num_joints > NUM_MOTORS:
        raise ValueError(f"RobotCommand: expected at most {NUM_MOTORS} joints, got {num_joints}")
    q, dq, kp, kd, tau = arrays
    motors = [MotorCmd_(MOTOR_MODE_ENABLE, q[i], dq[i], tau[i], kp[i], kd[i], 0) for i in range(num_joints)]
    motors += [MotorCmd_() for _ in range(NUM_MOTORS - num_joints)]
    msg = LowCmd_(mode_pr, mode_machine, motors, [sequence & 0xFFFFFFFF, 0, 0, 0], 0)
    msg.crc = lowcmd_crc(msg)
    return msg


def command_from_lowcmd(msg: LowCmd_, num_joints: int) -> RobotCommand:
    """The first ``num_joints`` motor slots of ``msg`` as a :class:`RobotCommand` (float64 arrays)."""
    motors = msg.motor_cmd[:num_joints]
    return RobotCommand(
        np.array([m.q for m in motors]),
        np.array([m.dq for m in motors]),
        np.array([m.kp for m in motors]),
        np.array([m.kd for m in motors]),
        np.array([m.tau for m in motors]),
    )


def quat_wxyz_to_rpy(quat_wxyz: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad, intrinsic z-y-x) of a unit quaternion (w, x, y, z), as the IMU reports them."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def lowstate_from_state(
    state: RobotState,
    tick: int,
    mode_machine: int = MODE_MACHINE_G1_29DOF,
    mode_pr: int = MODE_PR,
    wireless_remote: bytes = bytes(40),
    sequence: int = 0,
) -> LowState_:
    """The LowState a robot in ``state`` publishes, CRC filled in (robot doubles; ``sequence`` -> reserve[0])."""
    num_joints = len(state.joint_pos_rad)
    if num_joints > NUM_MOTORS:
        raise ValueError(f"RobotState: expected at most {NUM_MOTORS} joints, got {num_joints}")
    if len(wireless_remote) != 40:
        raise ValueError(f"wireless_remote: expected 40 bytes, got {len(wireless_remote)}")
    q = state.joint_pos_rad.tolist()
    dq = state.joint_vel_rad_per_s.tolist()
    tau = state.joint_torque_nm.tolist() if len(state.joint_torque_nm) == num_joints else [0.0] * num_joints
    motors = [
        MotorState_(MOTOR_MODE_ENABLE, q[i], dq[i], 0.0, tau[i], [30, 30], 0.0, [0, 0], 0, [0, 0, 0, 0])
        for i in range(num_joints)
    ]
    motors += [MotorState_() for _ in range(NUM_MOTORS - num_joints)]
    imu = IMUState_(
        state.imu_quat_wxyz.tolist(),
        state.imu_gyro_rad_per_s.tolist(),
        state.imu_accel_m_per_s2.tolist(),
        list(quat_wxyz_to_rpy(state.imu_quat_wxyz)),
        30,
    )
    msg = LowState_(
        [0, 0], mode_pr, mode_machine, tick & 0xFFFFFFFF, imu, motors, bytes(wireless_remote),
        [sequence & 0xFFFFFFFF, 0, 0, 0], 0,
    )  # fmt: skip
    msg.crc = lowstate_crc(msg)
    return msg


def state_from_lowstate(msg: LowState_, num_joints: int, timestamp_s: float) -> RobotState:
    """The first ``num_joints`` motor slots and the IMU of ``msg`` as a :class:`RobotState` stamped ``timestamp_s``."""
    motors = msg.motor_state[:num_joints]
    imu = msg.imu_state
    return RobotState(
        joint_pos_rad=np.array([m.q for m in motors]),
        joint_vel_rad_per_s=np.array([m.dq for m in motors]),
        imu_quat_wxyz=np.array(imu.quaternion, dtype=np.float64),
        imu_gyro_rad_per_s=np.array(imu.gyroscope, dtype=np.float64),
        imu_accel_m_per_s2=np.array(imu.accelerometer, dtype=np.float64),
        timestamp_s=timestamp_s,
        joint_torque_nm=np.array([m.tau_est for m in motors]),
    )


def lowcmd_crc_ok(msg: LowCmd_) -> bool:
    """True when ``msg.crc`` is the CRC of the rest of the message (what the robot checks before obeying)."""
    return msg.crc == lowcmd_crc(msg)


def lowstate_crc_ok(msg: LowState_) -> bool:
    """True when ``msg.crc`` is the CRC of the rest of the state message."""
    return msg.crc == lowstate_crc(msg)
