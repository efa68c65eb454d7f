"""Build the G1 MuJoCo model from :mod:`robot.g1.constants` and :mod:`robot.g1.links` with ``mujoco.MjSpec``.

Actuation: one ``general`` actuator per joint (SDK order) implementing the motor-side PD law in C,

    tau = clip(ctrl - kp * q - kd * dq, -effort_limit, effort_limit),   ctrl = kp * q* + kd * dq* + tau_ff,

so a held command is applied at every physics step without Python in the loop, the damping term is integrated
implicitly by ``implicitfast``, and the effort clamp is enforced by the physics itself. ``kp``/``kd`` live in
``actuator_biasprm`` and can be changed per command (see :mod:`robot.actuation`).

Users may bring their own MJCF (e.g. a mesh model) through :func:`load_g1_spec`: its hinge joints must match
``JOINT_NAMES``; its actuators and IMU sensors are replaced by ours so every backend behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from robot.g1 import constants as C
from robot.g1.links import CENTRAL_LINKS, COLLISION_SHAPES, FOOT_SITE_POS_M, IMU_SITE_POS_M, LINKS, joint_axis
from robot.joint_order import joint_list_differences

ROBOT_CONTYPE = 2
"""Collision bit of robot geoms: they touch the world, not each other (unless self-collision is enabled)."""
WORLD_CONTYPE = 1
"""Collision bit of the floor and obstacles."""


@dataclass
class G1ModelConfig:
    """How to build the simulation model."""

    physics_dt_s: float = 0.005
    """Physics time step."""
    floor: bool = True
    """Add a flat floor plane at z = 0."""
    floor_friction: float = 1.0
    """Sliding friction coefficient of the floor (the foot boxes use the same value)."""
    self_collision: bool = False
    """Let robot links collide with each other (slower; parent-child pairs are always excluded)."""
    joint_frictionloss_nm: float = 0.0
    """Dry friction per joint; 0 keeps the solver cheap."""
    solver_iterations: int = 10
    """Newton solver iterations per step."""

    def __post_init__(self) -> None:
        if not 0.0 < self.physics_dt_s <= 0.02:
            raise ValueError(f"physics_dt_s: expected in (0, 0.02] s, got {self.physics_dt_s}")
        if self.floor_friction <= 0.0:
            raise ValueError(f"floor_friction: expected > 0, got {self.floor_friction}")
        if self.joint_frictionloss_nm < 0.0:
            raise ValueError(f"joint_frictionloss_nm: expected >= 0, got {self.joint_frictionloss_nm}")
        if self.solver_iterations < 1:
            raise ValueError(f"solver_iterations: expected >= 1, got {self.solver_iterations}")


class G1ModelMismatchError(ValueError):
    """A user MJCF whose joints do not match the G1 description."""


def _mirror(v: tuple[float, ...]) -> list[float]:
    """Reflect points given in left-side coordinates onto the right side (y -> -y)."""
    out = list(v)
    for i in range(1, len(out), 3):
        out[i] = -out[i]
    return out


def _add_collision_geoms(bodies: dict[str, mujoco.MjsBody], cfg: G1ModelConfig) -> None:
    kinds = {"sphere": mujoco.mjtGeom.mjGEOM_SPHERE, "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE}
    kinds["box"] = mujoco.mjtGeom.mjGEOM_BOX
    conaffinity = WORLD_CONTYPE | (ROBOT_CONTYPE if cfg.self_collision else 0)
    for shape in COLLISION_SHAPES:
        sides = [("", False)] if shape.link_suffix in CENTRAL_LINKS else [("left_", False), ("right_", True)]
        for prefix, mirrored in sides:
            geom = bodies[prefix + shape.link_suffix].add_geom()
            geom.name = prefix + shape.name_suffix
            geom.type = kinds[shape.kind]
            geom.size[: len(shape.size)] = shape.size
            geom.contype = ROBOT_CONTYPE
            geom.conaffinity = conaffinity
            geom.condim = 3
            geom.friction[0] = cfg.floor_friction
            geom.density = 0.0  # links carry explicit inertials
            geom.rgba = (0.7, 0.7, 0.75, 1.0)
            if shape.fromto_m is not None:
                geom.fromto = _mirror(shape.fromto_m) if mirrored else list(shape.fromto_m)
            else:
                geom.pos = _mirror(shape.pos_m) if mirrored else list(shape.pos_m)


def add_pd_actuators(spec: mujoco.MjSpec) -> None:
    """One PD actuator per joint in SDK order (see module docstring for the law)."""
    for i, name in enumerate(C.JOINT_NAMES):
        act = spec.add_actuator()
        act.name = name
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = 1.0
        act.biasprm[:3] = (0.0, -C.KP_NM_PER_RAD[i], -C.KD_NMS_PER_RAD[i])
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = (-C.EFFORT_LIMIT_NM[i], C.EFFORT_LIMIT_NM[i])


def add_imu(spec: mujoco.MjSpec) -> None:
    """IMU site on the pelvis (if missing) and its quaternion, gyro and accelerometer sensors."""
    pelvis = spec.body(C.ROOT_BODY)
    if spec.site(C.IMU_SITE) is None:
        site = pelvis.add_site()
        site.name = C.IMU_SITE
        site.pos = IMU_SITE_POS_M
    specs = (
        (C.SENSOR_IMU_QUAT, mujoco.mjtSensor.mjSENS_FRAMEQUAT),
        (C.SENSOR_IMU_GYRO, mujoco.mjtSensor.mjSENS_GYRO),
        (C.SENSOR_IMU_ACCEL, mujoco.mjtSensor.mjSENS_ACCELEROMETER),
    )
    for name, kind in specs:
        sensor = spec.add_sensor()
        sensor.name = name
        sensor.type = kind
        sensor.objtype = mujoco.mjtObj.mjOBJ_SITE
        sensor.objname = C.IMU_SITE


def _configure_world(spec: mujoco.MjSpec, cfg: G1ModelConfig) -> None:
    spec.option.timestep = cfg.physics_dt_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.iterations = cfg.solver_iterations
    spec.option.ls_iterations = 5
    if cfg.floor:
        floor = spec.worldbody.add_geom()
        floor.name = "floor"
        floor.type = mujoco.mjtGeom.mjGEOM_PLANE
        floor.size = (0.0, 0.0, 0.05)
        floor.contype = WORLD_CONTYPE
        floor.conaffinity = WORLD_CONTYPE | ROBOT_CONTYPE
        floor.friction[0] = cfg.floor_friction
        floor.rgba = (0.35, 0.4, 0.45, 1.0)
    light = spec.worldbody.add_light()
    light.pos = (0.0, 0.0, 3.0)
    light.dir = (0.0, 0.0, -1.0)


def _add_home_keyframe(spec: mujoco.MjSpec) -> None:
    key = spec.add_key()
    key.name = "home"
    key.qpos = [0.0, 0.0, C.DEFAULT_BASE_HEIGHT_M, 1.0, 0.0, 0.0, 0.0, *C.DEFAULT_JOINT_POS_RAD.tolist()]
    key.ctrl = (C.KP_NM_PER_RAD * C.DEFAULT_JOINT_POS_RAD).tolist()


def build_g1_spec(cfg: G1ModelConfig | None = None) -> mujoco.MjSpec:
    """The G1 with floor, PD actuators, IMU sensors and a ``home`` keyframe, as an editable spec."""
    cfg = cfg or G1ModelConfig()
    spec = mujoco.MjSpec()
    spec.modelname = "steer_g1_29dof"
    spec.compiler.autolimits = True
    spec.compiler.degree = False
    _configure_world(spec, cfg)
    joint_by_name = {j.name: (i, j) for i, j in enumerate(C.JOINTS)}
    bodies: dict[str, mujoco.MjsBody] = {}
    for link in LINKS:
        parent = spec.worldbody if link.parent is None else bodies[link.parent]
        body = parent.add_body()
        body.name = link.name
        body.pos = link.pos_m
        body.quat = link.quat_wxyz
        body.mass = link.mass_kg
        body.ipos = link.com_m
        body.iquat = link.inertia_quat_wxyz
        body.inertia = link.principal_inertia_kgm2
        body.explicitinertial = True
        bodies[link.name] = body
        if link.joint is None:
            free = body.add_freejoint()
            free.name = C.FREE_JOINT
            continue
        i, spec_j = joint_by_name[link.joint]
        joint = body.add_joint()
        joint.name = link.joint
        joint.type = mujoco.mjtJoint.mjJNT_HINGE
        joint.axis = joint_axis(link.joint)
        joint.range = (spec_j.lower_rad, spec_j.upper_rad)
        joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        joint.armature = float(C.ARMATURE_KGM2[i])
        joint.frictionloss = cfg.joint_frictionloss_nm
    _add_collision_geoms(bodies, cfg)
    for side, body_name in zip(("left", "right"), C.FEET_BODIES, strict=True):
        site = bodies[body_name].add_site()
        site.name = f"{side}_foot"
        site.pos = FOOT_SITE_POS_M
    add_pd_actuators(spec)
    add_imu(spec)
    _add_home_keyframe(spec)
    return spec


def build_g1_model(cfg: G1ModelConfig | None = None) -> mujoco.MjModel:
    """Compiled G1 model (see :func:`build_g1_spec`)."""
    return build_g1_spec(cfg).compile()


def joint_name_differences(found: list[str] | tuple[str, ...]) -> list[str]:
    """Human-readable differences between a model's hinge joints and ``JOINT_NAMES`` (empty when equal)."""
    expected = list(C.JOINT_NAMES)
    found = list(found)
    diff = joint_list_differences(found, expected)
    problems = []
    if diff.missing:
        problems.append(f"missing joints: {diff.missing}")
    if diff.extra:
        problems.append(f"unexpected joints: {diff.extra}")
    if (first := diff.first_out_of_order) is not None:
        problems.append(
            f"joint order differs from SDK motor order at index {first}: {found[first]!r} != {expected[first]!r}"
        )
    return problems


def load_g1_spec(path: str | Path, cfg: G1ModelConfig | None = None) -> mujoco.MjSpec:
    """Load a user G1 MJCF, check its joints, and give it our actuators, IMU sensors and timestep.

    Joint order in the file may differ from SDK order (actuators are added in SDK order, which is what
    every backend indexes by); names must match exactly. Raises :class:`G1ModelMismatchError` listing the
    differences.
    """
    cfg = cfg or G1ModelConfig()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"G1 MJCF not found at {path}")
    spec = mujoco.MjSpec.from_file(str(path))
    hinges = [j.name for j in spec.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
    problems = [p for p in joint_name_differences(sorted(hinges)) if "order" not in p]
    if problems:
        raise G1ModelMismatchError(f"{path} does not describe the G1 29-DoF: " + "; ".join(problems))
    if spec.body(C.ROOT_BODY) is None:
        raise G1ModelMismatchError(f"{path}: expected a root body named {C.ROOT_BODY!r}")
    for act in list(spec.actuators):
        spec.delete(act)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for key in list(spec.keys):
        spec.delete(key)  # their ctrl would mean something else under our actuators
    spec.option.timestep = cfg.physics_dt_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    for joint in spec.joints:
        if joint.type == mujoco.mjtJoint.mjJNT_HINGE:
            joint.armature = float(C.ARMATURE_KGM2[C.JOINT_NAMES.index(joint.name)])
    add_pd_actuators(spec)
    add_imu(spec)
    return spec


def joint_qpos_adr(model: mujoco.MjModel) -> np.ndarray:
    """qpos addresses of the 29 joints in SDK order, (29,) int."""
    return np.array([model.jnt_qposadr[model.joint(n).id] for n in C.JOINT_NAMES])


def joint_dof_adr(model: mujoco.MjModel) -> np.ndarray:
    """qvel addresses of the 29 joints in SDK order, (29,) int."""
    return np.array([model.jnt_dofadr[model.joint(n).id] for n in C.JOINT_NAMES])
