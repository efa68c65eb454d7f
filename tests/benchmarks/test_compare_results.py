"""benchmarks/compare_results.py: timing and paths aside, any differing figure is reported and fails the check."""

import json

from tests.training.helpers import run_python


def _write(path, **row):
    base = {"machine": {"cpu": "x", "load_average_1min": 1.0}, "policy": "/a/policy.pt"}
    path.write_text(json.dumps({**base, "rows": [{"fall_rate": 0.0, "lin_err_m_per_s": 0.2, "p99_ms": 3.0, **row}]}))
    return str(path)


def test_timing_and_paths_may_differ_figures_may_not(tmp_path) -> None:
    a = _write(tmp_path / "a.json")
    b = _write(tmp_path / "b.json", p99_ms=9.0)
    (tmp_path / "c.json").write_text((tmp_path / "b.json").read_text().replace("/a/policy.pt", "/b/policy.pt"))
    same = run_python(["benchmarks/compare_results.py", a, str(tmp_path / "c.json")])
    assert same.returncode == 0 and "agree" in same.stdout
    worse = _write(tmp_path / "d.json", lin_err_m_per_s=0.21, fall_rate=float("nan"))
    diff = run_python(["benchmarks/compare_results.py", b, worse])
    assert diff.returncode == 1
    assert "/rows[0]/lin_err_m_per_s: 0.2 against 0.21" in diff.stdout and "/rows[0]/fall_rate" in diff.stdout
    nan = _write(tmp_path / "e.json", lin_err_m_per_s=0.21, fall_rate=float("nan"))
    assert run_python(["benchmarks/compare_results.py", worse, nan]).returncode == 0  # NaN equals NaN
    missing = run_python(["benchmarks/compare_results.py", a, str(tmp_path / "none.json")])
    assert missing.returncode == 2 and "none.json" in missing.stderr
