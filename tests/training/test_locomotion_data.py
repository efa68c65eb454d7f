"""Walking-expert tools: the evaluation (fall rate, tracking error, sim-to-sim rows) and planner-data collection."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.g1.vec_env import DomainRandomizationConfig
from envs.planner.dataset import load_planner_dataset, mirror_episodes
from robot.configio import to_jsonable
from robot.g1 import constants as C
from tests.envs.helpers import mirror_world_state, quiet_locomotion_config
from training.locomotion.evaluate import Conditions, EvalConfig, evaluate, load_exported_policy
from training.locomotion.train import TrainConfig
from training.planner.collect import (
    CollectConfig,
    OUNoise,
    OUNoiseConfig,
    PhysicsRandomizationConfig,
    RandomizedRecordingEnv,
    RecordingEnv,
    collect,
    main,
)

ROOT = Path(__file__).resolve().parents[2]


class ConstantPolicy(torch.nn.Module):
    def __init__(self, value: float, obs_dim: int = 98) -> None:
        super().__init__()
        self.value, self.obs_dim = value, obs_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.shape[-1] != self.obs_dim:
            raise RuntimeError(f"expected {self.obs_dim} inputs")
        return torch.full((obs.shape[0], 29), self.value)


def export_policy(folder, value: float = 0.0, obs_dim: int = 98, **env_changes):
    """A TorchScript 'expert' and the training config.json beside it, as the trainer writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    train = TrainConfig()
    train = dataclasses.replace(train, env=dataclasses.replace(train.env, **env_changes))
    (folder / "config.json").write_text(json.dumps(to_jsonable(train)))
    path = folder / "actor.pt"
    torch.jit.save(torch.jit.script(ConstantPolicy(value, obs_dim)), str(path))
    return path


def test_load_exported_policy_checks_files_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="no exported actor"):
        load_exported_policy(tmp_path / "actor.pt")
    path = export_policy(tmp_path / "ok")
    policy, train = load_exported_policy(path)
    assert train.env.obs.gait_period_s == TrainConfig().env.env.obs.gait_period_s
    assert policy(torch.zeros(2, 98)).shape == (2, 29)
    (tmp_path / "ok" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_exported_policy(path)
    with pytest.raises(ValueError, match="98-d observation"):
        load_exported_policy(export_policy(tmp_path / "wrong", obs_dim=50))


def test_standing_policy_does_not_fall_and_misses_the_commands(tmp_path):
    policy, train = load_exported_policy(export_policy(tmp_path))
    # Zero actions under the soft walking gains topple the robot after about a second: keep episodes short.
    cfg = EvalConfig(episodes=4, episode_length_s=0.5, command_interval_s=0.25, train=train, num_threads=1)
    for conditions in (Conditions(), Conditions("latency", action_latency_s=0.01), Conditions("m", mass_scale=1.2)):
        r = evaluate(policy, cfg, conditions, progress=False)
        assert r.fall_rate == 0.0 and r.episodes == 4
        # Nearly still (< 0.25 m/s in the first half second), the velocity error is about the commanded speed.
        assert r.lin_err_m_per_s == pytest.approx(r.mean_command_speed_m_per_s, abs=0.15)
        assert r.lin_err_m_per_s > 0.2 and not r.ok
        assert r.foot_air_fraction < 0.03  # standing: feet down but for the settling after the reset


def test_gait_statistics_see_the_reference_gait_step(tmp_path):
    from envs.locomotion.env import G1LocomotionEnv

    standing, train = load_exported_policy(export_policy(tmp_path))
    reference = torch.jit.script(G1LocomotionEnv(dataclasses.replace(train, num_envs=1)).swing_reference(1.0))
    cfg = EvalConfig(episodes=4, episode_length_s=1.0, command_interval_s=1.0, train=train, num_threads=1)
    still = evaluate(standing, cfg, Conditions(), progress=False)
    stepping = evaluate(reference, cfg, Conditions(), progress=False)
    # Over 1.25 gait cycles the open-loop reference gait lifts feet (before it topples); standing does not.
    assert stepping.foot_air_fraction > 3.0 * still.foot_air_fraction
    assert stepping.touchdowns_per_s > still.touchdowns_per_s, (still, stepping)


def test_stride_yaw_error_leaves_out_the_yaw_wobble_within_a_stride():
    """The committed expert's pelvis yaws back and forth at its stepping frequency: averaging the yaw rate over a gait
    period can only lower the error (|mean| <= mean of | |), and does so clearly."""
    from training.locomotion.evaluate import DEFAULT_EXPERT_POLICY

    policy, train = load_exported_policy(DEFAULT_EXPERT_POLICY)
    cfg = EvalConfig(episodes=4, episode_length_s=3.0, command_interval_s=3.0, settle_s=0.5, train=train, num_threads=1)
    r = evaluate(policy, cfg, Conditions(), progress=False)
    assert r.fall_rate == 0.0
    assert 0.0 < r.stride_yaw_err_rad_per_s < 0.9 * r.settled_yaw_err_rad_per_s, r


def test_falls_are_counted_once_per_episode(tmp_path):
    policy, train = load_exported_policy(export_policy(tmp_path, env=_high_fall_line()))
    cfg = EvalConfig(episodes=3, episode_length_s=0.5, train=train, num_threads=1)
    r = evaluate(policy, cfg, Conditions(), progress=False)
    assert r.fall_rate == 1.0 and not r.ok


def test_conditions_validate_latency_and_scales():
    assert Conditions("l", physics_dt_s=0.002, action_latency_s=0.01).latency_substeps == 5
    with pytest.raises(ValueError, match="multiple of physics_dt_s"):
        Conditions("l", action_latency_s=0.003)
    with pytest.raises(ValueError, match="must be > 0"):
        Conditions("f", friction_scale=0.0)


def test_ou_noise_is_seeded_and_has_the_stationary_std():
    a = OUNoise(OUNoiseConfig(), (2000, 3), 0.02, seed=5)
    b = OUNoise(OUNoiseConfig(), (2000, 3), 0.02, seed=5)
    for _ in range(300):  # 6 s: several mean-reversion times (1 / 0.8 s)
        x = a.sample()
        np.testing.assert_array_equal(x, b.sample())
    expected = 0.1 / np.sqrt(2 * 0.8)
    # 6000 draws of a stationary process: a 10 % band holds with margin
    assert np.std(x) == pytest.approx(expected, rel=0.1)


def test_mirrored_rollout_records_the_mirror_image():
    """A world started in the mirror state of another and driven by mirrored actions records mirrored steps."""
    env = RecordingEnv(quiet_locomotion_config(), Conditions())
    for _ in range(25):
        env.step(torch.zeros(2, 29))
    env.command[0] = [0.4, 0.2, -0.3]
    mirror_world_state(env, 0, 1)
    gen = torch.Generator().manual_seed(3)
    for _ in range(6):
        a = 0.3 * torch.randn(29, generator=gen, dtype=torch.float64)
        env.step(torch.stack([a, torch.from_numpy(C.mirror_joint_values(a.numpy()))]).float())
        rec = env.step_record()
        original = {k: v[:1, None] for k, v in rec.items()}
        mirrored = mirror_episodes({**original, **_no_actions(), "mirrored": np.zeros(1, dtype=bool)})
        for key in ("state", "root_pos", "root_quat", "joint_pos", "joint_vel", "command", "phase"):
            atol = 2e-2 if key == "joint_vel" else 3e-3  # rad/s: contact solving is not bit-symmetric
            np.testing.assert_allclose(rec[key][1], mirrored[key][0, 0], atol=atol, err_msg=key)
    env.close()


def _no_actions() -> dict[str, np.ndarray]:
    return {"action": np.zeros((1, 1, 29), np.float32), "expert_action": np.zeros((1, 1, 29), np.float32)}


def _high_fall_line() -> object:
    from envs.g1.env import G1EnvConfig
    from envs.g1.observations import ObservationConfig

    return G1EnvConfig(obs=ObservationConfig(gait_period_s=0.8), fall_height_m=0.9)  # above the standing pelvis


def test_collect_writes_noisy_and_mirrored_episodes(tmp_path, capsys):
    policy = export_policy(tmp_path / "expert")
    cfg = CollectConfig(
        out=tmp_path / "data.h5",
        policy=policy,
        episodes=3,
        num_envs=2,
        episode_length_s=0.4,
        push_interval_s=0.0,
        num_threads=1,
    )
    main(cfg)
    assert "kept transitions/s" in capsys.readouterr().out
    data = load_planner_dataset(cfg.out)
    assert (data.num_episodes, data.episode_steps) == (6, 20)
    a = data.arrays
    assert a["mirrored"].tolist() == [False] * 3 + [True] * 3
    np.testing.assert_array_equal(a["expert_action"][:3], 0.0)
    noise = a["action"][:3] - a["expert_action"][:3]
    others = [j for j in range(C.NUM_JOINTS) if j not in C.LEG_JOINT_IDS]
    np.testing.assert_array_equal(noise[..., others], 0.0)  # a legs-only expert (the default): waist, arms hold
    noise = noise[..., list(C.LEG_JOINT_IDS)]
    assert 0.0 < np.abs(noise).mean() < 0.2 and np.abs(np.diff(noise, axis=1)).mean() < np.abs(noise).mean()
    assert np.all(np.abs(a["state"][:3, :, 0] - C.DEFAULT_BASE_HEIGHT_M) < 0.05)  # the standing expert stands
    mirrored = mirror_episodes({k: v[:3] for k, v in a.items()})
    for k in a:
        np.testing.assert_allclose(a[k][3:], mirrored[k], atol=1e-6, err_msg=k)
    assert data.collection["episodes_kept"] == 3 and data.collection["episodes_recorded"] == 4


def test_collect_noise_follows_the_experts_actuated_joints(tmp_path):
    from training.locomotion.evaluate import expert_action_joints

    path = export_policy(tmp_path / "legs")
    assert expert_action_joints(path) == tuple(C.LEG_JOINT_IDS)
    config = json.loads(path.with_name("config.json").read_text())
    config["actuated"] = "all"
    path.with_name("config.json").write_text(json.dumps(config))
    assert expert_action_joints(path) == tuple(range(C.NUM_JOINTS))
    del config["actuated"]  # runs from before the option drove every joint
    path.with_name("config.json").write_text(json.dumps(config))
    assert expert_action_joints(path) == tuple(range(C.NUM_JOINTS))
    config["actuated"] = "arms"
    path.with_name("config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="unknown 'actuated' value 'arms'"):
        expert_action_joints(path)


def test_collect_fails_clearly_when_the_expert_keeps_falling(tmp_path):
    policy = export_policy(tmp_path / "faller", env=_high_fall_line())
    cfg = CollectConfig(
        out=tmp_path / "never.h5", policy=policy, episodes=2, num_envs=2, episode_length_s=0.2, max_waves=2
    )
    with pytest.raises(RuntimeError, match="kept only 0 of 2 episodes in 2 waves"):
        collect(cfg)
    assert not cfg.out.exists()


def test_collect_keep_falls_records_the_falls_for_a_feasibility_critic(tmp_path):
    from envs.planner.dataset import PlannerDatasetError

    policy = export_policy(tmp_path / "faller", env=_high_fall_line())
    cfg = CollectConfig(
        out=tmp_path / "falls.h5", policy=policy, episodes=2, num_envs=2, episode_length_s=0.2, keep_falls=True
    )
    main(cfg)
    with pytest.raises(PlannerDatasetError, match="4 episodes end in a fall"):
        load_planner_dataset(cfg.out)  # the planner's trainers read through this
    data = load_planner_dataset(cfg.out, allow_falls=True)
    a = data.arrays
    assert a["fell_at"].tolist() == [0, 0, 0, 0] and a["mirrored"].tolist() == [False, False, True, True]
    for k in ("state", "root_pos", "joint_pos", "action"):  # after the fall: the last state before it, held
        np.testing.assert_array_equal(a[k], np.repeat(a[k][:, :1], a[k].shape[1], axis=1), err_msg=k)
    assert data.collection["keep_falls"] and data.collection["episodes_fell"] == 2


def test_hold_after_fall_keeps_the_steps_up_to_the_fall():
    from training.planner.collect import hold_after_fall

    x = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    out = hold_after_fall({"x": x}, np.array([2, 5]))["x"]
    np.testing.assert_array_equal(out[0, :3], x[0, :3])
    np.testing.assert_array_equal(out[0, 3:], np.stack([x[0, 2]] * 2))
    np.testing.assert_array_equal(out[1], x[1])  # stood to the end


def test_randomized_collection_draws_each_worlds_physics_within_the_ranges():
    ranges = PhysicsRandomizationConfig(
        mass_scale_range=(0.8, 1.2), link_mass_jitter_range=(1.0, 1.0), latency_range_s=(0.0, 0.010)
    )
    env = RandomizedRecordingEnv(quiet_locomotion_config(num_envs=8), ranges, seed=3)
    try:
        nominal_mass = env._nominal_mass.sum()
        scales = np.array([m.body_mass.sum() / nominal_mass for m in env.models])
        np.testing.assert_allclose(scales, env.physics[:, 0], rtol=1e-9)  # one whole-robot scale per world
        assert np.all((scales >= 0.8) & (scales <= 1.2)) and scales.std() > 0.05
        friction = np.array([m.geom_friction[env._friction_geoms[0], 0] for m in env.models])
        np.testing.assert_allclose(friction, env._nominal_friction[0] * env.physics[:, 1])
        assert np.all((env.physics[:, 1] >= 0.6) & (env.physics[:, 1] <= 1.3))
        assert set(env._latency.tolist()) <= {0, 1, 2} and len(set(env._latency.tolist())) > 1  # 5 ms physics
        np.testing.assert_allclose(env.physics[:, 4], env._latency * 0.005)
        gains = np.array([m.actuator_gainprm[0, 0] for m in env.models])
        np.testing.assert_allclose(gains, env.physics[:, 2])
        before = env.physics.copy()
        env.reset()
        assert not np.allclose(before, env.physics)  # every reset draws again
    finally:
        env.close()
    with pytest.raises(ValueError, match="at most one control period"):
        RandomizedRecordingEnv(quiet_locomotion_config(), PhysicsRandomizationConfig(latency_range_s=(0.0, 0.03)), 0)
    with pytest.raises(ValueError, match=r"mass_scale_range: expected \(low, high\)"):
        PhysicsRandomizationConfig(mass_scale_range=(1.2, 0.8))


def test_collect_randomize_records_the_physics_of_every_recorded_world(tmp_path):
    policy = export_policy(tmp_path / "expert")
    cfg = CollectConfig(
        out=tmp_path / "dr.h5",
        policy=policy,
        episodes=3,
        num_envs=3,
        episode_length_s=0.2,
        push_interval_s=0.0,
        num_threads=1,
        randomize=True,
    )
    data = collect(cfg)
    c = data.collection
    assert c["config"]["randomize"] is True and c["physics_columns"][-1] == "kept"
    physics = np.array(c["physics"])
    assert physics.shape == (c["episodes_recorded"], 6) and physics[:, 5].sum() == c["episodes_kept"] == 3
    assert len(set(physics[:, 0].tolist())) == 3  # three worlds, three robots
    nominal = collect(dataclasses.replace(cfg, randomize=False))
    assert "physics" not in nominal.collection


def test_nominal_randomization_still_pushes():
    pushes = DomainRandomizationConfig(enabled=False, push_interval_s=0.04)
    cfg = dataclasses.replace(quiet_locomotion_config(num_envs=1), randomization=pushes)
    env = RecordingEnv(cfg, Conditions())
    before = env.qvel[0, :2].copy()
    for _ in range(3):  # the push lands on the step that starts at episode step 2
        env.step(torch.zeros(1, 29))
    assert np.abs(env.qvel[0, :2] - before).max() > 0.01
    env.close()


def test_video_renders_the_scripted_commands(tmp_path):
    imageio = pytest.importorskip("imageio.v2", reason="needs the video extra")
    policy = export_policy(tmp_path / "expert")
    out = tmp_path / "walk.mp4"
    args = ["--out", str(out), "--policy", str(policy), "--script", "0.2", "0.5", "0", "0", "0.2", "0", "0", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "training.locomotion.video", *args, "--width", "64", "--height", "48"],
        cwd=ROOT,
        env={**os.environ, "MUJOCO_GL": "egl"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    frames = [frame for frame in imageio.get_reader(out)]  # list() asks len(), which is inf for ffmpeg
    assert len(frames) == 10 and frames[0].shape == (48, 64, 3)  # 0.4 s at 25 fps
    assert np.std(frames[-1]) > 1.0
    assert not list(tmp_path.glob("*.tmp*"))


def test_push_conditions_reach_the_evaluation_env():
    from training.locomotion.evaluate import PUSHES, eval_env_config

    dr = eval_env_config(EvalConfig(), PUSHES).randomization
    assert (dr.push_interval_s, dr.push_interval_jitter_s, dr.push_velocity_m_per_s) == (2.0, 1.0, 1.0)
    assert eval_env_config(EvalConfig(), Conditions()).randomization.push_interval_s == 0.0  # no pushes
    with pytest.raises(ValueError, match="pushes"):
        Conditions(push_velocity_m_per_s=1.0, push_interval_s=(3.0, 2.0))


def test_reaction_bursts_follow_pushes_for_their_duration_only():
    from training.planner.collect import Bursts, ReactionBurstConfig

    cfg = ReactionBurstConfig(probability=0.5, amplitude=0.5, duration_s=0.1)
    bursts = Bursts(cfg, push_interval_s=0.2, dt=0.02, shape=(400, 3), seed=0)  # a push every 10 steps, 5-step bursts
    out = np.stack([bursts.sample(t) for t in range(40)])  # (T, N, J)
    on = np.abs(out).max(axis=2) > 0  # (T, N)
    assert not on[:10].any()  # no push before step 10
    for start in (10, 20, 30):
        assert on[start : start + 5].all(axis=0).mean() == pytest.approx(0.5, abs=0.1)  # half the worlds
        assert not on[start + 5 : start + 10].any()
        np.testing.assert_array_equal(out[start], out[start + 4])  # one constant offset per burst
    assert np.abs(out).max() <= 0.5
    quiet = Bursts(ReactionBurstConfig(), push_interval_s=0.2, dt=0.02, shape=(4, 3), seed=0)
    assert all(not quiet.sample(t).any() for t in range(40))
    with pytest.raises(ValueError, match="reaction bursts"):
        ReactionBurstConfig(probability=1.5)
