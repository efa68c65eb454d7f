"""Numpy whole-tree kinematics of the G1 against MuJoCo: tracked bodies' centres of mass and their velocities."""

import mujoco
import numpy as np
import pytest

from robot.g1 import constants as C
from robot.g1.body_kinematics import BodyKinematics
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return build_g1_model()


def mujoco_bodies(model: mujoco.MjModel, data: mujoco.MjData, bodies: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """World centres of mass (``xipos``) and the linear part of ``mj_objectVelocity`` (body, world frame)."""
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_comVel(model, data)
    ids = [model.body(b).id for b in bodies]
    vel = np.zeros((len(ids), 6))
    for k, b in enumerate(ids):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, b, vel[k], 0)
    return data.xipos[ids].copy(), vel[:, 3:]


def random_states(model: mujoco.MjModel, seed: int, n: int):
    """``n`` random base poses (unnormalised quaternions too), base twists and joint states, set in ``data``."""
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    qadr, vadr = joint_qpos_adr(model), joint_dof_adr(model)
    for _ in range(n):
        quat = rng.normal(size=4) * rng.uniform(0.5, 2.0)
        data.qpos[:3], data.qpos[3:7] = rng.normal(size=3), quat
        data.qpos[qadr] = rng.uniform(C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD)
        data.qvel[:] = rng.normal(scale=3.0, size=model.nv)
        args = (data.qpos[:3], quat, data.qvel[:3], data.qvel[3:6], data.qpos[qadr], data.qvel[vadr])
        yield data, tuple(np.array(a) for a in args)


@pytest.mark.parametrize("source", ["links", "model"])
def test_tracked_bodies_equal_mujoco(model, source):
    kin = BodyKinematics.from_links() if source == "links" else BodyKinematics.from_model(model)
    assert kin.bodies == C.TRACKED_BODIES
    moving = 0.0
    for data, args in random_states(model, seed=0, n=30):
        pos, vel = kin(*args)
        true_pos, true_vel = mujoco_bodies(model, data, C.TRACKED_BODIES)
        np.testing.assert_allclose(pos, true_pos, rtol=0.0, atol=1e-9)
        np.testing.assert_allclose(vel, true_vel, rtol=0.0, atol=1e-9)
        moving = max(moving, float(np.abs(true_vel - data.qvel[:3]).max()))
    assert moving > 1.0  # joint and base rotation terms are exercised, not only the base translation


def test_every_body_and_a_changed_model_equal_mujoco():
    # moved centres of mass and link placements (what domain randomisation changes) must be read from the model
    model = build_g1_model()
    rng = np.random.default_rng(1)
    model.body_ipos[1:] += rng.normal(scale=0.02, size=(model.nbody - 1, 3))
    model.body_pos[2:] += rng.normal(scale=0.01, size=(model.nbody - 2, 3))
    everything = tuple(model.body(b).name for b in range(2, model.nbody))  # world and the pelvis excluded
    kin = BodyKinematics.from_model(model, everything)
    default = BodyKinematics.from_links(everything)
    for data, args in random_states(model, seed=2, n=10):
        pos, vel = kin(*args)
        true_pos, true_vel = mujoco_bodies(model, data, everything)
        np.testing.assert_allclose(pos, true_pos, rtol=0.0, atol=1e-9)
        np.testing.assert_allclose(vel, true_vel, rtol=0.0, atol=1e-9)
        assert np.abs(default(*args)[0] - true_pos).max() > 1e-3  # the link table alone would not match


def test_requests_outside_the_tree_are_refused():
    with pytest.raises(ValueError, match="non-root body"):
        BodyKinematics.from_links(("left_knee_link", "head_link"))
    with pytest.raises(ValueError, match="non-root body"):
        BodyKinematics.from_links((C.ROOT_BODY,))
