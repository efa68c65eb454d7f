"""Planner state (yaw normalisation, mirror map) and the planner dataset format (round trip, validation)."""

import json

import h5py
import numpy as np
import pytest

from envs.planner_dataset import (
    STEP_KEYS,
    PlannerDataset,
    PlannerDatasetError,
    load_planner_dataset,
    mirror_episodes,
    write_planner_dataset,
)
from envs.planner_state import (
    NUM_TRACKED_BODIES,
    PLANNER_STATE_DIM,
    planner_state,
    planner_state_mirror_map,
    planner_state_names,
)
from robot.g1 import constants as C


def _quat_z(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def _random_inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return (
        rng.normal(size=(n, 3)),
        q,
        rng.normal(size=(n, 3)),
        rng.normal(size=(n, 3)),
        rng.normal(size=(n, NUM_TRACKED_BODIES, 3)),
        rng.normal(size=(n, NUM_TRACKED_BODIES, 3)),
    )


def test_state_layout_and_names():
    assert PLANNER_STATE_DIM == 13 + 6 * 13 == len(planner_state_names())
    out = planner_state(*_random_inputs(np.random.default_rng(0), 5))
    assert out.shape == (5, PLANNER_STATE_DIM)


def test_state_is_invariant_to_world_yaw_and_horizontal_position():
    rng = np.random.default_rng(1)
    pos, quat, v, w, bp, bv = _random_inputs(rng, 4)
    ref = planner_state(pos, quat, v, w, bp, bv)
    for angle in (0.7, -2.5):
        rot = _quat_z(angle)
        c, s = np.cos(angle), np.sin(angle)
        rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        shift = np.array([3.0, -2.0, 0.0])  # horizontal only: the height is part of the state
        w0, z0 = rot[0], rot[3]
        qw, qx, qy, qz = quat.T
        quat2 = np.stack(
            [
                w0 * qw - z0 * qz,
                w0 * qx - z0 * qy,
                w0 * qy + z0 * qx,
                w0 * qz + z0 * qw,
            ],
            axis=1,
        )  # rot * quat (rot is about z)
        moved = planner_state(pos @ rz.T + shift, quat2, v @ rz.T, w, bp @ rz.T + shift, bv @ rz.T)
        np.testing.assert_allclose(moved, ref, atol=1e-9)


def test_known_values_for_an_upright_robot_facing_sideways():
    pos, quat = np.array([1.0, 2.0, 0.75]), _quat_z(np.pi / 2)  # facing world +y
    body = np.tile(pos, (NUM_TRACKED_BODIES, 1)) + np.array([0.0, 1.0, 0.0])  # 1 m ahead of the pelvis
    vel = np.tile([0.0, 0.5, 0.0], (NUM_TRACKED_BODIES, 1))  # moving forward
    s = planner_state(pos, quat, np.array([0.0, 0.5, 0.0]), np.array([0.0, 0.0, 0.3]), body, vel)
    names = planner_state_names()
    get = dict(zip(names, s, strict=True))
    assert get["root_height"] == pytest.approx(0.75)
    assert [get[f"root_rot6d_x{a}"] for a in "xyz"] == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    assert [get[f"root_lin_vel_{a}"] for a in "xyz"] == pytest.approx([0.5, 0.0, 0.0], abs=1e-12)
    assert get["root_ang_vel_z"] == pytest.approx(0.3)
    assert [get[f"torso_link_pos_{a}"] for a in "xyz"] == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)


def test_state_mirror_map_is_an_involution_and_swaps_sides():
    perm, sign = planner_state_mirror_map()
    x = np.random.default_rng(2).normal(size=(3, PLANNER_STATE_DIM))
    once = x[:, perm] * sign
    np.testing.assert_allclose(once[:, perm] * sign, x)
    names = planner_state_names()
    assert names[perm[names.index("left_knee_link_pos_x")]] == "right_knee_link_pos_x"
    assert sign[names.index("left_knee_link_pos_y")] == -1.0
    assert sign[names.index("root_ang_vel_z")] == -1.0 and sign[names.index("root_ang_vel_y")] == 1.0


def _episodes(e: int = 3, t: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(size=(e, t, *shape)).astype(np.float32) for k, (shape, _, _) in STEP_KEYS.items()}
    arrays["phase"] = rng.uniform(0.0, 1.0, size=(e, t)).astype(np.float32)
    arrays["mirrored"] = np.zeros(e, dtype=bool)
    return arrays


def test_mirroring_episodes_twice_is_the_identity():
    arrays = _episodes()
    twice = mirror_episodes(mirror_episodes(arrays))
    for k, v in arrays.items():
        np.testing.assert_allclose(twice[k], v, atol=1e-6, err_msg=k)
    once = mirror_episodes(arrays)
    assert once["mirrored"].all()
    np.testing.assert_allclose(once["command"][..., 1:], -arrays["command"][..., 1:])
    np.testing.assert_allclose(once["action"], C.mirror_joint_values(arrays["action"]), atol=1e-6)


def test_write_then_load_round_trip(tmp_path):
    arrays = _episodes()
    path = write_planner_dataset(tmp_path / "d.h5", PlannerDataset(arrays, 0.02, {"seed": 3}))
    schema = json.loads((tmp_path / "d.schema.json").read_text())
    assert set(schema["keys"]) == {*STEP_KEYS, "mirrored"} and schema["dims"]["S"] == PLANNER_STATE_DIM
    data = load_planner_dataset(path)
    assert (data.num_episodes, data.episode_steps, data.num_transitions) == (3, 5, 15)
    assert data.ctrl_dt_s == 0.02 and data.collection == {"seed": 3}
    for k, v in arrays.items():
        np.testing.assert_array_equal(data.arrays[k], v)


def _corrupt(path, key, value=None, delete=False):
    with h5py.File(path, "a") as f:
        del f[key]
        if not delete:
            f[key] = value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p, a: _corrupt(p, "action", delete=True), r"missing keys \['action'\]"),
        (lambda p, a: _corrupt(p, "joint_pos", a["joint_pos"][:, :, :28]), r"'joint_pos' has shape \(3, 5, 28\)"),
        (lambda p, a: _corrupt(p, "state", np.where(a["state"] > 2.5, np.nan, a["state"])), "'state' holds"),
        (lambda p, a: _corrupt(p, "command", a["command"].astype(np.float64)), "'command' has dtype float64"),
        (lambda p, a: _corrupt(p, "phase", a["phase"] + 1.0), r"'phase' outside \[0, 1\)"),
    ],
)
def test_load_names_the_file_key_and_problem(tmp_path, edit, message):
    arrays = _episodes()
    arrays["state"][1, 2, 3] = 3.0  # at least one value the NaN edit hits
    path = write_planner_dataset(tmp_path / "d.h5", PlannerDataset(arrays, 0.02))
    edit(path, arrays)
    with pytest.raises(PlannerDatasetError, match=message) as info:
        load_planner_dataset(path)
    assert str(path) in str(info.value)


def test_truncated_and_foreign_files_are_rejected_without_changes(tmp_path):
    path = write_planner_dataset(tmp_path / "d.h5", PlannerDataset(_episodes(), 0.02))
    blob = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(PlannerDatasetError, match="truncated or corrupt"):
        load_planner_dataset(cut)
    assert cut.read_bytes() == blob[: len(blob) // 2]
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(PlannerDatasetError, match="format=None"):
        load_planner_dataset(other)
    with pytest.raises(PlannerDatasetError, match="no such file"):
        load_planner_dataset(tmp_path / "missing.h5")
    with pytest.raises(PlannerDatasetError, match="'state' holds"):
        bad = _episodes()
        bad["state"][0, 0, 0] = np.inf
        write_planner_dataset(tmp_path / "never.h5", PlannerDataset(bad, 0.02))
    assert not (tmp_path / "never.h5").exists()
