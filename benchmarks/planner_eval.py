"""G1 guided diffusion planner: closed-loop joystick, waypoint and obstacle results, and plan latency on one core.

    python benchmarks/planner_eval.py [--planner assets/g1_planner/planner.pt] [--episodes 32] [--seed 1]
        [--conditions nominal "mass x1.2" ...] [--state-sources ground_truth estimator] [--quick] [--json PATH]

Rows (:mod:`training.planner.evaluate`; ``--seed`` draws other commands, initial states and goals): the walking
expert the data came from, the planner with the joystick cost, the same planner unguided, waypoints at 2-10 m,
and waypoints behind a wall with the obstacle cost on and off (named rows only: ``joystick_feasibility`` with the
feasibility term open, ``keepout`` / ``keepout_feasibility``, goals past a keep-out disc without and with the
keep-out term, a planner exported with ``--keepout-critic``). The expert, joystick and waypoint rows run again
under each sim-to-sim condition of the expert benchmark (physics 0.002 s x 10, 10 ms action latency, friction
x0.8 / x1.2, mass x0.8 / x1.2), the expert on the same worlds and seeds. The planner's base state comes from the
base-state estimator on the simulated G1's MEMS sensors unless ``--state-sources`` says otherwise
(``ground_truth``: the simulator's; both: every row from each, side by side). Latency: the exported planner on one
thread, one robot, rolling plans with the joystick cost, p50 / p99 over ``--latency-calls`` plans after a warm-up.

Targets, in every condition: joystick fall rate < 5 % and velocity error within 1.5x the expert's in the same
condition; waypoint success >= 90 %. On the nominal robot: unguided clearly worse; obstacles success >= 80 % with
no collision in successful trials (collision rate with the cost off reported); no keep-out entry with the
keep-out term; p99 plan time < 5 ms. The velocity
tracking error relative to the commanded speed (mean |v - v_cmd| / mean |v_cmd| over the joystick rows; BeyondMimic
reports ~12 % walking in simulation) is printed beside the m/s figures. ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks._common import BenchmarkArgs, latency_stats_ms, machine_info, run_benchmark, write_json
from envs.planner.runtime import ExportedPlanner
from envs.tasks.route import RouteConfig
from training.locomotion.evaluate import SIM_TO_SIM
from training.planner.evaluate import (
    DEFAULT_PLANNER,
    DEFAULT_ROWS,
    PlannerEvalConfig,
    format_table,
    load_planner,
)
from training.planner.evaluate_sources import rows_of, run_state_sources, summaries


def plan_latency_ms(
    path: Path, calls: int, warmup: int = 20, feasibility: bool = False, keepout: bool = False
) -> dict[str, float]:
    """p50/p99 of one guided (joystick, plus the feasibility or keep-out term when asked: a region 1.5 m ahead)
    rolling plan for one robot on one thread."""
    torch.set_num_threads(1)
    planner = ExportedPlanner(*load_planner(path))
    states = torch.zeros(1, planner.history, planner.state_dim)
    actions = torch.zeros(1, planner.history, planner.action_dim)
    params = torch.zeros(1, planner.param_dim)
    gate = planner.gate("joystick")
    params[0, gate], params[0, gate + 1] = 1.0, 0.5
    if feasibility:
        params[0, planner.gate("feasibility")] = 1.0
    if keepout:
        o = planner.gate("keepout")
        params[0, o : o + 3] = torch.tensor([1.0, 1.5, 0.0])
    samples = []
    for i in range(warmup + calls):
        t0 = time.perf_counter_ns()
        planner.plan(states, actions, params)
        if i >= warmup:
            samples.append(time.perf_counter_ns() - t0)
    return latency_stats_ms(samples)


def targets(rows: list[dict], latency: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(what, met, measured) per target that the rows allow checking, per condition (and state source)."""
    out = []
    sources = list(dict.fromkeys(r["state_source"] for r in rows if r["name"] != "expert")) or ["ground_truth"]
    for name, source in ((c, s) for c in dict.fromkeys(r.get("condition", "nominal") for r in rows) for s in sources):
        by = {r["name"]: r for r in rows_of(rows, source) if r.get("condition", "nominal") == name}
        cond = name if len(sources) == 1 else f"{name} [{source}]"
        if "joystick" in by:
            j = by["joystick"]
            if "expert_ratio" in j:
                ratio = j["expert_ratio"]
                out.append((f"{cond}: joystick v err <= 1.5x expert", ratio <= 1.5, f"{ratio:.2f}x"))
            out.append((f"{cond}: joystick fall rate < 5 %", j["fall_rate"] < 0.05, f"{100 * j['fall_rate']:.1f} %"))
        if "unguided" in by and "joystick" in by:
            u, j = by["unguided"], by["joystick"]
            out.append(
                (
                    f"{cond}: unguided tracks worse",
                    u["lin_err_m_per_s"] > j["lin_err_m_per_s"],
                    f"{u['lin_err_m_per_s']:.3f} vs {j['lin_err_m_per_s']:.3f}",
                )
            )
        if "joystick_feasibility" in by and "joystick" in by:
            f, j = by["joystick_feasibility"], by["joystick"]
            if j["fall_rate"] > 0:
                out.append(
                    (
                        f"{cond}: feasibility term at least halves the falls",
                        f["fall_rate"] <= 0.5 * j["fall_rate"],
                        f"{100 * f['fall_rate']:.1f} % vs {100 * j['fall_rate']:.1f} %",
                    )
                )
            if name == "nominal":
                ratio = f["lin_err_m_per_s"] / max(j["lin_err_m_per_s"], 1e-9)
                out.append((f"{cond}: feasibility term v err <= 1.1x without", ratio <= 1.1, f"{ratio:.2f}x"))
        if "waypoint" in by:
            w = by["waypoint"]["success_rate"]
            out.append((f"{cond}: waypoint success >= 90 %", w >= 0.9, f"{100 * w:.0f} %"))
        if "obstacles" in by:
            o = by["obstacles"]["success_rate"]
            out.append((f"{cond}: obstacles success >= 80 %", o >= 0.8, f"{100 * o:.0f} %"))
        if "keepout_feasibility" in by:
            k = by["keepout_feasibility"]
            out.append(
                (f"{cond}: no keep-out entry with the term", k["keepout_entry_rate"] == 0.0,
                 f"{100 * k['keepout_entry_rate']:.0f} % (without: "
                 + (f"{100 * by['keepout']['keepout_entry_rate']:.0f} %)" if "keepout" in by else "not run)"))
            )  # fmt: skip
    out.append(("p99 plan time < 5 ms", latency["p99_ms"] < 5.0, f"{latency['p99_ms']:.2f} ms"))
    return out


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    planner: Path = DEFAULT_PLANNER
    """exported planner (.pt + .json)"""
    episodes: Optional[int] = None
    """worlds per row (default 32, quick 4)"""
    rows: tuple[str, ...] = tuple(DEFAULT_ROWS)
    """rows to run (expert, joystick, joystick_feasibility, unguided, waypoint, obstacles, obstacles_off,
    obstacles_direct, keepout, keepout_feasibility; default all but joystick_feasibility and the keep-out rows)"""
    seconds: Optional[float] = None
    """joystick episode length (default 20, quick 4)"""
    waypoint_seconds: Optional[float] = None
    """time allowed per waypoint trial (default 30, quick 4)"""
    conditions: tuple[str, ...] = tuple(c.name for c in SIM_TO_SIM)
    """physics conditions by name (``training.planner.evaluate.CONDITIONS``; default: the expert benchmark's
    sim-to-sim rows)"""
    goal_lookahead_m: float = 1.5
    """waypoint rows: target at most this far along the line to the goal (0: the goal itself)"""
    goal_min_lookahead_m: float = 0.8
    """waypoint rows: target at least this far along the line, past a nearer goal (0: stop at the goal)"""
    route_min_lookahead_m: float = 0.8
    """obstacle rows: the route's pursuit point at least this far along it, past a nearer goal"""
    feasibility_gate: float = 1.0
    """gate of the feasibility term in the joystick_feasibility row (a planner exported with a critic)"""
    keepout_gate: float = 1.0
    """gate of the keep-out term in the keepout_feasibility row (a planner exported with --keepout-critic)"""
    keepout_radius_m: float = 0.5
    """keep-out rows: radius of the disc halfway to the goal (at most the planner's keep-out critic's; a critic for a
    larger disc is a safety margin)"""
    num_threads: int = 2
    """physics worker threads"""
    seed: int = 1
    """seed of commands, initial states, goals and noise"""
    latency_calls: Optional[int] = None
    """timed plans (default 300, quick 30)"""
    state_sources: tuple[str, ...] = ("estimator",)
    """where the planner state comes from, each a full run of the rows: estimator (the base-state estimator on the
    simulated MEMS sensors, what a real G1 allows) or ground_truth (the simulator's, to debug and to compare)"""
    check: bool = False
    """exit 1 when a target is missed"""


def main(args: Args) -> int:
    quick = args.quick
    cfg = PlannerEvalConfig(
        planner=args.planner,
        rows=tuple(args.rows),
        conditions=tuple(args.conditions),
        seed=args.seed,
        num_threads=args.num_threads,
        episodes=args.episodes or (4 if quick else 32),
        episode_length_s=args.seconds or (4.0 if quick else 20.0),
        waypoint_time_s=args.waypoint_seconds or (4.0 if quick else 30.0),
        goal_lookahead_m=args.goal_lookahead_m or None,
        goal_min_lookahead_m=args.goal_min_lookahead_m if args.goal_lookahead_m else 0.0,
        route=RouteConfig(min_lookahead_m=args.route_min_lookahead_m),
        feasibility_gate=args.feasibility_gate,
        keepout_gate=args.keepout_gate,
        keepout_radius_m=args.keepout_radius_m,
    )
    calls = args.latency_calls or (30 if quick else 300)
    latency = plan_latency_ms(args.planner, calls)
    print(
        f"G1 planner {args.planner}: plan latency (1 thread, 1 robot, joystick-guided rolling plan) "
        f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms"
    )
    if "joystick_feasibility" in cfg.rows:
        latency["with_feasibility"] = plan_latency_ms(args.planner, calls, feasibility=True)
        print(
            f"  with the feasibility term: p50 {latency['with_feasibility']['p50_ms']:.2f} ms, "
            f"p99 {latency['with_feasibility']['p99_ms']:.2f} ms"
        )
    if "keepout_feasibility" in cfg.rows:
        latency["with_keepout"] = plan_latency_ms(args.planner, calls, keepout=True)
        print(
            f"  with the keep-out term: p50 {latency['with_keepout']['p50_ms']:.2f} ms, "
            f"p99 {latency['with_keepout']['p99_ms']:.2f} ms"
        )
    start = time.perf_counter()
    sources = tuple(args.state_sources)
    rows = run_state_sources(cfg, sources)
    by_source = summaries(rows, sources)
    for source, totals in by_source.items():
        print(f"\nstate source: {source}\n{format_table(rows_of(rows, source))}")
        if "joystick_relative_lin_err" not in totals:
            continue
        print(
            f"\nvelocity tracking error over the joystick rows, mean |v - v_cmd| / mean |v_cmd|: planner "
            f"{100 * totals['joystick_relative_lin_err']:.1f} %"
            + (
                f", expert {100 * totals['expert_relative_lin_err']:.1f} %"
                if "expert_relative_lin_err" in totals
                else ""
            )
        )
    checks = targets(rows, latency)
    print("\n| target | met | measured |\n|---|---|---|")
    for what, met, measured in checks:
        print(f"| {what} | {'yes' if met else 'NO'} | {measured} |")
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        payload = {
            "planner": str(args.planner),
            "state_source": sources[0] if len(sources) == 1 else list(sources),
            "seed": cfg.seed,
            "episodes": cfg.episodes,
            "seconds": cfg.episode_length_s,
            "goal_distance_m": list(cfg.goal_distance_m),
            "waypoint_time_s": cfg.waypoint_time_s,
            "goal_lookahead_m": cfg.goal_lookahead_m,
            "goal_min_lookahead_m": cfg.goal_min_lookahead_m,
            "route": dataclasses.asdict(cfg.route),
            "latency_ms": latency,
            "rows": rows,
            "summary": by_source[sources[0]] if len(sources) == 1 else by_source,
            "targets": [{"target": w, "met": m, "measured": v} for w, m, v in checks],
            "machine": machine_info(),
        }
        write_json(args.json, payload)
    return 1 if args.check and not all(m for _, m, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
