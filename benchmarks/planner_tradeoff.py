"""Latency against tracking for the trained G1 planner: sampler steps, warm start and guidance, measured side by side.

    python benchmarks/planner_tradeoff.py --model assets/g1_planner/planner_model.pt [--steps 10 5 3]
        [--rolling 0] [--guidance x0:1 none:0] [--episodes 8] [--seconds 10] [--quick] [--json PATH]

Every configuration is the same trained network exported again with other sampler / guidance settings
(``deploy.export_planner``: no retraining), then measured the same way:

- latency: one robot, one torch thread, the joystick cost on, p50 / p99 over ``--latency-calls`` plans after 20
  warm-up plans (``benchmarks/planner_eval.plan_latency_ms``);
- tracking: the joystick row of ``training.planner.evaluate`` (``--episodes`` worlds, commands from the expert's
  ranges changed every 5 s, ``--seconds`` each, fixed seed): fall rate, planar velocity and yaw-rate error.

The table's last columns are ratios to the first configuration (the reference: the trained sampler settings
unless ``--steps`` says otherwise), so the trade-off reads directly. Target: p99 < 5 ms at 50 Hz, or the
fastest configuration that still meets the tracking targets.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, machine_info, run_benchmark, write_json
from benchmarks.planner_eval import plan_latency_ms
from deploy.export_planner import ExportPlannerConfig
from deploy.export_planner import main as export_main
from robot.cli import UserError
from training.planner.evaluate import PlannerEvalConfig, run


def parse_guidance(text: str) -> tuple[str, float]:
    """``mode:scale`` (``x0:1``, ``classifier:0.1``, ``none:0``)."""
    mode, _, scale = text.partition(":")
    if mode not in ("x0", "classifier", "none") or not scale:
        raise UserError(f"--guidance: expected MODE:SCALE with MODE in x0, classifier, none; got {text!r}")
    return mode, float(scale)


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    model: Path
    """planner_model.pt (training output)"""
    steps: tuple[int, ...] = (10, 5, 3)
    """DDIM steps per plan"""
    rolling: tuple[int, ...] = (0,)
    """warm-start entries (0: cold)"""
    guidance: tuple[str, ...] = ("x0:1",)
    """guidance settings, each MODE:SCALE with MODE in x0, classifier, none (e.g. x0:1 classifier:0.1)"""
    episodes: Optional[int] = None
    """worlds per configuration (default 8, quick 2)"""
    seconds: Optional[float] = None
    """episode length (default 10, quick 2)"""
    latency_calls: Optional[int] = None
    """timed plans (default 200, quick 20)"""


def main(args: Args) -> int:
    episodes = args.episodes or (2 if args.quick else 8)
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    calls = args.latency_calls or (20 if args.quick else 200)
    configs = [
        (k, r, g)
        for k in args.steps
        for r in args.rolling
        for g in map(parse_guidance, args.guidance)
        if r < k  # the warm start must leave at least one step to run
    ]
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (k, r, (mode, scale)) in enumerate(configs):
            out = Path(tmp) / f"planner_{i}.pt"
            export_main(
                ExportPlannerConfig(
                    model=args.model,
                    out=out,
                    sampler_steps=k,
                    rolling_start=r,
                    guidance_mode=mode,
                    guidance_scale=scale,
                )
            )
            latency = plan_latency_ms(out, calls)
            cfg = PlannerEvalConfig(
                planner=out,
                rows=("joystick",),
                conditions=("nominal",),
                episodes=episodes,
                episode_length_s=seconds,
                num_threads=1,
            )
            track = run(cfg)[0]
            rows.append(
                {
                    "steps": k,
                    "rolling_start": r,
                    "passes": k - r,
                    "guidance": f"{mode} {scale:g}",
                    "p50_ms": latency["p50_ms"],
                    "p99_ms": latency["p99_ms"],
                    "fall_rate": track["fall_rate"],
                    "lin_err": track["lin_err_m_per_s"],
                    "yaw_err": track["yaw_err_rad_per_s"],
                }
            )
            print(f"[{i + 1}/{len(configs)}] {rows[-1]}", flush=True)
    ref = rows[0]
    for row in rows:
        row["p99_vs_ref"] = row["p99_ms"] / ref["p99_ms"]
        row["lin_err_vs_ref"] = row["lin_err"] / ref["lin_err"] if ref["lin_err"] > 0 else float("nan")
    print(f"\nG1 planner {args.model}: {episodes} worlds x {seconds:g} s per row, latency 1 thread 1 robot\n")
    print(
        "| DDIM steps | warm start | passes | guidance | p50 ms | p99 ms | falls | v err m/s | yaw err rad/s "
        "| p99 / ref | v err / ref |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['steps']} | {r['rolling_start']} | {r['passes']} | {r['guidance']} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['fall_rate']:.3f} | {r['lin_err']:.3f} | {r['yaw_err']:.3f} "
            f"| {r['p99_vs_ref']:.2f} | {r['lin_err_vs_ref']:.2f} |"
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        write_json(args.json, {"model": str(args.model), "rows": rows, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
