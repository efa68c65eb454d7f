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
