"""Closed-loop planner evaluation: histories fed right, every row runs, obstacle contacts are seen."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from deploy.export_planner import ExportPlannerConfig
from deploy.export_planner import main as export_main
from envs.tasks.obstacles import BoxObstacle
from tests.training.helpers import (
    export_tiny_keepout_planner,
    export_tiny_planner,
    tiny_critic_file,
    tiny_planner_model,
)
from training.locomotion.evaluate import Conditions
from training.planner.collect import RecordingEnv
from training.planner.evaluate import (
    DEFAULT_ROWS,
    STATE_SOURCES,
    ObstacleRecordingEnv,
    PlannerController,
    PlannerEvalConfig,
    expert_task,
    format_table,
    load_planner,
    run,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny_planner(tmp_path_factory.mktemp("planner"))


def _env(n: int = 2, cls=RecordingEnv):
    import dataclasses

    from envs.g1.vec_env import DomainRandomizationConfig

    train = expert_task(PlannerEvalConfig().expert)
    cfg = dataclasses.replace(
        train, num_envs=n, num_threads=1, randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0)
    )
    return cls(cfg, Conditions())


def test_controller_feeds_the_last_states_and_the_actions_before_the_current_one(exported):
    module, meta = load_planner(exported)
    seen = []

    def spy(states, actions, params, noise, prev):
        seen.append((states.clone(), actions.clone()))
        return module(states, actions, params, noise, prev)

    env = _env()
    ctrl = PlannerController(spy, meta, lambda e: None, seed=0)
    ctrl.bind(env)
    obs = env.get_observations()["policy"]
    executed, recorded = [], []
    try:
        for _ in range(6):
            recorded.append(torch.from_numpy(env.step_record()["state"]))
            a = ctrl(obs)
            executed.append(a)
            obs = env.step(a)[0]["policy"]
    finally:
        env.close()
    states0, actions0 = seen[0]
    assert torch.equal(states0, recorded[0][:, None].expand(-1, 4, -1)) and not actions0.any()  # fresh start
    states5, actions5 = seen[5]
    assert torch.equal(states5, torch.stack(recorded[2:6], dim=1))
    assert torch.equal(actions5, torch.stack(executed[1:5], dim=1))  # a_{t-4} .. a_{t-1}


def test_every_row_runs_and_reports(exported, tmp_path):
    cfg = PlannerEvalConfig(
        planner=exported,
        episodes=2,
        episode_length_s=0.2,
        command_interval_s=0.1,
        waypoint_time_s=0.1,
        num_threads=1,
        conditions=("nominal",),
        json_out=tmp_path / "rows.json",
    )
    rows = run(cfg)
    assert [r["name"] for r in rows] == list(DEFAULT_ROWS)
    assert {r["condition"] for r in rows} == {"nominal"}
    for r in rows:
        if "lin_err_m_per_s" in r:
            assert np.isfinite(r["lin_err_m_per_s"]) and 0.0 <= r["fall_rate"] <= 1.0
        else:
            assert r["success_rate"] == 0.0 and r["mean_final_distance_m"] > 1.5  # 0.1 s is too short to arrive
    table = format_table(rows)
    assert "| joystick |" in table and "| obstacles_off |" in table
    assert (tmp_path / "rows.json").exists()


def test_sim_to_sim_rows_run_under_each_condition_with_the_expert_beside(exported, tmp_path):
    cfg = PlannerEvalConfig(
        planner=exported,
        rows=("expert", "joystick", "unguided", "waypoint"),
        conditions=("nominal", "mass x1.2", "physics 0.002 s x 10"),
        episodes=2,
        episode_length_s=0.2,
        command_interval_s=0.1,
        waypoint_time_s=0.1,
        num_threads=1,
        seed=5,
        json_out=tmp_path / "rows.json",
    )
    rows = run(cfg)
    got = [(r["condition"], r["name"]) for r in rows]
    assert got == [
        ("nominal", "expert"),
        ("nominal", "joystick"),
        ("nominal", "unguided"),
        ("nominal", "waypoint"),
        ("mass x1.2", "expert"),
        ("mass x1.2", "joystick"),
        ("mass x1.2", "waypoint"),  # unguided runs on the nominal robot only
        ("physics 0.002 s x 10", "expert"),
        ("physics 0.002 s x 10", "joystick"),
        ("physics 0.002 s x 10", "waypoint"),
    ]
    by = {(r["condition"], r["name"]): r for r in rows}
    for c in cfg.conditions:
        j, e = by[(c, "joystick")], by[(c, "expert")]
        assert j["expert_ratio"] == pytest.approx(j["lin_err_m_per_s"] / e["lin_err_m_per_s"])
        assert j["relative_lin_err"] == pytest.approx(j["lin_err_m_per_s"] / j["mean_command_speed_m_per_s"])
        assert j["mean_command_speed_m_per_s"] == e["mean_command_speed_m_per_s"]  # same seeds, same commands
    # the conditions reach the physics: the same expert and commands track differently on a heavier robot
    assert by[("mass x1.2", "expert")]["lin_err_m_per_s"] != by[("nominal", "expert")]["lin_err_m_per_s"]
    assert by[("physics 0.002 s x 10", "expert")]["lin_err_m_per_s"] != by[("nominal", "expert")]["lin_err_m_per_s"]
    payload = json.loads((tmp_path / "rows.json").read_text())
    assert payload["state_source"] == "estimator" and payload["seed"] == 5  # the default: what a real G1 allows
    assert all(r["state_source"] == ("ground_truth" if r["name"] == "expert" else "estimator") for r in payload["rows"])
    s = payload["summary"]
    assert s["joystick_max_expert_ratio"] == max(by[(c, "joystick")]["expert_ratio"] for c in cfg.conditions)
    assert s["waypoint_min_success_rate"] == 0.0
    other = run(dataclasses.replace(cfg, seed=6, conditions=("nominal",), rows=("expert",), json_out=None))
    assert other[0]["mean_command_speed_m_per_s"] != by[("nominal", "expert")]["mean_command_speed_m_per_s"]
    with pytest.raises(ValueError, match="conditions: unknown"):
        PlannerEvalConfig(conditions=("mass x2",))


def test_a_registered_state_source_feeds_the_planner(exported, monkeypatch):
    module, meta = load_planner(exported)
    calls = []

    class Offset:
        name = "offset"

        def __call__(self, env, fresh):
            calls.append(fresh.copy())
            return env.planner_states() + 1.0

    monkeypatch.setitem(STATE_SOURCES, "offset", lambda env: Offset())
    seen = []

    def spy(states, actions, params, noise, prev):
        seen.append(states.clone())
        return module(states, actions, params, noise, prev)

    env = _env()
    ctrl = PlannerController(spy, meta, lambda e: None, seed=0, state_source="offset")
    ctrl.bind(env)
    try:
        truth = torch.from_numpy(env.planner_states()).float()
        a = ctrl(env.get_observations()["policy"])
        env.step(a)
        ctrl(env.get_observations()["policy"])
    finally:
        env.close()
    torch.testing.assert_close(seen[0][:, -1], truth + 1.0)
    assert calls[0].all() and not calls[1].any()  # fresh worlds at the start only
    assert PlannerEvalConfig(state_source="offset").state_source == "offset"
    with pytest.raises(ValueError, match="state_source"):
        PlannerController(spy, meta, lambda e: None, seed=0, state_source="kalman_unregistered")


def test_carrot_keeps_far_goals_at_the_lookahead_and_near_goals_in_place():
    from training.planner.navigation import carrot

    xy = np.array([[1.0, 1.0], [0.0, 0.0]])
    goals = np.array([[1.0, 11.0], [1.0, 2.0]])  # 10 m away, sqrt(5) m away
    np.testing.assert_allclose(carrot(goals, xy, 3.0), [[1.0, 4.0], [1.0, 2.0]])
    np.testing.assert_allclose(carrot(goals[:1], goals[:1], 3.0), goals[:1])  # at the goal: the goal
    # With a 2.5 m floor the sqrt(5) m goal is passed through: the target lies 2.5 m along the line.
    np.testing.assert_allclose(carrot(goals, xy, 3.0, 2.5), [[1.0, 4.0], np.array([1.0, 2.0]) * 2.5 / math.sqrt(5)])
    with pytest.raises(ValueError, match="goal_min_lookahead_m"):
        PlannerEvalConfig(goal_lookahead_m=1.0, goal_min_lookahead_m=1.5)
    with pytest.raises(ValueError, match="goal_lookahead_m"):
        PlannerEvalConfig(goal_lookahead_m=0.0)


def test_obstacle_contact_is_detected():
    env = _env(cls=ObstacleRecordingEnv)
    try:
        xy = env.qpos[:, :2]
        far = BoxObstacle(center_xy_m=(float(xy[0, 0]) + 3.0, float(xy[0, 1])), half_extents_xy_m=(0.1, 0.1))
        onto = BoxObstacle(center_xy_m=(float(xy[1, 0]) + 0.2, float(xy[1, 1])), half_extents_xy_m=(0.1, 0.1))
        env.place_obstacles([far, onto])
        for _ in range(3):
            env.step(torch.zeros(2, 29))
        touching = env.touching_obstacle()
        assert not touching[0] and touching[1]
        with pytest.raises(ValueError, match="one box per world"):
            env.place_obstacles([far])
    finally:
        env.close()


def test_missing_planner_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="to exist"):
        load_planner(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="unknown"):
        PlannerEvalConfig(rows=("dance",))


@pytest.mark.slow
def test_pipeline_collect_train_export_evaluate_on_simulated_data(tmp_path):
    """Real rollouts (a standing expert), the planner trainer, the export and the closed loop fit together."""
    import dataclasses

    from envs.planner.dataset import load_planner_dataset
    from tests.training.test_locomotion_data import export_policy
    from tests.training.test_planner_train import _cfg
    from training.planner.collect import CollectConfig
    from training.planner.collect import main as collect_main
    from training.planner.train import PlannerTrainer

    expert = export_policy(tmp_path / "expert")
    data = tmp_path / "data.h5"
    collect_main(CollectConfig(out=data, policy=expert, episodes=2, num_envs=2, episode_length_s=0.6, num_threads=1))
    assert load_planner_dataset(data).episode_steps == 30
    trainer = PlannerTrainer(dataclasses.replace(_cfg(data, tmp_path / "run", steps=4, vae_steps=2), val_fraction=0.25))
    trainer.run()
    pt, _ = export_main(
        ExportPlannerConfig(model=tmp_path / "run" / "model" / "planner_model.pt", out=tmp_path / "p.pt")
    )
    cfg = PlannerEvalConfig(
        planner=pt,
        expert=expert,
        rows=("joystick",),
        episodes=2,
        episode_length_s=0.2,
        num_threads=1,
        conditions=("nominal",),
    )
    (row,) = run(cfg)
    assert row["name"] == "joystick" and np.isfinite(row["lin_err_m_per_s"])


def test_feasibility_row_runs_under_pushes_and_needs_the_term(exported, tmp_path):
    base = {"episodes": 2, "episode_length_s": 0.2, "command_interval_s": 0.1, "num_threads": 1}
    rows = ("joystick", "joystick_feasibility")
    with pytest.raises(ValueError, match="needs a planner exported with a feasibility term"):
        run(PlannerEvalConfig(planner=exported, rows=rows, conditions=("nominal",), **base))
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    critic = tiny_critic_file(tmp_path / "critic.pt")
    pt, _ = export_main(
        ExportPlannerConfig(model=model, out=tmp_path / "f" / "planner.pt", sampler_steps=2, feasibility_critic=critic)
    )
    out = run(PlannerEvalConfig(planner=pt, rows=rows, conditions=("pushes 1.0 m/s every 2-3 s",), **base))
    assert [r["name"] for r in out] == list(rows)
    assert {r["condition"] for r in out} == {"pushes 1.0 m/s every 2-3 s"}


def test_keepout_rows_count_entries_and_need_a_keepout_term_of_at_least_the_trials_radius(exported, tmp_path):
    base = {"episodes": 2, "waypoint_time_s": 0.1, "num_threads": 1, "goal_distance_m": (2.0, 2.0)}
    # the disc's centre is 1 m ahead: a 1.5 m disc holds the start, a 0.5 m one does not
    inside = run(PlannerEvalConfig(planner=exported, rows=("keepout",), keepout_radius_m=1.5, **base))
    outside = run(PlannerEvalConfig(planner=exported, rows=("keepout",), keepout_radius_m=0.5, **base))
    assert inside[0]["keepout_entry_rate"] == 1.0 and inside[0]["success_rate"] == 0.0
    assert outside[0]["keepout_entry_rate"] == 0.0 and outside[0]["collision_rate"] is None
    assert "keep-out entries" in format_table(inside)
    with pytest.raises(ValueError, match="needs a planner exported with a keep-out term"):
        run(PlannerEvalConfig(planner=exported, rows=("keepout_feasibility",), **base))
    pt = export_tiny_keepout_planner(tmp_path)
    out = run(PlannerEvalConfig(planner=pt, rows=("keepout", "keepout_feasibility"), **base))
    assert [r["name"] for r in out] == ["keepout", "keepout_feasibility"]
    assert all(r["keepout_entry_rate"] == 0.0 for r in out)
    with pytest.raises(ValueError, match=r"learned only 0\.5 m"):  # a critic for a smaller disc: refused
        run(PlannerEvalConfig(planner=pt, rows=("keepout_feasibility",), keepout_radius_m=0.8, **base))
    margin = run(PlannerEvalConfig(planner=pt, rows=("keepout_feasibility",), keepout_radius_m=0.4, **base))
    assert margin[0]["keepout_entry_rate"] == 0.0  # a critic for a larger disc is a margin: accepted
