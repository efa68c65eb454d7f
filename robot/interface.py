"""The robot abstraction shared by simulation and hardware backends.

A backend moves :class:`RobotCommand` s to the motors and :class:`RobotState` s back. Every command passes
through the backend's :class:`robot.safety.SafetyLayer` inside :meth:`RobotInterface.send_command`, which
subclasses do not override: they implement :meth:`RobotInterface._apply_command` and call
:meth:`RobotInterface._safety_tick` from their own control loop so the watchdog runs even when no command
arrives. Per-joint arrays are ``(J,)`` float64 in the robot's joint order (SDK motor order for the G1).
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from robot.messages import RobotCommand, RobotState
from robot.safety import SafetyLayer

if TYPE_CHECKING:  # the interface is robot-agnostic; the G1 estimator is only ever passed in
    from robot.estimation import BaseEstimate, BaseStateEstimator

__all__ = ["RobotCommand", "RobotInterface", "RobotState"]


class RobotInterface(abc.ABC):
    """Connect, read state, send commands, close; usable as a context manager.

    Subclasses set ``self.safety`` in ``__init__`` and implement the underscored hooks.
    """

    safety: SafetyLayer
    joint_names: tuple[str, ...]
    estimator: BaseStateEstimator | None = None
    """Base-state estimator fed every new sample (:meth:`attach_estimator`); None: samples pass unchanged."""
    last_estimate: BaseEstimate | None = None
    """The estimator's output for the latest sample."""

    def attach_estimator(self, estimator: BaseStateEstimator | None) -> None:
        """Feed ``estimator`` every new state sample, at the rate samples arrive (the simulator's physics rate,
        the robot's 500 Hz LowState), and publish its base position and velocity in the samples
        (:meth:`robot.estimation.BaseStateEstimator.fill`; ``estimator_fault`` says why when it has none).
        Call before ``connect()``; None detaches."""
        self.estimator, self.last_estimate = estimator, None

    def _estimated(self, state: RobotState) -> RobotState:
        """``state`` with the attached estimator's base state (backends call it once per new sample)."""
        if self.estimator is None:
            return state
        estimate = self.estimator.update(state)
        self.last_estimate = estimate
        out = self.estimator.fill(state, estimate)
        out.estimator_fault = "" if estimate.valid else (estimate.reason or "no estimate yet")
        return out

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the link to the robot (start the simulation thread, open DDS, ...)."""

    @abc.abstractmethod
    def read_state(self) -> RobotState:
        """Latest state sample (a copy the caller may keep)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Switch to damping and release the link. Safe to call twice."""

    @abc.abstractmethod
    def _apply_command(self, command: RobotCommand) -> None:
        """Deliver an already filtered command to the motors."""

    @abc.abstractmethod
    def _now_s(self) -> float:
        """The robot clock used by the watchdog."""

    @abc.abstractmethod
    def _measured_joint_pos_rad(self) -> np.ndarray:
        """(J,) current joint positions for the rate limit of the first command."""

    def send_command(self, command: RobotCommand) -> None:
        """Filter ``command`` through the safety layer and deliver it. Never raises on bad numbers:
        non-finite values switch the robot to damping instead (shape errors do raise)."""
        filtered = self.safety.filter(command, self._measured_joint_pos_rad(), self._now_s())
        self._apply_command(filtered)

    def _safety_tick(self) -> RobotCommand | None:
        """Run the watchdog; returns the damping command when it just tripped (apply it)."""
        if self.safety.watchdog(self._now_s()):
            return self.safety.damping_command()
        return None

    def __enter__(self) -> RobotInterface:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
