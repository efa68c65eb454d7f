"""DSRL reader, validator and writer: round trip, folder lookup, the dsrl package route and every bad input."""

import hashlib
import importlib.util
import os
import re

import h5py
import numpy as np
import pytest

from envs.safe_rl import (
    DSRL_KEYS,
    DSRLData,
    DSRLDataError,
    dsrl_file_name,
    find_dsrl_file,
    get_task,
    load_dsrl,
    read_dsrl,
    validate_arrays,
    write_dsrl,
)


def tiny_arrays(episodes: int = 3, length: int = 5, obs_dim: int = 7, act_dim: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = episodes * length
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[length - 1 :: length] = 1.0
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "costs": (rng.uniform(size=n) < 0.3).astype(np.float32),
        "terminals": np.zeros(n, dtype=np.float32),
        "timeouts": timeouts,
    }


def write_raw(path, arrays: dict) -> None:
    """Write arrays as they are (no validation), to build bad files."""
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)


def digest(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def test_round_trip_is_exact_and_reading_never_modifies_the_file(tmp_path) -> None:
    arrays = tiny_arrays()
    path = write_dsrl(tmp_path / dsrl_file_name("BallRun", 80, 3), arrays, attrs={"seed": 3})
    assert path.name == "BallRun-v0-80-3.hdf5"
    before = digest(path)
    data = read_dsrl(path, task="BallRun")
    assert digest(path) == before
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(data, key), arrays[key])
        assert getattr(data, key).dtype == np.float32
    assert data.num_transitions == 15 and data.obs_dim == 7 and data.act_dim == 2
    with h5py.File(path, "r") as handle:
        assert sorted(handle.keys()) == sorted(DSRL_KEYS)
        assert int(handle.attrs["seed"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_writer_refuses_to_overwrite_and_keeps_the_old_file_on_bad_data(tmp_path) -> None:
    path = write_dsrl(tmp_path / "CarCircle-v0-100-3.hdf5", tiny_arrays(obs_dim=8))
    before = digest(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_dsrl(path, tiny_arrays(obs_dim=8, seed=1))
    bad = tiny_arrays(obs_dim=8)
    bad["rewards"][2] = np.nan
    with pytest.raises(DSRLDataError, match="rewards"):
        write_dsrl(path, bad, overwrite=True)
    assert digest(path) == before
    write_dsrl(path, tiny_arrays(obs_dim=8, seed=1), overwrite=True)
    np.testing.assert_array_equal(read_dsrl(path).rewards, tiny_arrays(obs_dim=8, seed=1)["rewards"])


def test_column_vectors_are_accepted_like_dsrl_does(tmp_path) -> None:
    arrays = tiny_arrays()
    raw = {k: (v[:, None] if v.ndim == 1 else v) for k, v in arrays.items()}
    raw["terminals"] = raw["terminals"].astype(bool)
    write_raw(tmp_path / "x.hdf5", raw)
    data = read_dsrl(tmp_path / "x.hdf5", task="BallRun")
    assert data.rewards.shape == (15,) and data.terminals.dtype == np.float32


def _bad(mutate) -> dict:
    arrays = tiny_arrays()
    mutate(arrays)
    return arrays


def _set(key, index, value):
    def mutate(arrays):
        arrays[key][index] = value

    return mutate


BAD_CASES = {
    "missing key": (lambda a: a.pop("costs"), "costs", "missing"),
    "short key": (lambda a: a.update(rewards=a["rewards"][:-1]), "rewards", "expected 15 rows"),
    "long key": (lambda a: a.update(actions=np.zeros((16, 2), np.float32)), "actions", "expected 15 rows"),
    "wrong obs dim": (lambda a: a.update(observations=np.zeros((15, 8), np.float32)), "observations", "dimension 7"),
    "wrong next obs dim": (
        lambda a: a.update(next_observations=np.zeros((15, 6), np.float32)),
        "next_observations",
        "dimension 7",
    ),
    "wrong act dim": (lambda a: a.update(actions=np.zeros((15, 3), np.float32)), "actions", "dimension 2"),
    "flat observations": (lambda a: a.update(observations=np.zeros(15, np.float32)), "observations", "shape"),
    "matrix rewards": (lambda a: a.update(rewards=np.zeros((15, 2), np.float32)), "rewards", "shape"),
    "nan": (_set("observations", (4, 1), np.nan), "observations", "NaN or inf in 1 rows .first row 4"),
    "inf": (_set("next_observations", (9, 0), np.inf), "next_observations", "NaN or inf"),
    "-inf reward": (_set("rewards", 3, -np.inf), "rewards", "NaN or inf"),
    "flag not 0/1": (_set("terminals", 2, 0.5), "terminals", "0 or 1"),
    "negative cost": (_set("costs", 6, -1.0), "costs", "costs >= 0"),
    "text dtype": (lambda a: a.update(timeouts=np.array([b"x"] * 15)), "timeouts", "numeric"),
    "empty": (lambda a: a.update({k: v[:0] for k, v in a.items()}), "observations", "at least one"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_errors_name_the_file_the_key_and_the_problem(tmp_path, case) -> None:
    mutate, key, problem = BAD_CASES[case]
    path = tmp_path / "BallRun-v0-80-3.hdf5"
    write_raw(path, _bad(mutate))
    before = digest(path)
    with pytest.raises(DSRLDataError) as info:
        read_dsrl(path, task="BallRun")
    message = str(info.value)
    assert str(path) in message and f"key '{key}'" in message, message
    assert re.search(problem, message), message
    assert digest(path) == before


def test_dimension_errors_name_the_task(tmp_path) -> None:
    path = tmp_path / "d.hdf5"
    write_raw(path, tiny_arrays(obs_dim=7))
    with pytest.raises(DSRLDataError, match=r"key 'observations': expected dimension 8 \(the task CarCircle\)"):
        read_dsrl(path, task="OfflineCarCircle-v0")


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_file_is_reported(tmp_path, cut) -> None:
    good = write_dsrl(tmp_path / "good.hdf5", tiny_arrays(episodes=40))
    raw = good.read_bytes()
    path = tmp_path / "cut.hdf5"
    path.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(DSRLDataError, match=re.escape(str(path)) + ".*truncated or corrupt"):
        read_dsrl(path)


def test_corrupt_and_missing_files_are_reported(tmp_path) -> None:
    path = tmp_path / "junk.hdf5"
    path.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DSRLDataError, match=r"junk\.hdf5: cannot open as HDF5"):
        read_dsrl(path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.hdf5"):
        read_dsrl(tmp_path / "nothing.hdf5")


def test_group_instead_of_dataset_is_reported(tmp_path) -> None:
    path = tmp_path / "g.hdf5"
    arrays = tiny_arrays()
    arrays.pop("actions")
    write_raw(path, arrays)
    with h5py.File(path, "a") as handle:
        handle.create_group("actions")
    with pytest.raises(DSRLDataError, match="key 'actions': expected an HDF5 dataset"):
        read_dsrl(path)


def test_lookup_by_task_name_in_the_dataset_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no dataset for task 'BallRun' in .*BallRun-v0-<MaxCost>"):
        load_dsrl("BallRun")
    write_dsrl(tmp_path / "BallRun-v0-80-3.hdf5", tiny_arrays())
    write_dsrl(tmp_path / "BallRunner-v0-80-3.hdf5", tiny_arrays())  # another task: must not match
    data = load_dsrl("OfflineBallRun-v0")
    assert data.source.endswith("BallRun-v0-80-3.hdf5") and data.num_transitions == 15
    write_dsrl(tmp_path / "SafetyBallRun-v0-80-940.hdf5", tiny_arrays())  # dsrl's official name
    with pytest.raises(FileNotFoundError, match="several datasets"):
        find_dsrl_file("BallRun")
    other = tmp_path / "other"
    write_dsrl(other / "SafetyBallRun-v0-80-940.hdf5", tiny_arrays(seed=2))
    assert load_dsrl("BallRun", directory=other).source.startswith(str(other))
    # the task's dimensions are checked on this route too
    write_dsrl(other / "CarCircle-v0-100-3.hdf5", tiny_arrays(obs_dim=7))
    with pytest.raises(DSRLDataError, match="dimension 8"):
        load_dsrl("CarCircle", directory=other)
    # an explicit path wins
    assert load_dsrl("BallRun", path=tmp_path / "BallRun-v0-80-3.hdf5").num_transitions == 15
    with pytest.raises(ValueError, match="backend"):
        load_dsrl("BallRun", backend="pandas")


def test_validate_arrays_and_task_table() -> None:
    data = validate_arrays(tiny_arrays(obs_dim=8), task="CarCircle")
    assert isinstance(data, DSRLData) and data.source == "<memory>"
    assert validate_arrays(tiny_arrays(obs_dim=3, act_dim=1), obs_dim=3, act_dim=1).act_dim == 1
    ball = get_task("BallRun")
    assert (ball.obs_dim, ball.act_dim, ball.max_episode_steps) == (7, 2, 100)
    assert ball.reward_scale == pytest.approx(100 / (1327.445556640625 - 26.339754104614258))
    assert ball.normalized_score(26.339754104614258, 5.0, 10.0) == pytest.approx((0.0, 0.5))
    assert get_task("CarCircle").obs_dim == 8
    with pytest.raises(KeyError, match="unknown DSRL task 'Hopper'"):
        get_task("Hopper")
    assert dsrl_file_name("CarRun", 40.0, 651) == "CarRun-v0-40-651.hdf5"
    assert dsrl_file_name("CarRun", 12.5, 2) == "CarRun-v0-12.5-2.hdf5"


_HAS_DSRL = all(importlib.util.find_spec(m) is not None for m in ("dsrl", "bullet_safety_gym", "pybullet"))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # gymnasium Box of bullet envs
@pytest.mark.skipif(not _HAS_DSRL, reason="needs the safe-RL extra (dsrl, bullet-safety-gym, pybullet)")
def test_dsrl_package_route_reads_the_official_file_name(tmp_path, monkeypatch) -> None:
    import dsrl.infos
    from dsrl import offline_env

    for task in ("BallRun", "CarCircle"):  # our table agrees with dsrl's
        info = get_task(task)
        assert dsrl.infos.DATASET_URLS[task].endswith("/" + info.file_name)
        assert dsrl.infos.MAX_EPISODE_REWARD[task] == info.reward_max
        assert dsrl.infos.MIN_EPISODE_REWARD[task] == info.reward_min
        assert dsrl.infos.DEFAULT_MAX_EPISODE_STEPS[task] == info.max_episode_steps
    monkeypatch.setattr(offline_env, "DATASET_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        load_dsrl("BallRun", backend="dsrl")
    arrays = tiny_arrays()
    write_dsrl(tmp_path / get_task("BallRun").file_name, arrays)
    data = load_dsrl("BallRun", backend="dsrl")
    np.testing.assert_array_equal(data.actions, arrays["actions"])
    write_dsrl(tmp_path / get_task("CarCircle").file_name, arrays)  # 7-d observations for an 8-d task
    with pytest.raises(DSRLDataError, match=re.escape("SafetyCarCircle-v0-100-1450.hdf5")):
        load_dsrl("CarCircle", backend="dsrl")
