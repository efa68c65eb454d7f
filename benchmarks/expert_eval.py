"""G1 walking expert: fall rate and velocity tracking, nominal and sim-to-sim (physics step, latency, friction, mass).

    python benchmarks/expert_eval.py [--policy assets/g1_walk/actor.pt] [--episodes 200] [--quick] [--json PATH]

Each row runs ``--episodes`` episodes of 20 s in parallel with commands vx in [-0.8, 0.8] m/s, vy in [-0.4, 0.4]
m/s and yaw rate in [-1, 1] rad/s, a new one every 5 s, and the policy as exported (TorchScript actor with its
training ``config.json`` beside it). Rows: nominal (0.005 s x 4 physics), 0.002 s x 10 physics, 10 ms action
latency, friction x0.8 / x1.2, link masses x0.8 / x1.2 (:data:`training.locomotion.evaluate.SIM_TO_SIM`).

Targets: fall rate < 5 %, mean planar velocity error < 0.15 m/s, mean yaw-rate error < 0.2 rad/s,
over every step the robot is up; "settled" columns leave out the first second after each command change. "wz strd"
is a diagnostic, not the target: the yaw-rate error of the pelvis yaw rate averaged over one gait period (settled
steps), i.e. the per-step error without the pelvis yawing back and forth within a stride.
``--check`` exits 1 when the nominal row misses a target.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, run_benchmark, write_json
from robot.cli import UserError
from training.locomotion.evaluate import (
    DEFAULT_EXPERT_POLICY,
    SIM_TO_SIM,
    EvalConfig,
    evaluate,
    load_exported_policy,
)


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    policy: Path = DEFAULT_EXPERT_POLICY
    """exported actor (config.json beside it)"""
    episodes: Optional[int] = None
    """episodes per row (default 200, quick 16)"""
    episode_length_s: Optional[float] = None
    """default 20 (quick 5)"""
    rows: Optional[tuple[str, ...]] = None
    """row names to run (default: all)"""
    check: bool = False
    """exit 1 when the nominal row misses a target"""


def main(args: Args) -> int:
    policy, train = load_exported_policy(args.policy)
    cfg = EvalConfig(
        episodes=args.episodes or (16 if args.quick else 200),
        episode_length_s=args.episode_length_s or (5.0 if args.quick else 20.0),
        train=train,
    )
    rows_to_run = [c for c in SIM_TO_SIM if args.rows is None or c.name in args.rows]
    if not rows_to_run:
        raise UserError(f"--rows: expected names from {[c.name for c in SIM_TO_SIM]}, got {args.rows}")
    f2, f3 = "{:.2f}".format, "{:.3f}".format
    table = Table(
        [
            Column("name", "row", 22),
            Column("episodes", "eps", 5),
            Column("fall_rate", "fall", 6, lambda v: f"{100 * v:.1f}%"),
            Column("lin_err_m_per_s", "v err", 7, f3),
            Column("yaw_err_rad_per_s", "wz err", 7, f3),
            Column("settled_lin_err_m_per_s", "v set", 7, f3),
            Column("settled_yaw_err_rad_per_s", "wz set", 7, f3),
            Column("stride_yaw_err_rad_per_s", "wz strd", 7, f3),
            Column("mean_command_speed_m_per_s", "|v*|", 6, f2),
            Column("foot_air_fraction", "air", 5, f2),
            Column("touchdowns_per_s", "steps/s", 7, f2),
            Column("seconds", "time s", 7, "{:.0f}".format),
            Column("ok", "target", 7, lambda ok: "ok" if ok else "MISS"),
        ]
    )
    print(
        f"G1 walking expert {args.policy}: {cfg.episodes} episodes x {cfg.episode_length_s:.0f} s per row, "
        f"commands every {cfg.command_interval_s:.0f} s; targets fall < {100 * cfg.max_fall_rate:.0f}%, "
        f"v err < {cfg.max_lin_err_m_per_s} m/s, wz err < {cfg.max_yaw_err_rad_per_s} rad/s"
    )
    table.header()
    rows = []
    for conditions in rows_to_run:
        start = time.perf_counter()
        result = evaluate(policy, cfg, conditions)
        row = {**result.as_dict(), "seconds": time.perf_counter() - start}
        table.row(row)
        rows.append(row)
    if args.json:
        meta = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "train"}
        write_json(args.json, {"machine": machine_info(), "policy": str(args.policy), "config": meta, "rows": rows})
    nominal = next((r for r in rows if r["name"] == "nominal"), None)
    if nominal is not None and not nominal["ok"]:
        print("nominal row misses a target")
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
