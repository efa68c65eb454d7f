"""The BCQ-Lag cost-critic probe: the discounted cost-to-go, its alignment of the critic's readings with the costs the
policy incurred episode by episode, the policy scored exactly as ``evaluate`` scores it, and its refusals."""

import numpy as np
import pytest
import torch

from benchmarks.bcq_lag_critic import Args, discounted_cost_to_go, policy_cost_critic, probe, rollouts
from envs.safe_rl import get_task, load_dsrl
from tests.training.helpers import FakeEnvFactory, run_python, train_config, write_tiny_dataset
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import evaluate, load_algorithm
from training.safe_rl.export import export_policy
from training.safe_rl.train import train


def test_discounted_cost_to_go_sums_from_each_step_to_the_end() -> None:
    assert discounted_cost_to_go(np.array([1.0, 0.0, 1.0]), 0.5).tolist() == [1.25, 0.5, 1.0]
    assert discounted_cost_to_go(np.array([0.0, 0.0]), 0.99).tolist() == [0.0, 0.0]


def test_rollouts_pair_each_step_with_its_own_critic_reading_and_realized_cost(tmp_path) -> None:
    train(train_config(write_tiny_dataset(tmp_path), tmp_path / "run", "bcq_lag", num_steps=3))
    algorithm, _ = load_algorithm(tmp_path / "run" / "checkpoints" / "last.pt")
    ball, config = get_task("BallRun"), EvalConfig(episodes=3, seeds=(4,))
    # the same episodes replayed by hand: FakeCostEnv costs 1 on a step whose first action component is > 0
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def recording_act(obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        action = type(algorithm).act(algorithm, obs, generator)
        seen.append((obs[0].numpy().copy(), action[0].numpy().copy()))
        return action

    probed = rollouts(algorithm, ball, config, horizon=4, env_factory=FakeEnvFactory(length=6))
    algorithm.act = recording_act  # type: ignore[method-assign]
    plain = evaluate(algorithm, ball, config, FakeEnvFactory(length=6)).summary()
    # reading Q_c draws no random numbers: the policy acts and scores exactly as in evaluate
    assert probed["normalized_reward"] == plain["normalized_reward"]
    assert probed["normalized_cost"] == plain["normalized_cost"]
    assert probed["episode_cost"] == plain["episode_cost"]
    assert len(seen) == 3 * 6
    policy, gamma = algorithm.policy, algorithm.policy.config.discount
    predicted, realized = [], []
    for episode in range(3):
        steps = seen[6 * episode : 6 * episode + 6]
        observations = torch.from_numpy(np.stack([o for o, _ in steps]))
        actions = torch.from_numpy(np.stack([a for _, a in steps]))
        costs = (actions[:, 0] > 0).double().numpy()
        predicted.extend(policy_cost_critic(policy, observations, actions)[:4].tolist())
        realized.extend(discounted_cost_to_go(costs, gamma)[:4].tolist())
    assert probed["q_c_visited"] == pytest.approx(np.mean(predicted), rel=1e-5)
    assert probed["cost_to_go_visited"] == pytest.approx(np.mean(realized), rel=1e-9)


def test_probe_row_reads_the_checkpoint_multiplier_threshold_and_data_critic(tmp_path) -> None:
    data_path = write_tiny_dataset(tmp_path)
    train(train_config(data_path, tmp_path / "run", "bcq_lag", num_steps=4, seed=2))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    observations = torch.from_numpy(np.asarray(load_dsrl("BallRun", path=data_path).observations, np.float32))
    # BCQ-Lag's policy file keeps every weight, the critics and the multiplier too: the same row as the checkpoint
    policy_file = export_policy(checkpoint, tmp_path / "bcq.pt")
    args = Args(dataset=data_path, checkpoints=(checkpoint, policy_file), episodes=1, horizon=2)
    row, row_of_file = probe(args, observations, get_task("BallRun"), FakeEnvFactory(length=3))
    policy = load_algorithm(checkpoint)[0].policy
    assert row["step"] == 4 and row["eval_seed"] == 2
    assert row["multiplier"] == pytest.approx(float(policy.multiplier))
    assert row["threshold"] == pytest.approx(policy.threshold)
    assert np.isfinite(row["q_c_data"]) and np.isfinite(row["q_c_visited"])
    for key in ("multiplier", "q_c_data", "q_c_visited", "cost_to_go_visited", "normalized_reward"):
        assert row_of_file[key] == row[key]


def test_probe_refuses_other_algorithms_missing_files_and_a_horizon_past_the_episode(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    train(train_config(data, tmp_path / "bcq", "bcq_lag", num_steps=2))
    train(train_config(data, tmp_path / "bc", "bc_all", num_steps=2))
    last = tmp_path / "bcq" / "checkpoints" / "last.pt"
    for path, extra, message in [
        (tmp_path / "bc" / "checkpoints" / "last.pt", [], "expected a BCQ-Lag checkpoint or policy file"),
        (tmp_path / "missing.pt", [], "missing.pt"),
        (last, ["--horizon", "100"], "expected fewer than BallRun's 100 steps"),
    ]:
        args = ["benchmarks/bcq_lag_critic.py", "--dataset", str(data), "--checkpoints", str(path), *extra]
        result = run_python(args)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr and "Traceback" not in result.stderr
