"""The FISOR feasibility probe counts future cost per episode correctly and runs end to end (--quick)."""

import json

import numpy as np

from benchmarks.fisor_feasibility import future_cost
from envs.safe_rl import load_dsrl
from tests.training.helpers import run_python, write_tiny_dataset


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
