"""The Unitree remote's ``wireless_remote`` bytes in the G1 ``LowState``: layout and packing (no DDS needed).

Layout (little endian, 40 bytes): 2 header bytes, a uint16 key field (bit order :data:`UNITREE_BUTTONS`, LSB
first), float32 ``lx, rx, ry, L2, ly``, 16 reserved bytes. All zeros stands for "no remote": what the robot
double sends without one, and what the deploy runtime treats as a lost joystick (check on the real robot with
``--dry-run`` that switching the remote off reads so). The robot double packs these bytes;
:mod:`deploy.unitree_remote` parses them into operator commands.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

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
NO_REMOTE = bytes(WIRELESS_REMOTE_BYTES)
"""What the robot reports without a remote."""


def pack_wireless_remote(
    buttons: Iterable[str] = (), lx: float = 0.0, ly: float = 0.0, rx: float = 0.0, ry: float = 0.0
) -> bytes:
    """The 40 bytes of a remote with ``buttons`` held and the sticks at ``lx, ly, rx, ry`` (each in [-1, 1])."""
    keys = 0
    for name in buttons:
        if name not in UNITREE_BUTTONS:
            raise ValueError(f"button: expected one of {UNITREE_BUTTONS}, got {name!r}")
        keys |= 1 << UNITREE_BUTTONS.index(name)
    return b"\x55\x51" + struct.pack("<H5f", keys, lx, rx, ry, 0.0, ly) + bytes(16)
