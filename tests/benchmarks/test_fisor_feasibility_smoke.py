"""The FISOR feasibility probe counts future cost per episode correctly, runs end to end (--quick), and probes
training checkpoints without changing what their policy does."""

import json

import numpy as np

from benchmarks.fisor_feasibility import Args, future_cost, probe_checkpoints, rollouts
from envs.safe_rl import get_task, load_dsrl
from tests.training.helpers import FakeEnvFactory, run_python, train_config, write_tiny_dataset
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import evaluate, load_algorithm
from training.safe_rl.export import export_policy
from training.safe_rl.train import train


def test_future_cost_restarts_at_every_episode_end(tmp_path) -> None:
    data = load_dsrl("BallRun", path=write_tiny_dataset(tmp_path, episodes=4, length=5))
    remaining, starts = future_cost(data)
    assert starts.tolist() == [0, 5, 10, 15]
    # safe episodes 0 and 2 cost nothing; odd episodes cost 1 at the even global indices (5..9: 6, 8; 15..19: 16, 18)
    expected = [0, 0, 0, 0, 0, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 1, 1, 0]
    assert remaining.tolist() == expected


def test_probe_quick_run_writes_shares_between_zero_and_one(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    out = tmp_path / "probe.json"
    result = run_python(["benchmarks/fisor_feasibility.py", "--quick", "--dataset", str(data), "--json", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    # 12 episodes of 10 steps: 6 safe, 6 costly whose last step has no cost after it
    assert "55.0% of states have zero future cost, 50.0% of episodes" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [row["step"] for row in rows] == [100, 200]
    for row in rows:
        shares = [row[k] for k in row if k.startswith("feasible")]
        assert len(shares) == 4 and all(0.0 <= s <= 1.0 for s in shares)
        assert np.all(np.diff(row["v_h_initial_quantiles"]) >= 0)


def test_checkpoint_probe_scores_the_policy_as_evaluate_does_and_counts_visited_states(tmp_path) -> None:
    train(train_config(write_tiny_dataset(tmp_path), tmp_path / "run", "fisor", num_steps=3))
    algorithm, _ = load_algorithm(tmp_path / "run" / "checkpoints" / "last.pt")
    ball, config = get_task("BallRun"), EvalConfig(episodes=2, seeds=(4,))
    probed = rollouts(algorithm, ball, config, FakeEnvFactory(length=4))
    plain = evaluate(algorithm, ball, config, FakeEnvFactory(length=4)).summary()
    # reading V_h along the way draws no random numbers: the policy acts and scores exactly as in evaluate
    assert probed["normalized_reward"] == plain["normalized_reward"]
    assert probed["normalized_cost"] == plain["normalized_cost"]
    assert 0.0 <= probed["visited_infeasible"] <= 1.0 and 0.0 <= probed["mean_abs_action"] <= 1.0


def test_checkpoint_probe_evaluates_each_run_with_its_own_seed_unless_told(tmp_path) -> None:
    """The campaign evaluates a run with its training seed; the probe must too, or it scores other episodes."""
    data_path = write_tiny_dataset(tmp_path)
    train(train_config(data_path, tmp_path / "run", "fisor", num_steps=2, seed=3))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    data, ball = load_dsrl("BallRun", path=data_path), get_task("BallRun")
    remaining, starts = future_cost(data)
    algorithm, _ = load_algorithm(checkpoint)
    # the fake environment pays 100 * (seed + 1) a step, so the score says which seed the episodes had
    for override, seed in [(None, 3), (5, 5)]:
        args = Args(dataset=data_path, checkpoints=(checkpoint,), episodes=1, eval_seed=override)
        (row,) = probe_checkpoints(args, data, ball, remaining == 0, starts, FakeEnvFactory(length=3))
        plain = evaluate(algorithm, ball, EvalConfig(episodes=1, seeds=(seed,)), FakeEnvFactory(length=3)).summary()
        assert row["eval_seed"] == seed and row["normalized_reward"] == plain["normalized_reward"]
    other = evaluate(algorithm, ball, EvalConfig(episodes=1, seeds=(0,)), FakeEnvFactory(length=3)).summary()
    assert other["normalized_reward"] != row["normalized_reward"]


def test_checkpoint_probe_refuses_policy_files_and_other_algorithms(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    train(train_config(data, tmp_path / "fisor", "fisor", num_steps=2))
    train(train_config(data, tmp_path / "bc", "bc_all", num_steps=2))
    policy = export_policy(tmp_path / "fisor" / "checkpoints" / "last.pt", tmp_path / "fisor.pt")
    for path, message in [
        (policy, "a policy file keeps only what acting reads"),
        (tmp_path / "bc" / "checkpoints" / "last.pt", "expected a FISOR training checkpoint"),
        (tmp_path / "missing.pt", "missing.pt"),
    ]:
        args = ["benchmarks/fisor_feasibility.py", "--dataset", str(data), "--checkpoints", str(path)]
        result = run_python(args)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr and "Traceback" not in result.stderr
