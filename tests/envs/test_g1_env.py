"""Gymnasium G1 env: checker, registration, safety path, determinism; vectorized env semantics."""

import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs.g1.env  # noqa: F401 - registers the ids
from envs.g1.env import G1Env, G1EnvConfig
from envs.g1.vec_env import DomainRandomizationConfig, G1VecEnv, G1VecEnvConfig
from envs.tasks import ObstacleTaskConfig
from robot.g1 import constants as C

ENV_IDS = ["Steer/G1-v0", "Steer/G1Waypoint-v0", "Steer/G1Obstacles-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes(env_id):
    env = gymnasium.make(env_id)
    assert env.spec.max_episode_steps == 1000
    check_env(env.unwrapped, skip_render_check=True)
    obs, _info = env.reset(seed=0)
    assert obs.shape == (96,) and env.observation_space.contains(obs)
    assert env.unwrapped.cfg.substeps == 4 and env.unwrapped.robot.model.opt.timestep == 0.005
    env.close()


@pytest.mark.slow
def test_check_env_with_rendering_in_egl_subprocess():
    code = (
        "import gymnasium, envs.g1.env\n"
        "from gymnasium.utils.env_checker import check_env\n"
        "env = gymnasium.make('Steer/G1-v0', render_mode='rgb_array')\n"
        "check_env(env.unwrapped)\n"
        "env.reset(seed=0)\n"
        "img = env.render()\n"
        "assert img.shape == (240, 320, 3) and img.std() > 1.0, img.shape\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "MUJOCO_GL": "egl"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_same_seed_same_rollout_and_zero_action_falls():
    def rollout():
        env = G1Env()
        obs, _ = env.reset(seed=5)
        out = [obs]
        for _ in range(150):
            obs, _reward, terminated, _, info = env.step(np.zeros(29, dtype=np.float32))
            out.append(obs)
            if terminated:
                break
        env.close()
        return np.stack(out), terminated, info

    a, terminated, info = rollout()
    b, _, _ = rollout()
    np.testing.assert_array_equal(a, b)
    assert terminated  # the 10 Hz policy gains need an active policy to balance
    assert info["planar_state"].shape == (6,) and "lin_vel_error_m_per_s" in info


def test_nan_action_goes_through_safety_to_damping():
    env = G1Env()
    env.reset(seed=0)
    action = np.zeros(29)
    action[3] = np.nan
    obs, reward, terminated, _, info = env.step(action)
    assert np.all(np.isfinite(obs)) and np.isfinite(reward)
    # np.clip keeps NaN, so the robot's safety layer sees it and latches damping.
    assert info["damping"] and terminated
    assert np.all(env.robot.applied_command.kp_nm_per_rad == 0.0)
    env.close()


def test_obstacle_env_has_obstacle_geoms():
    env = G1Env(G1EnvConfig(task=ObstacleTaskConfig()))
    names = [env.robot.model.geom(i).name for i in range(env.robot.model.ngeom)]
    assert sum(n.startswith("obstacle_") for n in names) == 3
    _, info = env.reset(seed=0)
    assert info["clearance_m"] > 0.0
    env.close()


def test_config_validation():
    with pytest.raises(ValueError, match="ctrl_dt_s"):
        G1EnvConfig(ctrl_dt_s=0.012)
    with pytest.raises(ValueError, match="task"):
        G1Env(task="dance")
    with pytest.raises(ValueError, match="latency"):
        G1VecEnvConfig(randomization=DomainRandomizationConfig(latency_substeps_range=(0, 9)))


# ----- vectorized env -------------------------------------------------------------------------------------------
def nominal_vec_cfg(**kwargs) -> G1VecEnvConfig:
    env = G1EnvConfig(init_joint_noise_rad=0.0)
    nominal = DomainRandomizationConfig(enabled=False, push_interval_s=0.0)
    return G1VecEnvConfig(env=env, randomization=nominal, **kwargs)


def test_vec_env_matches_single_env_without_randomization():
    vec = G1VecEnv(nominal_vec_cfg(num_envs=2, num_threads=2))
    single = G1Env(G1EnvConfig(init_joint_noise_rad=0.0))
    single.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.normal(0.0, 0.3, 29)
        single.step(a)
        vec.step(torch.as_tensor(np.stack([a, a])))
    d = single.robot.data
    np.testing.assert_allclose(vec._qpos[0], d.qpos, atol=1e-6)
    np.testing.assert_allclose(vec._qpos[1], d.qpos, atol=1e-6)
    # Same observation function: everything but the task command part agrees.
    obs_single = single._observation()
    obs_vec = vec.get_observations()[0].numpy()
    np.testing.assert_allclose(np.delete(obs_vec, [6, 7, 8]), np.delete(obs_single, [6, 7, 8]), atol=1e-4)
    vec.close()
    single.close()


def test_vec_env_threads_do_not_change_results_and_randomization_varies():
    results = []
    for threads in (1, 2):
        vec = G1VecEnv(G1VecEnvConfig(num_envs=6, num_threads=threads, seed=3))
        gen = torch.Generator().manual_seed(0)
        for _ in range(20):
            obs, reward, _terminated, _truncated, _info = vec.step(0.3 * torch.randn(6, 29, generator=gen))
        results.append((obs.clone(), reward.clone()))
        masses = np.array([m.body_mass.sum() for m in vec.models])
        nominal = vec._nominal_mass.sum()
        assert masses.std() > 0.01 and np.all((masses > 0.9 * nominal) & (masses < 1.1 * nominal))
        strength = np.array([m.actuator_gainprm[0, 0] for m in vec.models])
        assert strength.std() > 0.0 and np.all((strength >= 0.9) & (strength <= 1.1))
        vec.close()
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    assert obs.dtype == torch.float32 and obs.shape == (6, 96) and reward.shape == (6,)


def test_vec_env_whole_robot_mass_scale_moves_every_link_together():
    def totals(body_range):
        dr = DomainRandomizationConfig(link_mass_scale_range=(1.0, 1.0), body_mass_scale_range=body_range)
        vec = G1VecEnv(G1VecEnvConfig(num_envs=8, num_threads=1, randomization=dr, seed=5))
        ratios = np.stack([m.body_mass[1:] / vec._nominal_mass[1:] for m in vec.models])
        inertia = np.stack([m.body_inertia[1:, 0] / vec._nominal_inertia[1:, 0] for m in vec.models])
        vec.close()
        return ratios, inertia

    ratios, inertia = totals((0.8, 1.25))
    # One draw per world: every link of a world carries the same scale, the worlds differ, all inside the range.
    np.testing.assert_allclose(ratios, ratios[:, :1] * np.ones_like(ratios), rtol=1e-12)
    np.testing.assert_allclose(inertia, ratios, rtol=1e-12)
    assert ratios[:, 0].std() > 0.05 and np.all((ratios >= 0.8) & (ratios <= 1.25))
    fixed, _ = totals((1.2, 1.2))
    np.testing.assert_allclose(fixed, 1.2, rtol=1e-12)
    with pytest.raises(ValueError, match="body_mass_scale_range"):
        DomainRandomizationConfig(body_mass_scale_range=(1.2, 0.8))


def test_vec_env_latency_and_pushes_change_dynamics():
    def final_qpos(latency, push):
        dr = DomainRandomizationConfig(
            friction_range=(1.0, 1.0),
            link_mass_scale_range=(1.0, 1.0),
            motor_strength_range=(1.0, 1.0),
            gain_error_range=(0.0, 0.0),
            latency_substeps_range=(latency, latency),
            push_interval_s=0.1 if push else 0.0,
        )
        vec = G1VecEnv(G1VecEnvConfig(num_envs=1, num_threads=1, randomization=dr, seed=0))
        gen = torch.Generator().manual_seed(1)
        for _ in range(10):
            vec.step(0.5 * torch.randn(1, 29, generator=gen))
        out = vec._qpos[0].copy(), vec._qvel[0].copy()
        vec.close()
        return out

    base = final_qpos(0, False)
    assert not np.allclose(final_qpos(2, False)[0], base[0], atol=1e-6)
    assert not np.allclose(final_qpos(0, True)[1][:2], base[1][:2], atol=1e-3)


def test_vec_env_nan_actions_terminate_that_env_only_and_time_outs():
    vec = G1VecEnv(nominal_vec_cfg(num_envs=3, num_threads=2, episode_length_s=0.1))
    actions = torch.zeros(3, 29)
    actions[1, 4] = float("nan")
    obs, reward, terminated, truncated, info = vec.step(actions)
    assert terminated.tolist() == [False, True, False]
    assert torch.all(torch.isfinite(obs)) and torch.all(torch.isfinite(reward))
    for _ in range(4):
        obs, reward, terminated, truncated, info = vec.step(torch.zeros(3, 29))
    # Env 1 restarted after its NaN step, so it is one step behind the others.
    assert truncated.tolist() == [True, False, True] and torch.equal(info["time_outs"], truncated)
    assert vec.episode_length.tolist() == [0, 4, 0]  # auto-reset
    with pytest.raises(ValueError, match="actions"):
        vec.step(torch.zeros(2, 29))
    vec.close()


def test_vec_env_joint_targets_respect_limits():
    vec = G1VecEnv(nominal_vec_cfg(num_envs=2, num_threads=1))
    for _ in range(10):
        vec.step(torch.full((2, 29), 4.0))
        assert np.all(vec._targets <= C.JOINT_UPPER_RAD) and np.all(vec._targets >= C.JOINT_LOWER_RAD)
        assert np.all(np.abs(vec.env_data(0).actuator_force) <= C.EFFORT_LIMIT_NM + 1e-9)
    vec.close()


def test_jittered_pushes_give_each_world_its_own_period_and_restart_with_the_episode():
    dr = DomainRandomizationConfig(enabled=False, push_interval_s=2.0, push_interval_jitter_s=1.0)
    vec = G1VecEnv(G1VecEnvConfig(num_envs=8, num_threads=1, randomization=dr, seed=0))
    times: list[list[int]] = [[] for _ in range(8)]
    for t in range(600):  # 12 s at 50 Hz
        vec.episode_length[:] = t
        for i in vec._jittered_pushes(100, 50):
            times[i].append(t)
    gaps = np.concatenate([np.diff(x) for x in times])
    assert all(len(x) >= 4 for x in times) and gaps.min() >= 100 and gaps.max() <= 150
    assert len({tuple(x) for x in times}) == 8  # no two worlds on one schedule
    vec.episode_length[:] = 3  # every episode restarted
    assert len(vec._jittered_pushes(100, 50)) == 0 and (vec._next_push >= 103).all()
    vec.close()
    with pytest.raises(ValueError, match="push_interval_jitter_s"):
        DomainRandomizationConfig(push_interval_jitter_s=-1.0)
