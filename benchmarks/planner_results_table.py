"""One table from several ``benchmarks/planner_eval.py`` JSON files (seeds pooled), as the results page prints it.

    python benchmarks/planner_results_table.py benchmarks/results/planner/final_seed23.json \\
        benchmarks/results/planner/final_seed29.json

Per condition and state source: joystick falls, planar velocity error (m/s) and its ratio to the expert's in the same
condition, waypoint success and falls, and for the nominal robot the unguided and obstacle rows. Seeds are pooled:
rates over all worlds, errors as the mean over files (every file has the same worlds per row), ratios of the pooled
errors. Below, the targets of the evaluation against the pooled figures and the relative tracking error
``mean |v - v_cmd| / mean |v_cmd|`` over the joystick rows (BeyondMimic reports 12.14 % walking in simulation, with
its own commands).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/planner_results_table.py`

from benchmarks._common import run_benchmark

Key = tuple[str, str, str]  # (condition, row name, state source)


def pooled(files: list[Path]) -> tuple[dict[Key, dict[str, float]], list[str]]:
    """Rows keyed by (condition, name, source), their figures averaged over the files; conditions in file order."""
    acc: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    conditions: list[str] = []
    for path in files:
        data = json.loads(path.read_text())
        if "rows" not in data:
            raise ValueError(f"{path}: not a planner_eval JSON (no 'rows')")
        for r in data["rows"]:
            acc[(r["condition"], r["name"], r["state_source"])].append(r)
            if r["condition"] not in conditions:
                conditions.append(r["condition"])
    out = {}
    for key, rows in acc.items():
        numeric = {k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out[key] = {
            k: sum(float(r[k]) for r in rows if r.get(k) is not None) / max(1, sum(r.get(k) is not None for r in rows))
            for k in numeric
        }
        out[key]["files"] = len(rows)
    return out, conditions


def table(rows: dict[Key, dict[str, float]], conditions: list[str]) -> list[str]:
    """Markdown lines of the pooled table and the targets."""
    sources = sorted({k[2] for k in rows if k[1] == "joystick"})
    lines = [
        "| condition | source | joystick falls | v err m/s | x expert | waypoint success | waypoint falls |",
        "|---|---|---|---|---|---|---|",
    ]
    checks = []
    track, speed = defaultdict(float), defaultdict(float)
    for c in conditions:
        expert = rows.get((c, "expert", "ground_truth"))
        if expert:
            lines.append(f"| {c} | expert | {expert['fall_rate']:.1%} | {expert['lin_err_m_per_s']:.3f} | 1 | | |")
            track["expert"] += expert["lin_err_m_per_s"]
            speed["expert"] += expert["mean_command_speed_m_per_s"]
        for s in sources:
            j, w = rows.get((c, "joystick", s)), rows.get((c, "waypoint", s))
            ratio = j["lin_err_m_per_s"] / expert["lin_err_m_per_s"] if j and expert else float("nan")
            cells = [c, s]
            cells += [f"{j['fall_rate']:.1%}", f"{j['lin_err_m_per_s']:.3f}", f"{ratio:.2f}x"] if j else ["", "", ""]
            cells += [f"{w['success_rate']:.0%}", f"{w['fall_rate']:.0%}"] if w else ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
            if j:
                track[s] += j["lin_err_m_per_s"]
                speed[s] += j["mean_command_speed_m_per_s"]
                checks.append((f"{c}, {s}: joystick falls < 5 %", j["fall_rate"] < 0.05, f"{j['fall_rate']:.1%}"))
                checks.append((f"{c}, {s}: v err <= 1.5x expert", ratio <= 1.5, f"{ratio:.2f}x"))
            if w:
                checks.append(
                    (f"{c}, {s}: waypoint success >= 90 %", w["success_rate"] >= 0.9, f"{w['success_rate']:.0%}")
                )
    lines += ["", "| nominal row | source | falls | v err m/s | success | collisions |", "|---|---|---|---|---|---|"]
    nominal = conditions[0] if conditions else "nominal"
    for name in ("unguided", "obstacles", "obstacles_off", "obstacles_direct"):
        for s in sources:
            r = rows.get((nominal, name, s))
            if r is None:
                continue
            err = f"{r['lin_err_m_per_s']:.3f}" if "lin_err_m_per_s" in r else ""
            succ = f"{r['success_rate']:.0%}" if "success_rate" in r else ""
            coll = f"{r['collision_rate']:.0%}" if r.get("collision_rate") is not None else ""
            lines.append(f"| {name} | {s} | {r['fall_rate']:.1%} | {err} | {succ} | {coll} |")
            if name == "obstacles":
                checks.append((f"obstacles, {s}: success >= 80 %", r["success_rate"] >= 0.8, succ))
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {what} | {'yes' if met else 'NO'} | {value} |" for what, met, value in checks]
    lines.append("")
    for who in ("expert", *sources):
        if speed[who] > 0:
            lines.append(
                f"relative tracking error over the joystick rows, {who}: {track[who] / speed[who]:.1%} "
                "(BeyondMimic: 12.14 % walking in simulation, its own commands)"
            )
    return lines


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    files: tyro.conf.Positional[tuple[Path, ...]]
    """planner_eval JSON files (one per seed)"""


def main(args: Args) -> int:
    """CLI entry point."""
    rows, conditions = pooled(args.files)
    print("\n".join(table(rows, conditions)))
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
