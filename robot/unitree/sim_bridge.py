"""A robot double: the MuJoCo G1 playing the real robot over DDS, for :class:`robot.unitree.dds_robot.DdsRobot`.

    python -m robot.unitree.sim_bridge [--domain-id 1] [--network-interface lo] [--rate-hz 500] [--duration-s S]

It subscribes to ``rt/lowcmd``, drops samples whose CRC is wrong (as the robot does), applies the newest valid
command to :class:`robot.sim.MujocoRobot`, steps physics in real time and publishes ``rt/lowstate`` at
``rate_hz`` with the CRC filled in and ``mode_machine`` = 5 (G1 29-DoF). Like the real motors it obeys commands as
they come: the simulator's own safety layer is opened wide (no watchdog, no rate limit, gains and torques bounded
only by what the motors can do), so whatever guards the robot has to be on the commanding side. To check that
side, every valid LowCmd is compared with the G1's limits (joint range, velocity, effort, the default
:class:`robot.safety.SafetyConfig` gain bounds) and violations are counted.

``--remote-file PATH``: the remote the double reports in ``LowState.wireless_remote``, re-read whenever the file
changes: ``{"buttons": ["R1", "A"], "lx": 0.0, "ly": 0.5, "rx": 0.0, "ry": 0.0}``, or ``{"remote": false}`` for
no remote (all-zero bytes). Without a file the remote is on and idle.

``LowState.reserve[0]`` echoes ``reserve[0]`` of the last applied LowCmd (a sequence number for latency
measurements; the real robot leaves it 0). With ``--echo-immediately`` a LowState is also published as soon as a
command arrives, which measures the DDS link without the wait for the next physics tick. ``--stats-json PATH``
writes the counters when the bridge stops (end of ``--duration-s``, SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot.files import atomic_write_text
from robot.g1 import constants as C
from robot.g1.model import G1ModelConfig
from robot.safety import SafetyConfig
from robot.sim import MujocoRobot, SimRobotConfig
from robot.unitree.convert import command_from_lowcmd, lowcmd_crc_ok, lowstate_from_state
from robot.unitree.dds import open_participant, reader_qos, writer_qos
from robot.unitree.msgs import MODE_MACHINE_G1_29DOF, TOPIC_LOWCMD, TOPIC_LOWSTATE, LowCmd_, LowState_
from robot.unitree.remote import NO_REMOTE, pack_wireless_remote

STOP_GRACE_S = 5.0
"""After SIGINT/SIGTERM the process exits within this long even if the DDS teardown blocks."""

_F32 = np.float32


@dataclass
class SimBridgeConfig:
    """The robot double's link, rates and simulated robot."""

    domain_id: int = 1
    """DDS domain (1 keeps the double away from a real robot on domain 0)."""
    network_interface: str | None = "lo"
    """Interface to serve on ('lo': this machine only)."""
    rate_hz: float = 500.0
    """LowState publication rate; physics advances in real time between two states."""
    duration_s: float | None = None
    """Stop after this long (None: until SIGINT / SIGTERM)."""
    physics_dt_s: float = 0.002
    """MuJoCo time step; ``1 / (rate_hz * physics_dt_s)`` steps per published state (rounded, at least 1)."""
    initial_mode: str = "hold"
    """Before the first command: 'hold' the default pose (robot on a gantry), 'damping' or 'zero_torque'."""
    mode_machine: int = MODE_MACHINE_G1_29DOF
    """Robot type reported in ``LowState.mode_machine``."""
    echo_immediately: bool = False
    """Also publish a LowState the moment a valid LowCmd arrives (transport latency measurements)."""
    stats_json: Path | None = None
    """Write the counters (:class:`BridgeStats`) here when stopping."""
    remote_file: Path | None = None
    """JSON file with the remote's state (module docstring); None: the remote is on and idle."""

    def __post_init__(self) -> None:
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id: expected an integer in [0, 232], got {self.domain_id}")
        if not (np.isfinite(self.rate_hz) and 0.0 < self.rate_hz <= 2000.0):
            raise ValueError(f"rate_hz: expected in (0, 2000], got {self.rate_hz}")
        if self.duration_s is not None and not self.duration_s > 0.0:
            raise ValueError(f"duration_s: expected > 0 or None, got {self.duration_s}")


@dataclass
class BridgeStats:
    """What the double saw on ``rt/lowcmd`` and sent on ``rt/lowstate``."""

    commands_received: int = 0
    """LowCmd samples received (valid or not)."""
    commands_bad_crc: int = 0
    """Samples dropped for a wrong CRC."""
    commands_over_limits: int = 0
    """Valid samples with a value outside the G1's limits or non-finite (a commanding-side safety failure)."""
    first_violation: str | None = None
    """Description of the first limit violation."""
    damping_commands: int = 0
    """Valid samples that were damping (kp = 0 and kd > 0 on every joint)."""
    states_published: int = 0
    """LowState samples published."""
    last_mode_pr: int | None = None
    """``mode_pr`` of the last valid command."""
    last_mode_machine: int | None = None
    """``mode_machine`` of the last valid command."""
    realtime_factor: float = 0.0
    """Simulated time over wall time since the start."""
    extra: dict = field(default_factory=dict)
    """Free-form notes (reason of the stop)."""


def limit_violation(msg: LowCmd_, safety: SafetyConfig | None = None) -> str | None:
    """Why the first 29 slots of ``msg`` break the G1's limits (gain bounds of ``safety``, default
    :class:`SafetyConfig`), or None. Values are compared in float32, as they travel."""
    safety = safety or SafetyConfig()
    cmd = command_from_lowcmd(msg, C.NUM_JOINTS)
    checks = (
        ("q", cmd.q_target_rad, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD),
        ("dq", cmd.dq_target_rad_per_s, -C.VELOCITY_LIMIT_RAD_PER_S, C.VELOCITY_LIMIT_RAD_PER_S),
        ("tau", cmd.tau_ff_nm, -C.EFFORT_LIMIT_NM, C.EFFORT_LIMIT_NM),
        ("kp", cmd.kp_nm_per_rad, np.zeros(C.NUM_JOINTS), np.full(C.NUM_JOINTS, safety.max_kp_nm_per_rad)),
        ("kd", cmd.kd_nms_per_rad, np.zeros(C.NUM_JOINTS), np.full(C.NUM_JOINTS, safety.max_kd_nms_per_rad)),
    )
    for name, value, lower, upper in checks:
        v = value.astype(_F32)
        bad = ~np.isfinite(v) | (v < lower.astype(_F32)) | (v > upper.astype(_F32))
        if np.any(bad):
            j = int(np.argmax(bad))
            return f"{name}[{C.JOINT_NAMES[j]}] = {value[j]} outside [{lower[j]:.4g}, {upper[j]:.4g}]"
    return None


class SimBridge:
    """Runs the double (see module docstring): ``run()`` blocks until the duration ends or ``stop()``."""

    def __init__(self, cfg: SimBridgeConfig) -> None:
        self.cfg = cfg
        wide_open = SafetyConfig(
            max_delta_q_per_tick_rad=1e3, watchdog_timeout_s=1e9, max_kp_nm_per_rad=1e6, max_kd_nms_per_rad=1e6
        )
        self.robot = MujocoRobot(
            SimRobotConfig(
                model=G1ModelConfig(physics_dt_s=cfg.physics_dt_s),
                safety=wide_open,
                threaded=False,
                initial_mode=cfg.initial_mode,
            )
        )
        self.steps_per_state = max(1, round(1.0 / (cfg.rate_hz * cfg.physics_dt_s)))
        self.stats = BridgeStats()
        self._lock = threading.Lock()  # robot, pending command, stats, writer
        self._pending: LowCmd_ | None = None
        self._sequence = 0
        self._stop = threading.Event()
        self._writer: Any = None
        self._remote = pack_wireless_remote()
        self._remote_mtime_ns = -1

    def stop(self) -> None:
        """Ask ``run()`` to return (thread- and signal-safe)."""
        self._stop.set()

    def _on_command(self, reader: Any) -> None:
        if reader is None:
            return  # a callback racing the deletion of its reader (close)
        for msg in reader.take(8):
            if not isinstance(msg, LowCmd_):
                continue
            with self._lock:
                self.stats.commands_received += 1
                if not lowcmd_crc_ok(msg):
                    self.stats.commands_bad_crc += 1
                    continue
                problem = limit_violation(msg)
                if problem is not None:
                    self.stats.commands_over_limits += 1
                    self.stats.first_violation = self.stats.first_violation or problem
                kp = np.array([m.kp for m in msg.motor_cmd[: C.NUM_JOINTS]])
                kd = np.array([m.kd for m in msg.motor_cmd[: C.NUM_JOINTS]])
                if np.all(kp == 0.0) and np.all(kd > 0.0):
                    self.stats.damping_commands += 1
                self.stats.last_mode_pr, self.stats.last_mode_machine = msg.mode_pr, msg.mode_machine
                self._pending = msg
                if self.cfg.echo_immediately:
                    self._sequence = msg.reserve[0]
                    self._publish_state()

    def _publish_state(self) -> None:
        if self._writer is None:
            return  # stopping
        state = self.robot.read_state()
        tick_ms = round(state.timestamp_s * 1000.0)
        self._writer.write(
            lowstate_from_state(
                state, tick_ms, self.cfg.mode_machine, wireless_remote=self._remote_bytes(), sequence=self._sequence
            )
        )
        self.stats.states_published += 1

    def _remote_bytes(self) -> bytes:
        """The remote's bytes, re-read from ``remote_file`` when it changed (a bad file keeps the last remote)."""
        path = self.cfg.remote_file
        if path is None:
            return self._remote
        try:
            mtime = path.stat().st_mtime_ns
            if mtime != self._remote_mtime_ns:
                self._remote_mtime_ns = mtime
                spec = json.loads(path.read_text())
                if spec.get("remote", True):
                    axes = {k: float(spec.get(k, 0.0)) for k in ("lx", "ly", "rx", "ry")}
                    self._remote = pack_wireless_remote(spec.get("buttons", ()), **axes)
                else:
                    self._remote = NO_REMOTE
        except (OSError, ValueError, TypeError, AttributeError) as err:
            self.stats.extra["remote_file_error"] = str(err)
        return self._remote

    def _apply_pending(self) -> None:
        if self._pending is None:
            return
        msg, self._pending = self._pending, None
        self._sequence = msg.reserve[0]
        self.robot.send_command(command_from_lowcmd(msg, C.NUM_JOINTS))

    def run(self) -> BridgeStats:
        """Serve until the duration ends or :meth:`stop`; returns (and optionally writes) the counters."""
        from cyclonedds.core import Listener
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        cfg = self.cfg
        participant = open_participant(cfg.domain_id, cfg.network_interface)
        self._writer = DataWriter(participant, Topic(participant, TOPIC_LOWSTATE, LowState_), qos=writer_qos())
        reader = DataReader(
            participant,
            Topic(participant, TOPIC_LOWCMD, LowCmd_),
            qos=reader_qos(),
            listener=Listener(on_data_available=self._on_command),
        )
        period = 1.0 / cfg.rate_hz
        start = time.perf_counter()
        next_tick = start
        sim_start = self.robot.read_state().timestamp_s
        reason = "stopped"
        self.robot.connect()
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                if cfg.duration_s is not None and now - start >= cfg.duration_s:
                    reason = "duration reached"
                    break
                with self._lock:
                    self._apply_pending()
                    self.robot.step(self.steps_per_state)
                    self._publish_state()
                next_tick += period
                delay = next_tick - time.perf_counter()
                if delay > 0.0:
                    self._stop.wait(delay)
                elif delay < -0.1:
                    next_tick = time.perf_counter()  # fell far behind: do not burst to catch up
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.stats.realtime_factor = (self.robot.read_state().timestamp_s - sim_start) / max(elapsed, 1e-9)
                self.stats.extra["stop_reason"] = reason
                self._writer = None
                # the counters go out first: closing the simulator and the DDS teardown come after, and the signal
                # handler's grace exit must never leave a stopped bridge without its counters
                if cfg.stats_json is not None:
                    atomic_write_text(cfg.stats_json, json.dumps(asdict(self.stats), indent=2))
                self.robot.close()
            reader.__del__()
            participant.__del__()
        return self.stats


def parse_args(argv: list[str] | None = None) -> SimBridgeConfig:
    """Command-line options -> :class:`SimBridgeConfig`."""
    d = SimBridgeConfig()
    p = argparse.ArgumentParser(prog="python -m robot.unitree.sim_bridge", description=__doc__.split("\n\n")[0])
    p.add_argument("--domain-id", type=int, default=d.domain_id, help="DDS domain (default 1; the real robot is 0)")
    p.add_argument("--network-interface", default=d.network_interface, help="interface to serve on (default lo)")
    p.add_argument("--rate-hz", type=float, default=d.rate_hz, help="LowState rate (default 500)")
    p.add_argument("--duration-s", type=float, default=None, help="stop after this long (default: run until killed)")
    p.add_argument("--physics-dt-s", type=float, default=d.physics_dt_s, help="MuJoCo time step (default 0.002)")
    p.add_argument("--initial-mode", default=d.initial_mode, choices=("hold", "damping", "zero_torque"))
    p.add_argument("--echo-immediately", action="store_true", help="publish a LowState as soon as a command arrives")
    p.add_argument("--stats-json", type=Path, default=None, help="write the counters here when stopping")
    p.add_argument("--remote-file", type=Path, default=None, help="JSON remote state, re-read when it changes")
    p.add_argument("--mode-machine", type=int, default=d.mode_machine, help="robot type reported (5: G1 29-DoF)")
    a = p.parse_args(argv)
    return SimBridgeConfig(
        domain_id=a.domain_id,
        network_interface=a.network_interface,
        rate_hz=a.rate_hz,
        duration_s=a.duration_s,
        physics_dt_s=a.physics_dt_s,
        initial_mode=a.initial_mode,
        echo_immediately=a.echo_immediately,
        stats_json=a.stats_json,
        remote_file=a.remote_file,
        mode_machine=a.mode_machine,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the double until the duration ends or a signal arrives."""
    bridge = SimBridge(parse_args(argv))

    def on_signal(signum: int, _frame: object) -> None:
        bridge.stop()
        # DDS teardown can block (seen once in CI): never leave a process that ignores its stop signal.
        timer = threading.Timer(STOP_GRACE_S, lambda: os._exit(128 + signum))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    cfg = bridge.cfg
    print(
        f"sim_bridge: G1 on domain {cfg.domain_id} via {cfg.network_interface}, {cfg.rate_hz:.0f} Hz "
        f"({bridge.steps_per_state} x {cfg.physics_dt_s} s physics per state)",
        flush=True,
    )
    stats = bridge.run()
    print(f"sim_bridge: {json.dumps(asdict(stats))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
