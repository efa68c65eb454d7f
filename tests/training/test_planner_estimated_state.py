"""The estimator as the planner's state source: close to the simulator's truth while walking, restarted where an
episode begins, and the pose a navigation goal is expressed from."""

import dataclasses

import numpy as np
import pytest
import torch

from envs.g1.observations import yaw_from_quat
from envs.g1.vec_env import DomainRandomizationConfig
from envs.locomotion.config import CommandConfig
from envs.planner.runtime import gate_offsets
from tests.training.helpers import export_tiny_planner
from training.locomotion.evaluate import DEFAULT_EXPERT_POLICY, Conditions, load_exported_policy
from training.planner.collect import RecordingEnv
from training.planner.control import STATE_SOURCES, GroundTruthStates, expert_task
from training.planner.estimated_state import EstimatedStates, planar_pose
from training.planner.evaluate import PlannerEvalConfig, load_planner
from training.planner.evaluate_sources import run_state_sources
from training.planner.navigation import navigate

LIN_VEL = slice(7, 10)  # root linear velocity in the heading frame (envs.planner.state)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny_planner(tmp_path_factory.mktemp("planner"))


def _walking_env(n: int, episode_length_s: float = 20.0, seed: int = 3) -> RecordingEnv:
    train = expert_task(DEFAULT_EXPERT_POLICY)
    commands = CommandConfig(
        vx_range_m_per_s=(0.4, 0.8),
        vy_range_m_per_s=(-0.2, 0.2),
        yaw_rate_range_rad_per_s=(-0.5, 0.5),
        resample_interval_s=(10.0, 10.0),
        standing_fraction=0.0,
        curriculum_initial_scale=1.0,
        curriculum_step=0.0,
    )
    cfg = dataclasses.replace(
        train,
        num_envs=n,
        num_threads=1,
        randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0),
        episode_length_s=episode_length_s,
        commands=commands,
        seed=seed,
    )
    return RecordingEnv(cfg, Conditions())


def _walk(env: RecordingEnv, source: EstimatedStates, steps: int) -> dict[str, np.ndarray]:
    """The expert walks ``steps`` control steps; per step (T, N, ...) the truth and the estimator's view."""
    policy, _ = load_exported_policy(DEFAULT_EXPERT_POLICY)
    obs = env.get_observations()["policy"]
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("truth", "est", "xy", "xy_est", "yaw", "yaw_est", "fresh")}
    for _ in range(steps):
        fresh = env.episode_length == 0
        out["fresh"].append(fresh.copy())
        out["est"].append(source(env, fresh))
        out["truth"].append(env.planner_states())
        xy, yaw = source.base_pose()
        out["xy_est"].append(xy)
        out["yaw_est"].append(yaw)
        out["xy"].append(env.qpos[:, :2].copy())
        out["yaw"].append(yaw_from_quat(env.qpos[:, 3:7]))
        with torch.inference_mode():
            obs = env.step(policy(obs))[0]["policy"]
    return {k: np.stack(v) for k, v in out.items()}


def test_estimated_planner_states_follow_the_truth_while_walking():
    env = _walking_env(3)
    try:
        r = _walk(env, EstimatedStates(env, seed=0), steps=100)  # 2 s at 50 Hz
    finally:
        env.close()
    assert r["truth"][-1, :, 7].mean() > 0.3  # the robots walk forward
    vel_err = r["est"][:, :, LIN_VEL] - r["truth"][:, :, LIN_VEL]  # (T, N, 3)
    rms = np.sqrt((vel_err**2).mean(axis=(0, 1)))
    assert np.all(rms < 0.15), f"base velocity RMS error {rms} m/s"
    drift = np.linalg.norm(r["xy_est"] - r["xy"], axis=2)  # (T, N)
    assert drift.max() < 0.1, f"planar position drift {drift.max():.3f} m in 2 s"
    assert np.abs(r["yaw_est"] - r["yaw"]).max() < 0.05
    height_err = r["est"][:, :, 0] - r["truth"][:, :, 0]
    assert np.sqrt((height_err**2).mean()) < 0.02
    # the state is the estimator's (noisy sensors, filtered velocity), not the simulator's copied
    assert np.abs(vel_err).max() > 1e-3


def test_a_world_restarts_where_its_episode_begins():
    env = _walking_env(2, episode_length_s=1.0)  # every world times out (and resets) after 50 steps
    source = EstimatedStates(env, seed=0)
    try:
        r = _walk(env, source, steps=60)
        # a restart of world 0 only: it starts again at the true pose, world 1 keeps its estimate
        xy_before, _ = source.base_pose()
        fresh = np.array([True, False])
        source(env, fresh)
        xy_after, _ = source.base_pose()
    finally:
        env.close()
    t = int(np.flatnonzero(r["fresh"][1:, 0])[0]) + 1  # the first step of the second episode
    assert t == 50 and r["fresh"][t].all()
    assert np.linalg.norm(r["xy"][t - 1], axis=1).min() > 0.2  # they had walked away from the start
    np.testing.assert_allclose(r["xy_est"][t], r["xy"][t], atol=1e-9)  # restarted at the reset pose...
    assert np.abs(r["est"][t, :, LIN_VEL]).max() < 0.05  # ...at rest
    np.testing.assert_allclose(xy_after[0], env.qpos[0, :2], atol=1e-9)
    assert np.linalg.norm(xy_after[1] - env.qpos[1, :2]) > 1e-6  # not reset to the truth
    assert np.linalg.norm(xy_after[1] - xy_before[1]) > 1e-6  # it went on filtering the last step
    # world 0's sensors restarted too (heading error back to zero), world 1's drift on since its own restart
    assert source.sensors[0].heading_error_rad == 0.0 and source.sensors[1].heading_error_rad != 0.0


def test_sources_are_registered_and_seeded_per_world():
    env = _walking_env(2)
    try:
        source = STATE_SOURCES["estimator"](env)
        assert source.name == "estimator" and isinstance(source, EstimatedStates)
        biases = [s.gyro_bias_rad_per_s for s in source.sensors]
        assert not np.allclose(biases[0], biases[1])  # each world has its own sensor noise
        again = EstimatedStates(env)
        np.testing.assert_array_equal(again.sensors[1].gyro_bias_rad_per_s, biases[1])  # from the env's seed
        xy, yaw = planar_pose(env, GroundTruthStates())  # a source without a pose: the simulator's
        np.testing.assert_array_equal(xy, env.qpos[:, :2])
        np.testing.assert_array_equal(yaw, yaw_from_quat(env.qpos[:, 3:7]))
    finally:
        env.close()


class _Shifted(GroundTruthStates):
    """Ground-truth states but a pose 1 m off along world x (an estimator that has drifted)."""

    name = "shifted"

    def __init__(self, env: RecordingEnv) -> None:
        self.env = env

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.env.qpos[:, :2] + np.array([1.0, 0.0]), yaw_from_quat(self.env.qpos[:, 3:7])


def test_the_navigation_goal_is_expressed_from_the_sources_pose(exported, monkeypatch):
    module, meta = load_planner(exported)
    monkeypatch.setitem(STATE_SOURCES, "shifted", _Shifted)
    o = gate_offsets(meta["cost_terms"])["waypoint"]
    seen: dict[str, torch.Tensor] = {}

    def goals_seen(source: str) -> tuple[dict, torch.Tensor]:
        def spy(states, actions, params, noise, prev):
            seen.setdefault(source, params[:, o + 1 : o + 3].clone())  # the first plan's goal in the plan frame
            return module(states, actions, params, noise, prev)

        cfg = PlannerEvalConfig(
            planner=exported,
            episodes=2,
            waypoint_time_s=0.1,
            num_threads=1,
            state_source=source,
            goal_lookahead_m=None,  # the goal itself (a carrot would move with the pose)
        )
        return navigate(cfg, spy, meta, "waypoint"), seen[source]

    row, truth = goals_seen("ground_truth")
    _, shifted = goals_seen("shifted")
    assert row["state_source"] == "ground_truth"
    # a reset robot faces world x (yaw 0), so a pose 1 m further along x sees the goal 1 m closer along x
    torch.testing.assert_close(shifted - truth, torch.tensor([[-1.0, 0.0], [-1.0, 0.0]]), atol=1e-5, rtol=0)
    row, _ = goals_seen("estimator")
    assert row["state_source"] == "estimator" and row["mean_final_distance_m"] > 1.5


def test_each_state_source_runs_every_row_and_the_expert_once(exported):
    cfg = PlannerEvalConfig(
        planner=exported,
        rows=("expert", "joystick", "waypoint"),
        conditions=("nominal",),
        episodes=2,
        episode_length_s=0.2,
        command_interval_s=0.1,
        waypoint_time_s=0.1,
        num_threads=1,
    )
    rows = run_state_sources(cfg, ("ground_truth", "estimator"))
    assert [(r["name"], r["state_source"]) for r in rows] == [
        ("expert", "ground_truth"),
        ("joystick", "ground_truth"),
        ("waypoint", "ground_truth"),
        ("joystick", "estimator"),
        ("waypoint", "estimator"),
    ]
    expert = rows[0]["lin_err_m_per_s"]
    for r in (rows[1], rows[3]):
        assert r["expert_ratio"] == pytest.approx(r["lin_err_m_per_s"] / expert)
    assert rows[1]["lin_err_m_per_s"] != rows[3]["lin_err_m_per_s"]  # the estimator's states reach the planner
