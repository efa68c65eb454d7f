"""benchmarks/planner_eval.py with both state sources: every planner row twice, each source's targets apart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_planner_eval_runs_each_state_source(tmp_path) -> None:
    from tests.training.helpers import export_tiny_planner

    planner = export_tiny_planner(tmp_path)
    out = tmp_path / "sources.json"
    args = ["--planner", str(planner), "--episodes", "2", "--seconds", "0.2", "--waypoint-seconds", "0.2"]
    args += ["--latency-calls", "5", "--rows", "expert", "joystick", "waypoint", "--conditions", "nominal"]
    args += ["--state-sources", "ground_truth", "estimator", "--num-threads", "1", "--json", str(out)]
    result = subprocess.run(
        [sys.executable, "benchmarks/planner_eval.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert payload["state_source"] == ["ground_truth", "estimator"]
    assert [(r["name"], r["state_source"]) for r in payload["rows"]] == [
        ("expert", "ground_truth"),
        ("joystick", "ground_truth"),
        ("waypoint", "ground_truth"),
        ("joystick", "estimator"),
        ("waypoint", "estimator"),
    ]
    assert set(payload["summary"]) == {"ground_truth", "estimator"}
    assert "joystick_max_expert_ratio" in payload["summary"]["estimator"]
    assert "state source: estimator" in result.stdout
    assert "| nominal [estimator]: joystick v err <= 1.5x expert |" in result.stdout
    assert "| nominal [ground_truth]: waypoint success >= 90 % | NO |" in result.stdout
