"""Safety state machine of the deploy runtime (the sequence of Unitree's and BeyondMimic's G1 deploy stacks)::

    ZERO_TORQUE --stand--> MOVE_TO_DEFAULT --(move_duration_s)--> HOLD --walk + deadman--> POLICY
                                ^                                                            |
                                +------------------------stand-------------------------------+
    any state --(e-stop, damp request, tilt, stale state, joystick loss, missed deadlines,
                 non-finite action, deadman released or state estimator invalid in POLICY)--> DAMPING  (latched)

DAMPING is left only by :meth:`SafetyFsm.reset`, an operator decision (restart the run), never automatically.
Every transition is appended to :attr:`SafetyFsm.transitions` and logged.

Commands per mode (all pass through the robot's safety layer afterwards):

- ZERO_TORQUE: ``kp = kd = 0`` (target = measured position), the motors are limp;
- MOVE_TO_DEFAULT: target ``q0 + s(t) (q_default - q0)`` with ``s = (1 - cos(pi t / T)) / 2`` from the pose at
  entry, hold gains; zero velocity at both ends, so no step in torque when it starts or stops;
- HOLD: the default pose with hold gains;
- POLICY: the policy's targets with the policy's gains;
- DAMPING: ``kp = 0``, ``kd = damping_kd`` (the joints brake, the robot sinks slowly).
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from deploy.teleop import ModeRequest, TeleopSample
from envs.g1.observations import projected_gravity
from robot.messages import RobotCommand, RobotState

LOG = logging.getLogger("steer.deploy.safety")


class Mode(enum.Enum):
    """States of :class:`SafetyFsm`."""

    ZERO_TORQUE = "zero_torque"
    MOVE_TO_DEFAULT = "move_to_default"
    HOLD = "hold"
    POLICY = "policy"
    DAMPING = "damping"


@dataclass
class SafetyFsmConfig:
    """Thresholds of the automatic damping triggers and the timing of the move to the default pose."""

    move_duration_s: float = 2.0
    """Time of the smooth move from the current pose to the default pose."""
    tilt_limit_rad: float = 0.8
    """Damping when the gravity direction leaves the body's -z axis by more than this (46 deg)."""
    stale_state_timeout_s: float = 0.05
    """Damping when the robot's state timestamp has not advanced for this long (loop clock)."""
    joystick_timeout_s: float = 0.05
    """Damping when the teleop device has not been heard of for this long, or reports itself disconnected."""
    max_consecutive_misses: int = 3
    """Damping after this many deadline misses in a row."""
    require_deadman: bool = True
    """The policy runs only while the deadman is held; releasing it in POLICY means damping."""
    damping_kd_nms_per_rad: float = 8.0
    """Velocity gain of damping."""

    def __post_init__(self) -> None:
        for name in ("move_duration_s", "stale_state_timeout_s", "joystick_timeout_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: expected > 0 s, got {getattr(self, name)}")
        if not 0.0 < self.tilt_limit_rad < math.pi:
            raise ValueError(f"tilt_limit_rad: expected in (0, pi), got {self.tilt_limit_rad}")
        if self.max_consecutive_misses < 1:
            raise ValueError(f"max_consecutive_misses: expected >= 1, got {self.max_consecutive_misses}")
        if not self.damping_kd_nms_per_rad >= 0.0:
            raise ValueError(f"damping_kd_nms_per_rad: expected >= 0, got {self.damping_kd_nms_per_rad}")


@dataclass
class Transition:
    """One logged change of mode."""

    time_s: float
    """Seconds since the first update of the state machine."""
    source: Mode
    """Mode left."""
    target: Mode
    """Mode entered."""
    reason: str
    """Why."""

    def __str__(self) -> str:
        return f"[{self.time_s:9.3f} s] {self.source.value} -> {self.target.value}: {self.reason}"


def tilt_rad(imu_quat_wxyz: np.ndarray) -> float:
    """Angle between the body's -z axis and gravity, from the IMU orientation."""
    g = projected_gravity(np.asarray(imu_quat_wxyz, dtype=np.float64))  # (3,), (0, 0, -1) upright
    return float(np.arccos(np.clip(-g[2], -1.0, 1.0)))


@dataclass
class SafetyFsm:
    """See module docstring. Call :meth:`update` once per tick, then :meth:`command`."""

    cfg: SafetyFsmConfig
    """Thresholds."""
    default_joint_pos_rad: np.ndarray
    """(J,) pose of MOVE_TO_DEFAULT and HOLD."""
    hold_kp_nm_per_rad: np.ndarray
    """(J,) gains of MOVE_TO_DEFAULT and HOLD."""
    hold_kd_nms_per_rad: np.ndarray
    """(J,)."""
    policy_kp_nm_per_rad: np.ndarray
    """(J,) gains of POLICY (from the policy metadata)."""
    policy_kd_nms_per_rad: np.ndarray
    """(J,)."""
    mode: Mode = Mode.ZERO_TORQUE
    """Current mode."""
    transitions: list[Transition] = field(default_factory=list)
    """Every transition so far."""

    def __post_init__(self) -> None:
        n = len(self.default_joint_pos_rad)
        for name in ("hold_kp_nm_per_rad", "hold_kd_nms_per_rad", "policy_kp_nm_per_rad", "policy_kd_nms_per_rad"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {np.shape(getattr(self, name))}")
        self._entered_s = math.nan
        self._origin_s = math.nan
        self._move_start_q: np.ndarray | None = None
        self._last_state_stamp = math.nan
        self._last_state_change_s = math.nan

    @property
    def damping(self) -> bool:
        """True once damping is latched."""
        return self.mode is Mode.DAMPING

    @property
    def damping_reason(self) -> str | None:
        """Reason of the transition into damping, if any."""
        if not self.damping or not self.transitions:
            return None
        return self.transitions[-1].reason

    def _go(self, target: Mode, now_s: float, reason: str, state: RobotState | None = None) -> None:
        if target is self.mode:
            return
        if math.isnan(self._origin_s):
            self._origin_s = now_s
        transition = Transition(now_s - self._origin_s, self.mode, target, reason)
        self.transitions.append(transition)
        (LOG.warning if target is Mode.DAMPING else LOG.info)("%s", transition)
        self.mode = target
        self._entered_s = now_s
        if target is Mode.MOVE_TO_DEFAULT and state is not None:
            self._move_start_q = state.joint_pos_rad.copy()

    def trip(self, reason: str, now_s: float) -> None:
        """Latch damping (first reason is the one kept)."""
        if not self.damping:
            self._go(Mode.DAMPING, now_s, reason)

    def reset(self, now_s: float, reason: str = "operator reset") -> None:
        """Leave damping to ZERO_TORQUE (operator decision; the robot's own safety latch needs its reset too)."""
        if self.damping:
            self._go(Mode.ZERO_TORQUE, now_s, reason)
        self._last_state_stamp = math.nan

    def _fault(self, state: RobotState, teleop: TeleopSample, consecutive_misses: int, now_s: float) -> str | None:
        """First automatic damping reason that applies, in priority order, or None."""
        cfg = self.cfg
        if teleop.estop:
            return "e-stop pressed"
        if teleop.request is ModeRequest.DAMP:
            return "damping requested by the operator"
        if not teleop.connected:
            return "joystick disconnected"
        if now_s - teleop.timestamp_s > cfg.joystick_timeout_s:
            return f"joystick silent for {now_s - teleop.timestamp_s:.3f} s > {cfg.joystick_timeout_s} s"
        if state.timestamp_s != self._last_state_stamp:
            self._last_state_stamp = state.timestamp_s
            self._last_state_change_s = now_s
        elif now_s - self._last_state_change_s > cfg.stale_state_timeout_s:
            return f"stale robot state: no new sample for {now_s - self._last_state_change_s:.3f} s"
        if state.damping:
            return "robot safety layer is in damping"
        if not np.all(np.isfinite(state.joint_pos_rad)) or not np.all(np.isfinite(state.imu_quat_wxyz)):
            return "non-finite robot state"
        if self.mode is Mode.POLICY and state.estimator_fault:
            return f"state estimator invalid: {state.estimator_fault}"
        tilt = tilt_rad(state.imu_quat_wxyz)
        if tilt > cfg.tilt_limit_rad:
            return f"tilt {tilt:.2f} rad > limit {cfg.tilt_limit_rad} rad"
        if consecutive_misses >= cfg.max_consecutive_misses:
            return f"{consecutive_misses} consecutive deadline misses (limit {cfg.max_consecutive_misses})"
        if self.mode is Mode.POLICY and cfg.require_deadman and not teleop.deadman:
            return "deadman released while the policy runs"
        return None

    def update(self, state: RobotState, teleop: TeleopSample, consecutive_misses: int, now_s: float) -> Mode:
        """Apply automatic triggers, timed transitions and operator requests; returns the mode for this tick."""
        if math.isnan(self._entered_s):
            self._entered_s = self._origin_s = now_s
        if self.damping:
            return self.mode
        fault = self._fault(state, teleop, consecutive_misses, now_s)
        if fault is not None:
            self._go(Mode.DAMPING, now_s, fault)
            return self.mode
        if self.mode is Mode.MOVE_TO_DEFAULT and now_s - self._entered_s >= self.cfg.move_duration_s:
            self._go(Mode.HOLD, now_s, f"default pose reached after {self.cfg.move_duration_s} s")
        request = teleop.request
        if request is ModeRequest.STAND and self.mode in (Mode.ZERO_TORQUE, Mode.POLICY):
            self._go(Mode.MOVE_TO_DEFAULT, now_s, "stand requested", state)
        elif request is ModeRequest.WALK and self.mode is Mode.HOLD:
            if self.cfg.require_deadman and not teleop.deadman:
                LOG.info("[%9.3f s] walk request ignored: hold the deadman button", now_s)
            elif state.estimator_fault:
                LOG.warning(
                    "[%9.3f s] walk request ignored: state estimator invalid (%s)", now_s, state.estimator_fault
                )
            else:
                self._go(Mode.POLICY, now_s, "walk requested")
        elif request is not ModeRequest.NONE:
            LOG.info("[%9.3f s] %s request ignored in mode %s", now_s, request.value, self.mode.value)
        return self.mode

    def command(self, state: RobotState, now_s: float, policy_targets_rad: np.ndarray | None = None) -> RobotCommand:
        """The motor command of the current mode (module docstring). POLICY needs ``policy_targets_rad`` (J,)."""
        n = len(self.default_joint_pos_rad)
        zeros = np.zeros(n)
        if self.mode is Mode.DAMPING:
            return RobotCommand(
                zeros.copy(), zeros.copy(), zeros.copy(), np.full(n, self.cfg.damping_kd_nms_per_rad), zeros.copy()
            )
        if self.mode is Mode.ZERO_TORQUE:
            q = np.where(np.isfinite(state.joint_pos_rad), state.joint_pos_rad, self.default_joint_pos_rad)
            return RobotCommand.position(q, zeros, zeros)
        if self.mode is Mode.MOVE_TO_DEFAULT:
            start = self._move_start_q if self._move_start_q is not None else self.default_joint_pos_rad
            phase = min(max((now_s - self._entered_s) / self.cfg.move_duration_s, 0.0), 1.0)
            s = 0.5 * (1.0 - math.cos(math.pi * phase))
            q = start + s * (self.default_joint_pos_rad - start)
            return RobotCommand.position(q, self.hold_kp_nm_per_rad, self.hold_kd_nms_per_rad)
        if self.mode is Mode.HOLD:
            return RobotCommand.position(self.default_joint_pos_rad, self.hold_kp_nm_per_rad, self.hold_kd_nms_per_rad)
        if policy_targets_rad is None:
            raise ValueError("SafetyFsm.command: mode POLICY needs policy_targets_rad (J,), got None")
        return RobotCommand.position(policy_targets_rad, self.policy_kp_nm_per_rad, self.policy_kd_nms_per_rad)
