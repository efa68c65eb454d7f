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
    safe_rl = saved["safe_rl"]
    # the committed policies, every one in the DSRL environment, in algorithm order
    committed = safe_rl["committed"]
    assert [r["algorithm"] for r in committed] == sorted(
        (r["algorithm"] for r in committed), key=["bc_all", "bc_safe", "fisor"].index
    )
    assert {r["algorithm"] for r in committed} >= {"bc_all"} and all(r["episodes"] == 1 for r in committed)
    assert all(np.isfinite(r["normalized_reward"]) and r["normalized_cost"] >= 0.0 for r in committed)
    assert all(r["steps"] >= 10_000 for r in committed)  # campaign policies, not the demo's own short runs
    assert Image.open(safe_rl["plot"]).size[0] > 1000  # the reward-cost plot beside the dataset's scatter
    # then the pipeline check, labelled as such
    assert [r["algorithm"] for r in safe_rl["pipeline_check"]] == ["bc_all", "bc_safe", "fisor"]
    assert all(r["steps"] == 20 for r in safe_rl["pipeline_check"])
    text = (out / "metrics.md").read_text()
    assert "| waypoint |" in text and "| bc_all | 0 |" in text and "Pipeline check" in text
    # a folder without policy files is one clear line, not a traceback
    policies = ["--safe-rl-policies", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "training.demo", "--quick", "--parts", "safe_rl", "--out-dir", str(out), *policies],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2 and "no <algorithm>_seed<k>.pt policy files" in done.stderr
    assert "Traceback" not in done.stderr


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
