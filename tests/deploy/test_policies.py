"""Plain-MLP policy export: eager/loaded parity, metadata round trip, refusal on every robot mismatch, the loader
table and the former module paths."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from deploy.loop import ControlLoop
from deploy.policies.base import RuntimePolicy
from deploy.policies.export import build_mlp_policy, export_policy
from deploy.policies.loader import LOADERS, load_policy
from deploy.policies.metadata import PLANNER_FORMAT, POLICY_FORMAT, PolicyMetadata
from deploy.policies.torchscript import TorchScriptPolicy
from deploy.teleop import ScriptedTeleop, ScriptEvent
from robot.compat import PolicyRobotMismatchError, RobotSpec, check_policy_robot, policy_robot_differences
from robot.g1 import constants as C
from robot.sim import MujocoRobot, SimRobotConfig


def test_exported_policy_matches_eager_and_keeps_metadata(tmp_path):
    meta = PolicyMetadata.for_g1("policy", history_length=2, extra={"run": "test"})
    net = build_mlp_policy(meta.obs_dim, meta.num_joints, (64, 32), seed=3)
    pt, js = export_policy(net, meta, tmp_path / "p.pt")
    loaded = load_policy(pt)
    x = torch.randn(16, meta.obs_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), net(x), atol=1e-6, rtol=0)
        eager = net(x[:1])[0].double().clamp(-meta.action_clip, meta.action_clip).numpy()
    np.testing.assert_allclose(loaded.act(x[0].numpy()), eager, atol=1e-6)
    assert loaded.metadata == meta
    assert json.loads(js.read_text())["joint_names"] == list(C.JOINT_NAMES)
    assert meta.obs_dim == 2 * (9 + 3 * 29)
    assert meta.observation_names[9] == "joint_pos_rel/left_hip_pitch_joint"


def test_actions_are_clipped_and_nan_passes_through(tmp_path):
    meta = PolicyMetadata.for_g1(action_clip=1.0)
    net = build_mlp_policy(meta.obs_dim, meta.num_joints, (8,))
    with torch.no_grad():
        net[-1].bias.fill_(5.0)
    policy = load_policy(export_policy(net, meta, tmp_path / "p.pt")[0])
    assert np.all(policy.act(np.zeros(meta.obs_dim)) == 1.0)
    obs = np.zeros(meta.obs_dim)
    obs[0] = np.nan
    assert np.all(np.isnan(policy.act(obs)))  # the state machine, not the loader, decides what NaN means


def test_export_refuses_wrong_output_and_bad_path(tmp_path):
    meta = PolicyMetadata.for_g1()
    with pytest.raises(ValueError, match=r"expected shape \(1, 29\)"):
        export_policy(build_mlp_policy(meta.obs_dim, 12), meta, tmp_path / "p.pt")
    with pytest.raises(ValueError, match=r"ending in \.pt"):
        export_policy(build_mlp_policy(meta.obs_dim, 29), meta, tmp_path / "p.onnx")


def test_load_refuses_missing_foreign_and_mismatched_files(tmp_path):
    meta = PolicyMetadata.for_g1()
    pt, js = export_policy(build_mlp_policy(meta.obs_dim, 29), meta, tmp_path / "p.pt")
    data = json.loads(js.read_text())
    js.write_text(json.dumps({**data, "action_clip": 2.0}))
    with pytest.raises(ValueError, match="different exports"):
        load_policy(pt)
    js.write_text(json.dumps({**data, "format": "steer.other"}))
    with pytest.raises(ValueError, match=r"expected format 'steer\.policy'"):
        load_policy(pt)
    js.write_text(json.dumps({**data, "surprise": 1}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_policy(pt)
    js.unlink()
    with pytest.raises(FileNotFoundError, match=r"p\.json"):
        load_policy(pt)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kp_nm_per_rad", [1.0] * 28, "expected 29 values"),
        ("command_low", [2.0, 0.0, 0.0], "low <= high"),
        ("control_dt_s", 0.0, "control_dt_s: expected > 0"),
        ("history_length", 0, "history_length"),
    ],
)
def test_metadata_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        PolicyMetadata.for_g1(**{field: value})


def _meta_with(**changes) -> PolicyMetadata:
    return dataclasses.replace(PolicyMetadata.for_g1("policy"), **changes)


def test_matching_policy_passes_and_each_mismatch_is_listed():
    spec = RobotSpec.g1()
    assert policy_robot_differences(PolicyMetadata.for_g1("policy"), spec, C.JOINT_NAMES) == []
    assert policy_robot_differences(PolicyMetadata.for_g1("stand"), spec, C.JOINT_NAMES) == []

    names = list(C.JOINT_NAMES)
    swapped = names.copy()
    swapped[3], swapped[4] = swapped[4], swapped[3]
    diffs = policy_robot_differences(_meta_with(joint_names=swapped), spec)
    assert diffs == ["joint order differs from index 3: policy 'left_ankle_pitch_joint', robot 'left_knee_joint'"]

    meta28 = PolicyMetadata(
        names[:28],
        C.DEFAULT_JOINT_POS_RAD[:28].tolist(),
        C.KP_NM_PER_RAD[:28].tolist(),
        C.KD_NMS_PER_RAD[:28].tolist(),
        C.ACTION_SCALE_RAD[:28].tolist(),
        robot="h1",
    )
    diffs = policy_robot_differences(meta28, spec)
    assert any("policy trained for 'h1'" in d for d in diffs)
    assert any("joint count: policy has 28, robot has 29" in d for d in diffs)
    assert any("missing from the policy: ['right_wrist_yaw_joint']" in d for d in diffs)

    kp = C.KP_NM_PER_RAD.copy()
    kp[[0, 20]] *= 2.0
    pose = C.DEFAULT_JOINT_POS_RAD.copy()
    pose[3] += 0.1
    diffs = policy_robot_differences(_meta_with(kp_nm_per_rad=kp.tolist(), default_joint_pos_rad=pose.tolist()), spec)
    assert len(diffs) == 2
    assert "kp (policy, Nm/rad) differs on 2 joint(s)" in diffs[1]
    assert "left_hip_pitch_joint" in diffs[1] and "left_wrist_pitch_joint" in diffs[1]
    assert "default pose (rad) differs on 1 joint(s): left_knee_joint" in diffs[0]

    diffs = policy_robot_differences(_meta_with(gain_profile="walk"), spec)
    assert diffs == ["gain profile 'walk' unknown to the robot; expected one of ['policy', 'stand']"]
    # the stand profile name with policy gains: the numbers are checked, not just the label
    assert policy_robot_differences(_meta_with(gain_profile="stand", kp_nm_per_rad=C.KP_NM_PER_RAD.tolist()), spec)

    reversed_backend = tuple(reversed(C.JOINT_NAMES))
    assert "backend joint names differ" in policy_robot_differences(PolicyMetadata.for_g1(), spec, reversed_backend)[0]


def test_mismatch_error_lists_every_difference():
    kd = (C.KD_NMS_PER_RAD * 1.5).tolist()
    with pytest.raises(PolicyRobotMismatchError) as info:
        check_policy_robot(_meta_with(kd_nms_per_rad=kd, robot="go2"), RobotSpec.g1())
    err = info.value
    assert len(err.differences) == 2
    assert "refusing to run" in str(err) and "(2)" in str(err) and "kd (policy, Nms/rad)" in str(err)
    assert "+23 more" in str(err)  # 29 joints differ, 6 shown


def test_control_loop_refuses_a_mismatched_policy_before_any_command(tmp_path):
    kp = C.KP_NM_PER_RAD.copy()
    kp[5] = 500.0
    meta = PolicyMetadata.for_g1(kp_nm_per_rad=kp.tolist())
    policy = load_policy(export_policy(build_mlp_policy(meta.obs_dim, 29), meta, tmp_path / "p.pt")[0])
    robot = MujocoRobot(SimRobotConfig(threaded=False))
    applied_before = robot.applied_command.copy()
    with pytest.raises(PolicyRobotMismatchError, match="left_ankle_roll_joint policy 500"):
        ControlLoop(robot, policy, ScriptedTeleop([ScriptEvent(0.0)]))
    np.testing.assert_array_equal(robot.applied_command.kp_nm_per_rad, applied_before.kp_nm_per_rad)
    assert robot.safety.last_command_time_s is None  # nothing was sent


def test_loader_table_opens_every_format_and_names_the_expected_ones(tmp_path):
    assert set(LOADERS) == {(b, f) for b in ("torchscript", "onnx") for f in (POLICY_FORMAT, PLANNER_FORMAT)}
    meta = PolicyMetadata.for_g1()
    pt, js = export_policy(build_mlp_policy(meta.obs_dim, 29), meta, tmp_path / "p.pt")
    assert isinstance(load_policy(pt), TorchScriptPolicy)
    js.write_text(json.dumps({**json.loads(js.read_text()), "format": "steer.other"}))
    with pytest.raises(ValueError, match=r"expected format 'steer\.policy' or 'steer\.planner', got 'steer\.other'"):
        load_policy(pt)


def test_former_module_paths_still_import():
    from deploy import onnx_io, planner_policy, policy_io
    from deploy.policies.export import export_policy_onnx
    from deploy.policies.onnx import OnnxPolicy
    from deploy.policies.planner import PlannerPolicy, load_planner_policy

    assert policy_io.ExportedPolicy is RuntimePolicy and policy_io.load_policy is load_policy
    assert policy_io.PolicyMetadata is PolicyMetadata and policy_io.export_policy is export_policy
    assert policy_io.build_mlp_policy is build_mlp_policy
    assert onnx_io.export_policy_onnx is export_policy_onnx and onnx_io.OnnxPolicy is OnnxPolicy
    assert planner_policy.PlannerPolicy is PlannerPolicy and planner_policy.load_planner_policy is load_planner_policy
