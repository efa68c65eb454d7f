"""Per-call time of the planner state's forward kinematics: numpy (the runtime's) against MuJoCo, side by side.

    python benchmarks/planner_state_fk.py [--calls 2000] [--rounds 7] [--quick] [--check] [--json PATH]

One robot per call, as the control tick does it. Rows:

- ``fk numpy``: :class:`robot.g1.body_kinematics.BodyKinematics` (tracked bodies' centres of mass and velocities);
- ``fk mujoco``: the same quantities by ``mj_kinematics`` + ``mj_comPos`` + ``mj_comVel`` and one
  ``mj_objectVelocity`` per tracked body (what :class:`envs.planner.state.PlannerStateEstimator` did before);
- ``state numpy`` / ``state mujoco``: the whole planner state (input checks, the kinematics, normalisation).

Rounds alternate between the two so that load on a shared machine hits both alike; the table shows the best
and the median round (microseconds per call). ``--check`` exits 1 when the numpy state is more than
``MAX_RATIO`` times slower than the MuJoCo one (best rounds), or when the two disagree by more than 1e-9.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, run_benchmark, write_json
from envs.planner.state import PlannerStateEstimator
from robot.g1 import constants as C
from robot.g1.body_kinematics import BodyKinematics
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr

MAX_RATIO = 1.25
"""The numpy planner state may take at most this multiple of the MuJoCo one's time (best rounds)."""


class MujocoBodies:
    """The tracked bodies' world centres of mass and velocities by MuJoCo (same call as :class:`BodyKinematics`)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model, self.data = model, mujoco.MjData(model)
        self._bodies = [model.body(b).id for b in C.TRACKED_BODIES]
        self._qadr, self._vadr = joint_qpos_adr(model), joint_dof_adr(model)
        self._vel = np.zeros(6)

    def __call__(self, *args: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base_pos, base_quat, base_lin_vel, base_ang_vel, q, dq = args
        m, d = self.model, self.data
        d.qpos[:3], d.qpos[3:7], d.qpos[self._qadr] = base_pos, base_quat, q
        d.qvel[:3], d.qvel[3:6], d.qvel[self._vadr] = base_lin_vel, base_ang_vel, dq
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        vel = np.empty((len(self._bodies), 3))
        for k, b in enumerate(self._bodies):
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, b, self._vel, 0)  # [angular, linear], world
            vel[k] = self._vel[3:]
        return d.xipos[self._bodies].copy(), vel


def mujoco_state(bodies: MujocoBodies) -> Callable[..., np.ndarray]:
    """The planner state with MuJoCo's kinematics in place of the numpy ones (same input checks)."""
    checks = PlannerStateEstimator()

    def state(*args: np.ndarray) -> np.ndarray:
        checks.kinematics = bodies  # the estimator's checks and normalisation around MuJoCo's kinematics
        return PlannerStateEstimator.__call__(checks, *args)

    return state


def per_call_us(fn: Callable[..., Any], args: tuple[np.ndarray, ...], calls: int) -> float:
    """Mean wall time of ``calls`` calls of ``fn(*args)`` in microseconds."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn(*args)
    return (time.perf_counter_ns() - start) / calls / 1e3


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    calls: int = 2000
    """calls per timed round"""
    rounds: int = 7
    """timed rounds per row (alternating)"""
    check: bool = False
    """exit 1 if numpy takes more than 1.25x MuJoCo's time"""


def main(args: Args) -> int:
    calls, rounds = (300, 3) if args.quick else (args.calls, args.rounds)
    rng = np.random.default_rng(0)
    sample = (
        rng.normal(size=3),
        rng.normal(size=4),
        rng.normal(size=3),
        rng.normal(size=3),
        rng.uniform(C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD),
        rng.normal(size=C.NUM_JOINTS),
    )
    reference = MujocoBodies(build_g1_model())
    fns = {
        "fk numpy": BodyKinematics.from_links(),
        "fk mujoco": reference,
        "state numpy": PlannerStateEstimator(),
        "state mujoco": mujoco_state(reference),
    }
    fk_gap = max(float(np.abs(a - b).max()) for a, b in zip(fns["fk numpy"](*sample), reference(*sample), strict=True))
    state_gap = float(np.abs(fns["state numpy"](*sample) - fns["state mujoco"](*sample)).max())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        per_call_us(fn, sample, max(calls // 10, 10))  # warm caches
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(per_call_us(fn, sample, calls))
    table = Table([Column("name", "path", 13), Column("best", "best us", 9, "{:.1f}".format),
                   Column("median", "median us", 10, "{:.1f}".format)])  # fmt: skip
    table.header()
    rows = [{"name": n, "best": min(t), "median": statistics.median(t)} for n, t in times.items()]
    for row in rows:
        table.row(row)
    ratio = min(times["state numpy"]) / min(times["state mujoco"])
    fk_ratio = min(times["fk numpy"]) / min(times["fk mujoco"])
    print(
        f"numpy / mujoco, best rounds: fk {fk_ratio:.2f}, state {ratio:.2f}; "
        f"max difference fk {fk_gap:.1e}, state {state_gap:.1e}"
    )
    if args.json is not None:
        config = {"calls": calls, "rounds": rounds}
        write_json(
            args.json, {"machine": machine_info(), "config": config, "rows": rows, "ratio": ratio, "fk_ratio": fk_ratio}
        )
    if args.check and (ratio > MAX_RATIO or state_gap > 1e-9 or fk_gap > 1e-9):
        print(f"FAIL: ratio {ratio:.2f} > {MAX_RATIO} or a difference > 1e-9", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
