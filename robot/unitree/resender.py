"""The 500 Hz LowCmd re-send and the watchdog in a child process, out of reach of the commanding process's GIL.

In the commanding process, a cyclic-GC pass over a large heap (or any thread holding the GIL) stalls every Python
thread, the re-send thread included: a 0.1 s watchdog was seen to trip only after 0.33 s. Here the re-send loop
runs in its own interpreter (``spawn``: no copy of the parent's threads or heap), with its own DDS writer on
``rt/lowcmd``:

- the parent writes each filtered command into shared memory (:class:`CommandSlot`, a seqlock: the counter is odd
  while a write is under way) with its ``CLOCK_MONOTONIC`` time (``time.perf_counter``, the same clock in both
  processes), and wakes the child through a pipe so the command goes out at once;
- the child publishes the newest command at once and re-publishes it every ``1 / rate_hz``; when the command is
  older than ``watchdog_timeout_s`` or the parent's last LowState is older than ``stale_state_timeout_s``, it
  latches damping itself, publishes damping and records why and when (:attr:`CommandSlot.damping_code`,
  :attr:`CommandSlot.damping_sent_s`); the parent reads that latch into its safety layer;
- when the parent dies, the child publishes damping for ``close_damping_s`` and exits.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.messages import RobotCommand

# Header slots of the shared float64 array, then the five (J,) command arrays.
SEQ, STAMP_S, STATE_S, MODE_MACHINE, SEQUENCE, DAMP_REQ, DAMP_CODE, DAMP_GAP_S, DAMP_SENT_S, PUBLISHED, STOP, READY = (
    range(12)
)
HELD_S = 12
"""Age of the last command published as active when the first damping after it went out: how long the robot ran on
a command that was not refreshed before damping began (the watchdog's promise: <= timeout + one period)."""
HEADER = 16
NO_DAMPING, DAMP_REQUESTED, DAMP_WATCHDOG, DAMP_STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class ResenderConfig:
    """What the child needs to publish on its own (copied into it at start)."""

    domain_id: int
    network_interface: str | None
    num_joints: int
    rate_hz: float
    watchdog_timeout_s: float
    stale_state_timeout_s: float
    damping_kd_nms_per_rad: float
    mode_pr: int
    close_damping_s: float
    realtime_priority: int = 10
    """SCHED_FIFO priority of the child (it sleeps between ticks, ~10 % of a core); without the right to it, nice
    -10, else normal scheduling. On a shared, loaded machine an ordinary process can wait tens of ms for a core."""


class CommandSlot:
    """The shared memory between the commanding process and the re-send child (module docstring)."""

    def __init__(self, num_joints: int, ctx: Any) -> None:
        self.num_joints = num_joints
        self.raw = ctx.RawArray("d", HEADER + 5 * num_joints)
        self.array = np.frombuffer(self.raw, dtype=np.float64)

    def write(self, command: RobotCommand, now_s: float, sequence: int) -> None:
        """Publish ``command`` to the child (parent only)."""
        a = self.array
        a[SEQ] += 1.0  # odd: write under way
        a[HEADER:] = np.concatenate(command.arrays())
        a[STAMP_S], a[SEQUENCE] = now_s, float(sequence)
        a[SEQ] += 1.0

    def read(self, tries: int = 100) -> tuple[RobotCommand, float, int] | None:
        """Newest consistent command, its time and sequence (child only); None before the first, or when the parent
        stays inside a write for ``tries`` attempts (stalled mid-write: the caller keeps its previous command)."""
        a = self.array
        for _ in range(tries):
            before = a[SEQ]
            if before == 0.0:
                return None
            if before % 2.0 == 1.0:
                continue
            values, stamp, sequence = a[HEADER:].copy(), float(a[STAMP_S]), int(a[SEQUENCE])
            if a[SEQ] == before:
                return RobotCommand(*np.split(values, 5)), stamp, sequence
        return None

    def __getitem__(self, index: int) -> float:
        return float(self.array[index])

    def __setitem__(self, index: int, value: float) -> None:
        self.array[index] = value


class Resender:
    """Starts and stops the child (module docstring); the parent side of :class:`CommandSlot`."""

    def __init__(self, cfg: ResenderConfig) -> None:
        self.cfg = cfg
        ctx = mp.get_context("spawn")
        self.slot = CommandSlot(cfg.num_joints, ctx)
        self._wake_recv, self._wake_send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_child_main, args=(cfg, self.slot.raw, self._wake_recv, os.getpid()), name="LowCmdResender"
        )
        self._proc.daemon = True

    def start(self, mode_machine: int, timeout_s: float = 30.0) -> None:
        """Start the child and wait until its DDS writer exists."""
        self.slot[MODE_MACHINE] = float(mode_machine)
        self._proc.start()
        deadline = time.perf_counter() + timeout_s
        while self.slot[READY] == 0.0:
            if not self._proc.is_alive() or time.perf_counter() > deadline:
                raise RuntimeError(f"LowCmd re-send process did not start (exit code {self._proc.exitcode})")
            time.sleep(0.005)

    def send(self, command: RobotCommand, now_s: float, sequence: int) -> None:
        """Hand ``command`` to the child and wake it (publishes within microseconds plus one DDS write)."""
        self.slot.write(command, now_s, sequence)
        try:
            self._wake_send.send_bytes(b"c")
        except (BrokenPipeError, OSError):
            pass  # the child is gone; damping was its last word

    def note_state(self, now_s: float) -> None:
        """A valid LowState arrived at ``now_s`` (the child damps when they stop)."""
        self.slot[STATE_S] = now_s

    def request_damping(self) -> None:
        """Latch damping in the child too (the parent's safety layer tripped)."""
        if self.slot[DAMP_REQ] == 0.0:
            self.slot[DAMP_REQ] = 1.0
            self._wake_send.send_bytes(b"d")

    def clear_damping(self) -> None:
        """Forget the child's latch (after an operator reset of the parent's safety layer)."""
        self.slot[DAMP_REQ] = 0.0
        self.slot[DAMP_CODE], self.slot[DAMP_GAP_S] = 0.0, 0.0

    def damping(self) -> tuple[int, float, float]:
        """(reason code, measured gap s, time the first damping LowCmd went out) of the child's latch."""
        return int(self.slot[DAMP_CODE]), self.slot[DAMP_GAP_S], self.slot[DAMP_SENT_S]

    @property
    def held_s(self) -> float:
        """See :data:`HELD_S` (0 before the first damping)."""
        return self.slot[HELD_S]

    @property
    def num_published(self) -> int:
        """LowCmd samples the child wrote."""
        return int(self.slot[PUBLISHED])

    def stop(self) -> None:
        """Damping for ``close_damping_s`` (when commanding), then the child exits."""
        self.request_damping()
        self.slot[STOP] = 1.0
        self._wake_send.send_bytes(b"s")
        self._proc.join(timeout=2.0 + self.cfg.close_damping_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def _raise_priority(priority: int) -> None:
    """SCHED_FIFO ``priority`` for this process, else nice -10, else nothing (needs CAP_SYS_NICE or root)."""
    if priority <= 0:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        try:
            os.nice(-10)
        except OSError:
            pass


def _child_main(cfg: ResenderConfig, raw: Any, wake: Any, parent_pid: int) -> None:
    """The re-send loop (module docstring); runs in the spawned child."""
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    from robot.unitree.convert import lowcmd_from_command
    from robot.unitree.dds import open_participant, writer_qos
    from robot.unitree.msgs import TOPIC_LOWCMD, LowCmd_

    _raise_priority(cfg.realtime_priority)
    slot = CommandSlot.__new__(CommandSlot)
    slot.num_joints, slot.raw, slot.array = cfg.num_joints, raw, np.frombuffer(raw, dtype=np.float64)
    participant = open_participant(cfg.domain_id, cfg.network_interface)
    writer = DataWriter(participant, Topic(participant, TOPIC_LOWCMD, LowCmd_), qos=writer_qos())
    zeros = np.zeros(cfg.num_joints)
    damping = RobotCommand(zeros, zeros, zeros, np.full(cfg.num_joints, cfg.damping_kd_nms_per_rad), zeros)
    period = 1.0 / cfg.rate_hz
    slot[READY] = 1.0

    def publish(command: RobotCommand, sequence: int) -> None:
        writer.write(lowcmd_from_command(command, int(slot[MODE_MACHINE]), cfg.mode_pr, sequence))
        slot[PUBLISHED] = slot[PUBLISHED] + 1.0

    def latch(code: int, gap_s: float) -> None:
        if slot[DAMP_CODE] == NO_DAMPING:
            slot[DAMP_GAP_S], slot[DAMP_CODE] = gap_s, float(code)

    next_tick = time.perf_counter()
    stop_at: float | None = None
    got: tuple[RobotCommand, float, int] | None = None
    active_stamp_s: float | None = None  # stamp of the last command published as active, until damping follows
    while True:
        if wake.poll(max(0.0, next_tick - time.perf_counter())):
            while wake.poll():
                wake.recv_bytes()
        now = time.perf_counter()
        if now >= next_tick:
            next_tick = now + period if now - next_tick > 0.1 else next_tick + period
        got = slot.read() or got
        if os.getppid() != parent_pid or slot[STOP] != 0.0:
            latch(DAMP_REQUESTED, 0.0)
            stop_at = stop_at if stop_at is not None else now + (cfg.close_damping_s if got is not None else 0.0)
        if got is not None:
            command, stamp_s, sequence = got
            if slot[DAMP_REQ] != 0.0:
                latch(DAMP_REQUESTED, 0.0)
            elif now - stamp_s > cfg.watchdog_timeout_s:
                latch(DAMP_WATCHDOG, now - stamp_s)
            elif now - slot[STATE_S] > cfg.stale_state_timeout_s:
                latch(DAMP_STALE, now - slot[STATE_S])
            if slot[DAMP_CODE] != NO_DAMPING:
                publish(damping, sequence)
                if active_stamp_s is not None:
                    slot[DAMP_SENT_S] = time.perf_counter()
                    slot[HELD_S] = slot[DAMP_SENT_S] - active_stamp_s
                    active_stamp_s = None
            else:
                publish(command, sequence)
                active_stamp_s = stamp_s
        if stop_at is not None and now >= stop_at:
            break
    participant.__del__()
