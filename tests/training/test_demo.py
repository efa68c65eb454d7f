"""``make demo`` (training.demo): both parts run end to end in quick mode and write what they promise."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.helpers import export_tiny_planner
from training.demo import DemoConfig, velocity_plot


def _demo(out: Path, *args: str) -> str:
    """``python -m training.demo --quick --out-dir OUT ...`` in a fresh process, as make demo runs it (MuJoCo picks
    its offscreen GL backend when first imported, which this test process has already done)."""
    cmd = [sys.executable, "-m", "training.demo", "--quick", "--out-dir", str(out), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_quick_demo_writes_metrics_plot_video_and_safe_rl_table(tmp_path) -> None:
    pytest.importorskip("imageio.v2", reason="the video needs the video extra")
    (tmp_path / "planner").mkdir()
    planner = export_tiny_planner(tmp_path / "planner")
    out = tmp_path / "demo"
    stdout = _demo(out, "--planner", str(planner))
    assert f"written: {out / 'metrics.md'}" in stdout
    saved = json.loads((out / "metrics.json").read_text())
    joy = saved["planner"]["joystick"]
    assert joy["script_seconds"] == pytest.approx(2.0)
    assert joy["seconds"] <= joy["script_seconds"] and joy["lin_err_m_per_s"] >= 0.0
    assert joy["plan_ms_p99"] >= joy["plan_ms_p50"] > 0.0
    assert [r["name"] for r in saved["planner"]["navigation"]] == ["waypoint", "obstacles"]
    # the demo drives the planner from the base-state estimator, as on a real G1, and says so in every row
    assert saved["planner"]["state_source"] == "estimator"
    assert {r["state_source"] for r in saved["planner"]["navigation"]} == {"estimator"}
    assert Image.open(out / "planner" / "velocity.png").size[0] > 100
    assert (out / "planner" / "joystick.mp4").stat().st_size > 1000
    rows = saved["safe_rl"]
    assert [r["algorithm"] for r in rows] == ["bc_all", "bc_safe", "fisor"]
    assert all(np.isfinite(r["normalized_reward"]) and r["normalized_cost"] >= 0.0 for r in rows)
    text = (out / "metrics.md").read_text()
    assert "| waypoint |" in text and "| fisor |" in text
    # a second run reuses the generated dataset and starts the training runs afresh
    stdout = _demo(out, "--parts", "safe_rl")
    assert "reusing" in stdout
    assert len(list((out / "safe_rl" / "datasets").glob("*.hdf5"))) == 1
    assert [r["algorithm"] for r in json.loads((out / "metrics.json").read_text())["safe_rl"]] == [
        "bc_all",
        "bc_safe",
        "fisor",
    ]


def test_velocity_plot_draws_both_series(tmp_path) -> None:
    t = np.arange(200) * 0.02
    commanded = np.stack([np.where(t > 1.0, 0.5, 0.0), np.zeros_like(t), np.zeros_like(t)], axis=1)
    achieved = commanded + 0.05
    path = velocity_plot(tmp_path / "v.png", commanded, achieved, 0.02, "test")
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    assert ((pixels == (30, 90, 200)).all(axis=1)).sum() > 100  # achieved (blue)
    assert ((pixels == (90, 90, 90)).all(axis=1)).sum() > 100  # commanded (grey)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="parts"):
        DemoConfig(parts=("planner", "dance"))
    with pytest.raises(ValueError, match="script"):
        DemoConfig(script=((0.0, 0.1, 0.0, 0.0),))
