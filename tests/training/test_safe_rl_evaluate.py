"""training.safe_rl.evaluate: normalized numbers on a fake cost env, the CLI entry, RNG isolation, the best rule,
and (with the safe-RL extra) agreement with dsrl's own normalized score in the real BallRun env."""

import json
import random

import numpy as np
import pytest
import torch

from envs.safe_rl import get_task
from tests.training.helpers import FakeEnvFactory, train_config, write_tiny_dataset
from training.safe_rl.checkpoint import EvalScore, is_better
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import EvaluateConfig, evaluate, main, make_dsrl_env, run_episodes
from training.safe_rl.train import train

BALL = get_task("BallRun")
R_MIN, R_MAX = 26.339754104614258, 1327.445556640625  # dsrl/infos.py, BallRun


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks gain nothing from threads, and on a busy 2-core machine spinning OpenMP threads cost 10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_normalized_reward_and_cost_on_a_fake_env() -> None:
    factory = FakeEnvFactory(length=5)
    seen: list[np.ndarray] = []

    def act(obs, generator):
        seen.append(obs)
        return np.array([3.0, -0.2])  # outside the box: clipped to 1, still a costly action

    result = run_episodes(act, BALL, EvalConfig(episodes=3, seeds=(0, 2), cost_limit=10.0), factory)
    assert len(result.episodes) == 6 and all(obs.dtype == np.float32 and obs.shape == (7,) for obs in seen)
    for row in result.episodes:
        expected_return = 5 * 100.0 * (row.seed + 1)
        assert row.episode_return == expected_return and row.episode_cost == 5.0 and row.length == 5
        assert row.normalized_reward == pytest.approx((expected_return - R_MIN) / (R_MAX - R_MIN))
        assert row.normalized_cost == pytest.approx(0.5)
    per_seed = result.per_seed()
    assert per_seed[2]["normalized_reward"] == pytest.approx((1500 - R_MIN) / (R_MAX - R_MIN))
    assert per_seed[0]["normalized_reward_std"] == 0.0
    summary = result.summary()
    assert summary["normalized_reward"] == pytest.approx(((500 + 1500) / 2 - R_MIN) / (R_MAX - R_MIN))
    assert summary["normalized_reward_std"] == pytest.approx(500 / (R_MAX - R_MIN))
    assert summary["episode_cost"] == 5.0 and summary["episodes"] == 6
    assert [env.resets for env in factory.envs] == [[0, None, None], [2, None, None]]  # seeded once per seed
    assert all(env.closed for env in factory.envs)


def test_an_env_without_info_cost_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"OfflineBallRun-v0: expected info\['cost'\]"):
        run_episodes(
            lambda obs, g: np.zeros(2), BALL, EvalConfig(episodes=1, seeds=(0,)), FakeEnvFactory(with_cost=False)
        )


def test_is_better_prefers_lower_cost_then_higher_reward() -> None:
    base = EvalScore(1, 0.5, 1.0)
    assert is_better(base, None)
    assert is_better(EvalScore(2, 0.1, 0.9), base)  # lower cost wins whatever the reward
    assert not is_better(EvalScore(2, 0.9, 1.1), base)  # higher cost loses whatever the reward
    assert is_better(EvalScore(2, 0.6, 1.0), base)  # equal cost: higher reward wins
    assert not is_better(EvalScore(2, 0.5, 1.0), base)  # an equal score keeps the earlier checkpoint


def test_evaluate_cli_entry_and_rng_isolation(tmp_path, capsys) -> None:
    data = write_tiny_dataset(tmp_path)
    result = train(train_config(data, tmp_path / "run", "fisor", num_steps=2))
    state = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    factory = FakeEnvFactory(length=4)
    direct = evaluate(result.algorithm, BALL, EvalConfig(episodes=2, seeds=(1,)), factory)
    assert torch.equal(state[0], torch.get_rng_state()) and np.array_equal(state[1], np.random.get_state()[1])
    assert state[2] == random.getstate()
    assert result.algorithm.policy.training  # back in train mode
    out = tmp_path / "eval.json"
    config = EvaluateConfig(checkpoint=tmp_path / "run" / "checkpoints" / "last.pt", eval=EvalConfig(2, (1,)), json=out)
    cli = main(config, env_factory=factory)
    assert [r.episode_cost for r in cli.episodes] == [r.episode_cost for r in direct.episodes]  # same sampling seed
    record = json.loads(out.read_text())
    assert record["algorithm"] == "fisor" and record["step"] == 2 and record["task"] == "BallRun"
    assert record["summary"]["normalized_cost"] == pytest.approx(cli.summary()["normalized_cost"])
    assert len(record["episodes"]) == 2
    printed = capsys.readouterr().out
    assert "norm. cost" in printed and "BallRun at cost limit 10" in printed


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # gymnasium Box of bullet envs
def test_real_ballrun_env_agrees_with_dsrl_normalized_score() -> None:
    pytest.importorskip("pybullet")
    pytest.importorskip("bullet_safety_gym")
    pytest.importorskip("dsrl")
    envs = []

    def factory(task):
        envs.append(make_dsrl_env(task))
        return envs[-1]

    policy_rng = np.random.default_rng(0)
    result = run_episodes(
        lambda obs, g: policy_rng.uniform(-1, 1, size=2), BALL, EvalConfig(episodes=1, seeds=(0,)), factory
    )
    row = result.episodes[0]
    assert row.length == BALL.max_episode_steps  # the TimeLimit wrapper ends it
    dsrl_env = envs[0].unwrapped  # gymnasium 1.x wrappers hide dsrl's methods
    dsrl_env.set_target_cost(10.0)
    reward, cost = dsrl_env.get_normalized_score(row.episode_return, row.episode_cost)
    assert row.normalized_reward == pytest.approx(reward) and row.normalized_cost == pytest.approx(cost)
    assert row.episode_cost > 0  # random actions leave the track: the cost signal reaches the sum


def test_an_env_that_draws_from_the_global_numpy_generator_scores_the_same_in_any_process_state() -> None:
    from tests.training.helpers import FakeCostEnv

    class GlobalNoiseEnv(FakeCostEnv):
        """As the Bullet safety-gym tasks do: some of the randomness comes from numpy's global generator."""

        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return (
                obs,
                reward + float(np.random.rand()),
                terminated,
                truncated,
                {**info, "cost": float(random.random())},
            )

    def score() -> list[tuple[float, float]]:
        config = EvalConfig(episodes=2, seeds=(3, 4), cost_limit=10.0)
        result = run_episodes(lambda obs, g: np.zeros(2), BALL, config, lambda task: GlobalNoiseEnv(length=5))
        return [(e.episode_return, e.episode_cost) for e in result.episodes]

    np.random.seed(123)
    random.seed(123)
    first = score()
    assert np.random.rand() == np.random.RandomState(123).rand()  # the caller's global state is left as it was
    np.random.seed(99)
    random.seed(7)
    assert score() == first  # another process history, the same scores
