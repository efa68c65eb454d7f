"""Samples to walking of the committed G1 expert: env steps (and training wall time) along its training lineage until
the periodic deterministic evaluation first met each milestone.

    python benchmarks/samples_to_walking.py [--lineage assets/g1_walk/history/lineage.json] [--json PATH]

The expert was trained in phases, each started from the previous phase's weights at a branch iteration
(``lineage.json``). The phases' ``eval.csv`` rows (the trainer's periodic evaluation: 32 episodes x 10 s, the
benchmark's command ranges, nominal physics, every 25 iterations) are laid end to end, each cut at its branch point,
and the first row that meets a milestone gives its env steps. Milestones: fall rate < 5 %; and with it mean planar
velocity error < 0.3, 0.25, 0.2 and 0.15 m/s (0.15 is the expert's target); and yaw-rate error < 0.2 rad/s. Wall time
is the trainer's own (``metrics.csv``), summed over the phases as they were run (different thread counts and machine
loads), so it is indicative only. The lineage is not one fixed recipe: the env steps are what this expert cost,
not what the final recipe would cost from scratch.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, run_benchmark, write_json

DEFAULT_LINEAGE = Path(__file__).resolve().parent.parent / "assets" / "g1_walk" / "history" / "lineage.json"


@dataclass(frozen=True)
class EvalRow:
    """One periodic evaluation placed on the lineage."""

    phase: str
    iteration: int
    env_steps: int
    """Env steps since the lineage began."""
    wall_h: float
    """Training wall hours since the lineage began (as run)."""
    fall_rate: float
    lin_err: float
    yaw_err: float


@dataclass(frozen=True)
class Milestone:
    """A condition on a periodic evaluation."""

    name: str
    max_lin_err: float = float("inf")
    max_yaw_err: float = float("inf")
    max_fall_rate: float = 0.05

    def met(self, row: EvalRow) -> bool:
        """True when ``row`` meets every bound."""
        return row.fall_rate < self.max_fall_rate and row.lin_err < self.max_lin_err and row.yaw_err < self.max_yaw_err


MILESTONES = (
    Milestone("fall < 5 %"),
    Milestone("+ v err < 0.30", max_lin_err=0.30),
    Milestone("+ v err < 0.25", max_lin_err=0.25),
    Milestone("+ v err < 0.20", max_lin_err=0.20),
    Milestone("+ v err < 0.15 (target)", max_lin_err=0.15),
    Milestone("+ yaw err < 0.2 (target)", max_yaw_err=0.2),
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: listed in the lineage but missing")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def lineage_rows(manifest: Path) -> list[EvalRow]:
    """Every periodic evaluation of the lineage in ``manifest``, in training order, with lineage-wide env steps."""
    data = json.loads(manifest.read_text())
    try:
        per_iteration = int(data["env_steps_per_iteration"])
        phases = data["phases"]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{manifest}: expected 'env_steps_per_iteration' and 'phases' ({err})") from None
    rows: list[EvalRow] = []
    steps_before, wall_before = 0, 0.0
    for k, phase in enumerate(phases):
        until = phase.get("until")
        if until is None and k != len(phases) - 1:
            raise ValueError(f"{manifest}: phase {phase.get('name')!r} has no 'until' but is not the last")
        wall = {int(r["iteration"]): float(r["wall_s"]) for r in _read_csv(manifest.parent / phase["metrics"])}
        last = until if until is not None else max(wall, default=0)
        if last not in wall:
            raise ValueError(f"{manifest}: phase {phase['name']!r} has no metrics row for iteration {last}")
        for r in _read_csv(manifest.parent / phase["eval"]):
            it = int(r["iteration"])
            if it > last:
                break
            rows.append(
                EvalRow(
                    phase=phase["name"],
                    iteration=it,
                    env_steps=steps_before + it * per_iteration,
                    wall_h=(wall_before + wall.get(it, float("nan"))) / 3600.0,
                    fall_rate=float(r["fall_rate"]),
                    lin_err=float(r["lin_err"]),
                    yaw_err=float(r["yaw_err"]),
                )
            )
        steps_before += last * per_iteration
        wall_before += wall[last]
    return rows


def first_met(rows: list[EvalRow], milestone: Milestone) -> EvalRow | None:
    """The earliest row that meets ``milestone`` (None: never)."""
    return next((r for r in rows if milestone.met(r)), None)


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    lineage: Path = DEFAULT_LINEAGE
    """lineage manifest (JSON)"""


def main(args: Args) -> int:
    rows = lineage_rows(args.lineage)
    total = rows[-1] if rows else None
    print(
        f"samples to walking along {args.lineage} ({len(rows)} evaluations"
        + (f", {total.env_steps / 1e6:.1f} M env steps to the last)" if total else ")")
    )
    f3 = "{:.3f}".format
    table = Table(
        [
            Column("milestone", "milestone", 26),
            Column("phase", "phase", 5),
            Column("iteration", "iter", 5),
            Column("env_steps_m", "M steps", 8, "{:.2f}".format),
            Column("wall_h", "wall h", 6, "{:.1f}".format),
            Column("fall_rate", "fall", 6, lambda v: f"{100 * v:.0f}%"),
            Column("lin_err", "v err", 6, f3),
            Column("yaw_err", "wz err", 6, f3),
        ]
    )
    table.header()
    out = []
    for m in MILESTONES:
        hit = first_met(rows, m)
        row = {"milestone": m.name}
        if hit is not None:
            row.update(
                phase=hit.phase,
                iteration=hit.iteration,
                env_steps_m=hit.env_steps / 1e6,
                wall_h=hit.wall_h,
                fall_rate=hit.fall_rate,
                lin_err=hit.lin_err,
                yaw_err=hit.yaw_err,
            )
        table.row(row)
        out.append(row)
    if args.json:
        write_json(args.json, {"machine": machine_info(), "lineage": str(args.lineage), "rows": out})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
