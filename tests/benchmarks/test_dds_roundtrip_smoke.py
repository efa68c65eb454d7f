"""The DDS round-trip benchmark runs end to end (robot double in a subprocess) and writes the rows it prints."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("cyclonedds", reason="needs cyclonedds 0.10.2: run .ci/install_cyclonedds.sh")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dds_roundtrip_quick_runs_and_writes_json(tmp_path) -> None:
    out = tmp_path / "dds.json"
    args = [sys.executable, "benchmarks/dds_roundtrip.py", "--quick", "--messages", "50", "--json", str(out)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ["tick", "echo"]
    for row in rows:
        assert row["lost"] < row["messages"] / 2 and 0.0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert not row["damping"]
    assert "p99" in result.stdout


@pytest.mark.slow
def test_loop_timing_runs_on_the_dds_double(tmp_path) -> None:
    out = tmp_path / "lt.json"
    args = [sys.executable, "benchmarks/loop_timing.py", "--backend", "dds", "--duration-s", "2", "--json", str(out)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["row"], r["backend"]) for r in rows] == [("unloaded", "dds"), ("loaded", "dds")]
    assert all(r["ticks"] >= 90 for r in rows)
