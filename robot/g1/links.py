"""Kinematic, inertial and collision description of the G1 links.

Link frames, joint placements, masses, centres of mass and principal inertias are the physical numbers of the
published ``g1_29dof_rev_1_0`` model. Collision shapes are our own simple primitives (capsules, spheres and a
flat box per foot so that standing gives a four-corner contact patch) chosen to cover the same volumes.

Units: metres, kilograms, kg m^2; quaternions are (w, x, y, z) relative to the parent link.
"""

from __future__ import annotations

from dataclasses import dataclass

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

_AXES: dict[str, Vec3] = {"pitch": (0.0, 1.0, 0.0), "roll": (1.0, 0.0, 0.0), "yaw": (0.0, 0.0, 1.0)}


def joint_axis(joint_name: str) -> Vec3:
    """Hinge axis of a G1 joint in its link frame, from the joint's name (pitch: y, roll: x, yaw: z)."""
    for key, axis in _AXES.items():
        if f"_{key}_" in joint_name:
            return axis
    if "knee" in joint_name or "elbow" in joint_name:
        return _AXES["pitch"]
    raise KeyError(f"no axis rule for joint {joint_name!r}")


@dataclass(frozen=True)
class LinkSpec:
    """One rigid link and the hinge joint that connects it to its parent."""

    name: str
    """Body name."""
    parent: str | None
    """Parent body name; None for the floating base."""
    joint: str | None
    """Hinge joint between parent and this link; None for the floating base."""
    pos_m: Vec3
    """Link frame origin in the parent frame."""
    quat_wxyz: Quat
    """Link frame orientation in the parent frame."""
    mass_kg: float
    """Link mass."""
    com_m: Vec3
    """Centre of mass in the link frame."""
    inertia_quat_wxyz: Quat
    """Orientation of the principal inertia axes in the link frame."""
    principal_inertia_kgm2: Vec3
    """Principal moments of inertia."""


@dataclass(frozen=True)
class CollisionShape:
    """A primitive collision geom attached to a link (left-side numbers; right side mirrors y)."""

    link_suffix: str
    """Link name without the ``left_`` / ``right_`` prefix (or the full name for central links)."""
    name_suffix: str
    """Geom name without the side prefix, ending in ``_collision``."""
    kind: str
    """``sphere``, ``capsule`` or ``box``."""
    size: tuple[float, ...]
    """MuJoCo size: radius (sphere, capsule) or half extents (box)."""
    pos_m: Vec3 = (0.0, 0.0, 0.0)
    """Centre (sphere, box)."""
    fromto_m: tuple[float, float, float, float, float, float] | None = None
    """Capsule segment end points."""


def _link(
    name: str,
    parent: str | None,
    joint: str | None,
    pos_m: Vec3,
    quat_wxyz: Quat,
    mass_kg: float,
    com_m: Vec3,
    inertia_quat_wxyz: Quat,
    principal_inertia_kgm2: Vec3,
) -> LinkSpec:
    return LinkSpec(name, parent, joint, pos_m, quat_wxyz, mass_kg, com_m, inertia_quat_wxyz, principal_inertia_kgm2)


# Depth-first order: parents always come before children.
LINKS: tuple[LinkSpec, ...] = (
    _link(
        "pelvis",
        None,
        None,
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        3.813,
        (0.0, 0.0, -0.07605),
        (1.0, 0.0, -0.000399148, 0.0),
        (0.010549, 0.0093089, 0.0079184),
    ),
    _link(
        "left_hip_pitch_link",
        "pelvis",
        "left_hip_pitch_joint",
        (0.0, 0.064452, -0.1027),
        (1.0, 0.0, 0.0, 0.0),
        1.35,
        (0.002741, 0.047791, -0.02606),
        (0.954862, 0.293964, 0.0302556, 0.030122),
        (0.00181517, 0.00153422, 0.00116212),
    ),
    _link(
        "left_hip_roll_link",
        "left_hip_pitch_link",
        "left_hip_roll_joint",
        (0.0, 0.052, -0.030465),
        (0.996179, 0.0, -0.0873386, 0.0),
        1.52,
        (0.029812, -0.001045, -0.087934),
        (0.977808, -1.97119e-05, 0.205576, -0.0403793),
        (0.00254986, 0.00241169, 0.00148755),
    ),
    _link(
        "left_hip_yaw_link",
        "left_hip_roll_link",
        "left_hip_yaw_joint",
        (0.025001, 0.0, -0.12412),
        (1.0, 0.0, 0.0, 0.0),
        1.702,
        (-0.057709, -0.010981, -0.15078),
        (0.600598, 0.15832, 0.223482, 0.751181),
        (0.00776166, 0.00717575, 0.00160139),
    ),
    _link(
        "left_knee_link",
        "left_hip_yaw_link",
        "left_knee_joint",
        (-0.078273, 0.0021489, -0.17734),
        (0.996179, 0.0, 0.0873386, 0.0),
        1.932,
        (0.005457, 0.003964, -0.12074),
        (0.923418, -0.0327699, 0.0158246, 0.382067),
        (0.0113804, 0.0112778, 0.00146458),
    ),
    _link(
        "left_ankle_pitch_link",
        "left_knee_link",
        "left_ankle_pitch_joint",
        (0.0, -9.4445e-05, -0.30001),
        (1.0, 0.0, 0.0, 0.0),
        0.074,
        (-0.007269, 0.0, 0.011137),
        (0.603053, 0.369225, 0.369225, 0.603053),
        (1.89e-05, 1.40805e-05, 6.9195e-06),
    ),
    _link(
        "left_ankle_roll_link",
        "left_ankle_pitch_link",
        "left_ankle_roll_joint",
        (0.0, 0.0, -0.017558),
        (1.0, 0.0, 0.0, 0.0),
        0.608,
        (0.026505, 0.0, -0.016425),
        (-0.000481092, 0.728482, -0.000618967, 0.685065),
        (0.00167218, 0.0016161, 0.000217621),
    ),
    _link(
        "right_hip_pitch_link",
        "pelvis",
        "right_hip_pitch_joint",
        (0.0, -0.064452, -0.1027),
        (1.0, 0.0, 0.0, 0.0),
        1.35,
        (0.002741, -0.047791, -0.02606),
        (0.954862, -0.293964, 0.0302556, -0.030122),
        (0.00181517, 0.00153422, 0.00116212),
    ),
    _link(
        "right_hip_roll_link",
        "right_hip_pitch_link",
        "right_hip_roll_joint",
        (0.0, -0.052, -0.030465),
        (0.996179, 0.0, -0.0873386, 0.0),
        1.52,
        (0.029812, 0.001045, -0.087934),
        (0.977808, 1.97119e-05, 0.205576, 0.0403793),
        (0.00254986, 0.00241169, 0.00148755),
    ),
    _link(
        "right_hip_yaw_link",
        "right_hip_roll_link",
        "right_hip_yaw_joint",
        (0.025001, 0.0, -0.12412),
        (1.0, 0.0, 0.0, 0.0),
        1.702,
        (-0.057709, 0.010981, -0.15078),
        (0.751181, 0.223482, 0.15832, 0.600598),
        (0.00776166, 0.00717575, 0.00160139),
    ),
    _link(
        "right_knee_link",
        "right_hip_yaw_link",
        "right_knee_joint",
        (-0.078273, -0.0021489, -0.17734),
        (0.996179, 0.0, 0.0873386, 0.0),
        1.932,
        (0.005457, -0.003964, -0.12074),
        (0.923439, 0.0345276, 0.0116333, -0.382012),
        (0.011374, 0.0112843, 0.00146452),
    ),
    _link(
        "right_ankle_pitch_link",
        "right_knee_link",
        "right_ankle_pitch_joint",
        (0.0, 9.4445e-05, -0.30001),
        (1.0, 0.0, 0.0, 0.0),
        0.074,
        (-0.007269, 0.0, 0.011137),
        (0.603053, 0.369225, 0.369225, 0.603053),
        (1.89e-05, 1.40805e-05, 6.9195e-06),
    ),
    _link(
        "right_ankle_roll_link",
        "right_ankle_pitch_link",
        "right_ankle_roll_joint",
        (0.0, 0.0, -0.017558),
        (1.0, 0.0, 0.0, 0.0),
        0.608,
        (0.026505, 0.0, -0.016425),
        (0.000481092, 0.728482, 0.000618967, 0.685065),
        (0.00167218, 0.0016161, 0.000217621),
    ),
    _link(
        "waist_yaw_link",
        "pelvis",
        "waist_yaw_joint",
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        0.214,
        (0.003494, 0.000233, 0.018034),
        (0.289697, 0.591001, -0.337795, 0.672821),
        (0.000163531, 0.000107714, 0.000102205),
    ),
    _link(
        "waist_roll_link",
        "waist_yaw_link",
        "waist_roll_joint",
        (-0.0039635, 0.0, 0.044),
        (1.0, 0.0, 0.0, 0.0),
        0.086,
        (0.0, 2.3e-05, 0.0),
        (0.5, 0.5, -0.5, 0.5),
        (8.245e-06, 7.079e-06, 6.339e-06),
    ),
    _link(
        "torso_link",
        "waist_roll_link",
        "waist_pitch_joint",
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        7.818,
        (0.00203158, 0.000339683, 0.184568),
        (0.999803, -6.03319e-05, 0.0198256, 0.00131986),
        (0.121847, 0.109825, 0.0273735),
    ),
    _link(
        "left_shoulder_pitch_link",
        "torso_link",
        "left_shoulder_pitch_joint",
        (0.0039563, 0.10022, 0.24778),
        (0.990264, 0.139201, 1.38722e-05, -9.86868e-05),
        0.718,
        (0.0, 0.035892, -0.011628),
        (0.654152, 0.0130458, -0.326267, 0.68225),
        (0.000465864, 0.000432842, 0.000406394),
    ),
    _link(
        "left_shoulder_roll_link",
        "left_shoulder_pitch_link",
        "left_shoulder_roll_joint",
        (0.0, 0.038, -0.013831),
        (0.990268, -0.139172, 0.0, 0.0),
        0.643,
        (-0.000227, 0.00727, -0.063243),
        (0.701256, -0.0196223, -0.00710317, 0.712604),
        (0.000691311, 0.000618011, 0.000388977),
    ),
    _link(
        "left_shoulder_yaw_link",
        "left_shoulder_roll_link",
        "left_shoulder_yaw_joint",
        (0.0, 0.00624, -0.1032),
        (1.0, 0.0, 0.0, 0.0),
        0.734,
        (0.010773, -0.002949, -0.072009),
        (0.716879, -0.0964829, -0.0679942, 0.687134),
        (0.00106187, 0.00103217, 0.000400661),
    ),
    _link(
        "left_elbow_link",
        "left_shoulder_yaw_link",
        "left_elbow_joint",
        (0.015783, 0.0, -0.080518),
        (1.0, 0.0, 0.0, 0.0),
        0.6,
        (0.064956, 0.004454, -0.010062),
        (0.541765, 0.636132, 0.388821, 0.388129),
        (0.000443035, 0.000421612, 0.000259353),
    ),
    _link(
        "left_wrist_roll_link",
        "left_elbow_link",
        "left_wrist_roll_joint",
        (0.1, 0.00188791, -0.01),
        (1.0, 0.0, 0.0, 0.0),
        0.085445,
        (0.0171394, 0.000537591, 4.8864e-07),
        (0.575338, 0.411667, -0.574906, 0.411094),
        (5.48211e-05, 4.96646e-05, 3.57798e-05),
    ),
    _link(
        "left_wrist_pitch_link",
        "left_wrist_roll_link",
        "left_wrist_pitch_joint",
        (0.038, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        0.48405,
        (0.0229999, -0.00111685, -0.00111658),
        (0.249998, 0.661363, 0.293036, 0.643608),
        (0.000430353, 0.000429873, 0.000164648),
    ),
    _link(
        "left_wrist_yaw_link",
        "left_wrist_pitch_link",
        "left_wrist_yaw_joint",
        (0.046, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        0.254576,
        (0.0708244, 0.000191745, 0.00161742),
        (0.510571, 0.526295, 0.468078, 0.493188),
        (0.000646113, 0.000559993, 0.000147566),
    ),
    _link(
        "right_shoulder_pitch_link",
        "torso_link",
        "right_shoulder_pitch_joint",
        (0.0039563, -0.10021, 0.24778),
        (0.990264, -0.139201, 1.38722e-05, 9.86868e-05),
        0.718,
        (0.0, -0.035892, -0.011628),
        (0.68225, -0.326267, 0.0130458, 0.654152),
        (0.000465864, 0.000432842, 0.000406394),
    ),
    _link(
        "right_shoulder_roll_link",
        "right_shoulder_pitch_link",
        "right_shoulder_roll_joint",
        (0.0, -0.038, -0.013831),
        (0.990268, 0.139172, 0.0, 0.0),
        0.643,
        (-0.000227, -0.00727, -0.063243),
        (0.712604, -0.00710317, -0.0196223, 0.701256),
        (0.000691311, 0.000618011, 0.000388977),
    ),
    _link(
        "right_shoulder_yaw_link",
        "right_shoulder_roll_link",
        "right_shoulder_yaw_joint",
        (0.0, -0.00624, -0.1032),
        (1.0, 0.0, 0.0, 0.0),
        0.734,
        (0.010773, 0.002949, -0.072009),
        (0.687134, -0.0679942, -0.0964829, 0.716879),
        (0.00106187, 0.00103217, 0.000400661),
    ),
    _link(
        "right_elbow_link",
        "right_shoulder_yaw_link",
        "right_elbow_joint",
        (0.015783, 0.0, -0.080518),
        (1.0, 0.0, 0.0, 0.0),
        0.6,
        (0.064956, -0.004454, -0.010062),
        (0.388129, 0.388821, 0.636132, 0.541765),
        (0.000443035, 0.000421612, 0.000259353),
    ),
    _link(
        "right_wrist_roll_link",
        "right_elbow_link",
        "right_wrist_roll_joint",
        (0.1, -0.00188791, -0.01),
        (1.0, 0.0, 0.0, 0.0),
        0.085445,
        (0.0171394, -0.000537591, 4.8864e-07),
        (0.411667, 0.575338, -0.411094, 0.574906),
        (5.48211e-05, 4.96646e-05, 3.57798e-05),
    ),
    _link(
        "right_wrist_pitch_link",
        "right_wrist_roll_link",
        "right_wrist_pitch_joint",
        (0.038, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        0.48405,
        (0.0229999, 0.00111685, -0.00111658),
        (0.643608, 0.293036, 0.661363, 0.249998),
        (0.000430353, 0.000429873, 0.000164648),
    ),
    _link(
        "right_wrist_yaw_link",
        "right_wrist_pitch_link",
        "right_wrist_yaw_joint",
        (0.046, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0),
        0.254576,
        (0.0708244, -0.000191745, 0.00161742),
        (0.493188, 0.468078, 0.526295, 0.510571),
        (0.000646113, 0.000559993, 0.000147566),
    ),
)

# Central links carry their full name; sided ones are mirrored (y -> -y) onto the right side.
COLLISION_SHAPES: tuple[CollisionShape, ...] = (
    CollisionShape("pelvis", "pelvis_collision", "sphere", (0.07,), (0.0, 0.0, -0.08)),
    CollisionShape("torso_link", "torso_collision", "capsule", (0.09,), fromto_m=(0.01, 0, 0.08, 0.01, 0, 0.2)),
    CollisionShape("torso_link", "head_collision", "sphere", (0.06,), (0.0, 0.0, 0.43)),
    CollisionShape("hip_roll_link", "hip_collision", "capsule", (0.06,), fromto_m=(0.02, 0, 0, 0.02, 0, -0.08)),
    CollisionShape("hip_yaw_link", "thigh_collision", "capsule", (0.055,), fromto_m=(0, 0, -0.03, -0.06, 0, -0.17)),
    CollisionShape("knee_link", "shin_collision", "capsule", (0.045,), fromto_m=(0.01, 0, 0, 0.01, 0, -0.15)),
    CollisionShape("knee_link", "brace_collision", "capsule", (0.03,), fromto_m=(0.01, 0, -0.2, 0.01, 0, -0.28)),
    # Sole: x from heel to toe, y +-3.6 cm, bottom 3.5 cm below the ankle-roll axis.
    CollisionShape("ankle_roll_link", "foot_collision", "box", (0.103, 0.036, 0.01), (0.039, 0.0, -0.025)),
    CollisionShape("shoulder_yaw_link", "upper_arm_collision", "capsule", (0.035,), fromto_m=(0, 0, -0.08, 0, 0, 0.05)),
    CollisionShape("elbow_link", "forearm_collision", "capsule", (0.035,), fromto_m=(-0.01, 0, -0.01, 0.08, 0, -0.01)),
    CollisionShape("wrist_pitch_link", "wrist_collision", "capsule", (0.035,), fromto_m=(-0.01, 0, 0, 0.06, 0, 0)),
    CollisionShape("wrist_yaw_link", "hand_collision", "capsule", (0.035,), fromto_m=(0.07, 0, 0, 0.15, 0.02, 0)),
)
CENTRAL_LINKS: frozenset[str] = frozenset({"pelvis", "waist_yaw_link", "waist_roll_link", "torso_link"})
IMU_SITE_POS_M: Vec3 = (0.04525, 0.0, -0.08339)
"""IMU location in the pelvis frame."""
FOOT_SITE_POS_M: Vec3 = (0.04, 0.0, -0.035)
"""Sole centre in the ankle-roll frame (bottom face of the foot box)."""
