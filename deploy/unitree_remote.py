"""The Unitree remote carried as ``wireless_remote`` bytes in the G1 ``LowState``: parser and teleop source.

Layout (little endian, 40 bytes): 2 header bytes, a uint16 key field (bit order :data:`UNITREE_BUTTONS`, LSB
first), float32 ``lx, rx, ry, L2, ly``, 16 reserved bytes. Axes map to the command as in Unitree's SDK examples:
``vx = ly, vy = -lx, wz = -rx``, then the deadzone and the command ranges of :class:`deploy.teleop.CommandRanges`.

Buttons (:class:`RemoteButtons`, defaults as in BeyondMimic's released deploy controller): L1+A stand (zero torque
or policy -> default pose), R1+A policy, B e-stop (damping from any state); R1 is also the deadman, held while the
policy runs (release it and the robot damps). Joystick loss, which the safety state machine turns into damping, is
a LowState that stops arriving (the sample keeps the receive time of the last state) or a remote the robot no
longer hears (``wireless_remote`` all zeros, see :mod:`robot.unitree.remote`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from deploy.teleop import CommandRanges, ModeRequest, TeleopSample, TeleopSource
from robot.unitree.remote import UNITREE_BUTTONS, WIRELESS_REMOTE_BYTES, pack_wireless_remote

__all__ = [
    "UNITREE_BUTTONS",
    "WIRELESS_REMOTE_BYTES",
    "RemoteButtons",
    "UnitreeRemote",
    "UnitreeRemoteTeleop",
    "pack_wireless_remote",
    "parse_wireless_remote",
    "remote_present",
]


@dataclass
class UnitreeRemote:
    """Decoded ``wireless_remote`` bytes of a G1 ``LowState``: 2 header bytes, uint16 keys, float32 lx, rx, ry,
    L2, ly (little endian), 16 reserved bytes."""

    buttons: frozenset[str]
    """Names of the buttons held (:data:`UNITREE_BUTTONS`)."""
    lx: float
    """Left stick x (right positive), [-1, 1]."""
    ly: float
    """Left stick y (forward positive)."""
    rx: float
    """Right stick x."""
    ry: float
    """Right stick y."""
    l2: float
    """Left analog trigger, [0, 1]."""


def parse_wireless_remote(data: bytes | bytearray | Sequence[int]) -> UnitreeRemote:
    """Decode the 40 ``wireless_remote`` bytes (see :class:`UnitreeRemote`)."""
    raw = bytes(data)
    if len(raw) < 24:
        raise ValueError(f"wireless_remote: expected {WIRELESS_REMOTE_BYTES} bytes (at least 24), got {len(raw)}")
    (keys,) = struct.unpack_from("<H", raw, 2)
    lx, rx, ry, l2, ly = struct.unpack_from("<5f", raw, 4)
    held = frozenset(name for i, name in enumerate(UNITREE_BUTTONS) if keys >> i & 1)
    return UnitreeRemote(held, lx, ly, rx, ry, l2)


Combo = tuple[str, ...]
"""Buttons that must all be held together."""


def _combo(value: str | Sequence[str]) -> Combo:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass
class RemoteButtons:
    """Which remote buttons do what; each role is one button or a combination held together (a plain name or a
    tuple of names of :data:`UNITREE_BUTTONS`)."""

    stand: str | Combo = ("L1", "A")
    """Zero torque -> default pose; policy -> default pose."""
    walk: str | Combo = ("R1", "A")
    """Hold -> policy (with the deadman held)."""
    estop: str | Combo = ("B",)
    """Damping from any state."""
    deadman: str | Combo = ("R1",)
    """Must be held while the policy runs."""

    def __post_init__(self) -> None:
        for name in ("stand", "walk", "estop", "deadman"):
            combo = _combo(getattr(self, name))
            unknown = [b for b in combo if b not in UNITREE_BUTTONS]
            if not combo or unknown:
                raise ValueError(f"{name}: expected one of {UNITREE_BUTTONS} or a tuple of them, got {combo!r}")
            setattr(self, name, combo)

    def describe(self) -> dict[str, str]:
        """Role -> how to press it, e.g. ``{"stand": "L1+A", ...}`` (operator prompts)."""
        return {name: "+".join(_combo(getattr(self, name))) for name in ("stand", "walk", "estop", "deadman")}


class ComboEdges:
    """Mode requests on the press edge of button combinations (all held now, not all held before), with priority
    damp > stand > walk, so that L1+A while R1 is held (R1+A also complete) asks for stand."""

    def __init__(self, stand: Combo, walk: Combo) -> None:
        self.mapping = [(frozenset(stand), ModeRequest.STAND), (frozenset(walk), ModeRequest.WALK)]
        self._previous: frozenset[str] = frozenset()

    def update(self, held: frozenset[str]) -> ModeRequest:
        """Request for the buttons held now (edge against the previous call)."""
        previous, self._previous = self._previous, held
        for combo, request in self.mapping:
            if combo <= held and not combo <= previous:
                return request
        return ModeRequest.NONE


def remote_present(data: bytes | bytearray | Sequence[int]) -> bool:
    """False when the ``wireless_remote`` bytes are all zero: the robot hears no remote."""
    return any(bytes(data))


def remote_axes(remote: UnitreeRemote) -> tuple[float, float, float]:
    """Stick axes in (vx, vy, wz) order: ``vx = ly, vy = -lx, wz = -rx`` (Unitree's mapping)."""
    return remote.ly, -remote.lx, -remote.rx


class UnitreeRemoteTeleop(TeleopSource):
    """The remote as carried in ``LowState.wireless_remote``; ``source()`` returns (bytes, loop-clock time of the
    state they came with), or None before the first state. A stale state is a silent joystick (its timestamp stops
    advancing); all-zero bytes (no remote paired or in range) read as disconnected."""

    def __init__(
        self,
        source: Callable[[], tuple[bytes, float] | None],
        ranges: CommandRanges | None = None,
        buttons: RemoteButtons | None = None,
    ) -> None:
        self.source = source
        self.ranges = ranges or CommandRanges()
        self.buttons = buttons or RemoteButtons()
        self._edges = ComboEdges(_combo(self.buttons.stand), _combo(self.buttons.walk))
        self.last: UnitreeRemote | None = None

    def read(self, now_s: float) -> TeleopSample:
        got = self.source()
        if got is None:
            return TeleopSample(np.zeros(3), connected=False, timestamp_s=-np.inf)
        data, stamp_s = got
        if not remote_present(data):
            self._edges.update(frozenset())
            return TeleopSample(np.zeros(3), connected=False, timestamp_s=stamp_s)
        remote = self.last = parse_wireless_remote(data)
        b = self.buttons
        return TeleopSample(
            self.ranges.scale(remote_axes(remote)),
            deadman=frozenset(_combo(b.deadman)) <= remote.buttons,
            estop=frozenset(_combo(b.estop)) <= remote.buttons,
            request=self._edges.update(remote.buttons),
            connected=True,
            timestamp_s=stamp_s,
        )
