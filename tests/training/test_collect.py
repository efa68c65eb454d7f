"""PPO-Lagrangian pieces and the DSRL dataset builder (training.safe_rl.collect).

Everything but the last test runs on a tiny fake gymnasium env that reports ``info["cost"]`` (no pybullet).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest
import torch
import tyro
from gymnasium.wrappers import TimeLimit
from rsl_rl.env import VecEnv

from envs.safe_rl import (
    DSRL_KEYS,
    arrays_sha256,
    episode_bounds,
    episode_sums,
    get_task,
    load_dsrl,
    read_dsrl,
    write_dsrl,
)
from envs.safe_rl.dsrl_data import COMPRESSION
from training.safe_rl import collect, compress
from training.safe_rl.collect import CollectConfig, balanced_subsample, preset_for, record_episodes
from training.safe_rl.ppo_lagrangian import (
    GymVecEnv,
    LagrangeMultiplier,
    PPOLagrangian,
    PPOLagrangianConfig,
    build_actor,
    load_actor_checkpoint,
    save_actor_checkpoint,
)


class CostlyWalk(gymnasium.Env):
    """1-d walk: ``x += a[0]``, reward ``a[0]``, cost 1 when ``a[0] > 0.5``, terminal when ``x >= goal``.

    Observations have ``obs_dim`` entries (x, then the step count, then zeros); actions ``act_dim`` (extra ignored).
    """

    def __init__(self, goal: float = 3.0, obs_dim: int = 2, act_dim: int = 1) -> None:
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        self.goal, self.x, self.t = goal, 0.0, 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape)
        obs[0], obs[1] = self.x, self.t
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(0.0, 0.1)), 0
        return self._obs(), {}

    def step(self, action):
        a = float(action[0])
        self.x += a
        self.t += 1
        return self._obs(), a, self.x >= self.goal, False, {"cost": float(a > 0.5)}


def make_walk(max_steps: int = 5, **kwargs) -> gymnasium.Env:
    return TimeLimit(CostlyWalk(**kwargs), max_episode_steps=max_steps)


def test_multiplier_rises_above_the_limit_falls_below_and_stays_nonnegative():
    m = LagrangeMultiplier(cost_limit=10.0, lr=0.1)
    assert m.update(30.0) == pytest.approx(2.0)  # 0 + 0.1 * (30 - 10)
    assert m.update(30.0) == pytest.approx(4.0)
    assert m.update(5.0) == pytest.approx(3.5)
    values = [m.update(0.0) for _ in range(10)]
    assert min(values) == 0.0 and all(v >= 0.0 for v in values)
    assert all(b <= a for a, b in itertools.pairwise(values))
    capped = LagrangeMultiplier(cost_limit=0.0, lr=10.0, max_value=5.0)
    assert capped.update(100.0) == 5.0
    with pytest.raises(ValueError, match="value"):
        LagrangeMultiplier(cost_limit=1.0, value=-1.0)


def test_vec_env_terminal_vs_time_out_and_auto_reset():
    env = GymVecEnv([make_walk(), make_walk()], 5)
    assert isinstance(env, VecEnv) and env.max_episode_length == 5 and env.num_actions == 1
    env.reset(seed=3)
    start = env.get_observations()["policy"]
    actions = torch.tensor([[2.0], [0.1]])  # env 0: clipped to 1, reaches x >= 3 at step 3; env 1: time limit
    for t in range(1, 6):
        obs, rewards, dones, extras = env.step(actions)
        assert torch.equal(extras["actions"], torch.tensor([[1.0], [0.1]]))
        assert torch.equal(extras["costs"], torch.tensor([1.0, 0.0]))
        if t == 3:
            assert dones.tolist() == [True, False]
            assert extras["terminals"].tolist() == [True, False] and extras["time_outs"].tolist() == [False, False]
            assert extras["next_observations"][0, 0] == pytest.approx(start[0, 0] + 3.0)  # the final state
            assert obs["policy"][0, 1] == 0.0 and 0.0 <= float(obs["policy"][0, 0]) <= 0.1  # reset
            assert extras["episode_envs"].tolist() == [0]
            assert extras["episode_returns"].tolist() == [3.0] and extras["episode_costs"].tolist() == [3.0]
            assert env.episode_length_buf.tolist() == [0, 3]
        elif t == 5:
            assert dones.tolist() == [False, True]
            assert extras["terminals"].tolist() == [False, False] and extras["time_outs"].tolist() == [False, True]
            assert extras["episode_envs"].tolist() == [1]
            assert extras["episode_returns"][0] == pytest.approx(0.5) and extras["episode_costs"].tolist() == [0.0]
        else:
            assert not dones.any() and len(extras["episode_envs"]) == 0
            assert torch.equal(obs["policy"], extras["next_observations"])
        assert rewards.shape == (2,) and extras["time_outs"].dtype == torch.bool


def test_vec_env_rejects_missing_cost_and_bad_actions():
    class NoCost(CostlyWalk):
        def step(self, action):
            obs, r, term, trunc, _ = super().step(action)
            return obs, r, term, trunc, {}

    env = GymVecEnv([TimeLimit(NoCost(), 5)], 5)
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(2, 1))
    with pytest.raises(KeyError, match="cost"):
        env.step(torch.zeros(1, 1))
    with pytest.raises(ValueError, match="max_episode_length"):
        GymVecEnv([CostlyWalk()])  # no time limit known


def test_ppo_lagrangian_feeds_r_minus_lambda_c_and_raises_lambda_over_the_limit():
    torch.manual_seed(0)
    env = GymVecEnv([make_walk() for _ in range(4)], 5)
    env.reset(seed=0)
    agent = PPOLagrangian(env, cost_limit=0.0, cfg=PPOLagrangianConfig(lambda_lr=0.5, lambda_init=2.0, init_std=1.0))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    raw: list[tuple[torch.Tensor, torch.Tensor]] = []
    step, process = env.step, agent.ppo.process_env_step

    def spy_step(actions):
        out = step(actions)
        raw.append((out[1].clone(), out[3]["costs"].clone()))
        return out

    def spy_process(obs, rewards, dones, extras):
        seen.append((rewards.clone(), dones.clone()))
        process(obs, rewards, dones, extras)

    env.step, agent.ppo.process_env_step = spy_step, spy_process
    stats = agent.learn_iteration()
    assert len(seen) == agent.steps_per_env == 5
    for (shaped, _), (r, c) in zip(seen, raw, strict=True):
        torch.testing.assert_close(shaped, r - 2.0 * c)  # lambda during the rollout: its initial value
    assert stats.episodes >= 4 and stats.episode_cost > 0.0  # N(0, 1) actions exceed 0.5 about 30 % of the time
    assert stats.multiplier == pytest.approx(2.0 + 0.5 * stats.episode_cost)
    assert {"value", "surrogate", "entropy"} <= set(stats.losses)


def test_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    env = GymVecEnv([make_walk(obs_dim=3, act_dim=2) for _ in range(2)], 5)
    agent = PPOLagrangian(env, cost_limit=1.0, cfg=PPOLagrangianConfig(hidden_dims=(8,)))
    agent.learn_iteration()
    actor, meta = load_actor_checkpoint(save_actor_checkpoint(tmp_path / "ckpt", agent))
    assert meta["iteration"] == 1 and meta["cost_limit"] == 1.0 and meta["obs_dim"] == 3
    obs = env.get_observations()
    agent.actor.eval()
    torch.testing.assert_close(actor(obs), agent.actor(obs))
    with pytest.raises(FileNotFoundError, match=r"checkpoint\.json"):
        load_actor_checkpoint(tmp_path / "missing")


def test_record_episodes_are_whole_and_consistent():
    torch.manual_seed(0)
    env = GymVecEnv([make_walk(max_steps=6, goal=2.0) for _ in range(3)], 6)
    actor = build_actor(2, 1, PPOLagrangianConfig(hidden_dims=(8,))).eval()
    episodes = record_episodes(env, actor, noise_std=1.0, num_episodes=5, seed=4)
    assert len(episodes) == 5
    for ep in episodes:
        done = (ep["terminals"] + ep["timeouts"]) > 0
        assert done[-1] and not done[:-1].any()  # exactly one end, at the last row
        assert np.array_equal(ep["observations"][1:], ep["next_observations"][:-1])
        assert ep["observations"][0, 1] == 0.0  # starts right after a reset
        assert np.all(np.abs(ep["actions"]) <= 1.0)
        np.testing.assert_array_equal(ep["costs"], (ep["actions"][:, 0] > 0.5).astype(np.float32))
    again = record_episodes(env, actor, noise_std=1.0, num_episodes=5, seed=4)
    for a, b in zip(episodes, again, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_balanced_subsample_keeps_sparse_regions():
    rng = np.random.default_rng(0)
    costs = np.concatenate([rng.uniform(0, 1, 200), [50.0, 70.0, 90.0]])  # a dense cluster and three outliers
    returns = np.concatenate([rng.uniform(0, 1, 200), [500.0, 700.0, 900.0]])
    keep = balanced_subsample(returns, costs, 20, seed=1)
    assert len(keep) == 20 and np.all(np.diff(keep) > 0)
    assert {200, 201, 202} <= set(keep.tolist())
    assert np.array_equal(balanced_subsample(returns, costs, 500, seed=1), np.arange(203))


def test_presets_and_cli():
    ball, car = get_task("BallRun"), get_task("CarCircle")
    assert preset_for("dsrl", ball).num_trajectories == 940 and preset_for("dsrl", car).num_trajectories == 1450
    dsrl = preset_for("dsrl", ball)
    recorded = len(dsrl.cost_limit_fractions) * dsrl.checkpoints_per_agent * len(dsrl.noise_stds)
    assert recorded * dsrl.episodes_per_policy >= 2 * 940
    cfg = tyro.cli(CollectConfig, args=["--preset", "dsrl", "--task", "OfflineCarRun-v0", "--cost-limits", "5", "10"])
    assert cfg.sizes().cost_limit_fractions == (5 / 40, 10 / 40) and cfg.sizes().num_trajectories == 651
    with pytest.raises(KeyError, match="unknown DSRL task"):
        CollectConfig(task="Nope")


def _fake_bullet(task):
    """A stand-in for the Bullet env with the task's dimensions and time limit (no pybullet)."""
    return make_walk(max_steps=task.max_episode_steps, goal=1e9, obs_dim=task.obs_dim, act_dim=task.act_dim)


def test_pipeline_writes_a_loadable_deterministic_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(collect, "make_dsrl_env", _fake_bullet)
    args = dict(task="BallRun", cost_limits=(20.0, 60.0), env_steps_per_agent=1600, episodes_per_policy=3)
    path = collect.main(CollectConfig(out_dir=tmp_path / "a", **args))
    # 2 agents x 2 checkpoints (2 iterations) x 2 noise stds x 3 episodes, minus those over MaxCost 80
    assert path.parent == tmp_path / "a" and path.name.startswith("BallRun-v0-80-")
    data = load_dsrl(task="BallRun", path=path)
    _, costs, lengths = episode_sums(data)
    assert int(path.stem.rsplit("-", 1)[1]) == len(lengths) <= 24 and np.all(lengths == 100)
    assert costs.max() <= 80.0 and np.all(data.timeouts[episode_bounds(data)[:, 1] - 1] == 1)
    assert path.with_suffix(".png").stat().st_size > 1000 and path.with_suffix(".json").is_file()
    summary = json.loads(path.with_suffix(".json").read_text())
    assert summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["trajectories"] == len(lengths) and summary["transitions"] == len(data.rewards)
    assert summary["arrays_sha256"] == arrays_sha256(data) and summary["compression"] == COMPRESSION
    with h5py.File(path, "r") as handle:  # compressed by default, still DSRL's seven root datasets
        assert all(handle[key].compression == "gzip" for key in DSRL_KEYS)
    again = collect.main(CollectConfig(out_dir=tmp_path / "b", **args))
    assert again.name == path.name
    other = load_dsrl(path=again)
    for key, value in data.as_dict().items():
        np.testing.assert_array_equal(value, other.as_dict()[key], err_msg=key)
    with pytest.raises(FileExistsError, match="overwrite"):
        collect.main(CollectConfig(out_dir=tmp_path / "a", **args))


def test_tiny_real_run_on_ballrun(tmp_path: Path):
    for module in ("pybullet", "bullet_safety_gym", "dsrl"):
        pytest.importorskip(module)
    args = dict(cost_limits=(10.0,), env_steps_per_agent=1600, episodes_per_policy=2, num_trajectories=6)
    path = collect.main(CollectConfig(task="BallRun", out_dir=tmp_path, **args))
    data = load_dsrl(task="BallRun", path=path)  # checks the 7 / 2 dimensions of BallRun
    _, costs, lengths = episode_sums(data)
    assert path.name == f"BallRun-v0-80-{len(lengths)}.hdf5" and 1 <= len(lengths) <= 6 and np.all(lengths == 100)
    assert set(np.unique(data.costs)) <= {0.0, 1.0} and costs.max() <= 80.0
    assert np.all(np.abs(data.actions) <= 1.0)
    again = load_dsrl(path=collect.main(CollectConfig(task="BallRun", out_dir=tmp_path / "again", **args)))
    for key, value in data.as_dict().items():  # pybullet and the seeded global RNG reproduce the episodes
        np.testing.assert_array_equal(value, again.as_dict()[key], err_msg=key)


def test_interrupted_build_resumes_to_the_uninterrupted_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(collect, "make_dsrl_env", _fake_bullet)
    args = dict(task="BallRun", cost_limits=(20.0, 60.0), env_steps_per_agent=3200, episodes_per_policy=3)
    reference = load_dsrl(path=collect.main(CollectConfig(out_dir=tmp_path / "a", **args)))

    calls = {"learn": 0, "record": 0}
    learn, record = PPOLagrangian.learn_iteration, collect.record_episodes

    def counted_learn(self):
        calls["learn"] += 1
        if calls["learn"] == kill_at["learn"]:
            raise KeyboardInterrupt
        return learn(self)

    def counted_record(*a, **k):
        calls["record"] += 1
        if calls["record"] == kill_at["record"]:
            raise KeyboardInterrupt
        return record(*a, **k)

    monkeypatch.setattr(PPOLagrangian, "learn_iteration", counted_learn)
    monkeypatch.setattr(collect, "record_episodes", counted_record)
    out = tmp_path / "b"
    kill_at = {"learn": 6, "record": 0}  # 4 iterations per agent: killed in the second agent's second iteration
    with pytest.raises(KeyboardInterrupt):
        collect.main(CollectConfig(out_dir=out, **args))
    work = out / "BallRun-v0-seed0-small"
    assert (work / "agents/0_limit_20/done.json").is_file() and not (work / "agents/1_limit_60/done.json").exists()
    calls.update(learn=0, record=0)
    kill_at = {"learn": 0, "record": 5}  # now killed while recording the fifth variant
    with pytest.raises(KeyboardInterrupt):
        collect.main(CollectConfig(out_dir=out, **args))
    assert calls["learn"] == 4  # only the unfinished agent trained again, from its start
    assert len(list((work / "episodes").glob("*.npz"))) == 4
    calls.update(learn=0, record=0)
    kill_at = {"learn": 0, "record": 0}
    resumed = load_dsrl(path=collect.main(CollectConfig(out_dir=out, **args)))
    assert calls["learn"] == 0 and calls["record"] == 16 - 4  # 2 agents x 4 checkpoints x 2 noise stds in all
    for key, value in reference.as_dict().items():
        np.testing.assert_array_equal(value, resumed.as_dict()[key], err_msg=key)

    for file in out.glob("BallRun-v0-*.*"):
        file.unlink()
    changed = dict(args, episodes_per_policy=4)
    with pytest.raises(FileExistsError, match=r"different configuration \(changed: \['episodes_per_policy'\]\)"):
        collect.main(CollectConfig(out_dir=out, **changed))
    assert (work / "agents/0_limit_20/done.json").is_file()  # refused, nothing lost


def test_compress_rewrites_in_place_with_the_same_arrays_and_updates_the_summary(tmp_path: Path):
    states = np.tile(np.arange(7, dtype=np.float32), (400, 1))  # BallRun: 7 / 2
    arrays = {
        "observations": states,
        "next_observations": states,
        "actions": np.zeros((400, 2), dtype=np.float32),
        "rewards": np.linspace(0, 1, 400, dtype=np.float32),
        "costs": np.zeros(400, dtype=np.float32),
        "terminals": np.zeros(400, dtype=np.float32),
        "timeouts": np.tile(np.r_[np.zeros(99), 1.0].astype(np.float32), 4),
    }
    path = write_dsrl(tmp_path / "BallRun-v0-80-4.hdf5", arrays, attrs={"seed": 5})
    before = read_dsrl(path, task="BallRun")
    path.with_suffix(".json").write_text(json.dumps({"file": path.name, "sha256": "old", "trajectories": 4}))
    size = path.stat().st_size
    entry = compress.main(compress.CompressConfig(path=path))
    after = read_dsrl(path, task="BallRun")
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(after, key), getattr(before, key), err_msg=key)
    assert path.stat().st_size < size
    summary = json.loads(path.with_suffix(".json").read_text())
    assert summary == {"file": path.name, "trajectories": 4} | entry
    assert summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["arrays_sha256"] == arrays_sha256(before) and summary["compression"] == COMPRESSION
    with h5py.File(path, "r") as handle:
        assert int(handle.attrs["seed"]) == 5 and handle["rewards"].compression == "gzip"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.with_suffix(".json").name, path.name])
    assert compress.cli([str(tmp_path / "missing.hdf5")]) == 2
    bad = tmp_path / "BallRun-v0-80-1.hdf5"
    bad.write_bytes(b"not an hdf5 file")
    assert compress.cli([str(bad)]) == 2 and bad.read_bytes() == b"not an hdf5 file"  # one line, nothing lost
