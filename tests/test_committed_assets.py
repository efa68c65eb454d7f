"""Every committed model file loads the way its readers load it: TorchScript exports with ``torch.jit.load``, every
other ``.pt`` as plain data with ``weights_only=True`` and no allowance for pickled numpy arrays (the format every
trainer writes now; older files were converted)."""

import zipfile
from pathlib import Path

import pytest
import torch

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FILES = sorted(ASSETS.rglob("*.pt"))


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive holds its code (``<archive>/code/...``); a ``torch.save`` file does not."""
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def test_the_committed_files_are_found() -> None:
    names = {p.relative_to(ASSETS).as_posix() for p in FILES}
    assert {"g1_walk/actor.pt", "g1_walk/checkpoint/last.pt", "g1_planner/planner.pt"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ASSETS).as_posix())
def test_each_committed_file_loads_without_unpickling_objects(path: Path) -> None:
    if is_torchscript(path):
        module = torch.jit.load(str(path), map_location="cpu")
        assert isinstance(module, torch.jit.ScriptModule)
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)  # no safe_globals: plain data only
        assert isinstance(data, dict) and data


MODEL_FILES = sorted(ASSETS.rglob("*.safetensors"))


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.relative_to(ASSETS).as_posix())
def test_each_committed_model_file_pair_loads(path: Path) -> None:
    from policies.model_file import load_model_file

    payload = load_model_file(path)  # JSON beside safetensors, the halves from one save
    assert isinstance(payload, dict) and payload.get("format")


def test_the_committed_chunk_critic_scores_eight_actions() -> None:
    from policies.feasibility import load_feasibility_critic, load_feasibility_q

    path = ASSETS / "g1_feasibility" / "chunk8" / "critic.safetensors"
    value, meta = load_feasibility_critic(path)
    q = load_feasibility_q(path)
    assert q.action_chunk == 8 and meta["critic"]["action_chunk"] == 8
    states = torch.zeros(3, value.state_dim)
    assert q(states, torch.zeros(3, 8 * q.action_dim)).shape == (2, 3)


def test_the_committed_keepout_critic_reads_a_region_and_sees_it_ahead() -> None:
    from envs.planner.state import PLANNER_STATE_DIM
    from policies.feasibility import load_feasibility_critic

    value, meta = load_feasibility_critic(ASSETS / "g1_feasibility" / "keepout" / "critic.safetensors")
    assert meta["constraints"]["keepout_radius_m"] == 0.5 and value.state_dim == PLANNER_STATE_DIM + 2
    states = value.normalizer.offset.repeat(3, 1)  # the data's mean state: walking upright
    states[:, -2:] = torch.tensor([[0.0, 0.0], [0.45, 0.0], [5.0, 0.0]])  # inside, near the edge, far away
    v = value(states)
    assert v[0] > 0.0 and v[2] < 0.0 and v[0] > v[1] > v[2]
