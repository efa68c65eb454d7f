"""The two committed walking-expert policy files load with the loader meant for each, and not with the other."""

from pathlib import Path

import pytest
import torch

from deploy.policies import load_policy
from deploy.policies.metadata import POLICY_FORMAT
from training.locomotion.evaluate import load_exported_policy

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets" / "g1_walk"


def test_the_trainers_actor_loads_with_the_training_loader() -> None:
    policy, train = load_exported_policy(ASSETS / "actor.pt")  # TorchScript + config.json beside it
    assert policy is not None and train is not None


@pytest.mark.parametrize("name", ["policy.pt", "policy.onnx"])
def test_the_deploy_policy_loads_with_the_deploy_loader(name: str) -> None:
    policy = load_policy(ASSETS / "deploy" / name)  # TorchScript or ONNX + policy.json (format steer.policy)
    assert policy.metadata.format == POLICY_FORMAT and len(policy.metadata.joint_names) == 29


def test_the_trainers_actor_is_not_a_deploy_policy() -> None:
    with pytest.raises((FileNotFoundError, ValueError), match=r"actor\.json"):
        load_policy(ASSETS / "actor.pt")
    assert torch.jit.load(str(ASSETS / "actor.pt")) is not None  # plain TorchScript, no embedded deploy metadata
