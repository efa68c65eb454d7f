"""Unitree G1 (29 DoF, ``g1_29dof_rev_1_0``): the one source of truth for joint order, limits and gains.

Numbers are physical specifications read from the published G1 descriptions (Unitree's URDF/MJCF as shipped
with mjlab and holosoma); the description itself is ours. Everything that can be derived is derived here in
code rather than copied:

- joint armature = reflected rotor inertia of a two-stage planetary gearbox,
  ``J = I_rotor * (g2 * g3)^2 + I_stage1 * g3^2 + I_stage2``;
- BeyondMimic PD gains (Liao et al. 2025): ``kp = J w^2``, ``kd = 2 zeta J w`` with ``w = 2 pi 10 Hz`` and
  ``zeta = 2``;
- action scale ``0.25 * effort_limit / kp`` so that a unit action asks for a quarter of the peak torque.

Ankles and waist roll/pitch are 4-bar linkages driven by two 5020 motors; as in mjlab we model them as one
joint with twice the armature and twice the effort of a single 5020 motor (nominal 1:1 linkage ratio).

All per-joint arrays are ``(29,)`` float64 in Unitree SDK motor order (``JOINT_NAMES``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotorSpec:
    """One Unitree motor type and its gearbox."""

    name: str
    """Unitree motor type name."""
    rotor_inertias_kgm2: tuple[float, float, float]
    """Inertia of the rotor and of the two planetary stages."""
    gear_ratios: tuple[float, float, float]
    """Ratios of the rotor (always 1) and of the two planetary stages."""
    effort_limit_nm: float
    """Peak joint torque."""
    velocity_limit_rad_per_s: float
    """Peak joint speed."""
    motors_per_joint: int = 1
    """Motors driving one joint through a linkage (2 for ankles and waist roll/pitch)."""

    @property
    def armature_kgm2(self) -> float:
        """Reflected inertia at the joint (sum over the motors of a linkage)."""
        i0, i1, i2 = self.rotor_inertias_kgm2
        _, g1, g2 = self.gear_ratios
        return self.motors_per_joint * (i0 * (g1 * g2) ** 2 + i1 * g2**2 + i2)

    @property
    def joint_effort_limit_nm(self) -> float:
        """Peak torque at the joint (sum over the motors of a linkage)."""
        return self.motors_per_joint * self.effort_limit_nm


MOTOR_5020 = MotorSpec("5020", (0.139e-4, 0.017e-4, 0.169e-4), (1.0, 1.0 + 46.0 / 18.0, 1.0 + 56.0 / 16.0), 25.0, 37.0)
MOTOR_7520_14 = MotorSpec("7520-14", (0.489e-4, 0.098e-4, 0.533e-4), (1.0, 4.5, 1.0 + 48.0 / 22.0), 88.0, 32.0)
MOTOR_7520_22 = MotorSpec("7520-22", (0.489e-4, 0.109e-4, 0.738e-4), (1.0, 4.5, 5.0), 139.0, 20.0)
MOTOR_4010 = MotorSpec("4010", (0.068e-4, 0.0, 0.0), (1.0, 5.0, 5.0), 5.0, 22.0)
MOTOR_5020_LINKAGE = MotorSpec(
    "2x5020-linkage",
    (0.139e-4, 0.017e-4, 0.169e-4),
    (1.0, 1.0 + 46.0 / 18.0, 1.0 + 56.0 / 16.0),
    25.0,
    37.0,
    2,
)
MOTOR_TYPES: tuple[MotorSpec, ...] = (
    MOTOR_7520_14,
    MOTOR_7520_22,
    MOTOR_5020_LINKAGE,
    MOTOR_5020,
    MOTOR_4010,
)


@dataclass(frozen=True)
class JointSpec:
    """One actuated hinge joint."""

    name: str
    """MJCF / SDK joint name."""
    motor: MotorSpec
    """Motor type driving the joint."""
    lower_rad: float
    """Lower position limit."""
    upper_rad: float
    """Upper position limit."""


def _j(name: str, motor: MotorSpec, lower_rad: float, upper_rad: float) -> JointSpec:
    return JointSpec(name, motor, lower_rad, upper_rad)


# Unitree SDK motor order (rt/lowcmd index = position in this tuple).
JOINTS: tuple[JointSpec, ...] = (
    _j("left_hip_pitch_joint", MOTOR_7520_14, -2.5307, 2.8798),
    _j("left_hip_roll_joint", MOTOR_7520_22, -0.5236, 2.9671),
    _j("left_hip_yaw_joint", MOTOR_7520_14, -2.7576, 2.7576),
    _j("left_knee_joint", MOTOR_7520_22, -0.087267, 2.8798),
    _j("left_ankle_pitch_joint", MOTOR_5020_LINKAGE, -0.87267, 0.5236),
    _j("left_ankle_roll_joint", MOTOR_5020_LINKAGE, -0.2618, 0.2618),
    _j("right_hip_pitch_joint", MOTOR_7520_14, -2.5307, 2.8798),
    _j("right_hip_roll_joint", MOTOR_7520_22, -2.9671, 0.5236),
    _j("right_hip_yaw_joint", MOTOR_7520_14, -2.7576, 2.7576),
    _j("right_knee_joint", MOTOR_7520_22, -0.087267, 2.8798),
    _j("right_ankle_pitch_joint", MOTOR_5020_LINKAGE, -0.87267, 0.5236),
    _j("right_ankle_roll_joint", MOTOR_5020_LINKAGE, -0.2618, 0.2618),
    _j("waist_yaw_joint", MOTOR_7520_14, -2.618, 2.618),
    _j("waist_roll_joint", MOTOR_5020_LINKAGE, -0.52, 0.52),
    _j("waist_pitch_joint", MOTOR_5020_LINKAGE, -0.52, 0.52),
    _j("left_shoulder_pitch_joint", MOTOR_5020, -3.0892, 2.6704),
    _j("left_shoulder_roll_joint", MOTOR_5020, -1.5882, 2.2515),
    _j("left_shoulder_yaw_joint", MOTOR_5020, -2.618, 2.618),
    _j("left_elbow_joint", MOTOR_5020, -1.0472, 2.0944),
    _j("left_wrist_roll_joint", MOTOR_5020, -1.97222, 1.97222),
    _j("left_wrist_pitch_joint", MOTOR_4010, -1.61443, 1.61443),
    _j("left_wrist_yaw_joint", MOTOR_4010, -1.61443, 1.61443),
    _j("right_shoulder_pitch_joint", MOTOR_5020, -3.0892, 2.6704),
    _j("right_shoulder_roll_joint", MOTOR_5020, -2.2515, 1.5882),
    _j("right_shoulder_yaw_joint", MOTOR_5020, -2.618, 2.618),
    _j("right_elbow_joint", MOTOR_5020, -1.0472, 2.0944),
    _j("right_wrist_roll_joint", MOTOR_5020, -1.97222, 1.97222),
    _j("right_wrist_pitch_joint", MOTOR_4010, -1.61443, 1.61443),
    _j("right_wrist_yaw_joint", MOTOR_4010, -1.61443, 1.61443),
)
NUM_JOINTS = len(JOINTS)
JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)

# --- Derived per-joint arrays, (29,) each ----------------------------------------------------------------
NATURAL_FREQ_RAD_PER_S = 2.0 * math.pi * 10.0
DAMPING_RATIO = 2.0
JOINT_LOWER_RAD = np.array([j.lower_rad for j in JOINTS])
JOINT_UPPER_RAD = np.array([j.upper_rad for j in JOINTS])
ARMATURE_KGM2 = np.array([j.motor.armature_kgm2 for j in JOINTS])
EFFORT_LIMIT_NM = np.array([j.motor.joint_effort_limit_nm for j in JOINTS])
VELOCITY_LIMIT_RAD_PER_S = np.array([j.motor.velocity_limit_rad_per_s for j in JOINTS])
KP_NM_PER_RAD = ARMATURE_KGM2 * NATURAL_FREQ_RAD_PER_S**2
KD_NMS_PER_RAD = 2.0 * DAMPING_RATIO * ARMATURE_KGM2 * NATURAL_FREQ_RAD_PER_S
ACTION_SCALE_RAD = 0.25 * EFFORT_LIMIT_NM / KP_NM_PER_RAD
for _arr in (JOINT_LOWER_RAD, JOINT_UPPER_RAD, ARMATURE_KGM2, EFFORT_LIMIT_NM, VELOCITY_LIMIT_RAD_PER_S):
    _arr.flags.writeable = False

# Passive standing gains (deploy "move to default / hold" phase, sim hold tests). The 10 Hz policy gains give
# each ankle 28.5 Nm/rad, far below the m g h_com ~ 33 kg * 9.81 m/s^2 * 0.64 m ~ 210 Nm/rad that a rigid pose
# needs to stand without active balance; the same law at 30 Hz (ankle 257 Nm/rad) holds the pose.
STAND_NATURAL_FREQ_RAD_PER_S = 2.0 * math.pi * 30.0
STAND_KP_NM_PER_RAD = ARMATURE_KGM2 * STAND_NATURAL_FREQ_RAD_PER_S**2
STAND_KD_NMS_PER_RAD = 2.0 * DAMPING_RATIO * ARMATURE_KGM2 * STAND_NATURAL_FREQ_RAD_PER_S
for _arr in (KP_NM_PER_RAD, KD_NMS_PER_RAD, ACTION_SCALE_RAD, STAND_KP_NM_PER_RAD, STAND_KD_NMS_PER_RAD):
    _arr.flags.writeable = False

# --- Default standing pose (knees bent, mjlab's "knees bent" keyframe) -----------------------------------
_DEFAULT_POSE_RAD: dict[str, float] = {
    "left_hip_pitch_joint": -0.312,
    "right_hip_pitch_joint": -0.312,
    "left_knee_joint": 0.669,
    "right_knee_joint": 0.669,
    "left_ankle_pitch_joint": -0.363,
    "right_ankle_pitch_joint": -0.363,
    "left_shoulder_pitch_joint": 0.2,
    "right_shoulder_pitch_joint": 0.2,
    "left_shoulder_roll_joint": 0.2,
    "right_shoulder_roll_joint": -0.2,
    "left_elbow_joint": 0.6,
    "right_elbow_joint": 0.6,
}
DEFAULT_JOINT_POS_RAD = np.array([_DEFAULT_POSE_RAD.get(n, 0.0) for n in JOINT_NAMES])
DEFAULT_JOINT_POS_RAD.flags.writeable = False
DEFAULT_BASE_HEIGHT_M = 0.757
"""Pelvis height with both feet flat on the floor in the default pose."""
FALL_HEIGHT_M = 0.45
"""A pelvis below this height has fallen (training episodes end there; deploy monitors count a fall)."""

# --- Damping mode (e-stop) used by the safety layer ------------------------------------------------------
DAMPING_KD_NMS_PER_RAD = 8.0

# --- Bodies, sites, sensors ------------------------------------------------------------------------------
ROOT_BODY = "pelvis"
TORSO_BODY = "torso_link"
FREE_JOINT = "floating_base_joint"
IMU_SITE = "imu_in_pelvis"
FEET_BODIES: tuple[str, str] = ("left_ankle_roll_link", "right_ankle_roll_link")
FEET_GEOMS: tuple[str, str] = ("left_foot_collision", "right_foot_collision")
FOOT_SITES: tuple[str, str] = ("left_foot", "right_foot")
"""Sole-centre sites of the G1 model (left, right)."""
FOOT_TOUCH_BOX_HALF_SIZE_M: tuple[float, float, float] = (0.115, 0.045, 0.02)
"""Half sizes of the box a simulated touch sensor covers under each foot (the sole's collision box)."""
FOOT_TOUCH_BOX_POS_M: tuple[float, float, float] = (0.039, 0.0, -0.025)
"""Centre of that box in the ankle-roll link's frame."""
HANDS_BODIES: tuple[str, str] = ("left_wrist_yaw_link", "right_wrist_yaw_link")
TRACKED_BODIES: tuple[str, ...] = (
    "left_hip_roll_link",
    "left_knee_link",
    "left_ankle_roll_link",
    "right_hip_roll_link",
    "right_knee_link",
    "right_ankle_roll_link",
    "torso_link",
    "left_shoulder_roll_link",
    "left_elbow_link",
    "left_wrist_yaw_link",
    "right_shoulder_roll_link",
    "right_elbow_link",
    "right_wrist_yaw_link",
)
"""Bodies whose positions and velocities (relative to the pelvis) form the planner state (BeyondMimic's set)."""
SENSOR_IMU_QUAT = "imu_quat"
SENSOR_IMU_GYRO = "imu_gyro"
SENSOR_IMU_ACCEL = "imu_accel"
LEG_JOINT_IDS: tuple[int, ...] = tuple(range(12))
WAIST_JOINT_IDS: tuple[int, ...] = (12, 13, 14)
ARM_JOINT_IDS: tuple[int, ...] = tuple(range(15, 29))
HIP_ROLL_YAW_JOINT_IDS: tuple[int, ...] = tuple(
    JOINT_NAMES.index(f"{s}_hip_{a}_joint") for s in ("left", "right") for a in ("roll", "yaw")
)
"""Hip roll and yaw of the left, then the right leg."""


def joint_index(name: str) -> int:
    """Position of a joint in SDK motor order; raises with the list of valid names."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown G1 joint {name!r}; expected one of {JOINT_NAMES}") from None


# --- Left-right symmetry (mirror about the sagittal x-z plane) --------------------------------------------
# Joint i of a mirrored robot is joint MIRROR_JOINT_INDEX[i] of the original, times MIRROR_JOINT_SIGN[i]:
# left and right swap; roll and yaw axes flip sign, pitch axes keep it (waist roll/yaw map to themselves, negated).
_FLIPPED_AXES = ("_roll_", "_yaw_")


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


MIRROR_JOINT_INDEX = np.array([JOINT_NAMES.index(_mirror_name(n)) for n in JOINT_NAMES])
MIRROR_JOINT_SIGN = np.array([-1.0 if any(a in n for a in _FLIPPED_AXES) else 1.0 for n in JOINT_NAMES])
MIRROR_TRACKED_BODY_INDEX = np.array([TRACKED_BODIES.index(_mirror_name(n)) for n in TRACKED_BODIES])
"""Body k of the mirrored robot is tracked body MIRROR_TRACKED_BODY_INDEX[k] of the original."""
for _arr in (MIRROR_JOINT_INDEX, MIRROR_JOINT_SIGN, MIRROR_TRACKED_BODY_INDEX):
    _arr.flags.writeable = False


def mirror_joint_values(values: np.ndarray) -> np.ndarray:
    """Joint-space vectors (..., J) of the mirrored robot (positions, velocities, actions, offsets)."""
    return values[..., MIRROR_JOINT_INDEX] * MIRROR_JOINT_SIGN
