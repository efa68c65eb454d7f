"""Planner state (yaw normalisation, mirror map) and the planner dataset format (round trip, validation)."""

import json

import h5py
import numpy as np
import pytest
import torch

from envs.planner.dataset import (
    STEP_KEYS,
    PlannerDataset,
    PlannerDatasetError,
    load_planner_dataset,
    mirror_episodes,
    phase_float32,
    write_planner_dataset,
)
from envs.planner.state import (
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


def test_phase_stays_below_one_in_float32():
    # 1 - 1e-9 is a valid float64 phase that float32 rounds up to 1.0 (the first real collection died on it)
    phase = np.array([0.0, 0.25, 1.0 - 1e-9, np.nextafter(0.5, 1.0)])
    out = phase_float32(phase)
    assert out.dtype == np.float32 and out.max() < 1.0 and out[2] == 0.0 and out[1] == np.float32(0.25)
    arrays = {"phase": np.array([[0.5 - 1e-9]], np.float32)}  # + 0.5 rounds to 1.0 in float32
    assert np.float32(arrays["phase"][0, 0]) + np.float32(0.5) == np.float32(1.0)
    from envs.planner.state import planner_state_mirror_map

    perm, _ = planner_state_mirror_map()
    full = {
        "state": np.zeros((1, 1, len(perm)), np.float32),
        "root_pos": np.zeros((1, 1, 3), np.float32),
        "root_quat": np.zeros((1, 1, 4), np.float32),
        "command": np.zeros((1, 1, 3), np.float32),
        "joint_pos": np.zeros((1, 1, 29), np.float32),
        "joint_vel": np.zeros((1, 1, 29), np.float32),
        "action": np.zeros((1, 1, 29), np.float32),
        "expert_action": np.zeros((1, 1, 29), np.float32),
        "mirrored": np.zeros(1, bool),
        **arrays,
    }
    assert mirror_episodes(full)["phase"].max() < 1.0


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


def test_merge_concatenates_episodes_and_keeps_each_inputs_metadata(tmp_path):
    from training.planner.merge import cli as merge_cli

    a, b = _episodes(e=3, seed=0), _episodes(e=2, seed=1)
    pa = write_planner_dataset(tmp_path / "a.h5", PlannerDataset(a, 0.02, {"seed": 0}))
    pb = write_planner_dataset(tmp_path / "b.h5", PlannerDataset(b, 0.02, {"seed": 1}))
    assert merge_cli([str(pa), str(pb), "--out", str(tmp_path / "ab.h5")]) == 0
    merged = load_planner_dataset(tmp_path / "ab.h5")
    assert merged.num_episodes == 5
    for k in a:
        np.testing.assert_array_equal(merged.arrays[k], np.concatenate([a[k], b[k]]), err_msg=k)
    assert [m["episodes"] for m in merged.collection["merged_from"]] == [3, 2]
    assert [m["collection"] for m in merged.collection["merged_from"]] == [{"seed": 0}, {"seed": 1}]


def test_merge_rejects_datasets_that_do_not_fit_together(tmp_path, capsys):
    from envs.planner.dataset import merge_planner_datasets
    from training.planner.merge import cli as merge_cli

    pa = write_planner_dataset(tmp_path / "a.h5", PlannerDataset(_episodes(t=5), 0.02))
    pb = write_planner_dataset(tmp_path / "b.h5", PlannerDataset(_episodes(t=6), 0.02))
    pc = write_planner_dataset(tmp_path / "c.h5", PlannerDataset(_episodes(t=5), 0.01))
    with pytest.raises(PlannerDatasetError, match="episodes of 6 steps"):
        merge_planner_datasets([pa, pb])
    with pytest.raises(PlannerDatasetError, match="control period"):
        merge_planner_datasets([pa, pc])
    assert merge_cli([str(pa), str(pb), "--out", str(tmp_path / "ab.h5")]) == 2
    assert "episodes of 6 steps" in capsys.readouterr().err and not (tmp_path / "ab.h5").exists()
    assert merge_cli([str(pa), str(pc), "--out", str(pa)]) == 2  # never overwrites an input
    assert load_planner_dataset(pa).num_episodes == 3


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


def test_estimator_from_robot_quantities_equals_the_simulators_own_kinematics():
    import dataclasses

    import mujoco

    from envs.g1.vec_env import DomainRandomizationConfig
    from envs.planner.state import PlannerStateEstimator
    from tests.envs.helpers import quiet_locomotion_config
    from training.locomotion.evaluate import Conditions
    from training.planner.collect import RecordingEnv

    cfg = dataclasses.replace(
        quiet_locomotion_config(), randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0)
    )
    env = RecordingEnv(cfg, Conditions())
    estimator = PlannerStateEstimator()  # the default G1 model, not the env's
    rng = np.random.default_rng(0)
    try:
        for _ in range(8):  # moving, so velocities are non-trivial
            env.step(torch.from_numpy(rng.uniform(-0.5, 0.5, size=(env.num_envs, 29))).float())
        recorded = env.step_record()["state"]
        qpos, qvel = env.qpos, env.qvel
        qadr, vadr = env.joint_columns
        for i in range(env.num_envs):
            d = env.env_data(i)  # a full forward pass of world i in the env's own model
            m = env.models[i]
            ids = [m.body(b).id for b in C.TRACKED_BODIES]
            vel = np.zeros((len(ids), 6))
            for k, b in enumerate(ids):
                mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, b, vel[k], 0)
            truth = planner_state(d.qpos[:3], d.qpos[3:7], d.qvel[:3], d.qvel[3:6], d.xipos[ids], vel[:, 3:])
            est = estimator(qpos[i, :3], qpos[i, 3:7], qvel[i, :3], qvel[i, 3:6], qpos[i, qadr], qvel[i, vadr])
            np.testing.assert_allclose(est, truth, atol=1e-9)
            np.testing.assert_allclose(recorded[i], truth, atol=2e-5)  # float32 record
        assert np.abs(recorded[:, 13 + 39 :]).max() > 0.05  # body velocities are not all zero
    finally:
        env.close()
    with pytest.raises(ValueError, match="joint_pos_rad: expected shape"):
        estimator(qpos[0, :3], qpos[0, 3:7], qvel[0, :3], qvel[0, 3:6], np.zeros(12), qvel[0, vadr])
    with pytest.raises(ValueError, match="base_pos_m: expected finite"):
        estimator(np.array([np.nan, 0, 0]), qpos[0, 3:7], qvel[0, :3], qvel[0, 3:6], qpos[0, qadr], qvel[0, vadr])


def _randomized(seed: int) -> PlannerDataset:
    """Three recorded episodes and their mirror images with the metadata of a randomized collection of two waves of
    three worlds: wave 1 kept the x0.8 and x1.0 robots (the x1.2 one fell), wave 2 gave the third (x1.15)."""
    arrays = _episodes(e=6, seed=seed)
    arrays["mirrored"] = np.array([False] * 3 + [True] * 3)
    physics = [[0.8, 1, 1, 0, 0, 1], [1.2, 1, 1, 0, 0, 0], [1.0, 1, 1, 0, 0, 1]]
    physics += [[1.15, 1, 1, 0, 0, 1], [0.9, 1, 1, 0, 0, 1], [1.3, 1, 1, 0, 0, 1]]
    collection = {
        "config": {"num_envs": 3},
        "episodes_kept": 3,
        "keep_falls": False,
        "physics_columns": ["mass_scale", "friction_scale", "motor_strength", "mean_abs_kp_error", "latency_s", "kept"],
        "physics": physics,
    }
    return PlannerDataset(arrays, 0.02, collection)


def test_each_episode_knows_its_physics_and_a_merge_keeps_a_mass_range_per_input(tmp_path, capsys):
    from envs.planner.dataset import episode_physics
    from training.planner.merge import cli as merge_cli

    a, b = _randomized(0), _randomized(1)
    columns, physics = episode_physics(a)
    assert columns[0] == "mass_scale" and physics[:, 0].tolist() == [0.8, 1.0, 1.15, 0.8, 1.0, 1.15]
    pa = write_planner_dataset(tmp_path / "a.h5", a)
    pb = write_planner_dataset(tmp_path / "b.h5", b)
    out = tmp_path / "ab.h5"
    assert merge_cli([str(pa), str(pb), "--out", str(out), "--mass-scale-ranges", "0", "1.1", "1.1", "9"]) == 0
    merged = load_planner_dataset(out)
    light, heavy = [0, 1, 3, 4], [2, 5]  # a's episodes below x1.1 (and their mirrors), b's from x1.1 up
    np.testing.assert_array_equal(
        merged.arrays["state"], np.concatenate([a.arrays["state"][light], b.arrays["state"][heavy]])
    )
    assert [m["mass_scale_range"] for m in merged.collection["merged_from"]] == [[0.0, 1.1], [1.1, 9.0]]
    assert (
        merge_cli([str(pa), str(pb), "--out", str(tmp_path / "x.h5"), "--mass-scale-ranges", "2", "3", "0", "9"]) == 2
    )
    assert "no episode with a mass scale in [2.0, 3.0)" in capsys.readouterr().err
    plain = write_planner_dataset(tmp_path / "plain.h5", PlannerDataset(_episodes(), 0.02))
    assert (
        merge_cli([str(plain), str(pa), "--out", str(tmp_path / "y.h5"), "--mass-scale-ranges", "0", "9", "0", "9"])
        == 2
    )
    assert "no per-world physics" in capsys.readouterr().err
    assert merge_cli([str(pa), str(pb), "--out", str(tmp_path / "z.h5"), "--mass-scale-ranges", "0", "9"]) == 2
    assert "LOW HIGH for each of the 2 inputs" in capsys.readouterr().err
