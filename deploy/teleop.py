"""Teleoperation inputs behind one interface (:class:`TeleopSource`): scripted command files and the keyboard here,
the Unitree remote in :mod:`deploy.unitree_remote`, Linux gamepads (evdev) in :mod:`deploy.gamepad`.

Every source returns a :class:`TeleopSample` per control tick: the velocity command ``(vx m/s, vy m/s, yaw rate
rad/s)`` already scaled to the policy's command ranges, the deadman and e-stop buttons, a mode request (an edge:
reported once, on the tick the button goes down) and whether the device is connected. The safety state machine
(:mod:`deploy.safety_fsm`) turns those into transitions; sources never decide anything about the robot.

Axes follow the Unitree remote (unitree_sdk2): ``vx = ly, vy = -lx, wz = -rx``, a deadzone, then a linear map of
``[-1, 1]`` onto the command range (asymmetric ranges map each half separately).
"""

from __future__ import annotations

import abc
import enum
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot.files import atomic_write_text


class ModeRequest(enum.Enum):
    """What the operator asked for on this tick."""

    NONE = "none"
    STAND = "stand"
    """Zero torque or policy -> move to the default pose."""
    WALK = "walk"
    """Hold -> run the policy (with the deadman held)."""
    DAMP = "damp"
    """Soft stop: damping (the e-stop does the same)."""


@dataclass
class TeleopSample:
    """One reading of the operator input."""

    command: np.ndarray
    """(3,) vx m/s, vy m/s, yaw rate rad/s, within the command ranges."""
    deadman: bool = False
    """The enabling button is held."""
    estop: bool = False
    """The emergency stop is pressed."""
    request: ModeRequest = ModeRequest.NONE
    """Mode change asked for on this tick."""
    connected: bool = True
    """The device is present."""
    timestamp_s: float = 0.0
    """Loop-clock time the device was last known alive."""


@dataclass
class CommandRanges:
    """Per-axis ``[low, high]`` of ``(vx, vy, yaw rate)``; by default the usual ranges of velocity-tracking
    walking policies (vx +-1 m/s, vy +-0.5 m/s, yaw rate +-1 rad/s)."""

    low: tuple[float, float, float] = (-1.0, -0.5, -1.0)
    """Lowest command."""
    high: tuple[float, float, float] = (1.0, 0.5, 1.0)
    """Highest command."""
    deadzone: float = 0.05
    """Stick deflections below this (of full scale) read as zero."""

    def __post_init__(self) -> None:
        if len(self.low) != 3 or len(self.high) != 3:
            raise ValueError(f"low/high: expected 3 values each, got {self.low} / {self.high}")
        if any(lo > 0.0 or hi < 0.0 for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(f"ranges must contain 0 (stick at rest = stand still), got {self.low} / {self.high}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone: expected in [0, 1), got {self.deadzone}")

    def scale(self, axes: Sequence[float]) -> np.ndarray:
        """Map stick axes in ``[-1, 1]`` (vx, vy, wz order) to a command: deadzone, rescale, then range."""
        a = np.clip(np.nan_to_num(np.asarray(axes, dtype=np.float64), nan=0.0), -1.0, 1.0)  # (3,)
        mag = np.maximum(np.abs(a) - self.deadzone, 0.0) / (1.0 - self.deadzone)
        a = np.sign(a) * mag
        return np.where(a >= 0.0, a * np.asarray(self.high), -a * np.asarray(self.low))

    def clip(self, command: np.ndarray) -> np.ndarray:
        """Clamp an already physical command into the ranges."""
        return np.clip(command, self.low, self.high)


class TeleopSource(abc.ABC):
    """Something an operator commands the robot through."""

    def start(self, now_s: float) -> None:  # noqa: B027 - optional hook
        """Called once when the loop starts (open the device, anchor scripts in time)."""

    @abc.abstractmethod
    def read(self, now_s: float) -> TeleopSample:
        """The current input; must not block."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class ButtonEdges:
    """Turns held buttons into mode requests on the press edge, with priority damp > stand > walk."""

    def __init__(self, stand: str, walk: str, damp: str | None = None) -> None:
        self.mapping = [(damp, ModeRequest.DAMP), (stand, ModeRequest.STAND), (walk, ModeRequest.WALK)]
        self._previous: set[str] = set()

    def update(self, pressed: Iterable[str]) -> ModeRequest:
        """Request for the buttons pressed now (edge against the previous call)."""
        now = set(pressed)
        rising = now - self._previous
        self._previous = now
        for button, request in self.mapping:
            if button is not None and button in rising:
                return request
        return ModeRequest.NONE


# ----- scripted command files ----------------------------------------------------------------------------------
@dataclass
class ScriptEvent:
    """From ``t_s`` (seconds after start) on, the input reads as this, until the next event."""

    t_s: float
    """Time after the start of the script."""
    command: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """(vx m/s, vy m/s, yaw rate rad/s); clipped to the ranges."""
    deadman: bool = True
    """Deadman held."""
    estop: bool = False
    """E-stop pressed."""
    request: str = "none"
    """Mode request issued once when the event starts: none, stand, walk or damp."""
    connected: bool = True
    """False: the joystick disappears (its samples stop being refreshed)."""

    def __post_init__(self) -> None:
        if self.t_s < 0.0:
            raise ValueError(f"t_s: expected >= 0, got {self.t_s}")
        valid = [r.value for r in ModeRequest]
        if self.request not in valid:
            raise ValueError(f"request: expected one of {valid}, got {self.request!r}")
        if len(self.command) != 3:
            raise ValueError(f"command: expected 3 values (vx, vy, yaw rate), got {self.command}")


class ScriptedTeleop(TeleopSource):
    """Plays a list of :class:`ScriptEvent` (piecewise constant). When ``connected`` goes false the last sample
    freezes with its timestamp, as a real device that stops reporting."""

    def __init__(self, events: Sequence[ScriptEvent], ranges: CommandRanges | None = None) -> None:
        if not events:
            raise ValueError("script: expected at least one event")
        times = [e.t_s for e in events]
        if times != sorted(times):
            raise ValueError(f"script: expected events in time order, got t_s = {times}")
        self.events = list(events)
        self.ranges = ranges or CommandRanges()
        self._t0_s = 0.0
        self._index = -1
        self._last: TeleopSample | None = None

    @classmethod
    def from_file(cls, path: str | Path, ranges: CommandRanges | None = None) -> ScriptedTeleop:
        """Read a JSON file ``{"events": [{"t_s": 0.0, "command": [vx, vy, wz], "request": "stand", ...}]}``."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise ValueError(f"{path}: expected a JSON object with an 'events' list")
        try:
            events = [ScriptEvent(**{**e, "command": tuple(e.get("command", (0.0, 0.0, 0.0)))}) for e in data["events"]]
        except TypeError as err:
            raise ValueError(
                f"{path}: bad event ({err}); fields are t_s, command, deadman, estop, request, connected"
            ) from None
        return cls(events, ranges)

    @staticmethod
    def write(path: str | Path, events: Sequence[ScriptEvent]) -> Path:
        """Write a script file (see :meth:`from_file`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, Any]] = [{**e.__dict__, "command": list(e.command)} for e in events]
        atomic_write_text(path, json.dumps({"events": rows}, indent=2) + "\n")
        return path

    @property
    def duration_s(self) -> float:
        """Time of the last event."""
        return self.events[-1].t_s

    def start(self, now_s: float) -> None:
        self._t0_s = now_s
        self._index = -1
        self._last = None

    def read(self, now_s: float) -> TeleopSample:
        t = now_s - self._t0_s
        index = self._index
        while index + 1 < len(self.events) and self.events[index + 1].t_s <= t:
            index += 1
        new_event = index != self._index
        self._index = index
        if index < 0:
            sample = TeleopSample(np.zeros(3), deadman=False, timestamp_s=now_s)
        else:
            e = self.events[index]
            if not e.connected:
                frozen = self._last or TeleopSample(np.zeros(3), timestamp_s=now_s)
                return TeleopSample(
                    frozen.command.copy(), frozen.deadman, frozen.estop, ModeRequest.NONE, False, frozen.timestamp_s
                )
            request = ModeRequest(e.request) if new_event else ModeRequest.NONE
            sample = TeleopSample(
                self.ranges.clip(np.asarray(e.command, float)), e.deadman, e.estop, request, True, now_s
            )
        self._last = sample
        return sample


# ----- keyboard -----------------------------------------------------------------------------------------------
KEY_HELP = (
    "keys: w/s vx +-, a/d vy +-, q/e yaw +-, space zero command, k toggle deadman, "
    "1 stand, 2 walk, x/ESC e-stop (damping)"
)


@dataclass
class KeyboardState:
    """Keyboard teleop as a pure state update (a terminal has no key-up events, so the deadman is a toggle)."""

    ranges: CommandRanges = field(default_factory=CommandRanges)
    """Command ranges."""
    step_fraction: float = 0.1
    """Each key press moves an axis by this fraction of its range."""
    axes: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """(3,) stick-like axes in [-1, 1]."""
    deadman: bool = False
    """Toggled by 'k'."""
    estop: bool = False
    """Latched by 'x' or ESC."""
    pending: ModeRequest = ModeRequest.NONE
    """Request waiting for the next read."""

    def apply_key(self, key: str) -> None:
        """Update the state with one key character."""
        steps = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "q": (2, 1), "e": (2, -1)}
        if key in steps:
            axis, sign = steps[key]
            self.axes[axis] = float(np.clip(self.axes[axis] + sign * self.step_fraction, -1.0, 1.0))
        elif key == " ":
            self.axes[:] = 0.0
        elif key == "k":
            self.deadman = not self.deadman
        elif key == "1":
            self.pending = ModeRequest.STAND
        elif key == "2":
            self.pending = ModeRequest.WALK
        elif key in ("x", "\x1b"):
            self.estop = True
            self.pending = ModeRequest.DAMP

    def sample(self, now_s: float) -> TeleopSample:
        """Current sample; the pending request is consumed. Keyboard axes skip the deadzone (they step exactly)."""
        request, self.pending = self.pending, ModeRequest.NONE
        command = np.where(
            self.axes >= 0.0, self.axes * np.asarray(self.ranges.high), -self.axes * np.asarray(self.ranges.low)
        )
        return TeleopSample(command, self.deadman, self.estop, request, True, now_s)


class KeyboardTeleop(TeleopSource):
    """Reads single keys from the controlling terminal in a background thread (POSIX terminals only)."""

    def __init__(self, ranges: CommandRanges | None = None, stream: Any = None) -> None:
        self.state = KeyboardState(ranges or CommandRanges())
        self._stream = stream
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore: Callable[[], None] | None = None

    def start(self, now_s: float) -> None:
        import sys
        import termios  # POSIX only
        import tty

        stream = self._stream or sys.stdin
        if self._stream is None:
            if not stream.isatty():
                raise RuntimeError("keyboard teleop: stdin is not a terminal; use a scripted command file instead")
            fd = stream.fileno()
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            self._restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        print(KEY_HELP, flush=True)
        self._thread = threading.Thread(target=self._run, args=(stream,), name="KeyboardTeleop", daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        while not self._stop.is_set():
            key = stream.read(1)
            if not key:
                return
            with self._lock:
                self.state.apply_key(key)

    def read(self, now_s: float) -> TeleopSample:
        with self._lock:
            return self.state.sample(now_s)

    def close(self) -> None:
        self._stop.set()
        if self._restore is not None:
            self._restore()
            self._restore = None
