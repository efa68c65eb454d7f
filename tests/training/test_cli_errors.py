"""The training commands answer a user's mistake with one line and exit code 2, and ``--debug`` shows the traceback.

Each case is a fresh ``python -m`` process, as a user runs it; every one fails before any work starts.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEER_DEBUG": ""}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def _one_line(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert done.stderr.startswith("error: "), done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("training.planner.train", ["--data", "no/such.h5"], ["no/such.h5: no such file"]),
        ("training.safe_rl.evaluate", ["--checkpoint", "no/such.pt"], ["no/such.pt: no checkpoint there"]),
        ("training.safe_rl.train", ["--preset", "nope", "--task", "BallRun"], ["--preset: expected one of"]),
    ],
)
def test_a_missing_file_or_a_bad_option_is_one_line(module, args, expected):
    _one_line(_run(module, *args), *expected)


def test_a_file_of_the_wrong_format_is_one_line_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint\n")
    _one_line(_run("training.safe_rl.evaluate", "--checkpoint", str(bad)), "cannot read the checkpoint")
    debug = _run("training.safe_rl.evaluate", "--checkpoint", str(bad), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "CheckpointError" in debug.stderr


def test_an_unknown_option_is_refused_by_the_parser_with_the_module_as_the_program():
    done = _run("training.safe_rl.evaluate", "--checkpoint", "x.pt", "--bogus")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--bogus" in done.stderr and "python -m training.safe_rl.evaluate --help" in done.stderr
