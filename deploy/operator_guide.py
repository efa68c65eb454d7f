"""What the operator must do next, printed on every change of mode of the safety state machine.

A :class:`deploy.loop.ControlLoop` monitor: it only reads the mode, so it runs after the tick is timed and costs
nothing between changes. The button names come from the teleop source (:class:`OperatorKeys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deploy.safety_fsm import Mode
from robot.messages import RobotState


@dataclass
class OperatorKeys:
    """How the operator gives each order on the chosen input (shown in the prompts)."""

    stand: str
    """Zero torque or policy -> default pose."""
    walk: str
    """Hold -> policy."""
    estop: str
    """Damping from any state."""
    deadman: str
    """Held while the policy runs."""
    sticks: str = "left stick vx/vy, right stick yaw rate"
    """Where the velocity command comes from."""

    @classmethod
    def for_teleop(cls, teleop: str) -> OperatorKeys:
        """Keys of ``--teleop`` ``teleop`` (script, keyboard, gamepad or unitree-remote), default buttons."""
        if teleop == "unitree-remote":
            from deploy.unitree_remote import RemoteButtons

            return cls(**RemoteButtons().describe())
        if teleop == "gamepad":
            from deploy.gamepad import GamepadButtons

            b = GamepadButtons()
            return cls(b.stand, b.walk, b.estop, b.deadman)
        if teleop == "keyboard":
            return cls("1", "2", "x or ESC", "k (toggle)", "w/s vx, a/d vy, q/e yaw rate")
        return cls("(script)", "(script)", "Ctrl-C", "(script)", "the script")


class OperatorGuide:
    """Prints one prompt per mode entered (a :class:`deploy.loop.ControlLoop` monitor)."""

    def __init__(self, keys: OperatorKeys, write: Callable[[str], None] | None = None) -> None:
        self.keys = keys
        self.write = write or (lambda line: print(line, flush=True))
        self.mode: Mode | None = None
        self.prompts: list[str] = []

    def prompt(self, mode: Mode) -> str:
        """The line shown when ``mode`` is entered."""
        k = self.keys
        stop = f"{k.estop} = damping at any time"
        return {
            Mode.ZERO_TORQUE: f"ZERO TORQUE: the motors are limp; keep the robot on its gantry. Press {k.stand} to "
            f"move to the default pose. {stop}.",
            Mode.MOVE_TO_DEFAULT: f"MOVING to the default pose; wait for HOLD. {stop}.",
            Mode.HOLD: f"HOLD: default pose held. Press {k.walk} to start the policy and keep {k.deadman} held while "
            f"it runs. {stop}.",
            Mode.POLICY: f"POLICY running: {k.sticks}; keep {k.deadman} held (releasing it damps); {k.stand} back to "
            f"the default pose. {stop}.",
            Mode.DAMPING: "DAMPING: the joints brake and the robot sinks; lower it onto the gantry or the floor. "
            "Restart the command to go again.",
        }[mode]

    def start(self, mode: Mode = Mode.ZERO_TORQUE) -> None:
        """Show the prompt of the mode the loop starts in, before its first tick."""
        self(0.0, None, np.zeros(3), mode)  # type: ignore[arg-type]  # the prompt reads no state

    def __call__(self, now_s: float, state: RobotState, command: np.ndarray, mode: Mode) -> None:
        if mode is not self.mode:
            self.mode = mode
            line = f"[operator] {self.prompt(mode)}"
            self.prompts.append(line)
            self.write(line)
