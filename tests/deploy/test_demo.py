"""The demo runs end to end (quick mode) and writes what it promises."""

import json

import pytest

from deploy.demo import DemoConfig, main


@pytest.mark.slow
def test_demo_quick_writes_metrics_and_export(tmp_path) -> None:
    metrics = main(DemoConfig(quick=True, out_dir=tmp_path))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["rows"] == metrics["rows"]
    assert {(r["task"], r["guidance"]) for r in saved["rows"]} >= {("waypoint", "none"), ("joystick", "classifier")}
    assert all(r["error"] >= 0 for r in saved["rows"])
    assert saved["latency"]["p99_ms"] >= saved["latency"]["p50_ms"] > 0
    assert (tmp_path / "planner.pt").is_file() and (tmp_path / "planner.json").is_file()
