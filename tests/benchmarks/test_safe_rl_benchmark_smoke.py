"""The safe-RL benchmark runs end to end (--quick) on a tiny BallRun-shaped file and writes the JSON it prints."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.safe_rl_benchmark import keep_checkpoint, training_curve
from tests.training.helpers import run_python, write_tiny_dataset
from training.safe_rl.checkpoint import load_checkpoint


@pytest.mark.slow  # ~15 s: four trainings and four episodes in the real BallRun environment
def test_safe_rl_benchmark_quick_writes_every_algorithm(tmp_path) -> None:
    for module in ("pybullet", "bullet_safety_gym", "dsrl"):
        pytest.importorskip(module)
    data = write_tiny_dataset(tmp_path)
    out = tmp_path / "bench.json"
    args = ["benchmarks/safe_rl_benchmark.py", "--quick", "--dataset", str(data), "--json", str(out)]
    result = run_python([*args, "--out-dir", str(tmp_path / "runs")])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["algorithm"]: row for row in json.loads(out.read_text())["rows"]}
    assert sorted(rows) == ["bc_all", "bc_safe", "bcq_lag", "fisor"]
    for row in rows.values():
        assert math.isfinite(row["normalized_reward"]) and row["normalized_cost"] >= 0.0
        assert row["per_seed"][0]["length"] == 100  # one whole BallRun episode
    assert rows["fisor"]["published_reward"] == 0.18 and rows["bc_safe"]["published"] is None
    assert "published r / c" in result.stdout and "fisor" in result.stdout


@pytest.mark.slow
def test_a_rerun_reuses_finished_runs_and_continues_to_more_steps(tmp_path) -> None:
    for module in ("pybullet", "bullet_safety_gym", "dsrl"):
        pytest.importorskip(module)
    data = write_tiny_dataset(tmp_path)
    root = tmp_path / "runs"

    def bench(steps: int) -> dict:
        out = tmp_path / f"bench{steps}.json"
        args = ["--quick", "--dataset", str(data), "--algorithms", "bc_all", "--steps", str(steps), "--json", str(out)]
        result = run_python(
            ["benchmarks/safe_rl_benchmark.py", *args, "--run-root", str(root), "--checkpoint-every", "5"]
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(out.read_text())["rows"][0]["per_seed"][0]

    first = bench(10)
    assert first["steps"] == 10 and first["steps_trained_now"] == 10
    # quick runs log every step
    assert (
        first["training_curve"]["step"] == list(range(1, 11)) and len(first["training_curve"]["train/actor_loss"]) == 10
    )
    more = bench(20)  # continues the same run from its step-10 checkpoint
    assert more["steps"] == 20 and more["steps_trained_now"] == 10
    assert more["training_curve"]["step"] == list(range(1, 21))  # both calls' rows
    again = bench(20)  # finished: reused as it is
    assert again == more
    assert sorted(p.name for p in (root / "bc_all_seed0").glob("result_*.json")) == ["result_10.json", "result_20.json"]
    assert sorted(p.name for p in (root / "bc_all_seed0" / "policies").glob("*.pt")) == ["step_10.pt", "step_20.pt"]
    # each rung's full training state stays, though last.pt moved on: the step-10 one still holds step 10
    checkpoints = root / "bc_all_seed0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.pt")) == ["last.pt", "step_10.pt", "step_20.pt"]
    assert load_checkpoint(checkpoints / "step_10.pt")["step"] == 10
    assert load_checkpoint(checkpoints / "step_20.pt")["step"] == load_checkpoint(checkpoints / "last.pt")["step"] == 20


def test_training_curve_thins_to_a_grid_keeps_the_last_row_and_stops_at_the_rung(tmp_path) -> None:
    metrics = tmp_path / "metrics.csv"
    rows = ["step,name,value"]
    for step in range(10, 260, 10):
        rows += [f"{step},train/multiplier,{step / 7}", f"{step},timing/steps_per_s,9.5"]
    rows += ["240,train/multiplier,-1.0", "200,eval/normalized_cost,0.5"]  # a resumed run's rewrite wins
    metrics.write_text("\n".join(rows) + "\n")
    curve = training_curve(metrics, steps=250, points=5)  # grid: every 50 steps
    assert list(curve) == ["step", "eval/normalized_cost", "train/multiplier"]  # timing rows are not in it
    assert curve["step"] == [50, 100, 150, 200, 250]
    assert curve["train/multiplier"] == [7.14286, 14.2857, 21.4286, 28.5714, 35.7143]
    assert curve["eval/normalized_cost"] == [None, None, None, 0.5, None]
    rung = training_curve(metrics, steps=240, points=4)  # a lower rung: rows past it are left out, its last one kept
    assert rung["step"] == [60, 120, 180, 240] and rung["train/multiplier"][-1] == -1.0
    assert training_curve(tmp_path / "missing.csv", steps=250) == {}


def test_keep_checkpoint_links_copies_where_links_fail_and_replaces_an_older_one(tmp_path, monkeypatch) -> None:
    last, kept = tmp_path / "last.pt", tmp_path / "step_5.pt"
    last.write_bytes(b"step 5")
    kept.write_bytes(b"an older run's step 5")
    assert keep_checkpoint(last, kept) == kept and kept.read_bytes() == b"step 5"
    assert os.path.samefile(last, kept)  # a hard link: no second copy on disk
    # the trainer renames a new file over last.pt: the kept state is untouched
    new = tmp_path / "new.pt"
    new.write_bytes(b"step 10")
    os.replace(new, last)
    assert kept.read_bytes() == b"step 5"

    def no_links(src: object, dst: object) -> None:
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    copied = keep_checkpoint(last, tmp_path / "step_10.pt")
    assert copied.read_bytes() == b"step 10" and not os.path.samefile(last, copied)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_10.pt", "step_5.pt"]  # no temporary left


@pytest.mark.slow
def test_campaign_records_land_in_the_results_dir_and_the_table_reads_them(tmp_path) -> None:
    for module in ("pybullet", "bullet_safety_gym", "dsrl"):
        pytest.importorskip(module)
    data = write_tiny_dataset(tmp_path)
    results = tmp_path / "records"
    args = ["benchmarks/safe_rl_benchmark.py", "--quick", "--dataset", str(data), "--algorithms", "bc_all"]
    args += ["--seeds", "0", "1", "--steps", "10", "--run-root", str(tmp_path / "runs"), "--results-dir", str(results)]
    result = run_python(args)
    assert result.returncode == 0, result.stderr[-3000:]
    records = sorted((results / "BallRun").glob("*.json"))
    assert [p.name for p in records] == ["bc_all_seed0_10.json", "bc_all_seed1_10.json"]
    record = json.loads(records[0].read_text())
    assert record["task"] == "BallRun" and record["algorithm"] == "bc_all" and record["steps"] == 10
    assert len(record["dataset_sha256"]) == 64 and record["commit"] and "--results-dir" in record["command"]
    assert record["machine"]["cpu_count"] >= 1
    # a finished run whose record was lost writes it again from its result file, without training
    records[1].unlink()
    result = run_python(args)
    assert result.returncode == 0 and "wrote" in result.stdout and records[1].is_file()
    assert json.loads(records[1].read_text())["steps_trained_now"] == 10  # the original run's, not a new one
    # the table: mean over the recorded seeds, marked as short of the planned three
    table = run_python(
        ["benchmarks/safe_rl_table.py", "--results-dir", str(results), "--json", str(tmp_path / "t.json")]
    )
    assert table.returncode == 0, table.stderr[-3000:]
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    rewards = [json.loads(p.read_text())["normalized_reward"] for p in records]
    assert len(rows) == 1 and rows[0]["seeds"] == [0, 1]
    assert rows[0]["normalized_reward"] == pytest.approx(sum(rewards) / 2)
    assert "(2/3 seeds)" in table.stdout and "0.67 / 11.38" in table.stdout
    missing = run_python(["benchmarks/safe_rl_table.py", "--results-dir", str(tmp_path / "none")])
    assert missing.returncode == 2 and "no campaign records there" in missing.stderr


@pytest.mark.slow
def test_the_campaign_script_runs_a_ladder_and_records_each_rung(tmp_path) -> None:
    for module in ("pybullet", "bullet_safety_gym", "dsrl"):
        pytest.importorskip(module)
    root = Path(__file__).resolve().parents[2]
    data = write_tiny_dataset(tmp_path)
    env = {**os.environ, "PYTHON": sys.executable, "LADDER": "4 8", "RESULTS_DIR": str(tmp_path / "records")}
    env["THREADS"] = "2"
    args = ["bash", "benchmarks/safe_rl_campaign.sh", str(data), str(tmp_path / "runs"), "bc_all", "1"]
    done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = sorted(p.name for p in (tmp_path / "records" / "BallRun").glob("*.json"))
    assert records == ["bc_all_seed1_4.json", "bc_all_seed1_8.json"]
    assert sorted(p.name for p in (tmp_path / "runs" / "bc_all_seed1" / "policies").glob("*.pt")) == [
        "step_4.pt",
        "step_8.pt",
    ]
    second = json.loads((tmp_path / "records" / "BallRun" / "bc_all_seed1_8.json").read_text())
    assert second["steps_trained_now"] == 4 and second["episodes"] == 20  # the second rung continued the first run
    assert "--threads 2" in second["command"]  # THREADS reaches the benchmark and its record
    bad = subprocess.run(["bash", "benchmarks/safe_rl_campaign.sh", str(data), str(tmp_path), "dance", "0"], cwd=root)
    assert bad.returncode == 2
