"""Latency of the planner's whole 50 Hz control tick on one thread, by part.

    python benchmarks/tick_latency.py [--ticks 3000] [--policy assets/g1_planner/planner.pt] [--quick] [--json PATH]

The committed planner drives the simulated G1 through the deploy control loop (:class:`deploy.loop.ControlLoop`,
simulated time, the robot stepped by hand between ticks: 4 physics steps of 5 ms per 20 ms tick) with the MEMS
sensor model, state jitter of up to 2 physics steps and no ground truth in the samples; the base-state estimator
is attached to the robot and fed every new sample. A tick is what the runtime does between two commands:

- ``estimator``: :meth:`robot.estimation.BaseStateEstimator.update` (plus filling the sample) on the samples
  published since the last tick, timed inside the robot's step (on the real G1 this runs in the DDS callback);
- ``state``: the planner state build (:meth:`deploy.planner_policy.PlannerPolicy.observe_state`, forward
  kinematics into :class:`envs.planner.state.PlannerStateEstimator`);
- ``plan``: the policy's ``act`` (the guided diffusion plan of the TorchScript planner);
- ``tick``: the estimator time of the tick plus the whole :meth:`ControlLoop.tick` (state read, safety state
  machine, the two above, the command).

Only ticks in which the planner acted (POLICY mode) are counted. The target is a whole-tick p99 <= 5 ms
(``--check`` exits 1 when it is missed); physics time is not part of a tick.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, percentile, run_benchmark, write_json
from benchmarks.state_estimation import WALK_START_S, script
from deploy.loop import ControlLoop, LoopConfig
from deploy.policy_io import load_policy
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop
from robot.estimation import BaseStateEstimator
from robot.sensor_model import SensorModelConfig
from robot.sim import MujocoRobot, SimRobotConfig

DEFAULT_POLICY = Path("assets/g1_planner/planner.pt")
TARGET_TICK_P99_MS = 5.0
PARTS = ("estimator", "state", "plan", "tick")


class Timed:
    """Wraps ``fn`` and adds its wall time (ns) to ``self.ns`` per call (one thread: no locking)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.ns, self.calls = fn, 0, 0

    def __call__(self, *args: Any) -> Any:
        t0 = time.perf_counter_ns()
        out = self.fn(*args)
        self.ns += time.perf_counter_ns() - t0
        self.calls += 1
        return out


def run(policy_path: Path, ticks: int, seed: int) -> dict[str, Any]:
    """Tick the loop until the planner has acted ``ticks`` times (or the robot stops walking); per-part times."""
    cfg = SimRobotConfig(
        threaded=False,
        sensors=SensorModelConfig.g1_mems(),
        oracle=False,
        state_jitter_steps=2,
        initial_mode="damping",
        seed=seed,
    )
    robot = MujocoRobot(cfg)
    robot.attach_estimator(BaseStateEstimator())
    estimator = Timed(robot._estimated)
    robot._estimated = estimator  # type: ignore[method-assign]
    robot.connect()
    policy = load_policy(policy_path)
    observe, act = Timed(policy.observe_state), Timed(policy.act)
    policy.observe_state, policy.act = observe, act  # type: ignore[method-assign]
    loop = ControlLoop(robot, policy, ScriptedTeleop(script(ticks * 0.02 + 60.0)), cfg=LoopConfig())
    loop.prepare()
    substeps = round(loop.period_s / robot.model.opt.timestep)
    times: dict[str, list[int]] = {p: [] for p in PARTS}
    samples, t, mode = 0, 0.0, Mode.DAMPING
    begin = time.perf_counter()
    while len(times["tick"]) < ticks and t < WALK_START_S + ticks * loop.period_s + 10.0:
        obs_ns, act_ns, acts = observe.ns, act.ns, act.calls
        estimator.ns = 0
        robot.step(substeps)  # the samples of the coming tick, estimator timed inside
        samples += estimator.calls
        est_tick, estimator.calls = estimator.ns, 0
        t0 = time.perf_counter_ns()
        mode = loop.tick(t)
        loop_ns = time.perf_counter_ns() - t0
        if mode is Mode.POLICY and act.calls > acts:
            times["estimator"].append(est_tick)
            times["state"].append(observe.ns - obs_ns)
            times["plan"].append(act.ns - act_ns)
            times["tick"].append(est_tick + loop_ns)
        t += loop.period_s
    robot.close()
    row: dict[str, Any] = {"ticks": len(times["tick"]), "samples_per_tick": samples / max(1, round(t / 0.02))}
    row["final_mode"], row["seconds"] = mode.name, time.perf_counter() - begin
    for p in PARTS:
        ms = [v / 1e6 for v in times[p]] or [float("nan")]
        row[f"{p}_p50_ms"], row[f"{p}_p99_ms"] = percentile(ms, 50.0), percentile(ms, 99.0)
        row[f"{p}_max_ms"] = max(ms)
    row["ok"] = row["tick_p99_ms"] <= TARGET_TICK_P99_MS
    return row


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    policy: Path = DEFAULT_POLICY
    """exported planner (TorchScript)"""
    ticks: Optional[int] = None
    """planner ticks to time (default 3000, quick 200)"""
    seed: int = 0
    """seed of the sensor model and jitter"""
    check: bool = False
    """exit 1 when the tick p99 exceeds 5 ms"""


def main(args: Args) -> int:
    ticks = args.ticks or (200 if args.quick else 3000)
    row = run(args.policy, ticks, args.seed)
    f2 = "{:.3f}".format
    table = Table([Column("part", "part", 10), Column("p50", "p50 ms", 9, f2), Column("p99", "p99 ms", 9, f2),
                   Column("max", "max ms", 9, f2)])  # fmt: skip
    print(
        f"Planner control tick, {args.policy}, {row['ticks']} ticks at 50 Hz on one thread, "
        f"{row['samples_per_tick']:.2f} estimator samples per tick; target tick p99 <= {TARGET_TICK_P99_MS} ms"
    )
    table.header()
    for p in PARTS:
        table.row({"part": p, "p50": row[f"{p}_p50_ms"], "p99": row[f"{p}_p99_ms"], "max": row[f"{p}_max_ms"]})
    print(f"target: {'ok' if row['ok'] else 'MISS'}; final mode {row['final_mode']}; {row['seconds']:.0f} s")
    if args.json:
        config = {"policy": str(args.policy), "ticks": ticks, "seed": args.seed, "state_jitter_steps": 2}
        write_json(args.json, {"machine": machine_info(), "config": config, "rows": [row]})
    return 1 if args.check and not row["ok"] else 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
