"""training.checkpoint: plain data only, atomic writes, loads that never run code, committed checkpoints load."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import training.safe_rl.checkpoint as safe_rl_checkpoint
from robot.cli import UserError
from training.checkpoint import (
    CheckpointError,
    arrays_to_tensors,
    load_checkpoint,
    save_checkpoint,
    tensors_to_arrays,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [
    "assets/g1_walk/checkpoint/last.pt",
    "assets/g1_walk/checkpoint/weights.pt",
    "assets/g1_planner/checkpoint/last.pt",
    "assets/g1_planner/checkpoint/planner_model.pt",
    "assets/g1_planner/head/planner_model.pt",
]


class Opens:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_one_error_class_for_every_checkpoint_and_it_is_a_user_error() -> None:
    assert safe_rl_checkpoint.CheckpointError is CheckpointError
    assert issubclass(CheckpointError, UserError) and issubclass(CheckpointError, RuntimeError)


def test_a_pickled_object_is_refused_in_one_line_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "payload": Opens(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable checkpoint .*pickled io\.open") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"evil\.pt: cannot read the checkpoint .*pickled io\.open") as info:
        safe_rl_checkpoint.load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_plain_data_and_numpy_arrays_round_trip_with_their_dtypes(tmp_path: Path) -> None:
    arrays = {
        "f64": np.linspace(0.0, 1.0, 5),
        "u32": np.arange(4, dtype=np.uint32),
        "mask": np.array([True, False]),
        "nested": [np.zeros((2, 3), dtype=np.float32), (np.int64(7), 1.5)],
    }
    path = save_checkpoint({"env": arrays_to_tensors(arrays), "step": 3, "name": "x"}, tmp_path / "c.pt")
    back = load_checkpoint(path)
    env = tensors_to_arrays(back["env"])
    assert back["step"] == 3 and back["name"] == "x"
    for key in ("f64", "u32", "mask"):
        assert env[key].dtype == arrays[key].dtype and np.array_equal(env[key], arrays[key])
    assert env["nested"][0].dtype == np.float32 and env["nested"][1] == (7, 1.5)
    state = np.random.get_state()  # the legacy MT19937 tuple the locomotion trainer saves
    restored = tensors_to_arrays(load_checkpoint(save_checkpoint({"rng": arrays_to_tensors(state)}, path))["rng"])
    assert restored[0] == state[0] and np.array_equal(restored[1], state[1]) and restored[2:] == state[2:]


@dataclasses.dataclass
class Options:
    lr: float = 1e-3


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (Path("a"), "PosixPath|WindowsPath"),
        (Options(), "Options"),
        (np.zeros(2), "ndarray"),
        (np.float64(1), "float64"),
    ],
)
def test_saving_an_object_fails_before_writing_and_names_the_entry(tmp_path: Path, value, named: str) -> None:
    with pytest.raises(TypeError, match=rf"checkpoint\['config'\]\['x'\]: ({named}) is not plain data"):
        save_checkpoint({"step": 1, "config": {"x": value}}, tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []


def test_older_files_with_numpy_arrays_load_but_object_arrays_do_not(tmp_path: Path) -> None:
    torch.save({"a": np.arange(3.0), "i": np.arange(2, dtype=np.int32)}, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert np.array_equal(old["a"], [0.0, 1.0, 2.0]) and old["i"].dtype == np.int32
    torch.save({"a": np.array([Opens(tmp_path / "code_ran")], dtype=object)}, tmp_path / "objects.pt")
    with pytest.raises(CheckpointError, match=r"objects\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "objects.pt")
    assert not (tmp_path / "code_ran").exists()


@pytest.mark.parametrize("name", COMMITTED)
def test_every_committed_checkpoint_loads_without_unpickling_objects(name: str) -> None:
    data = load_checkpoint(ROOT / name)
    assert isinstance(data, dict) and data
    if name.endswith("g1_walk/checkpoint/last.pt"):  # the env state and numpy RNG key: tensors that were arrays
        env = tensors_to_arrays(data["env"])
        assert env["arrays"]["_state"].ndim == 2 and isinstance(env["arrays"]["_state"], np.ndarray)
        assert tensors_to_arrays(data["numpy_rng"])[1].dtype == np.uint32
