"""Numpy leg kinematics of the G1 against MuJoCo: sole positions, Jacobians, both parameter sources."""

import mujoco
import numpy as np
import pytest

from robot.g1 import constants as C
from robot.g1.kinematics import LegKinematics, quat_to_matrix
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return build_g1_model()


@pytest.mark.parametrize("source", ["links", "model"])
def test_numpy_fk_and_jacobian_equal_mujoco(model, source):
    kin = LegKinematics.from_links() if source == "links" else LegKinematics.from_model(model)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    qadr, vadr = joint_qpos_adr(model), joint_dof_adr(model)
    for _ in range(20):
        q = rng.uniform(C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD)
        quat = rng.normal(size=4)
        data.qpos[:3], data.qpos[3:7] = rng.normal(size=3), quat / np.linalg.norm(quat)
        data.qpos[qadr] = q
        mujoco.mj_forward(model, data)
        rot = quat_to_matrix(data.qpos[3:7])
        np.testing.assert_allclose(rot, data.xmat[model.body(C.ROOT_BODY).id].reshape(3, 3), atol=1e-12)
        fk = kin.feet(q)
        for i, side in enumerate(("left", "right")):
            site = model.site(f"{side}_foot").id
            np.testing.assert_allclose(rot.T @ (data.site_xpos[site] - data.qpos[:3]), fk.sole_pos_m[i], atol=1e-12)
            foot_rot = data.xmat[model.body(C.FEET_BODIES[i]).id].reshape(3, 3)
            np.testing.assert_allclose(rot.T @ foot_rot, fk.sole_rot[i], atol=1e-12)
            jac = np.zeros((3, model.nv))
            mujoco.mj_jacSite(model, data, jac, None, site)
            cols = vadr[kin.joint_ids[6 * i : 6 * i + 6]]
            np.testing.assert_allclose(rot.T @ jac[:, cols], fk.jacobian[i], atol=1e-12)
    np.testing.assert_allclose(kin.imu_m, model.site(C.IMU_SITE).pos)


def test_fk_broadcasts_over_batches():
    kin = LegKinematics.from_links()
    rng = np.random.default_rng(1)
    q = rng.uniform(C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, size=(4, 5, C.NUM_JOINTS))
    fk = kin.feet(q)
    assert fk.sole_pos_m.shape == (4, 5, 2, 3) and fk.jacobian.shape == (4, 5, 2, 3, 6)
    one = kin.feet(q[2, 3])
    np.testing.assert_allclose(fk.sole_pos_m[2, 3], one.sole_pos_m, atol=1e-14)
    np.testing.assert_allclose(kin.feet(q[..., kin.joint_ids]).jacobian, fk.jacobian, atol=1e-14)
    dq = rng.normal(size=q.shape)
    # J dq is the finite-difference derivative of the sole position
    eps = 1e-6
    fd = (kin.feet(q + eps * dq).sole_pos_m - kin.feet(q - eps * dq).sole_pos_m) / (2 * eps)
    np.testing.assert_allclose(kin.sole_velocity(fk, dq), fd, atol=1e-8)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 29\) or \(\.\.\., 12\)"):
        kin.feet(np.zeros(7))
