"""G1 base state estimation: the contact-aided Kalman filter against ground truth and two naive baselines.

    python benchmarks/state_estimation.py [--seconds 60] [--rows NAME ...] [--quick] [--json PATH]

Each row walks a controller through the deploy control loop and its safety state machine in the MuJoCo robot for
``--seconds`` of simulated time with a scripted command sequence (forward, turning, sideways, backwards, turning in
place, stopping): the G1 expert (``assets/g1_walk/deploy/policy.pt``, the default) or, with ``--policy
assets/g1_planner/planner.pt``, the guided diffusion planner, which reads its base state from the robot's attached
estimator (the same filter as ``kf`` below, so the planner runs on the estimate that is being scored, closed loop).
The G1's MEMS sensor model is on
(:meth:`robot.sensor_model.SensorModelConfig.g1_mems`), state jitter of up to 2 physics steps and no ground
truth in the published samples (``oracle=False``). Every published sample goes to three estimators:

- ``kf``: :class:`robot.estimation.BaseStateEstimator` (leg kinematics + IMU, contact-aided Kalman filter);
- ``imu``: IMU integration alone (``v += (R a_m + g) dt`` with the reported orientation);
- ``legs``: leg odometry alone (the mean stance-sole velocity ``-R (w x s + J dq)``, integrated).

Columns, over the samples from 1 s after the walk starts (the policy mode) to the end: planar velocity RMSE
(m/s), RMS error of the height above the stance-foot plane (the floor, m), planar position drift at the end as
a share of the distance walked, and the filter update time (p50 / p99 microseconds, one thread, including its
leg kinematics). Targets: velocity RMSE <= 0.08 m/s, drift <= 5 %, height error <= 2 cm (``--check`` exits 1
when the nominal row misses one). Rows: nominal (0.005 s physics) and the sim-to-sim conditions of
``benchmarks/expert_eval.py`` (0.002 s physics, 10 ms command latency, friction x0.8/x1.2, masses x0.8/x1.2).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, percentile, run_benchmark, write_json
from deploy.loop import ControlLoop, LoopConfig
from deploy.planner_policy import PlannerPolicy
from deploy.policy_io import ExportedPolicy, load_policy
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop, ScriptEvent
from robot.cli import UserError
from robot.estimation import BaseEstimate, BaseStateEstimator, EstimatorConfig
from robot.g1.kinematics import LegKinematics, quat_to_matrix
from robot.g1.model import G1ModelConfig, build_g1_model
from robot.messages import RobotState
from robot.sensor_model import SensorModelConfig
from robot.sim import MujocoRobot, SimRobotConfig
from training.locomotion.evaluate import SIM_TO_SIM, Conditions

DEFAULT_POLICY = Path("assets/g1_walk/deploy/policy.pt")
WALK_START_S = 2.4
"""The script asks for the stand at 0.02 s and for the policy at 2.4 s (the move to the default pose takes 2 s)."""
SETTLE_S = 1.0
COMMANDS: tuple[tuple[float, float, float], ...] = (
    (0.5, 0.0, 0.0),
    (0.8, 0.0, 0.3),
    (0.0, 0.3, 0.0),
    (-0.4, 0.0, 0.0),
    (0.0, 0.0, 0.8),
    (0.6, -0.2, -0.5),
    (0.0, 0.0, 0.0),
    (0.7, 0.0, 0.0),
    (0.3, 0.0, -0.6),
    (0.0, -0.3, 0.3),
    (0.8, 0.0, 0.0),
    (0.4, 0.2, 0.5),
)
"""Walking commands (vx m/s, vy m/s, yaw rate rad/s), a new one every 5 s, cycled."""
TARGETS = {"vel_rmse_m_per_s": 0.08, "drift_share": 0.05, "height_rmse_m": 0.02}
G = np.array([0.0, 0.0, -9.81])


def script(seconds: float, interval_s: float = 5.0) -> list[ScriptEvent]:
    """Stand, walk, then the command sequence until ``seconds`` after the walk starts."""
    events = [
        ScriptEvent(0.0, deadman=False),
        ScriptEvent(0.02, request="stand", deadman=False),
        ScriptEvent(2.3, deadman=True),
        ScriptEvent(WALK_START_S, request="walk", deadman=True),
    ]
    for k in range(int(np.ceil(seconds / interval_s))):
        events.append(ScriptEvent(WALK_START_S + 0.2 + k * interval_s, command=COMMANDS[k % len(COMMANDS)]))
    return events


def make_robot(
    conditions: Conditions, seed: int, estimator_cfg: EstimatorConfig | None = None, base_state: bool = False
) -> MujocoRobot:
    """Manual-mode simulated G1 under ``conditions``, with the sensor model on and no ground truth published;
    ``base_state``: an estimator attached that publishes its base state in the samples (what a planner reads)."""
    model = build_g1_model(G1ModelConfig(physics_dt_s=conditions.physics_dt_s))
    model.geom_friction[:, 0] *= conditions.friction_scale
    model.body_mass[:] *= conditions.mass_scale
    model.body_inertia[:] *= conditions.mass_scale
    cfg = SimRobotConfig(
        threaded=False,
        sensors=SensorModelConfig.g1_mems(),
        state_jitter_steps=2,
        oracle=False,
        command_latency_s=conditions.action_latency_s,
        initial_mode="damping",
        seed=seed,
    )
    robot = MujocoRobot(cfg, model=model)
    if base_state:
        robot.attach_estimator(BaseStateEstimator(estimator_cfg))
    robot.connect()
    return robot


class ImuIntegration:
    """Baseline: integrate the accelerometer with the reported orientation, nothing else."""

    def __init__(self) -> None:
        self.t, self.pos, self.vel = None, np.zeros(3), np.zeros(3)

    def update(self, s: RobotState, start_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        if self.t is None:
            self.pos = start_pos.copy()
        else:
            dt = s.timestamp_s - self.t
            a = quat_to_matrix(s.imu_quat_wxyz) @ s.imu_accel_m_per_s2 + G
            self.pos += self.vel * dt + 0.5 * a * dt * dt
            self.vel += a * dt
        self.t = s.timestamp_s
        return self.pos.copy(), self.vel.copy(), float(self.pos[2])


class LegOdometry:
    """Baseline: the stance soles' kinematic velocity, integrated; height from the stance soles."""

    def __init__(self, kin: LegKinematics, contact_height_m: float = 0.03) -> None:
        self.kin, self.contact_height_m = kin, contact_height_m
        self.t, self.pos = None, np.zeros(3)

    def update(self, s: RobotState, start_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        rot = quat_to_matrix(s.imu_quat_wxyz)
        fk = self.kin.feet(s.joint_pos_rad)
        sole_world = fk.sole_pos_m @ rot.T  # (2, 3) relative to the pelvis
        stance = sole_world[:, 2] - sole_world[:, 2].min() < self.contact_height_m
        rel = np.cross(s.imu_gyro_rad_per_s, fk.sole_pos_m) + self.kin.sole_velocity(fk, s.joint_vel_rad_per_s)
        vel = -(rel[stance] @ rot.T).mean(axis=0)
        height = float(-sole_world[stance, 2].mean())
        if self.t is None:
            self.pos = start_pos.copy()
        else:
            self.pos += vel * (s.timestamp_s - self.t)
        self.t = s.timestamp_s
        self.pos[2] = height
        return self.pos.copy(), vel, height


def _timed(update: Callable[[RobotState], BaseEstimate], times_ns: list[int]) -> Callable[[RobotState], BaseEstimate]:
    """``update`` that appends its own duration (ns) to ``times_ns``."""

    def timed(state: RobotState) -> BaseEstimate:
        t0 = time.perf_counter_ns()
        out = update(state)
        times_ns.append(time.perf_counter_ns() - t0)
        return out

    return timed


def run_row(
    policy: ExportedPolicy,
    conditions: Conditions,
    seconds: float,
    seed: int = 0,
    estimator_cfg: EstimatorConfig | None = None,
) -> dict:
    """Walk one row and score the three estimators (see module docstring)."""
    planner = isinstance(policy, PlannerPolicy)  # needs the base state: from the attached estimator
    robot = make_robot(conditions, seed, estimator_cfg, base_state=planner)
    loop = ControlLoop(robot, policy, ScriptedTeleop(script(seconds)), cfg=LoopConfig())
    loop.prepare()
    substeps = round(loop.period_s / robot.model.opt.timestep)
    kf, kin = robot.estimator or BaseStateEstimator(estimator_cfg), LegKinematics.from_links()
    baselines = {"imu": ImuIntegration(), "legs": LegOdometry(kin)}
    names = ("kf", *baselines)
    log: dict[str, list] = {k: [] for k in ("t", "true_pos", "true_vel", "walking", "kf_valid")}
    for n in names:
        log[f"{n}_pos"], log[f"{n}_vel"], log[f"{n}_h"] = [], [], []
    times_ns: list[int] = []
    last_t, mode = -1.0, Mode.DAMPING
    if planner:
        kf.update = _timed(kf.update, times_ns)  # type: ignore[method-assign]
    start = robot.ground_truth().base_pos_m
    t, walk_since = 0.0, None
    while t < WALK_START_S + seconds:
        mode = loop.tick(t)
        if mode is Mode.POLICY and walk_since is None:
            walk_since = t
        for _ in range(substeps):
            state = robot.step(1)
            if state.timestamp_s == last_t:
                continue  # a repeated (jittered) sample: nothing new for anyone
            last_t = state.timestamp_s
            truth = robot.ground_truth()
            if planner:  # the estimate the planner acted on, made inside robot.step (timed there)
                if robot.last_estimate is None:
                    continue  # the sample published at connect, before the estimator's first
                est = robot.last_estimate
            else:
                t0 = time.perf_counter_ns()
                est = kf.update(state)
                times_ns.append(time.perf_counter_ns() - t0)
            log["kf_pos"].append(est.base_pos_m), log["kf_vel"].append(est.base_lin_vel_m_per_s)
            log["kf_h"].append(est.height_m), log["kf_valid"].append(est.valid)
            for n, b in baselines.items():
                p, v, h = b.update(state, start)
                log[f"{n}_pos"].append(p), log[f"{n}_vel"].append(v), log[f"{n}_h"].append(h)
            log["t"].append(state.timestamp_s)
            log["true_pos"].append(truth.base_pos_m), log["true_vel"].append(truth.base_lin_vel_m_per_s)
            log["walking"].append(walk_since is not None and state.timestamp_s >= walk_since + SETTLE_S)
        t += loop.period_s
    robot.close()
    return score(conditions.name, {k: np.asarray(v) for k, v in log.items()}, names, times_ns)


def score(name: str, log: dict[str, np.ndarray], names: tuple[str, ...], times_ns: list[int]) -> dict:
    w = log["walking"]
    if not w.any():
        raise RuntimeError(f"row {name!r}: the controller never reached the policy mode")
    true_pos, true_vel = log["true_pos"][w], log["true_vel"][w]
    distance = float(np.linalg.norm(np.diff(true_pos[:, :2], axis=0), axis=1).sum())
    fell = bool(true_pos[:, 2].min() < 0.4)
    row: dict = {"name": name, "walked_m": distance, "fell": fell, "kf_valid_share": float(log["kf_valid"][w].mean())}
    for n in names:
        pos, vel, h = log[f"{n}_pos"][w], log[f"{n}_vel"][w], log[f"{n}_h"][w]
        row[f"{n}_vel_rmse_m_per_s"] = float(np.sqrt(np.mean(np.sum((vel[:, :2] - true_vel[:, :2]) ** 2, axis=1))))
        row[f"{n}_height_rmse_m"] = float(np.sqrt(np.mean((h - true_pos[:, 2]) ** 2)))
        moved_err = (pos[-1, :2] - pos[0, :2]) - (true_pos[-1, :2] - true_pos[0, :2])
        row[f"{n}_drift_share"] = float(np.linalg.norm(moved_err) / max(distance, 1e-9))
    us = [t / 1e3 for t in times_ns[100:]] or [t / 1e3 for t in times_ns]
    row["kf_update_p50_us"], row["kf_update_p99_us"] = percentile(us, 50.0), percentile(us, 99.0)
    row["ok"] = not fell and all(row[f"kf_{k}"] <= v for k, v in TARGETS.items())
    return row


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    policy: Path = DEFAULT_POLICY
    """exported walking expert, or an exported planner (driven from the attached estimator)"""
    seconds: Optional[float] = None
    """walking time per row (default 60, quick 10)"""
    rows: Optional[tuple[str, ...]] = None
    """row names to run (default: all; quick: nominal)"""
    seed: int = 0
    """seed of the sensor model and jitter"""
    check: bool = False
    """exit 1 when the nominal row misses a target"""


def main(args: Args) -> int:
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    wanted = args.rows if args.rows is not None else (["nominal"] if args.quick else None)
    rows_to_run = [c for c in SIM_TO_SIM if wanted is None or c.name in wanted]
    if not rows_to_run:
        raise UserError(f"--rows: expected names from {[c.name for c in SIM_TO_SIM]}, got {args.rows}")
    policy = load_policy(args.policy)
    kind = "planner (from the estimator)" if isinstance(policy, PlannerPolicy) else "expert"
    f3, pct, f1 = "{:.3f}".format, (lambda v: f"{100 * v:.1f}%"), "{:.0f}".format
    cols = [Column("name", "row", 22), Column("walked_m", "walked m", 8, "{:.1f}".format)]
    for n in ("kf", "imu", "legs"):
        cols += [Column(f"{n}_vel_rmse_m_per_s", f"{n} v", 7, f3), Column(f"{n}_drift_share", f"{n} drft", 9, pct)]
        cols += [Column(f"{n}_height_rmse_m", f"{n} h", 7, f3)]
    cols += [Column("kf_update_p50_us", "p50 us", 7, f1), Column("kf_update_p99_us", "p99 us", 7, f1)]
    cols += [Column("ok", "target", 7, lambda ok: "ok" if ok else "MISS")]
    table = Table(cols)
    print(
        f"G1 base state estimation, {kind} {args.policy}, {seconds:.0f} s walking per row, G1 MEMS sensor model, "
        f"jitter 2 steps; targets v <= {TARGETS['vel_rmse_m_per_s']} m/s, drift <= "
        f"{100 * TARGETS['drift_share']:.0f} %, h <= {TARGETS['height_rmse_m']} m"
    )
    table.header()
    rows = []
    for conditions in rows_to_run:
        begin = time.perf_counter()
        row = {**run_row(policy, conditions, seconds, args.seed), "seconds": time.perf_counter() - begin}
        table.row(row)
        rows.append(row)
    if args.json:
        config = {
            "policy": str(args.policy),
            "controller": kind,
            "seconds": seconds,
            "seed": args.seed,
            "sensors": dataclasses.asdict(SensorModelConfig.g1_mems()),
            "state_jitter_steps": 2,
            "commands": COMMANDS,
            "targets": TARGETS,
        }
        write_json(args.json, {"machine": machine_info(), "config": config, "rows": rows})
    nominal = next((r for r in rows if r["name"] == "nominal"), None)
    if args.check and nominal is not None and not nominal["ok"]:
        print("nominal row misses a target")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
