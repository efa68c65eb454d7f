"""Samples to walking: phases are laid end to end at their branch points and the first evaluation meeting a
milestone is found; the committed expert's lineage reads."""

import json

import pytest

from benchmarks.samples_to_walking import DEFAULT_LINEAGE, MILESTONES, Milestone, first_met, lineage_rows


def _phase(folder, name, evals, last_iteration):
    (folder / f"{name}_eval.csv").write_text(
        "iteration,env_steps,fall_rate,lin_err,yaw_err,ok\n"
        + "".join(f"{it},{it * 10},{fall},{lin},{yaw},False\n" for it, fall, lin, yaw in evals)
    )
    (folder / f"{name}_metrics.csv").write_text(
        "iteration,env_steps,wall_s\n" + "".join(f"{it},{it * 10},{36.0 * it}\n" for it in range(1, last_iteration + 1))
    )


def test_phases_are_cut_at_their_branch_points(tmp_path):
    _phase(tmp_path, "a", [(2, 0.5, 0.9, 0.9), (4, 0.0, 0.4, 0.5), (6, 0.0, 0.1, 0.1)], 6)
    _phase(tmp_path, "b", [(2, 0.0, 0.3, 0.3), (4, 0.0, 0.18, 0.3)], 4)
    manifest = tmp_path / "lineage.json"
    phases = [
        {"name": "A", "eval": "a_eval.csv", "metrics": "a_metrics.csv", "until": 4},  # its iteration-6 row is cut
        {"name": "B", "eval": "b_eval.csv", "metrics": "b_metrics.csv", "until": None},
    ]
    manifest.write_text(json.dumps({"env_steps_per_iteration": 100, "phases": phases}))
    rows = lineage_rows(manifest)
    assert [(r.phase, r.iteration, r.env_steps) for r in rows] == [
        ("A", 2, 200),
        ("A", 4, 400),
        ("B", 2, 600),
        ("B", 4, 800),
    ]
    assert rows[-1].wall_h == pytest.approx((4 * 36.0 + 4 * 36.0) / 3600.0)
    assert first_met(rows, Milestone("up")).iteration == 4 and first_met(rows, Milestone("up")).phase == "A"
    hit = first_met(rows, Milestone("walks", max_lin_err=0.2))
    assert (hit.phase, hit.env_steps) == ("B", 800)
    assert first_met(rows, Milestone("turns", max_yaw_err=0.2)) is None

    phases[0]["until"] = None
    manifest.write_text(json.dumps({"env_steps_per_iteration": 100, "phases": phases}))
    with pytest.raises(ValueError, match="has no 'until' but is not the last"):
        lineage_rows(manifest)
    phases[0]["until"], phases[0]["eval"] = 4, "missing.csv"
    manifest.write_text(json.dumps({"env_steps_per_iteration": 100, "phases": phases}))
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        lineage_rows(manifest)


def test_committed_lineage_reads_in_order():
    rows = lineage_rows(DEFAULT_LINEAGE)
    steps = [r.env_steps for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert first_met(rows, MILESTONES[0]) is not None  # the committed expert stopped falling along the way
