"""``python -m deploy.run``: drive the simulated G1 (MuJoCo in its real-time thread) with an exported policy.

The operator input is a scripted command file (:class:`deploy.teleop.ScriptedTeleop`, the default script stands
up, holds, then runs the policy with a few velocity commands), the keyboard, or a gamepad. At exit it prints the
mode transitions and the timing report, and writes ``timing.csv``, ``tb/`` (TensorBoard, ``timing/`` tags) and
``summary.json`` under ``--out-dir``.

Without ``--policy`` it exports and runs a zero-action MLP (holds the default pose with the stand gains): there is
no trained walking expert yet, and that policy shows the runtime, the safety state machine and the timing.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from deploy.loop import ControlLoop, LoopConfig
from deploy.policy_io import ExportedPolicy, PolicyMetadata, build_mlp_policy, export_policy, load_policy
from deploy.safety_fsm import Mode
from deploy.teleop import CommandRanges, KeyboardTeleop, ScriptedTeleop, ScriptEvent, TeleopSource
from envs.g1_env import G1EnvConfig
from envs.observations import quat_rotate_inverse
from robot.interface import RobotState
from robot.sim import MujocoRobot, SimRobotConfig

DEFAULT_SCRIPT: tuple[ScriptEvent, ...] = (
    ScriptEvent(0.0, deadman=False),
    ScriptEvent(0.02, request="stand", deadman=False),
    ScriptEvent(2.5, deadman=True),
    ScriptEvent(2.6, request="walk"),
    ScriptEvent(4.0, command=(0.5, 0.0, 0.0)),
    ScriptEvent(7.0, command=(0.0, 0.3, 0.5)),
    ScriptEvent(10.0, command=(0.0, 0.0, 0.0)),
)


class MotionMonitor:
    """What the robot did while the policy drove it (a :class:`deploy.loop.ControlLoop` monitor).

    Per tick: the lowest pelvis height (a fall is a pelvis below ``fall_height_m``, the training env's fall line),
    and in POLICY mode the tracking errors as ``benchmarks/expert_eval.py`` defines them: ``|v_xy* - v_xy|`` with the
    pelvis velocity in its own frame, and ``|w_z* - w_z|`` with the IMU's yaw rate. "Settled" ticks are those at
    least ``settle_s`` after the command last changed. Needs a backend that publishes the base pose and velocity
    (the simulator does); without them the figures stay NaN and no fall is seen. Runs after the tick is timed.
    """

    def __init__(self, fall_height_m: float = G1EnvConfig.fall_height_m, settle_s: float = 1.0) -> None:
        self.fall_height_m, self.settle_s = fall_height_m, settle_s
        self.min_height_m = math.inf
        self.fall_time_s: float | None = None
        self.policy_ticks = 0
        self._sums = np.zeros(4)  # lin, yaw, settled lin, settled yaw
        self._settled = 0
        self._command = np.full(3, np.nan)
        self._changed_s = -math.inf
        self._start_s: float | None = None
        self._path_m = 0.0
        self._last_pos: np.ndarray | None = None

    def __call__(self, now_s: float, state: RobotState, command: np.ndarray, mode: Mode) -> None:
        if self._start_s is None:
            self._start_s = now_s
        if not np.array_equal(command, self._command):
            self._command, self._changed_s = command.copy(), now_s
        if state.base_pos_m.size:
            height = float(state.base_pos_m[2])
            self.min_height_m = min(self.min_height_m, height)
            if height < self.fall_height_m and self.fall_time_s is None:
                self.fall_time_s = now_s - self._start_s
            if mode is Mode.POLICY and self._last_pos is not None:
                self._path_m += float(np.linalg.norm(state.base_pos_m[:2] - self._last_pos[:2]))
            self._last_pos = state.base_pos_m.copy()
        if mode is not Mode.POLICY or not state.base_lin_vel_m_per_s.size:
            return
        v_body = quat_rotate_inverse(state.imu_quat_wxyz, state.base_lin_vel_m_per_s)
        lin = float(np.linalg.norm(command[:2] - v_body[:2]))
        yaw = abs(float(command[2] - state.imu_gyro_rad_per_s[2]))
        settled = now_s - self._changed_s >= self.settle_s
        self._sums += [lin, yaw, lin * settled, yaw * settled]
        self._settled += settled
        self.policy_ticks += 1

    def summary(self) -> dict[str, float | bool | int | None]:
        """Fall, lowest pelvis height, mean errors over POLICY ticks (NaN without any), path length walked."""
        n, m = max(self.policy_ticks, 1), max(self._settled, 1)
        nan = math.nan
        return {
            "fell": self.fall_time_s is not None,
            "fall_time_s": self.fall_time_s,
            "min_base_height_m": self.min_height_m if math.isfinite(self.min_height_m) else nan,
            "policy_ticks": self.policy_ticks,
            "lin_err_m_per_s": self._sums[0] / n if self.policy_ticks else nan,
            "yaw_err_rad_per_s": self._sums[1] / n if self.policy_ticks else nan,
            "settled_lin_err_m_per_s": self._sums[2] / m if self._settled else nan,
            "settled_yaw_err_rad_per_s": self._sums[3] / m if self._settled else nan,
            "path_m": self._path_m,
        }

    def report(self) -> str:
        """One line for the console."""
        s = self.summary()
        fell = f"FELL at {s['fall_time_s']:.1f} s" if s["fell"] else "no fall"
        return (
            f"motion: {fell} (lowest pelvis {s['min_base_height_m']:.3f} m); {s['policy_ticks']} policy ticks, "
            f"walked {s['path_m']:.1f} m; tracking v err {s['lin_err_m_per_s']:.3f} m/s, "
            f"yaw err {s['yaw_err_rad_per_s']:.3f} rad/s (settled: {s['settled_lin_err_m_per_s']:.3f}, "
            f"{s['settled_yaw_err_rad_per_s']:.3f})"
        )


@dataclass
class RunConfig:
    """Run an exported policy on the simulated G1 in real time."""

    policy: Path | None = None
    """Exported policy (.pt with its .json); None: export a zero-action hold policy into --out-dir."""
    teleop: Literal["script", "keyboard", "gamepad"] = "script"
    """Operator input."""
    script: Path | None = None
    """Command file for --teleop script (None: the built-in stand/walk script, also written to --out-dir)."""
    duration_s: float = 12.0
    """How long to run."""
    out_dir: Path = Path("outputs/deploy_run")
    """Where timing.csv, tb/ and summary.json go."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Control loop options."""
    tensorboard: bool = True
    """Write the per-tick timing to TensorBoard at exit."""

    def __post_init__(self) -> None:
        if not self.duration_s > 0.0:
            raise ValueError(f"duration_s: expected > 0, got {self.duration_s}")
        if self.policy is not None and not self.policy.is_file():
            raise ValueError(f"policy: expected an exported .pt file, got {self.policy} (not found)")


def hold_policy(out_dir: Path) -> ExportedPolicy:
    """Export (once) and load the zero-action demo policy with stand gains."""
    meta = PolicyMetadata.for_g1("stand", extra={"demo": "zero-action hold policy"})
    path = out_dir / "hold_policy.pt"
    if not path.is_file():
        export_policy(build_mlp_policy(meta.obs_dim, meta.num_joints, (64, 64), zero_output=True), meta, path)
    return load_policy(path)


def make_teleop(cfg: RunConfig, ranges: CommandRanges) -> TeleopSource:
    """The operator input chosen by ``cfg``."""
    if cfg.teleop == "keyboard":
        return KeyboardTeleop(ranges)
    if cfg.teleop == "gamepad":
        from deploy.gamepad import EvdevGamepad

        return EvdevGamepad(ranges=ranges)
    path = cfg.script or ScriptedTeleop.write(cfg.out_dir / "script.json", DEFAULT_SCRIPT)
    return ScriptedTeleop.from_file(path, ranges)


def main(cfg: RunConfig) -> dict[str, Any]:
    """Run, print the timing and motion reports, write the logs; returns the summary written to summary.json."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(cfg.policy) if cfg.policy else hold_policy(cfg.out_dir)
    meta = policy.metadata
    teleop = make_teleop(cfg, CommandRanges(tuple(meta.command_low), tuple(meta.command_high)))
    robot = MujocoRobot(SimRobotConfig(threaded=True, realtime=True, initial_mode="damping"))
    print(f"policy {policy.path} ({meta.gain_profile} gains, {meta.control_freq_hz:.0f} Hz), {cfg.duration_s} s")
    monitor = MotionMonitor()
    loop = ControlLoop(robot, policy, teleop, cfg=cfg.loop, monitor=monitor)
    loop.prepare()  # before the physics thread starts: the robot starts in damping and sags until the first tick
    with robot:
        t_connect = time.perf_counter()
        stats = loop.run(cfg.duration_s)
        base_height_m = float(robot.data.qpos[2])
    print(stats.report())
    first_tick_ms = 1e3 * (stats.column("start_s")[0] - t_connect) if stats.n else math.nan
    print(f"first tick {first_tick_ms:.1f} ms after the physics thread started")
    print(monitor.report())
    stats.write_csv(cfg.out_dir / "timing.csv")
    if cfg.tensorboard:
        stats.write_tensorboard(cfg.out_dir / "tb")
    damping_reasons = [t.reason for t in loop.fsm.transitions if t.target.value == "damping"]
    summary = {
        **stats.summary(),
        "base_height_m": base_height_m,
        "motion": monitor.summary(),
        "first_tick_after_connect_ms": first_tick_ms,
        "transitions": [str(t) for t in loop.fsm.transitions],
        "first_damping_reason": damping_reasons[0] if damping_reasons else None,
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
    }
    (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"final base height {base_height_m:.3f} m; logs in {cfg.out_dir}")
    return summary


if __name__ == "__main__":
    main(tyro.cli(RunConfig))
