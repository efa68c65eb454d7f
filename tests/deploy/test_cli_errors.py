"""The deploy commands answer a user's mistake with one line and exit code 2; the planner export never overwrites
the committed planner unless told to."""

import os
import subprocess
import sys
from pathlib import Path

from deploy.export_planner import ExportPlannerConfig

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEER_DEBUG": ""}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def test_the_default_export_leaves_the_committed_planner_alone():
    assert ExportPlannerConfig().out.resolve() != (ROOT / "assets" / "g1_planner" / "planner.pt").resolve()
    assert ExportPlannerConfig().out.parent.name == "export"  # the run folder's export/


def test_a_missing_model_is_one_line_and_debug_shows_the_traceback(tmp_path):
    args = ("--model", "no/such.pt", "--out", str(tmp_path / "p.pt"))
    done = _run("deploy.export_planner", *args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert done.stderr.startswith("error: no/such.pt: no planner model")
    debug = _run("deploy.export_planner", *args, "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_a_run_folder_without_an_actor_is_one_line(tmp_path):
    done = _run("deploy.import_expert", "--run-dir", str(tmp_path), "--out-dir", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "export/actor.pt: missing" in done.stderr and "Traceback" not in done.stderr
