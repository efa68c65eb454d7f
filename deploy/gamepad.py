"""Linux gamepads (Xbox / PlayStation layouts) through ``evdev``, as a :class:`deploy.teleop.TeleopSource`.

The event decoding (:class:`GamepadState`) is pure and works on ``(type, code, value)`` triples with the kernel's
numeric codes, so it is tested without a device or the ``evdev`` package; only :class:`EvdevGamepad` imports
``evdev`` (install the ``teleop`` extra: ``pip install 'steer[teleop]'``).

Axes use the Unitree remote convention so that one mapping serves both (Unitree's SDK): ``lx`` = left stick
right, ``ly`` = left stick forward (the kernel reports forward as negative ABS_Y), ``rx`` = right stick right;
command ``vx = ly, vy = -lx, wz = -rx``. A reader thread keeps the state; a device that disappears (unplugged, out
of range, ENODEV) reports ``connected = False`` and the safety state machine stops the robot.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deploy.teleop import ButtonEdges, CommandRanges, TeleopSample, TeleopSource

EV_KEY, EV_ABS = 1, 3
ABS_X, ABS_Y, ABS_RX, ABS_RY = 0, 1, 3, 4
BUTTON_CODES: dict[int, str] = {
    304: "south",  # A / cross
    305: "east",  # B / circle
    307: "north",  # Y / triangle
    308: "west",  # X / square
    310: "tl",  # left bumper
    311: "tr",
    312: "tl2",
    313: "tr2",
    314: "select",  # back / share
    315: "start",  # start / options
    316: "mode",
    317: "thumbl",
    318: "thumbr",
}


@dataclass
class GamepadButtons:
    """Which buttons do what (names of :data:`BUTTON_CODES`); the same roles as the Unitree remote's."""

    stand: str = "start"
    """Zero torque or policy -> move to the default pose."""
    walk: str = "south"
    """Hold -> policy."""
    estop: str = "select"
    """Damping from any state."""
    deadman: str = "tl"
    """Must be held while the policy runs."""

    def __post_init__(self) -> None:
        valid = sorted(BUTTON_CODES.values())
        for name in ("stand", "walk", "estop", "deadman"):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}: expected one of {valid}, got {getattr(self, name)!r}")


@dataclass
class AxisRange:
    """Raw range of one absolute axis (``evdev`` ``AbsInfo`` min/max)."""

    minimum: int = -32768
    """Raw value at full deflection left / forward."""
    maximum: int = 32767
    """Raw value at full deflection right / back."""

    def normalise(self, value: int) -> float:
        """Raw value -> [-1, 1] with 0 at the centre."""
        half = (self.maximum - self.minimum) / 2.0
        if half <= 0.0:
            return 0.0
        return float(np.clip((value - (self.minimum + half)) / half, -1.0, 1.0))


@dataclass
class GamepadState:
    """Axes and held buttons after the events seen so far."""

    ranges: dict[int, AxisRange] = field(default_factory=dict)
    """Raw range per axis code (default int16)."""
    axes: dict[int, float] = field(default_factory=dict)
    """Normalised value per axis code."""
    held: set[str] = field(default_factory=set)
    """Names of the buttons held."""

    def apply_event(self, ev_type: int, code: int, value: int) -> None:
        """Update from one kernel input event (other event types are ignored)."""
        if ev_type == EV_ABS:
            self.axes[code] = self.ranges.get(code, AxisRange()).normalise(value)
        elif ev_type == EV_KEY and code in BUTTON_CODES:
            name = BUTTON_CODES[code]
            if value:  # 1 press, 2 autorepeat
                self.held.add(name)
            else:
                self.held.discard(name)

    def stick_axes(self) -> tuple[float, float, float]:
        """(vx, vy, wz) axes: ``vx = ly = -ABS_Y``, ``vy = -lx = -ABS_X``, ``wz = -rx = -ABS_RX``."""
        lx, ly, rx = self.axes.get(ABS_X, 0.0), -self.axes.get(ABS_Y, 0.0), self.axes.get(ABS_RX, 0.0)
        return ly, -lx, -rx


class GamepadTeleop(TeleopSource):
    """Turns a :class:`GamepadState` into samples; :class:`EvdevGamepad` feeds it from a device."""

    def __init__(self, ranges: CommandRanges | None = None, buttons: GamepadButtons | None = None) -> None:
        self.ranges = ranges or CommandRanges()
        self.buttons = buttons or GamepadButtons()
        self.state = GamepadState()
        self.connected = True
        self.alive_s = -np.inf
        self._edges = ButtonEdges(self.buttons.stand, self.buttons.walk)
        self._lock = threading.Lock()

    def feed(self, ev_type: int, code: int, value: int, now_s: float) -> None:
        """One event from the device at loop-clock time ``now_s``."""
        with self._lock:
            self.state.apply_event(ev_type, code, value)
            self.alive_s = now_s

    def mark_alive(self, now_s: float, connected: bool = True) -> None:
        """The device was polled successfully (or found gone) at ``now_s``."""
        with self._lock:
            self.connected = connected
            if connected:
                self.alive_s = now_s

    def read(self, now_s: float) -> TeleopSample:
        with self._lock:
            held = set(self.state.held)
            axes = self.state.stick_axes()
            connected, alive = self.connected, self.alive_s
        b = self.buttons
        return TeleopSample(
            self.ranges.scale(axes),
            deadman=b.deadman in held,
            estop=b.estop in held,
            request=self._edges.update(held),
            connected=connected,
            timestamp_s=alive,
        )


class EvdevGamepad(GamepadTeleop):
    """A gamepad read with ``evdev`` in a background thread (``path`` None: the first device with sticks)."""

    def __init__(
        self,
        path: str | None = None,
        ranges: CommandRanges | None = None,
        buttons: GamepadButtons | None = None,
        clock: Callable[[], float] = time.perf_counter,
        poll_s: float = 0.01,
    ) -> None:
        super().__init__(ranges, buttons)
        self.path, self.clock, self.poll_s = path, clock, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._device = None

    def start(self, now_s: float) -> None:
        try:
            import evdev
        except ImportError as err:
            raise ImportError("gamepad teleop needs evdev: pip install 'steer[teleop]' (or pip install evdev)") from err
        device = evdev.InputDevice(self.path) if self.path else _find_gamepad(evdev)
        for code in (ABS_X, ABS_Y, ABS_RX, ABS_RY):
            try:
                info = device.absinfo(code)
                self.state.ranges[code] = AxisRange(info.min, info.max)
            except (OSError, KeyError, TypeError):
                continue
        self._device = device
        self.mark_alive(self.clock())
        self._thread = threading.Thread(target=self._run, name="EvdevGamepad", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        device = self._device
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([device.fd], [], [], self.poll_s)
                if ready:
                    for event in device.read():
                        self.feed(event.type, event.code, event.value, self.clock())
                else:
                    self.mark_alive(self.clock())
            except (OSError, ValueError):  # ENODEV when unplugged, EBADF after close
                self.mark_alive(self.clock(), connected=False)
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._device is not None:
            self._device.close()
            self._device = None


def _find_gamepad(evdev: object) -> object:
    """First input device with a left stick and a south button; error listing the devices otherwise."""
    devices = [evdev.InputDevice(p) for p in evdev.list_devices()]  # type: ignore[attr-defined]
    for device in devices:
        caps = device.capabilities()
        axes = [c[0] if isinstance(c, tuple) else c for c in caps.get(EV_ABS, [])]
        if ABS_X in axes and ABS_Y in axes and 304 in caps.get(EV_KEY, []):
            return device
    names = [f"{d.path} ({d.name})" for d in devices]
    raise RuntimeError(f"no gamepad found (expected a device with sticks and a south button); input devices: {names}")
