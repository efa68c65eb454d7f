"""``python -m deploy.run``: drive the G1 with an exported policy, simulated or real, with one command.

- ``--robot sim`` (default): MuJoCo in its real-time thread; ``--viewer`` opens MuJoCo's passive viewer on it.
- ``--robot g1 --g1.network-interface IFACE [--g1.domain-id 0]``: the real robot over DDS, or its robot double
  (``python -m robot.unitree.sim_bridge``, interface ``lo``, domain 1). Start-up (:mod:`deploy.g1_backend`) waits
  for the LowState, refuses a robot whose ``mode_machine`` or joint order differs from the policy's metadata, then
  the same loop and safety state machine run: zero torque -> default pose -> hold -> policy, damping one button
  away. ``--dry-run`` connects, prints the state and commands nothing. See docs/deploy_g1.md.

The same policy file, loop (:mod:`deploy.loop`), safety state machine and teleop run on both. The operator input
is a scripted command file (:class:`deploy.teleop.ScriptedTeleop`, the default script stands up, holds, then runs
the policy with a few velocity commands), the keyboard, a gamepad, or the Unitree remote (``--teleop
unitree-remote``, G1 only: its bytes come in the LowState). A prompt says what the operator must do whenever the
mode changes. At exit it prints the mode transitions and the timing report, and writes ``timing.csv``, ``tb/``
(TensorBoard, ``timing/`` tags) and ``summary.json`` under ``--out-dir``.

Without ``--policy`` it exports and runs a zero-action MLP (holds the default pose with the stand gains): it shows
the runtime, the safety state machine and the timing without a trained policy (the walking expert is
``assets/g1_walk/deploy/policy.pt``).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import tyro

from deploy.g1_backend import G1LinkConfig, G1StartupError, connect_g1, dry_run
from deploy.loop import ControlLoop, LoopConfig
from deploy.operator_guide import OperatorGuide, OperatorKeys
from deploy.policies.base import RuntimePolicy
from deploy.policies.export import build_mlp_policy, export_policy
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata
from deploy.safety_fsm import Mode
from deploy.teleop import CommandRanges, KeyboardTeleop, ScriptedTeleop, ScriptEvent, TeleopSource
from envs.g1.observations import quat_rotate_inverse
from robot.cli import run_cli
from robot.estimation import BaseStateEstimator
from robot.files import atomic_write_text
from robot.g1 import constants as C
from robot.interface import RobotInterface, RobotState

if TYPE_CHECKING:  # the simulator (MuJoCo) is imported only for --robot sim: the G1 path stays torch/MuJoCo-free
    from robot.sim import GroundTruth

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

    def __init__(
        self,
        fall_height_m: float = C.FALL_HEIGHT_M,
        settle_s: float = 1.0,
        truth: Callable[[], GroundTruth] | None = None,
    ) -> None:
        self.fall_height_m, self.settle_s = fall_height_m, settle_s
        self.truth = truth  # the simulator's ground truth: measure the motion there, not from the estimate
        self._est_err_sq, self._est_n = 0.0, 0
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
        if self.truth is not None:
            truth = self.truth()
            if mode is Mode.POLICY and state.base_lin_vel_m_per_s.size:  # the published (estimated) velocity
                self._est_err_sq += float(
                    np.sum((state.base_lin_vel_m_per_s[:2] - truth.base_lin_vel_m_per_s[:2]) ** 2)
                )
                self._est_n += 1
            state = state.copy()
            state.base_pos_m, state.base_lin_vel_m_per_s = truth.base_pos_m, truth.base_lin_vel_m_per_s
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
            "measured_from": "simulator ground truth" if self.truth is not None else "published robot state",
            "published_vel_rmse_m_per_s": math.sqrt(self._est_err_sq / self._est_n) if self._est_n else nan,
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
    """Run an exported policy on the G1 in real time: simulated (--robot sim) or over DDS (--robot g1)."""

    policy: Path | None = None
    """Exported policy (.pt with its .json); None: export a zero-action hold policy into --out-dir."""
    robot: Literal["sim", "g1"] = "sim"
    """sim: MuJoCo in this process; g1: the real G1 (or its robot double) over DDS, see --g1.*."""
    teleop: Literal["script", "keyboard", "gamepad", "unitree-remote"] = "script"
    """Operator input (unitree-remote: the remote paired with the G1, --robot g1 only)."""
    g1: G1LinkConfig = field(default_factory=G1LinkConfig)
    """How --robot g1 reaches the robot."""
    dry_run: bool = False
    """--robot g1: connect, check, print the state for --g1.dry-run-s and command nothing."""
    viewer: bool = False
    """--robot sim: open MuJoCo's passive viewer (needs a display)."""
    state_source: Literal["estimator", "oracle"] = "estimator"
    """Base position and velocity: estimator (robot.estimation's contact-aided Kalman filter on the IMU and the
    joints, fed every state sample, as on the real G1) or oracle (the simulator's ground truth, --robot sim only)."""
    sim_sensors: Literal["g1_mems", "ideal"] = "g1_mems"
    """--robot sim sensor model: g1_mems (IMU white noise and drifting biases, encoder noise; see
    robot.sensor_model) or ideal (exact readings)."""
    sim_state_jitter_steps: int = 2
    """--robot sim: a state sample reaches the loop up to this many physics steps late, as over DDS."""
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
        if self.teleop == "unitree-remote" and self.robot != "g1":
            raise ValueError(
                "teleop unitree-remote: the remote's bytes arrive in the G1's LowState, so it needs --robot g1 "
                "(the robot double: --robot g1 --g1.network-interface lo --g1.domain-id 1)"
            )
        if self.dry_run and self.robot != "g1":
            raise ValueError("dry_run: expected --robot g1 (a dry run checks the link to a robot)")
        if self.state_source == "oracle" and self.robot != "sim":
            raise ValueError("state_source oracle: only the simulator knows the true base state (--robot sim)")
        if self.sim_state_jitter_steps < 0:
            raise ValueError(f"sim_state_jitter_steps: expected >= 0, got {self.sim_state_jitter_steps}")
        if self.viewer and self.robot != "sim":
            raise ValueError("viewer: expected --robot sim (the viewer shows the simulation in this process)")


def hold_policy(out_dir: Path) -> RuntimePolicy:
    """Export (once) and load the zero-action demo policy with stand gains."""
    meta = PolicyMetadata.for_g1("stand", extra={"demo": "zero-action hold policy"})
    path = out_dir / "hold_policy.pt"
    if not path.is_file():
        export_policy(build_mlp_policy(meta.obs_dim, meta.num_joints, (64, 64), zero_output=True), meta, path)
    return load_policy(path)


def make_teleop(cfg: RunConfig, ranges: CommandRanges, robot: RobotInterface | None = None) -> TeleopSource:
    """The operator input chosen by ``cfg`` (``robot``: the connected G1 for the Unitree remote)."""
    if cfg.teleop == "unitree-remote":
        from deploy.unitree_remote import UnitreeRemoteTeleop

        source = getattr(robot, "wireless_remote", None)
        if source is None:
            raise ValueError("teleop unitree-remote: expected a robot that reports the remote (--robot g1)")
        return UnitreeRemoteTeleop(source, ranges)
    if cfg.teleop == "keyboard":
        return KeyboardTeleop(ranges)
    if cfg.teleop == "gamepad":
        from deploy.gamepad import EvdevGamepad

        return EvdevGamepad(ranges=ranges)
    path = cfg.script or ScriptedTeleop.write(cfg.out_dir / "script.json", DEFAULT_SCRIPT)
    return ScriptedTeleop.from_file(path, ranges)


def _open_robot(cfg: RunConfig, policy: RuntimePolicy) -> RobotInterface:
    """The robot of ``cfg.robot``: a G1 connected and checked (:func:`deploy.g1_backend.connect_g1`) or the
    simulator (connected by the caller, after the policy's warm-up)."""
    if cfg.robot == "g1":
        robot = connect_g1(cfg.g1, policy.metadata)
        robot.attach_estimator(BaseStateEstimator())  # a real G1 publishes no base state
        return robot
    if cfg.viewer:
        from deploy.viewer import require_display

        require_display()  # before anything starts: without a display, say so and exit
    from robot.sensor_model import SensorModelConfig
    from robot.sim import MujocoRobot, SimRobotConfig

    sim = MujocoRobot(
        SimRobotConfig(
            threaded=True,
            realtime=True,
            initial_mode="damping",
            sensors=SensorModelConfig.g1_mems() if cfg.sim_sensors == "g1_mems" else SensorModelConfig(),
            state_jitter_steps=cfg.sim_state_jitter_steps,
            oracle=cfg.state_source == "oracle",
        )
    )
    if cfg.state_source == "estimator":
        sim.attach_estimator(BaseStateEstimator())
    return sim


def _drive(cfg: RunConfig, loop: ControlLoop, robot: RobotInterface) -> tuple[Any, float, float]:
    """Connect (sim), run the loop until the duration ends, the viewer closes or Ctrl-C; the robot ends damped.

    Returns the timing statistics, the physics thread start time and the final pelvis height (NaN on the G1)."""
    viewer = None
    with robot:
        t_connect = time.perf_counter()
        if cfg.viewer and cfg.robot == "sim":
            from deploy.viewer import ViewerSync, open_viewer

            viewer = ViewerSync(robot, open_viewer(robot)).start()
        try:
            stats = loop.run(cfg.duration_s, stop=(lambda: viewer.closed) if viewer else None)
        except KeyboardInterrupt:  # loop.run has already latched and sent damping
            print("stopped by the operator (Ctrl-C): damping sent", flush=True)
            stats = loop.stats
        finally:
            if viewer is not None:
                viewer.close()
        base_height_m = float(robot.data.qpos[2]) if cfg.robot == "sim" else math.nan
    return stats, t_connect, base_height_m


def main(cfg: RunConfig) -> dict[str, Any]:
    """Run, print the timing and motion reports, write the logs; returns the summary written to summary.json.

    Raises :class:`deploy.g1_backend.G1StartupError` when the G1 start-up refuses (nothing was commanded) and
    :class:`deploy.viewer.ViewerUnavailableError` for --viewer without a display."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(cfg.policy) if cfg.policy else hold_policy(cfg.out_dir)
    meta = policy.metadata
    robot = _open_robot(cfg, policy)
    if cfg.dry_run:
        try:
            report = dry_run(robot, cfg.g1.dry_run_s)
        finally:
            robot.close()
        summary = {"dry_run": report, "config": json.loads(json.dumps(asdict(cfg), default=str))}
        atomic_write_text(cfg.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
    teleop = make_teleop(cfg, CommandRanges(tuple(meta.command_low), tuple(meta.command_high)), robot)
    print(f"policy {policy.path} ({meta.gain_profile} gains, {meta.control_freq_hz:.0f} Hz), {cfg.duration_s} s")
    truth = getattr(robot, "ground_truth", None)  # the simulator's; a real robot has none
    motion, guide = MotionMonitor(truth=truth), OperatorGuide(OperatorKeys.for_teleop(cfg.teleop))
    print(f"base state from the {cfg.state_source}" + (f", {cfg.sim_sensors} sensors" if cfg.robot == "sim" else ""))

    def monitor(now_s: float, state: RobotState, command: np.ndarray, mode: Mode) -> None:
        motion(now_s, state, command, mode)
        guide(now_s, state, command, mode)

    loop = ControlLoop(robot, policy, teleop, cfg=cfg.loop, monitor=monitor)
    loop.prepare()  # before the physics thread starts: the robot starts in damping and sags until the first tick
    guide.start(loop.fsm.mode)
    stats, t_connect, base_height_m = _drive(cfg, loop, robot)
    print(stats.report())
    first_tick_ms = 1e3 * (stats.column("start_s")[0] - t_connect) if stats.n else math.nan
    print(f"first tick {first_tick_ms:.1f} ms after the robot connected")
    print(motion.report())
    stats.write_csv(cfg.out_dir / "timing.csv")
    if cfg.tensorboard:
        stats.write_tensorboard(cfg.out_dir / "tb")
    damping_reasons = [t.reason for t in loop.fsm.transitions if t.target.value == "damping"]
    summary = {
        **stats.summary(),
        "robot": cfg.robot,
        "state_source": cfg.state_source,
        "sim_sensors": cfg.sim_sensors if cfg.robot == "sim" else None,
        "base_height_m": base_height_m,
        "motion": motion.summary(),
        "first_tick_after_connect_ms": first_tick_ms,
        "transitions": [str(t) for t in loop.fsm.transitions],
        "first_damping_reason": damping_reasons[0] if damping_reasons else None,
        "operator_prompts": guide.prompts,
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
    }
    atomic_write_text(cfg.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"final base height {base_height_m:.3f} m; logs in {cfg.out_dir}")
    return summary


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-run``: a refused start, a missing display or another user's mistake is one line and exit
    code 2 (``--debug``: traceback)."""
    from deploy.viewer import ViewerUnavailableError

    return run_cli(
        lambda argv, prog: main(tyro.cli(RunConfig, args=argv, prog=prog)),
        args,
        errors=(G1StartupError, ViewerUnavailableError),
    )


if __name__ == "__main__":
    sys.exit(cli())
