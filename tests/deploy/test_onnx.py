"""ONNX backend: export, parity with TorchScript, metadata checks, and the control loop running it."""

import json

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime", reason="needs the onnx extra")

from deploy.policies.export import build_mlp_policy, export_policy, export_policy_onnx
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata
from deploy.policies.onnx import OnnxPolicy
from deploy.safety_fsm import Mode
from robot.compat import PolicyRobotMismatchError, RobotSpec, check_policy_robot
from robot.g1 import constants as C
from tests.deploy.helpers import make_loop, manual_robot, run_manual


class NormalizedActor(nn.Module):
    """The shape of a PPO actor as deployed: observation normaliser (buffers) then an ELU MLP."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.register_buffer("mean", torch.randn(obs_dim, generator=gen))
        self.register_buffer("std", torch.rand(obs_dim, generator=gen) + 0.5)
        self.net = build_mlp_policy(obs_dim, 29, (128, 64), seed=2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net((obs - self.mean) / self.std)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    meta = PolicyMetadata.for_g1("policy", obs_gait_period_s=0.8)
    actor = NormalizedActor(meta.obs_dim)
    export_policy(actor, meta, folder / "policy.pt")
    export_policy_onnx(actor, meta, folder / "policy.onnx")
    return folder, meta, actor


def test_onnx_matches_torchscript_and_eager(exported):
    folder, meta, actor = exported
    ts, ox = load_policy(folder / "policy.pt"), load_policy(folder / "policy.onnx")
    assert isinstance(ox, OnnxPolicy) and ox.metadata == ts.metadata == meta
    obs = np.random.default_rng(0).normal(size=(64, meta.obs_dim)).astype(np.float32)
    with torch.no_grad():
        eager = actor(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(ox.forward(obs), eager, atol=1e-5, rtol=1e-5)  # dynamic batch
    np.testing.assert_allclose(ts.forward(obs), eager, atol=1e-5, rtol=1e-5)
    for row in obs[:8]:
        np.testing.assert_allclose(ox.act(row), ts.act(row), atol=1e-5)
    bad = obs[0].copy()
    bad[3] = np.nan
    assert np.all(np.isnan(ox.act(bad)))  # as TorchScript: the state machine decides what NaN means


def test_scripted_modules_export_too(tmp_path):
    meta = PolicyMetadata.for_g1()
    scripted = torch.jit.script(build_mlp_policy(meta.obs_dim, 29, (32,), seed=4))
    export_policy_onnx(scripted, meta, tmp_path / "s.onnx")
    obs = np.random.default_rng(1).normal(size=(3, meta.obs_dim)).astype(np.float32)
    with torch.no_grad():
        expected = scripted(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(load_policy(tmp_path / "s.onnx").forward(obs), expected, atol=1e-5)


def test_onnx_export_and_load_refuse_bad_input(exported, tmp_path):
    _, meta, actor = exported
    with pytest.raises(ValueError, match=r"ending in \.onnx"):
        export_policy_onnx(actor, meta, tmp_path / "p.pt")
    with pytest.raises(ValueError, match=r"expected shape \(1, 29\)"):
        export_policy_onnx(build_mlp_policy(meta.obs_dim, 12), meta, tmp_path / "p.onnx")
    onnx_path = tmp_path / "q.onnx"
    _, js = export_policy_onnx(actor, meta, onnx_path)
    js.write_text(json.dumps({**json.loads(js.read_text()), "action_clip": 2.0}))
    with pytest.raises(ValueError, match="different exports"):
        load_policy(onnx_path)
    js.unlink()
    with pytest.raises(FileNotFoundError, match="both files"):
        load_policy(onnx_path)


def test_onnx_policy_is_checked_against_the_robot(exported):
    folder, _, _ = exported
    policy = load_policy(folder / "policy.onnx")
    check_policy_robot(policy.metadata, RobotSpec.g1(), C.JOINT_NAMES)
    swapped = list(C.JOINT_NAMES)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(PolicyRobotMismatchError, match="joint"):
        check_policy_robot(policy.metadata, RobotSpec.g1(), tuple(swapped))


def test_control_loop_runs_the_onnx_policy(tmp_path):
    meta = PolicyMetadata.for_g1("stand")
    export_policy_onnx(build_mlp_policy(meta.obs_dim, 29, (32, 32), zero_output=True), meta, tmp_path / "h.onnx")
    policy = load_policy(tmp_path / "h.onnx")
    from robot.g1.model import build_g1_model

    robot = manual_robot(build_g1_model())
    loop = make_loop(robot, policy)
    modes = run_manual(loop, robot, 3.0)
    assert modes[-1] == Mode.POLICY
    assert robot.data.qpos[2] > 0.6  # still standing on the ONNX policy
    robot.close()
