"""The Unitree remote carried as ``wireless_remote`` bytes in the G1 ``LowState``: parser and teleop source.

Layout (little endian, 40 bytes): 2 header bytes, a uint16 key field (bit order :data:`UNITREE_BUTTONS`, LSB
first), float32 ``lx, rx, ry, L2, ly``, 16 reserved bytes. Axes map to the command as FACTS.md section 4 says:
``vx = ly, vy = -lx, wz = -rx``, then the deadzone and the command ranges of :class:`deploy.teleop.CommandRanges`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from deploy.teleop import ButtonEdges, CommandRanges, TeleopSample, TeleopSource

UNITREE_BUTTONS = (
    "R1",
    "L1",
    "start",
    "select",
    "R2",
    "L2",
    "F1",
    "F2",
    "A",
    "B",
    "X",
    "Y",
    "up",
    "right",
    "down",
    "left",
)
"""Bit order (LSB first) of the 16-bit key field of the remote."""
WIRELESS_REMOTE_BYTES = 40


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


def pack_wireless_remote(
    buttons: Iterable[str] = (), lx: float = 0.0, ly: float = 0.0, rx: float = 0.0, ry: float = 0.0
) -> bytes:
    """Inverse of :func:`parse_wireless_remote` (tests, the simulated robot of the DDS loopback)."""
    keys = 0
    for name in buttons:
        keys |= 1 << UNITREE_BUTTONS.index(name)
    return b"\x55\x51" + struct.pack("<H5f", keys, lx, rx, ry, 0.0, ly) + bytes(16)


@dataclass
class RemoteButtons:
    """Which remote buttons do what (defaults as in Unitree's deploy examples: start stands, A walks)."""

    stand: str = "start"
    """Zero torque -> default pose; policy -> default pose."""
    walk: str = "A"
    """Hold -> policy."""
    estop: str = "select"
    """Damping from any state."""
    deadman: str = "L1"
    """Must be held while the policy runs."""

    def __post_init__(self) -> None:
        for name in ("stand", "walk", "estop", "deadman"):
            if getattr(self, name) not in UNITREE_BUTTONS:
                raise ValueError(f"{name}: expected one of {UNITREE_BUTTONS}, got {getattr(self, name)!r}")


def remote_axes(remote: UnitreeRemote) -> tuple[float, float, float]:
    """Stick axes in (vx, vy, wz) order: ``vx = ly, vy = -lx, wz = -rx`` (FACTS §4)."""
    return remote.ly, -remote.lx, -remote.rx


class UnitreeRemoteTeleop(TeleopSource):
    """The remote as carried in ``LowState.wireless_remote``; ``source()`` returns (bytes, loop-clock time of the
    state they came with), or None before the first state. Staleness of the state is the joystick loss signal."""

    def __init__(
        self,
        source: Callable[[], tuple[bytes, float] | None],
        ranges: CommandRanges | None = None,
        buttons: RemoteButtons | None = None,
    ) -> None:
        self.source = source
        self.ranges = ranges or CommandRanges()
        self.buttons = buttons or RemoteButtons()
        self._edges = ButtonEdges(self.buttons.stand, self.buttons.walk)

    def read(self, now_s: float) -> TeleopSample:
        got = self.source()
        if got is None:
            return TeleopSample(np.zeros(3), connected=False, timestamp_s=-np.inf)
        data, stamp_s = got
        remote = parse_wireless_remote(data)
        request = self._edges.update(remote.buttons)
        b = self.buttons
        return TeleopSample(
            self.ranges.scale(remote_axes(remote)),
            deadman=b.deadman in remote.buttons,
            estop=b.estop in remote.buttons,
            request=request,
            connected=True,
            timestamp_s=stamp_s,
        )
