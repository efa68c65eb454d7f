"""Benchmarks do not rot: each runs a tiny configuration and writes the JSON it prints.

These check that the scripts work, not how fast anything is (speed targets live in the scripts themselves).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_planner_latency_runs_and_writes_json(tmp_path) -> None:
    out = tmp_path / "lat.json"
    result = _run(
        [
            "benchmarks/planner_latency.py",
            "--quick",
            "--models",
            "mlp",
            "--plans",
            "3",
            "--warmup",
            "1",
            "--json",
            str(out),
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data and "p99" in result.stdout


@pytest.mark.slow
def test_sim_throughput_runs_and_writes_json(tmp_path) -> None:
    out = tmp_path / "sim.json"
    result = _run(["benchmarks/sim_throughput.py", "--quick", "--num-envs", "8", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(out.read_text())


def test_policy_backends_runs_and_reports_parity(tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    out = tmp_path / "backends.json"
    result = _run(["benchmarks/policy_backends.py", "--calls", "50", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["row"] for r in data["rows"]] == ["torchscript", "onnxruntime"]
    assert data["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_expert_eval_runs_and_writes_json(tmp_path) -> None:
    from tests.training.test_locomotion_data import export_policy

    policy = export_policy(tmp_path / "expert")
    out = tmp_path / "eval.json"
    args = ["--policy", str(policy), "--episodes", "2", "--episode-length-s", "0.2", "--json", str(out)]
    result = _run(["benchmarks/expert_eval.py", *args, "--rows", "nominal", "latency 10 ms", "--check"])
    assert result.returncode == 1, result.stderr[-2000:]  # a standing policy misses the tracking targets
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["nominal", "latency 10 ms"]
    assert all(r["fall_rate"] == 0.0 and not r["ok"] for r in rows)
    assert "MISS" in result.stdout


@pytest.mark.slow
def test_planner_eval_runs_and_writes_json(tmp_path) -> None:
    from tests.training.helpers import export_tiny_planner

    planner = export_tiny_planner(tmp_path)
    out = tmp_path / "planner.json.out"
    args = [
        "--planner",
        str(planner),
        "--episodes",
        "2",
        "--seconds",
        "0.2",
        "--waypoint-seconds",
        "0.2",
        "--latency-calls",
        "5",
        "--seed",
        "9",
        "--conditions",
        "nominal",
        "latency 10 ms",
        "--json",
        str(out),
    ]
    result = _run(["benchmarks/planner_eval.py", *args, "--check"])
    assert result.returncode == 1, result.stderr[-2000:]  # an untrained planner reaches no waypoint
    payload = json.loads(out.read_text())
    assert [r["name"] for r in payload["rows"]][:3] == ["expert", "joystick", "unguided"]
    latency_rows = [r["name"] for r in payload["rows"] if r["condition"] == "latency 10 ms"]
    assert latency_rows == ["expert", "joystick", "waypoint"]
    assert payload["seed"] == 9 and payload["state_source"] == "estimator"  # the default source
    assert payload["latency_ms"]["p99_ms"] > 0.0 and any(not t["met"] for t in payload["targets"])
    assert "| nominal: waypoint success >= 90 % | NO |" in result.stdout
    assert "| latency 10 ms: joystick v err <= 1.5x expert |" in result.stdout
    assert "mean |v - v_cmd| / mean |v_cmd|" in result.stdout


@pytest.mark.slow
def test_planner_eval_keepout_rows_time_the_term_and_check_entries(tmp_path) -> None:
    from tests.training.helpers import export_tiny_keepout_planner

    planner = export_tiny_keepout_planner(tmp_path)
    out = tmp_path / "keepout.json"
    args = ["--planner", str(planner), "--episodes", "2", "--waypoint-seconds", "0.2", "--latency-calls", "5"]
    args += ["--rows", "keepout", "keepout_feasibility", "--conditions", "nominal", "--json", str(out)]
    result = _run(["benchmarks/planner_eval.py", *args])
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert [r["name"] for r in payload["rows"]] == ["keepout", "keepout_feasibility"]
    assert payload["latency_ms"]["with_keepout"]["p99_ms"] > 0.0
    assert "| nominal: no keep-out entry with the term | yes | 0 % (without: 0 %) |" in result.stdout


@pytest.mark.slow
def test_planner_tradeoff_runs_every_configuration(tmp_path) -> None:
    from tests.training.helpers import tiny_planner_model

    model = tiny_planner_model(tmp_path / "planner_model.pt")
    out = tmp_path / "tradeoff.json"
    args = ["--model", str(model), "--steps", "3", "2", "--rolling", "0", "1", "--guidance", "x0:1", "none:0"]
    result = _run(["benchmarks/planner_tradeoff.py", *args, "--quick", "--seconds", "0.2", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    # 2 step counts x 2 warm starts x 2 guidance settings
    assert [(r["steps"], r["rolling_start"], r["guidance"]) for r in rows][:4] == [
        (3, 0, "x0 1"),
        (3, 0, "none 0"),
        (3, 1, "x0 1"),
        (3, 1, "none 0"),
    ]
    assert len(rows) == 8 and all(r["passes"] == r["steps"] - r["rolling_start"] for r in rows)
    assert rows[0]["p99_vs_ref"] == 1.0 and all(r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)
    assert "| DDIM steps |" in result.stdout


@pytest.mark.slow
def test_planner_bc_probe_runs_both_probes_and_scores_the_planner(tmp_path) -> None:
    from tests.training.helpers import tiny_planner_model, write_random_planner_dataset

    data = write_random_planner_dataset(tmp_path / "data.h5", episodes=6, steps=40)
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    out = tmp_path / "probe.json"
    args = ["--data", str(data), "--planner-model", str(model), "--quick", "--seconds", "0.5"]
    result = _run(["benchmarks/planner_bc_probe.py", *args, "--episode-seconds", "0.2", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert [r["model"] for r in payload["rows"]] == ["MLP probe", "MLP probe + command"]
    assert all(r["fit_steps"] > 0 and r["val_leg_rmse"] > 0 and 0 <= r["fall_rate"] <= 1 for r in payload["rows"])
    assert set(payload["planner"]) == {"x_T = 0", "x_T ~ N(0, I)"}


def test_safe_rl_step_runs_every_algorithm_and_writes_json(tmp_path) -> None:
    out = tmp_path / "step.json"
    result = _run(["benchmarks/safe_rl_step.py", "--quick", "--threads", "1", "--steps", "1", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ["fisor fp32", "fisor bf16", "bc_all", "bc_safe", "bcq_lag"]
    assert rows[0]["ratio"] == 1.0 and all(r["ms_per_step"] > 0 for r in rows)
    assert rows[1]["config"]["actor_precision"] == "bf16" and "vs fisor fp32" in result.stdout


@pytest.mark.slow
def test_planner_support_scores_both_drivers_per_condition(tmp_path) -> None:
    from tests.training.helpers import export_tiny_planner, write_random_planner_dataset

    planner = export_tiny_planner(tmp_path)
    data = write_random_planner_dataset(tmp_path / "d.h5", episodes=40, steps=30)
    out = tmp_path / "support.json"
    args = ["--planner", str(planner), "--data", str(data), "--episodes", "2", "--seconds", "0.2"]
    args += ["--conditions", "nominal", "mass x1.2", "--support-states", "500", "--json", str(out)]
    result = _run(["benchmarks/planner_support.py", *args])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["condition"], r["driver"]) for r in rows] == [
        ("nominal", "expert"),
        ("nominal", "planner"),
        ("mass x1.2", "expert"),
        ("mass x1.2", "planner"),
    ]
    for r in rows:
        assert r["first_action_leg_rmse"] > 0.0 and 0.0 <= r["outside_support"] <= 1.0
        assert r["median_nn_distance"] > 0.0  # no simulated state equals a random one


def test_nearest_distance_is_exact() -> None:
    import numpy as np
    import torch

    from benchmarks.planner_support import nearest_distance

    support = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    queries = np.array([[0.0, 1.0], [3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_allclose(nearest_distance(queries, support, chunk=2), [1.0, 0.0, 5.0])


def test_tracking_bias_fit_recovers_bias_and_gains() -> None:
    import numpy as np

    from benchmarks.planner_tracking_bias import fit_axes

    rng = np.random.default_rng(0)
    command = rng.uniform(-1.0, 1.0, (500, 3))
    error = np.stack([0.02 - 0.1 * command[:, 0], -0.08 - 0.3 * command[:, 1] + 0.05 * command[:, 2]], axis=1)
    fit = fit_axes(command, error)
    np.testing.assert_allclose(fit["bias"], [0.02, -0.08], atol=1e-4)
    np.testing.assert_allclose(fit["gain_vx"], [-0.1, 0.0], atol=1e-4)
    np.testing.assert_allclose(fit["gain_vy"], [0.0, -0.3], atol=1e-4)
    np.testing.assert_allclose(fit["gain_yaw"], [0.0, 0.05], atol=1e-4)


@pytest.mark.slow
def test_planner_tracking_bias_rows_for_the_expert_and_the_plan(tmp_path) -> None:
    from tests.training.helpers import export_tiny_planner

    planner = export_tiny_planner(tmp_path)
    out = tmp_path / "bias.json"
    args = ["--planners", str(planner), "--episodes", "2", "--seconds", "3", "--json", str(out)]
    result = _run(["benchmarks/planner_tracking_bias.py", *args])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["expert", str(planner)]
    assert "plan" not in rows[0] and len(rows[1]["plan"]["bias"]) == 2 and len(rows[1]["robot"]["bias"]) == 3
    too_short = _run(["benchmarks/planner_tracking_bias.py", "--seconds", "2"])
    assert too_short.returncode != 0 and "--seconds" in too_short.stderr


def test_planner_results_table_pools_seeds(tmp_path) -> None:
    from benchmarks.planner_results_table import pooled, table

    def row(name, cond, source, **kw):
        return {"name": name, "condition": cond, "state_source": source, "fall_rate": 0.0, **kw}

    files = []
    for i, (err, falls) in enumerate(((0.2, 0.0), (0.3, 0.25))):
        rows = [
            row("expert", "nominal", "ground_truth", lin_err_m_per_s=0.1, mean_command_speed_m_per_s=0.5),
            row("joystick", "nominal", "estimator", lin_err_m_per_s=err, mean_command_speed_m_per_s=0.5),
            row("waypoint", "nominal", "estimator", success_rate=1.0 - falls, fall_rate=falls),
        ]
        files.append(tmp_path / f"s{i}.json")
        files[-1].write_text(json.dumps({"rows": rows}))
    rows, conditions = pooled(files)
    assert rows[("nominal", "joystick", "estimator")]["lin_err_m_per_s"] == pytest.approx(0.25)
    lines = table(rows, conditions)
    assert "| nominal | estimator | 0.0% | 0.250 | 2.50x | 88% | 12% |" in lines
    assert "| nominal, estimator: v err <= 1.5x expert | NO | 2.50x |" in lines
    assert any("estimator: 50.0%" in line for line in lines)  # 0.25 m/s over a 0.5 m/s mean command
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a planner_eval JSON"):
        pooled([tmp_path / "bad.json"])


@pytest.mark.slow
def test_planner_state_ablation_rows(tmp_path) -> None:
    from tests.training.helpers import export_tiny_planner

    planner = export_tiny_planner(tmp_path)
    out = tmp_path / "ablation.json"
    args = ["--planner", str(planner), "--quick", "--seconds", "1.5", "--condition", "nominal", "--json", str(out)]
    result = _run(["benchmarks/planner_state_ablation.py", *args])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["source"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["ground_truth", "estimator", "estimator, ideal sensors", "estimator, true velocity"]
    assert "velocity_rmse_m_per_s" not in rows["ground_truth"]
    assert rows["estimator"]["velocity_rmse_m_per_s"] > 0.0  # a filter never matches the simulator exactly
    assert rows["estimator, true velocity"]["velocity_rmse_m_per_s"] == 0.0  # the true velocity was handed in
