"""The compiled G1 model equals the constants, and the description stands."""

import mujoco
import numpy as np
import pytest

from robot.actuation import pd_ctrl, set_pd_gains
from robot.g1 import constants as C
from robot.g1.links import LINKS
from robot.g1.model import (
    G1ModelConfig,
    G1ModelMismatchError,
    build_g1_model,
    build_g1_spec,
    joint_dof_adr,
    joint_name_differences,
    joint_qpos_adr,
    load_g1_spec,
)


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return build_g1_model()


def test_joint_order_is_sdk_motor_order(model):
    hinge_names = [model.joint(i).name for i in range(model.njnt) if model.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE]
    assert len(hinge_names) == 29
    assert sorted(hinge_names) == sorted(C.JOINT_NAMES)
    assert [model.actuator(i).name for i in range(model.nu)] == list(C.JOINT_NAMES)
    # Actuator i drives joint i of the SDK order.
    for i, name in enumerate(C.JOINT_NAMES):
        assert model.actuator_trnid[i, 0] == model.joint(name).id
    assert C.JOINT_NAMES[:6] == (
        "left_hip_pitch_joint",
        "left_hip_roll_joint",
        "left_hip_yaw_joint",
        "left_knee_joint",
        "left_ankle_pitch_joint",
        "left_ankle_roll_joint",
    )
    assert C.JOINT_NAMES[12:15] == ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")
    assert C.JOINT_NAMES[-1] == "right_wrist_yaw_joint"


def test_ranges_armature_gains_effort_match_constants(model):
    ids = [model.joint(n).id for n in C.JOINT_NAMES]
    np.testing.assert_allclose(model.jnt_range[ids, 0], C.JOINT_LOWER_RAD)
    np.testing.assert_allclose(model.jnt_range[ids, 1], C.JOINT_UPPER_RAD)
    assert np.all(model.jnt_limited[ids])
    np.testing.assert_allclose(model.dof_armature[joint_dof_adr(model)], C.ARMATURE_KGM2)
    np.testing.assert_allclose(-model.actuator_biasprm[:, 1], C.KP_NM_PER_RAD)
    np.testing.assert_allclose(-model.actuator_biasprm[:, 2], C.KD_NMS_PER_RAD)
    np.testing.assert_allclose(model.actuator_forcerange[:, 1], C.EFFORT_LIMIT_NM)
    np.testing.assert_allclose(model.actuator_forcerange[:, 0], -C.EFFORT_LIMIT_NM)


def test_total_mass_and_link_masses(model):
    assert model.nbody == len(LINKS) + 1
    np.testing.assert_allclose(model.body_mass.sum(), sum(link.mass_kg for link in LINKS))
    assert 33.0 < model.body_mass.sum() < 34.0  # published G1 29-DoF (no hands) is ~33.3 kg
    for link in LINKS:
        assert model.body(link.name).mass[0] == pytest.approx(link.mass_kg)


def test_gains_follow_beyondmimic_law_and_quoted_numbers():
    w = 2 * np.pi * 10.0
    np.testing.assert_allclose(C.KP_NM_PER_RAD, C.ARMATURE_KGM2 * w**2)
    np.testing.assert_allclose(C.KD_NMS_PER_RAD, 2 * 2.0 * C.ARMATURE_KGM2 * w)
    np.testing.assert_allclose(C.ACTION_SCALE_RAD, 0.25 * C.EFFORT_LIMIT_NM / C.KP_NM_PER_RAD)
    # BeyondMimic's gain law (Liao et al. 2025) gives kp ~ 40 / 99 / 28 / 14 / 17 for 7520-14, 7520-22,
    # 2x5020 linkage, 5020, 4010.
    kp = {C.JOINTS[i].motor.name: C.KP_NM_PER_RAD[i] for i in range(C.NUM_JOINTS)}
    assert kp["7520-14"] == pytest.approx(40.0, abs=0.5)
    assert kp["7520-22"] == pytest.approx(99.0, abs=0.5)
    assert kp["2x5020-linkage"] == pytest.approx(28.5, abs=0.5)
    assert kp["5020"] == pytest.approx(14.0, abs=0.5)
    assert kp["4010"] == pytest.approx(17.0, abs=0.5)
    # Reflected inertias of the published model.
    assert C.MOTOR_7520_14.armature_kgm2 == pytest.approx(0.01017752004, rel=1e-6)
    assert C.MOTOR_7520_22.armature_kgm2 == pytest.approx(0.025101925, rel=1e-6)
    assert C.MOTOR_5020.armature_kgm2 == pytest.approx(0.003609725, rel=1e-6)
    assert C.MOTOR_4010.armature_kgm2 == pytest.approx(0.00425, rel=1e-6)


def test_default_pose_within_limits_and_feet_flat_on_floor(model):
    assert np.all(C.DEFAULT_JOINT_POS_RAD > C.JOINT_LOWER_RAD)
    assert np.all(C.DEFAULT_JOINT_POS_RAD < C.JOINT_UPPER_RAD)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.qpos[joint_qpos_adr(model)], C.DEFAULT_JOINT_POS_RAD)
    for side in ("left", "right"):
        assert abs(data.site(f"{side}_foot").xpos[2]) < 2e-3
        assert data.site(f"{side}_foot").xmat.reshape(3, 3)[2, 2] > 0.999


def test_holds_default_pose_for_10_s_under_pd():
    model = build_g1_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    set_pd_gains(model, C.STAND_KP_NM_PER_RAD, C.STAND_KD_NMS_PER_RAD)
    zeros = np.zeros(C.NUM_JOINTS)
    data.ctrl[:] = pd_ctrl(C.DEFAULT_JOINT_POS_RAD, zeros, C.STAND_KP_NM_PER_RAD, C.STAND_KD_NMS_PER_RAD, zeros)
    qadr = joint_qpos_adr(model)
    steps = round(10.0 / model.opt.timestep)
    min_height = np.inf
    for _ in range(steps):
        mujoco.mj_step(model, data)
        min_height = min(min_height, data.qpos[2])
        assert np.all(np.abs(data.actuator_force) <= C.EFFORT_LIMIT_NM + 1e-9)
    assert data.time == pytest.approx(10.0)
    assert min_height > 0.72
    up_z = data.xmat[model.body("pelvis").id].reshape(3, 3)[2, 2]
    assert up_z > np.cos(np.deg2rad(5.0))
    assert np.max(np.abs(data.qpos[qadr] - C.DEFAULT_JOINT_POS_RAD)) < 0.1
    for side in ("left", "right"):
        assert abs(data.site(f"{side}_foot").xpos[2]) < 5e-3
        assert data.site(f"{side}_foot").xmat.reshape(3, 3)[2, 2] > np.cos(np.deg2rad(3.0))
    assert np.linalg.norm(data.qvel) < 0.05  # at rest


def test_policy_gains_alone_cannot_stand():
    """Documents why STAND gains exist: the 10 Hz policy gains need an active balance policy."""
    model = build_g1_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    for _ in range(int(3.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    assert data.qpos[2] < 0.5


def test_config_validation():
    with pytest.raises(ValueError, match="physics_dt_s"):
        G1ModelConfig(physics_dt_s=0.0)
    with pytest.raises(ValueError, match="floor_friction"):
        G1ModelConfig(floor_friction=-1.0)
    model = build_g1_model(G1ModelConfig(physics_dt_s=0.002))
    assert model.opt.timestep == 0.002


def test_joint_name_differences_reports_missing_extra_and_order():
    assert joint_name_differences(C.JOINT_NAMES) == []
    names = list(C.JOINT_NAMES)
    missing = names[:-1]
    assert "missing joints: ['right_wrist_yaw_joint']" in joint_name_differences(missing)[0]
    extra = [*names, "left_hand_thumb_0_joint"]
    assert "unexpected joints: ['left_hand_thumb_0_joint']" in joint_name_differences(extra)[0]
    swapped = names.copy()
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert "order differs" in joint_name_differences(swapped)[0]


def test_load_user_mjcf_round_trip_and_mismatch(tmp_path):
    spec = build_g1_spec()
    path = tmp_path / "g1_user.xml"
    path.write_text(spec.to_xml())
    loaded = load_g1_spec(path).compile()
    assert loaded.nu == 29
    assert [loaded.actuator(i).name for i in range(29)] == list(C.JOINT_NAMES)
    np.testing.assert_allclose(loaded.body_mass.sum(), build_g1_model().body_mass.sum())

    bad = build_g1_spec()
    bad.delete(bad.actuator("left_knee_joint"))
    bad.delete(bad.key("home"))
    bad.joint("left_knee_joint").name = "left_knee"
    bad_path = tmp_path / "g1_bad.xml"
    bad_path.write_text(bad.to_xml())
    with pytest.raises(G1ModelMismatchError, match=r"missing joints: \['left_knee_joint'\].*left_knee"):
        load_g1_spec(bad_path)
    with pytest.raises(FileNotFoundError):
        load_g1_spec(tmp_path / "nope.xml")


def test_mirror_map_is_an_involution_and_maps_limits_and_default_pose():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, C.NUM_JOINTS))
    assert np.array_equal(C.mirror_joint_values(C.mirror_joint_values(x)), x)
    # Mirrored joint ranges: [lo, hi] of the image joint becomes [-hi, -lo] when the axis flips.
    lo, hi = C.mirror_joint_values(C.JOINT_LOWER_RAD), C.mirror_joint_values(C.JOINT_UPPER_RAD)
    mlo, mhi = np.minimum(lo, hi), np.maximum(lo, hi)
    np.testing.assert_allclose(mlo, C.JOINT_LOWER_RAD, atol=1e-9)
    np.testing.assert_allclose(mhi, C.JOINT_UPPER_RAD, atol=1e-9)
    np.testing.assert_allclose(C.mirror_joint_values(C.DEFAULT_JOINT_POS_RAD), C.DEFAULT_JOINT_POS_RAD, atol=1e-12)
    names = C.JOINT_NAMES
    assert names[C.MIRROR_JOINT_INDEX[names.index("left_knee_joint")]] == "right_knee_joint"
    assert C.MIRROR_JOINT_SIGN[names.index("waist_yaw_joint")] == -1.0
    assert C.MIRROR_JOINT_SIGN[names.index("waist_pitch_joint")] == 1.0
