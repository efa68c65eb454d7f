"""The real G1 behind :class:`robot.interface.RobotInterface`: ``rt/lowcmd`` out, ``rt/lowstate`` in, over DDS.

Life of a :class:`DdsRobot`:

1. ``connect()`` opens the DDS participant, subscribes to ``rt/lowstate`` and waits (``connect_timeout_s``) for a
   first state whose CRC is right, checking that ``mode_machine`` is the expected robot type. Nothing is published
   yet: until the first ``send_command`` the robot stays under whatever controls it.
2. ``send_command`` filters through the same :class:`robot.safety.SafetyLayer` as the MuJoCo backend (clamps,
   non-finite -> damping) and publishes a LowCmd at once (``mode_pr``, ``mode_machine`` echoed from the robot,
   CRC filled in). From then on the last accepted command is re-sent at ``publish_rate_hz``, as Unitree's deploy
   stacks do, with a watchdog (no new command for ``watchdog_timeout_s`` -> damping) and damping when the state
   stream goes stale (no LowState for ``stale_state_timeout_s``). By default the re-send, the watchdog and the
   stale check run in a child process (:mod:`robot.unitree.resender`), so a GC pass or a busy thread holding this
   process's GIL cannot delay damping; ``resend_in_process=False`` runs them in a thread of this process.
3. ``close()`` latches damping, publishes it for ``close_damping_s`` and releases DDS.

Clock: ``time.perf_counter`` (the deploy loop's clock). ``RobotState.timestamp_s`` is the time the LowState was
received on that clock, so a state that stops changing is a state that stopped arriving; :meth:`state_age_s` is
its age. LowStates with a wrong CRC are dropped and counted (:attr:`num_bad_state_crc`).
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot.g1 import constants as C
from robot.interface import RobotCommand, RobotInterface, RobotState
from robot.safety import SafetyConfig, SafetyLayer
from robot.unitree.convert import lowcmd_from_command, lowstate_crc_ok, state_from_lowstate
from robot.unitree.dds import open_participant, reader_qos, writer_qos
from robot.unitree.msgs import MODE_MACHINE_G1_29DOF, MODE_PR, TOPIC_LOWCMD, TOPIC_LOWSTATE, LowCmd_, LowState_


@dataclass
class DdsRobotConfig:
    """How to reach the G1 over DDS and the limits applied to every command."""

    domain_id: int = 0
    """DDS domain of the robot (0 for the real G1; the robot double defaults to 1)."""
    network_interface: str | None = None
    """NIC on the robot's network (e.g. 'enp3s0'); 'lo' for a robot double on this machine; None: Cyclone default."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Safety limits applied to every command (the same layer as the MuJoCo backend)."""
    publish_rate_hz: float = 500.0
    """Rate at which the last accepted command (or damping) is re-published once commanding has started."""
    connect_timeout_s: float = 5.0
    """``connect()`` fails when no valid LowState arrives within this time."""
    stale_state_timeout_s: float = 0.1
    """Damping when no LowState arrived for this long while commanding."""
    expected_mode_machine: int | None = MODE_MACHINE_G1_29DOF
    """``mode_machine`` the robot must report (5: G1 29-DoF rev 1.0); None accepts any robot type."""
    mode_pr: int = MODE_PR
    """``LowCmd.mode_pr``: 0 commands ankle/waist linkages as pitch/roll joints (our joint order), 1 as A/B motors."""
    verify_state_crc: bool = True
    """Drop LowStates whose CRC is wrong."""
    stamp_sequence: bool = False
    """Write a message counter into ``LowCmd.reserve[0]`` (robot doubles echo it; for latency measurements)."""
    close_damping_s: float = 0.05
    """``close()`` keeps publishing damping this long so that a lossy link delivers it."""
    freeze_gc_on_connect: bool = True
    """``connect()`` collects garbage then ``gc.freeze()``s every live object, so later cyclic-GC passes scan only
    newer objects: a full pass over a process that has loaded policies and simulators held the GIL for ~0.23 s here
    and delayed the 0.1 s watchdog to 0.33 s (tests/robot/test_unitree_dds.py after the deploy tests). Objects alive
    at connect are never collected afterwards (cycles among them that die later stay in memory)."""

    resend_in_process: bool = True
    """Re-send, watchdog and stale check in a child process (module docstring); False: a thread of this process."""

    def __post_init__(self) -> None:
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id: expected an integer in [0, 232], got {self.domain_id}")
        for name in ("publish_rate_hz", "connect_timeout_s", "stale_state_timeout_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f"{name}: expected a finite value > 0, got {value}")
        if self.mode_pr not in (0, 1):
            raise ValueError(f"mode_pr: expected 0 (pitch/roll) or 1 (A/B), got {self.mode_pr}")
        if self.close_damping_s < 0.0:
            raise ValueError(f"close_damping_s: expected >= 0, got {self.close_damping_s}")


class DdsRobot(RobotInterface):
    """The Unitree G1 (29 DoF) over ``unitree_hg`` low-level DDS messages (see module docstring)."""

    def __init__(self, cfg: DdsRobotConfig | None = None) -> None:
        self.cfg = cfg or DdsRobotConfig()
        self.joint_names = C.JOINT_NAMES
        self.safety = SafetyLayer(
            self.cfg.safety, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, C.EFFORT_LIMIT_NM, C.VELOCITY_LIMIT_RAD_PER_S
        )
        self._lock = threading.RLock()  # safety layer, active command, writer
        self._state_cond = threading.Condition()  # latest state, written by the DDS listener thread
        self._state: RobotState | None = None
        self._state_received_s = -np.inf
        self._wireless_remote = bytes(40)
        self._mode_machine: int | None = None
        self._echoed_sequence = 0
        self._active: RobotCommand | None = None
        self._last_publish_s = -np.inf
        self._sequence = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._entities: list[Any] = []  # DDS entities, children before the participant
        self._writer: Any = None
        self._connected = False
        self._resender: Any = None
        self._child_latch_known = False
        self.num_states = 0
        self.num_bad_state_crc = 0
        self._num_published = 0

    # ----- lifecycle ------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open DDS, wait for the first valid LowState, check the robot type (see module docstring)."""
        if self._connected:
            return
        from cyclonedds.core import Listener
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        cfg = self.cfg
        with self._state_cond:  # a reconnect must wait for a fresh state and command anew
            self._state, self._state_received_s, self._mode_machine = None, -np.inf, None
        self._active = None
        participant = open_participant(cfg.domain_id, cfg.network_interface)
        cmd_topic = Topic(participant, TOPIC_LOWCMD, LowCmd_)
        state_topic = Topic(participant, TOPIC_LOWSTATE, LowState_)
        if not cfg.resend_in_process:
            self._writer = DataWriter(participant, cmd_topic, qos=writer_qos())
        listener = Listener(on_data_available=self._on_state)
        reader = DataReader(participant, state_topic, qos=reader_qos(), listener=listener)
        self._entities = [e for e in (reader, self._writer, cmd_topic, state_topic, participant) if e is not None]
        self._connected = True
        with self._state_cond:
            got = self._state_cond.wait_for(lambda: self._state is not None, timeout=cfg.connect_timeout_s)
        if not got:
            self._release()
            raise TimeoutError(
                f"DdsRobot.connect: no valid LowState on '{TOPIC_LOWSTATE}' within {cfg.connect_timeout_s} s "
                f"(domain {cfg.domain_id}, interface {cfg.network_interface or 'Cyclone default'}, "
                f"{self.num_bad_state_crc} dropped for a bad CRC). Is the robot on and in this domain, or is "
                f"`python -m robot.unitree.sim_bridge --domain-id {cfg.domain_id}` running?"
            )
        if cfg.expected_mode_machine is not None and self._mode_machine != cfg.expected_mode_machine:
            found = self._mode_machine
            self._release()
            raise RuntimeError(
                f"DdsRobot.connect: the robot reports mode_machine={found}, expected {cfg.expected_mode_machine} "
                "(G1 29-DoF rev 1.0); set expected_mode_machine=None only if you know this robot's joint layout"
            )
        if cfg.resend_in_process:
            self._start_resender()
        if cfg.freeze_gc_on_connect:
            gc.collect()
            gc.freeze()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="DdsRobot", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Latch damping, publish it for ``close_damping_s`` (if we were commanding), release DDS."""
        if not self._connected:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        period = 1.0 / self.cfg.publish_rate_hz
        with self._lock:
            self.safety.trip("closed")
            commanding = self._active is not None
        if self._resender is not None:
            self._resender.stop()  # damping for close_damping_s when commanding, then the child exits
            self._resender = None
        elif commanding:
            deadline = time.perf_counter() + self.cfg.close_damping_s
            while True:
                with self._lock:
                    self._publish(self.safety.damping_command())
                if time.perf_counter() + period > deadline:
                    break
                time.sleep(period)
        self._release()

    def _release(self) -> None:
        self._connected = False
        # Delete explicitly, children first: the binding deletes an entity only when it is garbage collected, and the
        # listener keeps the reader in a reference cycle with this object.
        for entity in self._entities:
            entity.__del__()
        self._entities = []
        self._writer = None

    @property
    def mode_machine(self) -> int | None:
        """Robot type reported in the latest LowState (5: G1 29-DoF rev 1.0); None before the first."""
        with self._state_cond:
            return self._mode_machine

    @property
    def is_connected(self) -> bool:
        """Whether ``connect()`` succeeded and ``close()`` was not called."""
        return self._connected

    # ----- state ----------------------------------------------------------------------------------------------
    def _on_state(self, reader: Any) -> None:
        if reader is None:
            return  # a callback racing the deletion of its reader (close)
        for msg in reader.take(8):
            if not isinstance(msg, LowState_) or not self._connected:
                continue
            if self.cfg.verify_state_crc and not lowstate_crc_ok(msg):
                self.num_bad_state_crc += 1
                continue
            now = time.perf_counter()
            state = self._estimated(state_from_lowstate(msg, C.NUM_JOINTS, now))  # the estimator at 500 Hz
            if self._resender is not None:
                self._resender.note_state(now)
            with self._state_cond:
                self._state, self._state_received_s = state, now
                self._wireless_remote = bytes(msg.wireless_remote)
                self._mode_machine = msg.mode_machine
                self._echoed_sequence = msg.reserve[0]
                self.num_states += 1
                self._state_cond.notify_all()

    def read_state(self) -> RobotState:
        """Latest valid LowState as a :class:`RobotState` (``damping`` = this side's safety latch)."""
        with self._state_cond:
            if self._state is None:
                raise RuntimeError("DdsRobot.read_state: no LowState received yet; call connect() first")
            state = self._state.copy()
        state.damping = self.safety.damping
        return state

    def state_age_s(self) -> float:
        """Seconds since the last valid LowState arrived (inf before the first)."""
        with self._state_cond:
            return time.perf_counter() - self._state_received_s

    def wireless_remote(self) -> tuple[bytes, float] | None:
        """The remote's 40 bytes from the latest LowState and its receive time (``UnitreeRemoteTeleop`` source)."""
        with self._state_cond:
            return None if self._state is None else (self._wireless_remote, self._state_received_s)

    def wait_for_echo(self, sequence: int, timeout_s: float) -> bool:
        """Block until a LowState echoes command ``sequence`` in ``reserve[0]`` (robot doubles with
        ``stamp_sequence``); False on timeout."""
        with self._state_cond:
            return self._state_cond.wait_for(lambda: self._echoed_sequence >= sequence, timeout=timeout_s)

    @property
    def last_sequence(self) -> int:
        """Counter of the last published LowCmd (written to ``reserve[0]`` when ``stamp_sequence``)."""
        return self._sequence

    # ----- commands -------------------------------------------------------------------------------------------
    def send_command(self, command: RobotCommand) -> None:
        """Safety-filter ``command`` and publish it now (see :meth:`RobotInterface.send_command`)."""
        if not self._connected:
            raise RuntimeError("DdsRobot.send_command: not connected; call connect() first")
        with self._lock:
            reset = self._sync_child_latch()
            super().send_command(command)
            if reset:  # after the new command is in: cleared first, the child would judge the old command's age
                self._resender.clear_damping()
                self._child_latch_known = False
            if self.safety.damping and self._resender is not None:
                self._resender.request_damping()
                self._child_latch_known = True

    def _apply_command(self, command: RobotCommand) -> None:
        self._active = command.copy()
        self._publish(self._active)

    def _now_s(self) -> float:
        return time.perf_counter()

    def _measured_joint_pos_rad(self) -> np.ndarray:
        with self._state_cond:
            if self._state is None:
                return np.full(C.NUM_JOINTS, np.nan)  # the safety layer turns this into damping
            return self._state.joint_pos_rad.copy()

    @property
    def num_published(self) -> int:
        """LowCmd samples published (by this process and by the re-send child)."""
        return self._num_published + (self._resender.num_published if self._resender is not None else 0)

    def _start_resender(self) -> None:
        from robot.unitree.resender import Resender, ResenderConfig

        cfg = self.cfg
        self._resender = Resender(
            ResenderConfig(
                cfg.domain_id,
                cfg.network_interface,
                C.NUM_JOINTS,
                cfg.publish_rate_hz,
                cfg.safety.watchdog_timeout_s,
                cfg.stale_state_timeout_s,
                cfg.safety.damping_kd_nms_per_rad,
                cfg.mode_pr,
                cfg.close_damping_s,
            )
        )
        self._resender.note_state(self._state_received_s)
        self._resender.start(self._mode_machine or 0)

    def _sync_child_latch(self) -> bool:
        """Bring the child's damping latch into the safety layer; True when the layer was reset after it knew of
        the latch (an operator reset: the caller clears the child's latch once the next command is in)."""
        from robot.unitree.resender import DAMP_REQUESTED, DAMP_STALE, NO_DAMPING

        if self._resender is None:
            return False
        code, gap_s, _ = self._resender.damping()
        if code == NO_DAMPING:
            return False
        if not self._child_latch_known:
            self._child_latch_known = True
            timeout = self.cfg.stale_state_timeout_s if code == DAMP_STALE else self.cfg.safety.watchdog_timeout_s
            what = "stale state: no LowState" if code == DAMP_STALE else "watchdog: no command"
            self.safety.trip(
                "damping requested" if code == DAMP_REQUESTED else f"{what} for {gap_s:.3f} s > {timeout} s"
            )
            return False
        return not self.safety.damping

    def _publish(self, command: RobotCommand) -> None:
        if self._resender is not None:
            self._sequence += 1
            self._resender.send(command, time.perf_counter(), self._sequence if self.cfg.stamp_sequence else 0)
            self._last_publish_s = time.perf_counter()
            return
        if self._writer is None:
            return
        self._sequence += 1
        msg = lowcmd_from_command(
            command,
            self._mode_machine or 0,
            self.cfg.mode_pr,
            self._sequence if self.cfg.stamp_sequence else 0,
        )
        self._writer.write(msg)
        self._last_publish_s = time.perf_counter()
        self._num_published += 1

    def _run(self) -> None:
        period = 1.0 / self.cfg.publish_rate_hz
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay < -0.1:
                next_tick = time.perf_counter()  # fell far behind: do not burst to catch up
            if delay > 0.0 and self._stop.wait(delay):
                break
            with self._lock:
                if self._resender is not None:
                    self._sync_child_latch()  # the child damps on its own; this only reports it here
                    continue
                if self._active is None:
                    continue  # not commanding yet: leave the robot to whatever controls it
                tripped = self._safety_tick() is not None
                age = self.state_age_s()
                if age > self.cfg.stale_state_timeout_s and not self.safety.damping:
                    self.safety.trip(f"stale state: no LowState for {age:.3f} s > {self.cfg.stale_state_timeout_s} s")
                    tripped = True
                if self.safety.damping:
                    self._active = self.safety.damping_command()
                if tripped or time.perf_counter() - self._last_publish_s >= 0.5 * period:
                    self._publish(self._active)
