"""The fixed-rate control loop: exported policy + robot interface + teleop + safety state machine.

One tick (:meth:`ControlLoop.tick`), at the policy rate (50 Hz by default, from the policy metadata):

1. read the robot state and the teleop sample;
2. update the safety state machine (:mod:`deploy.safety_fsm`) with them and the count of consecutive deadline
   misses;
3. in POLICY mode: build the observation with :func:`envs.g1.observations.observation_from_state` (the function the
   policy was trained with, unchanged), stack the history, run the network, map the action to joint targets with
   :func:`envs.g1.observations.joint_targets_from_action`; a non-finite action trips damping;
4. send the mode's command through :meth:`robot.interface.RobotInterface.send_command` (the robot's safety layer
   clamps it); when the state machine is in damping the robot's own safety latch is tripped too, so the backend
   keeps damping even if this process dies.

:meth:`ControlLoop.run` paces ticks in real time with :class:`deploy.timing.RatePacer`; tests call ``tick`` with
simulated time instead. This module imports neither ``policies`` nor ``training``.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deploy.policies.base import RuntimePolicy
from deploy.safety_fsm import Mode, SafetyFsm, SafetyFsmConfig
from deploy.teleop import CommandRanges, TeleopSource
from deploy.timing import RatePacer, TimingStats
from envs.g1.observations import gait_phase, joint_targets_from_action, observation_from_state
from robot.compat import RobotSpec, check_policy_robot
from robot.interface import RobotInterface, RobotState

LOG = logging.getLogger("steer.deploy.loop")


@dataclass
class LoopConfig:
    """Control loop options."""

    freq_hz: float | None = None
    """Loop rate; None takes the policy's control period (it must match it when given)."""
    spin_s: float = 0.0015
    """Spin on the clock for this long before each deadline instead of sleeping (precision vs one busy core)."""
    miss_tolerance_s: float = 0.002
    """A tick starting later than this after its deadline counts as a deadline miss."""
    fsm: SafetyFsmConfig = field(default_factory=SafetyFsmConfig)
    """Safety state machine thresholds."""
    hold_gain_profile: str = "stand"
    """Gain profile of the robot spec used to move to and hold the default pose."""
    cpu_core: int | None = None
    """Pin the loop thread to this core (None: leave the affinity alone)."""
    realtime_priority: int = 0
    """SCHED_FIFO priority to request (0: normal scheduling; needs CAP_SYS_NICE, a warning otherwise)."""
    disable_gc: bool = True
    """Disable the cyclic garbage collector while the loop runs (a collection can take milliseconds)."""
    gil_switch_interval_s: float = 0.0005
    """Python's thread switch interval while the loop runs (default 5 ms: a busy thread in the same process, such
    as the simulator's, could otherwise hold the GIL that long after our deadline)."""
    torch_threads: int = 1
    """Intra-op threads of the policy (one thread is fastest for small networks and keeps the other core free)."""

    def __post_init__(self) -> None:
        if self.freq_hz is not None and not self.freq_hz > 0.0:
            raise ValueError(f"freq_hz: expected > 0 or None, got {self.freq_hz}")
        if self.spin_s < 0.0 or self.miss_tolerance_s <= 0.0:
            raise ValueError(
                f"spin_s >= 0 and miss_tolerance_s > 0 expected, got {self.spin_s}, {self.miss_tolerance_s}"
            )
        if not self.gil_switch_interval_s > 0.0:
            raise ValueError(f"gil_switch_interval_s: expected > 0, got {self.gil_switch_interval_s}")
        if self.realtime_priority < 0 or self.torch_threads < 1:
            raise ValueError(
                "realtime_priority >= 0 and torch_threads >= 1 expected, "
                f"got {self.realtime_priority}, {self.torch_threads}"
            )


def configure_realtime(cpu_core: int | None, priority: int) -> list[str]:
    """Pin the calling thread and request SCHED_FIFO; returns warnings for what could not be done."""
    warnings: list[str] = []
    if cpu_core is not None:
        try:
            os.sched_setaffinity(0, {cpu_core})
        except (OSError, AttributeError, ValueError) as err:
            warnings.append(f"could not pin to core {cpu_core}: {err}")
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (OSError, AttributeError) as err:
            warnings.append(f"could not set SCHED_FIFO priority {priority} ({err}); running with normal scheduling")
    return warnings


class ControlLoop:
    """Drive ``robot`` with ``policy`` from ``teleop`` (module docstring). Refuses a policy that does not fit."""

    def __init__(
        self,
        robot: RobotInterface,
        policy: RuntimePolicy,
        teleop: TeleopSource,
        spec: RobotSpec | None = None,
        cfg: LoopConfig | None = None,
        clock: Callable[[], float] = time.perf_counter,
        monitor: Callable[[float, RobotState, np.ndarray, Mode], None] | None = None,
    ) -> None:
        """``monitor(now_s, state, command, mode)``, when given, sees every tick's state, clipped operator command
        and commanded mode after the command went out (e.g. :class:`deploy.run.MotionMonitor`); keep it cheap."""
        self.cfg = cfg or LoopConfig()
        self.spec = spec or RobotSpec.g1()
        meta = policy.metadata
        check_policy_robot(meta, self.spec, robot.joint_names)
        freq = self.cfg.freq_hz or meta.control_freq_hz
        if abs(freq * meta.control_dt_s - 1.0) > 1e-6:
            raise ValueError(
                f"freq_hz: the policy was trained at {meta.control_freq_hz:.3f} Hz (control_dt_s={meta.control_dt_s}), "
                f"got {freq} Hz; leave freq_hz unset to use the policy's rate"
            )
        self.robot, self.policy, self.teleop, self.clock = robot, policy, teleop, clock
        self.monitor = monitor
        self.period_s = 1.0 / freq
        self.default_q = np.asarray(meta.default_joint_pos_rad)
        self.spec_dt_s = meta.control_dt_s
        self.action_scale = np.asarray(meta.action_scale_rad)
        self.obs_cfg = meta.observation_config()
        self.ranges = CommandRanges(tuple(meta.command_low), tuple(meta.command_high))
        hold_kp, hold_kd = self.spec.gain_profile(self.cfg.hold_gain_profile)
        self.fsm = SafetyFsm(
            self.cfg.fsm,
            self.default_q,
            hold_kp,
            hold_kd,
            np.asarray(meta.kp_nm_per_rad),
            np.asarray(meta.kd_nms_per_rad),
        )
        self.stats = TimingStats(self.period_s, self.cfg.miss_tolerance_s)
        self.last_action = np.zeros(meta.num_joints)
        self._policy_steps = 0  # ticks since POLICY mode began: drives the gait clock as the episode time in training
        self._history: deque[np.ndarray] = deque(maxlen=meta.history_length)
        self._started = False
        self._prepared = False

    def start(self, now_s: float) -> None:
        """Anchor the teleop source in time (called by ``run``, or once by a test before its first tick)."""
        self.teleop.start(now_s)
        self._started = True

    def _policy_targets(self, state: RobotState, command: np.ndarray) -> tuple[np.ndarray | None, float]:
        """Joint targets from the policy and its latency; None when the action is not finite."""
        phase = None
        if self.obs_cfg.gait_period_s > 0.0:
            phase = float(gait_phase(self._policy_steps * self.spec_dt_s, self.obs_cfg.gait_period_s))
        obs = observation_from_state(state, command, self.last_action, self.default_q, self.obs_cfg, phase)
        self.policy.observe_state(state, command)
        self._policy_steps += 1
        if not self._history:
            self._history.extend([obs] * self._history.maxlen)  # a fresh start repeats the first frame
        else:
            self._history.append(obs)
        x = np.concatenate(self._history) if len(self._history) > 1 else obs  # (H * (9 + 3J),)
        t0 = self.clock()
        action = self.policy.act(x)  # (J,)
        latency = self.clock() - t0
        if not np.all(np.isfinite(action)):
            return None, latency
        self.last_action = action
        return joint_targets_from_action(action, self.default_q, self.action_scale), latency

    def tick(self, now_s: float, lateness_s: float = 0.0, skipped: int = 0) -> Mode:
        """One control step at loop-clock time ``now_s`` (see module docstring); returns the mode commanded.

        ``lateness_s`` and ``skipped`` come from the pacer (how late this tick started, ticks dropped before it).
        """
        begin = self.clock()
        if not self._started:
            self.start(now_s)
        state = self.robot.read_state()
        sample = self.teleop.read(now_s)
        self.stats.record(now_s, lateness_s, math.nan, math.nan, skipped, self.fsm.mode.value)
        mode = self.fsm.update(state, sample, self.stats.consecutive_misses, now_s)
        targets, latency = None, math.nan
        command = self.ranges.clip(sample.command)
        if mode is Mode.POLICY:
            targets, latency = self._policy_targets(state, command)
            if targets is None:
                self.fsm.trip("non-finite policy action", now_s)
                mode = self.fsm.mode
        else:
            if self._policy_steps:
                self.policy.reset()  # e.g. an asynchronous planner drops its chunk: nothing stale after a pause
            self.last_action[:] = 0.0
            self._history.clear()
            self._policy_steps = 0
        self.robot.send_command(self.fsm.command(state, now_s, targets))
        if mode is Mode.DAMPING and not self.robot.safety.damping:
            self.robot.safety.trip(f"deploy safety state machine: {self.fsm.damping_reason}")
        self.stats.complete_last(latency, self.clock() - begin, mode.value)
        if self.monitor is not None:
            self.monitor(now_s, state, command, mode)
        return mode

    def prepare(self) -> None:
        """Pin/prioritise the calling thread, set the torch threads and warm the policy up (once).

        ``run`` calls it; call it yourself before connecting a simulated robot that starts in damping, so the
        robot does not sag while TorchScript optimises its first calls (hundreds of ms on a cold start).
        """
        if self._prepared:
            return
        for warning in configure_realtime(self.cfg.cpu_core, self.cfg.realtime_priority):
            LOG.warning(warning)
        import torch  # the policy is torch anyway; imported here to set its thread count

        torch.set_num_threads(self.cfg.torch_threads)
        self.policy.warmup()
        if self.cfg.disable_gc:
            gc.collect()  # tens of ms with torch loaded: here, not between connecting and the first tick
        self._prepared = True

    def run(self, duration_s: float, stop: Callable[[], bool] | None = None) -> TimingStats:
        """Tick in real time for ``duration_s`` (or until ``stop()`` returns True); returns the timing statistics.

        The robot is always left in damping at the end, as a robot without a controller must be.
        """
        self.prepare()
        pacer = RatePacer(self.period_s, self.cfg.spin_s, self.clock)
        gc_was_enabled = gc.isenabled()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(self.cfg.gil_switch_interval_s)
        if self.cfg.disable_gc:
            gc.disable()
        try:
            first = pacer.start()
            self.start(first)
            end = first + duration_s
            while True:
                deadline, now, skipped = pacer.wait()
                if now >= end or (stop is not None and stop()):
                    break
                self.tick(now, now - deadline, skipped)
        finally:
            sys.setswitchinterval(switch_interval)
            if gc_was_enabled:
                gc.enable()
            now = self.clock()
            self.fsm.trip("run finished", now)
            self.robot.safety.trip("deploy run finished")
            self.robot.send_command(self.fsm.command(self.robot.read_state(), now))
            self.teleop.close()
        return self.stats
