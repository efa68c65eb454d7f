"""The walking trainer's actor becomes a deploy policy that the runtime accepts for the G1."""

import json

import numpy as np
import pytest
import torch

from deploy.import_expert import import_expert
from deploy.policies.export import build_mlp_policy
from deploy.policies.loader import load_policy
from robot.compat import RobotSpec, check_policy_robot
from robot.g1 import constants as C
from training.locomotion.train import TrainConfig, policy_metadata


def _fake_run(folder, stem: str = "actor"):
    """A trainer run's export: ``actor.pt`` + ``actor_meta.json`` (``policy`` for runs of the earlier names)."""
    folder.mkdir(parents=True)
    cfg = TrainConfig()
    meta = policy_metadata(cfg)
    actor = torch.jit.script(build_mlp_policy(98, 29, (32,), seed=1))
    torch.jit.save(actor, str(folder / f"{stem}.pt"))
    (folder / f"{stem}_meta.json").write_text(json.dumps(meta))
    return actor, meta


@pytest.mark.parametrize(("where", "stem"), [("run/export", "actor"), ("run", "actor"), ("run", "policy")])
def test_imported_expert_loads_checks_and_matches_the_actor(tmp_path, where, stem):
    pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    actor, meta = _fake_run(tmp_path / where, stem)
    written = import_expert(tmp_path / "run", tmp_path / "deploy")
    assert sorted(p.name for p in written) == ["policy.json", "policy.onnx", "policy.pt"]
    obs = np.random.default_rng(0).normal(size=(4, 98)).astype(np.float32)
    with torch.no_grad():
        expected = actor(torch.from_numpy(obs)).numpy()
    for name in ("policy.pt", "policy.onnx"):
        policy = load_policy(tmp_path / "deploy" / name)
        m = policy.metadata
        assert m.obs_gait_period_s == meta["obs_gait_period_s"] > 0 and m.obs_dim == 98
        assert m.gain_profile == "policy" and m.kp_nm_per_rad == C.KP_NM_PER_RAD.tolist()
        check_policy_robot(m, RobotSpec.g1(), C.JOINT_NAMES)
        np.testing.assert_allclose(policy.forward(obs), expected, atol=1e-5)


def test_import_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"export/actor\.pt: missing"):
        import_expert(tmp_path, tmp_path / "out")
    _fake_run(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "actor_meta.json").read_text())
    del meta["obs_gait_period_s"]
    (tmp_path / "run" / "actor_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"missing keys \['obs_gait_period_s'\]"):
        import_expert(tmp_path / "run", tmp_path / "out", onnx=False)
