"""Safety layer applied by every robot backend, once, between whoever commands and the motors.

Rules, per command (:meth:`SafetyLayer.filter`):

1. any non-finite number -> latch damping (kp = 0, kd = ``damping_kd``, tau_ff = 0) until :meth:`reset`;
2. position targets clamped to the joint limits (shrunk by ``joint_limit_margin_rad``) and to at most
   ``max_delta_q_per_tick_rad`` away from the previous accepted target (the measured position for the first);
3. velocity targets clamped to the velocity limits, gains to ``[0, max_kp]`` / ``[0, max_kd]``, feed-forward
   torques to the effort limits (the motor / actuator additionally clamps the total torque, see
   :func:`clamp_torque`);
4. watchdog (:meth:`SafetyLayer.watchdog`): once commands have started, a gap longer than
   ``watchdog_timeout_s`` latches damping.

Damping is reachable from every state and left only by an explicit :meth:`SafetyLayer.reset`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from robot.messages import RobotCommand


@dataclass
class SafetyConfig:
    """Limits enforced on every command."""

    max_delta_q_per_tick_rad: float = 0.25
    """Largest change of a position target between two accepted commands."""
    watchdog_timeout_s: float = 0.1
    """Damping after this long without a command (once commands have started)."""
    damping_kd_nms_per_rad: float = 8.0
    """Velocity gain of damping mode."""
    max_kp_nm_per_rad: float = 1000.0
    """Largest accepted position gain."""
    max_kd_nms_per_rad: float = 100.0
    """Largest accepted velocity gain."""
    joint_limit_margin_rad: float = 0.0
    """Position targets stay this far inside the joint limits."""

    def __post_init__(self) -> None:
        for name in (
            "max_delta_q_per_tick_rad",
            "watchdog_timeout_s",
            "max_kp_nm_per_rad",
            "max_kd_nms_per_rad",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f"{name}: expected a finite value > 0, got {value}")
        if not 0.0 <= self.damping_kd_nms_per_rad <= self.max_kd_nms_per_rad:
            raise ValueError(
                f"damping_kd_nms_per_rad: expected in [0, max_kd_nms_per_rad={self.max_kd_nms_per_rad}], "
                f"got {self.damping_kd_nms_per_rad}"
            )
        if self.joint_limit_margin_rad < 0.0:
            raise ValueError(f"joint_limit_margin_rad: expected >= 0, got {self.joint_limit_margin_rad}")


class SafetyMode(enum.Enum):
    """What the layer lets through."""

    ACTIVE = "active"
    DAMPING = "damping"


def clamp_torque(tau_nm: np.ndarray, effort_limit_nm: np.ndarray) -> np.ndarray:
    """Clamp joint torques to the effort limits; non-finite torques become 0. Shapes broadcast, (..., J)."""
    tau = np.where(np.isfinite(tau_nm), tau_nm, 0.0)
    return np.clip(tau, -effort_limit_nm, effort_limit_nm)


def clamp_position_targets(
    q_target_rad: np.ndarray,
    q_reference_rad: np.ndarray,
    lower_rad: np.ndarray,
    upper_rad: np.ndarray,
    max_delta_rad: float,
) -> np.ndarray:
    """Clamp targets to ``reference +- max_delta`` then to ``[lower, upper]``. Batched: (..., J)."""
    q = np.clip(q_target_rad, q_reference_rad - max_delta_rad, q_reference_rad + max_delta_rad)
    return np.clip(q, lower_rad, upper_rad)


class SafetyLayer:
    """Stateful command filter for one robot (see module docstring)."""

    def __init__(
        self,
        cfg: SafetyConfig,
        lower_rad: np.ndarray,
        upper_rad: np.ndarray,
        effort_limit_nm: np.ndarray,
        velocity_limit_rad_per_s: np.ndarray,
    ) -> None:
        self.cfg = cfg
        self.num_joints = len(lower_rad)
        for name, arr in (
            ("upper_rad", upper_rad),
            ("effort", effort_limit_nm),
            ("velocity", velocity_limit_rad_per_s),
        ):
            if np.shape(arr) != (self.num_joints,):
                raise ValueError(f"{name}: expected shape ({self.num_joints},), got {np.shape(arr)}")
        margin = cfg.joint_limit_margin_rad
        self.lower_rad = np.asarray(lower_rad, float) + margin
        self.upper_rad = np.asarray(upper_rad, float) - margin
        if np.any(self.lower_rad > self.upper_rad):
            raise ValueError(f"joint_limit_margin_rad={margin} leaves an empty range for some joints")
        self.effort_limit_nm = np.asarray(effort_limit_nm, float)
        self.velocity_limit_rad_per_s = np.asarray(velocity_limit_rad_per_s, float)
        self.reset()

    def reset(self) -> None:
        """Leave damping and forget the command history (an operator decision, never automatic)."""
        self.mode = SafetyMode.ACTIVE
        self.fault_reason: str | None = None
        self.last_command_time_s: float | None = None
        self.last_q_target_rad: np.ndarray | None = None
        self.num_clamped_commands = 0

    @property
    def damping(self) -> bool:
        """True while damping is latched."""
        return self.mode is SafetyMode.DAMPING

    def trip(self, reason: str) -> None:
        """Latch damping (first reason wins)."""
        if self.mode is not SafetyMode.DAMPING:
            self.mode = SafetyMode.DAMPING
            self.fault_reason = reason

    def damping_command(self) -> RobotCommand:
        """kp = 0, kd = damping kd, everything else 0."""
        zeros = np.zeros(self.num_joints)
        kd = np.full(self.num_joints, self.cfg.damping_kd_nms_per_rad)
        return RobotCommand(zeros.copy(), zeros.copy(), zeros.copy(), kd, zeros.copy())

    def watchdog(self, now_s: float) -> bool:
        """Trip damping when commands went stale; True only on the call that trips."""
        last = self.last_command_time_s
        if self.damping or last is None or now_s - last <= self.cfg.watchdog_timeout_s:
            return False
        self.trip(f"watchdog: no command for {now_s - last:.3f} s > {self.cfg.watchdog_timeout_s} s")
        return True

    def _check_shapes(self, command: RobotCommand) -> None:
        names = ("q_target_rad", "dq_target_rad_per_s", "kp_nm_per_rad", "kd_nms_per_rad", "tau_ff_nm")
        for name, arr in zip(names, command.arrays(), strict=True):
            if np.shape(arr) != (self.num_joints,):
                raise ValueError(f"RobotCommand.{name}: expected shape ({self.num_joints},), got {np.shape(arr)}")

    def filter(self, command: RobotCommand, measured_q_rad: np.ndarray, now_s: float) -> RobotCommand:
        """The command that may reach the motors (see module docstring)."""
        self._check_shapes(command)
        self.last_command_time_s = now_s
        if not all(np.all(np.isfinite(a)) for a in command.arrays()):
            self.trip("non-finite value in command")
        if not np.all(np.isfinite(measured_q_rad)):
            self.trip("non-finite measured joint position")
        if self.damping:
            return self.damping_command()
        reference = self.last_q_target_rad if self.last_q_target_rad is not None else measured_q_rad
        q = clamp_position_targets(
            command.q_target_rad, reference, self.lower_rad, self.upper_rad, self.cfg.max_delta_q_per_tick_rad
        )
        vel = self.velocity_limit_rad_per_s
        out = RobotCommand(
            q,
            np.clip(command.dq_target_rad_per_s, -vel, vel),
            np.clip(command.kp_nm_per_rad, 0.0, self.cfg.max_kp_nm_per_rad),
            np.clip(command.kd_nms_per_rad, 0.0, self.cfg.max_kd_nms_per_rad),
            clamp_torque(command.tau_ff_nm, self.effort_limit_nm),
        )
        if any(not np.array_equal(a, b) for a, b in zip(out.arrays(), command.arrays(), strict=True)):
            self.num_clamped_commands += 1
        self.last_q_target_rad = q.copy()
        return out
