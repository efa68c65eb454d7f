"""Unitree's message CRC and the packed C layout of the ``unitree_hg`` LowCmd / LowState it is computed over.

The robot checks ``crc`` on every ``rt/lowcmd`` sample and drops a command whose CRC is wrong. The CRC is
computed by Unitree's firmware and SDK over the message as a C struct in memory (natural alignment, little
endian), seen as 32-bit words, all of them except the last (the ``crc`` field itself):

    crc = 0xFFFFFFFF
    for each word w (as a uint32), for each bit of w from the most significant:
        crc = (crc << 1) ^ (0x04C11DB7 if the top bit of crc ^ that bit is set else 0)

That is CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final xor; check
value 0x0376E6E7 for the ASCII bytes ``123456789``) over the words written big endian. We compute it with
zlib's reflected CRC-32 in C: reflecting the bits of every input byte and of the result turns one into the other
(the final xor of zlib is undone by a second xor), which is ~100x faster than a bit loop in Python.

C layouts (bytes, ``x`` = padding):

- ``MotorCmd_``  28: mode u8, 3x, q dq tau kp kd f32, reserve u32;
- ``LowCmd_``  1004: mode_pr u8, mode_machine u8, 2x, 35 MotorCmd_, reserve 4 u32, crc u32;
- ``IMUState_``  56: quaternion 4 f32 (w x y z), gyroscope 3 f32, accelerometer 3 f32, rpy 3 f32, temperature
  i16, 2x;
- ``MotorState_`` 56: mode u8, 3x, q dq ddq tau_est f32, temperature 2 i16, vol f32, sensor 2 u32,
  motorstate u32, reserve 4 u32;
- ``LowState_`` 2092: version 2 u32, mode_pr u8, mode_machine u8, 2x, tick u32, IMUState_, 35 MotorState_,
  wireless_remote 40 u8, reserve 4 u32, crc u32.

The packers read attributes only, so they work on the IDL classes of :mod:`robot.unitree.msgs` and on any object
with the same fields (no DDS import here).
"""

from __future__ import annotations

import array
import struct
import sys
import zlib
from typing import Any

NUM_MOTORS = 35
"""Motor slots in a ``unitree_hg`` LowCmd / LowState (the G1 29-DoF uses the first 29)."""

LOWCMD_STRUCT = struct.Struct("<2B2x" + "B3x5fI" * NUM_MOTORS + "5I")
LOWSTATE_STRUCT = struct.Struct("<2I2B2xI" + "13fh2x" + ("B3x4f2hf7I" * NUM_MOTORS) + "40B5I")
LOWCMD_SIZE_BYTES = LOWCMD_STRUCT.size
LOWSTATE_SIZE_BYTES = LOWSTATE_STRUCT.size
assert (LOWCMD_SIZE_BYTES, LOWSTATE_SIZE_BYTES) == (1004, 2092), "unitree_hg C layout changed"

_REFLECT_BYTE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
assert array.array("I").itemsize == 4, "array type code I is not 32 bits on this platform"


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of ``data`` (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no final xor)."""
    reflected = zlib.crc32(bytes(data).translate(_REFLECT_BYTE)) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def unitree_crc32(packed: bytes) -> int:
    """Unitree's CRC of a packed message: all little-endian 32-bit words but the last (the crc field)."""
    if len(packed) % 4 != 0 or len(packed) < 8:
        raise ValueError(f"unitree_crc32: expected a whole number (>= 2) of 32-bit words, got {len(packed)} bytes")
    # Each little-endian word is fed most significant bit first: byte-swap every word, then a plain MSB-first CRC.
    words = array.array("I", bytes(packed[:-4]))
    if sys.byteorder == "little":
        words.byteswap()
    return crc32_mpeg2(words.tobytes())


def pack_lowcmd(msg: Any) -> bytes:
    """The 1004 bytes of a ``unitree_hg`` LowCmd as the robot's C struct (crc field included, as it is)."""
    values: list[Any] = [msg.mode_pr, msg.mode_machine]
    for m in msg.motor_cmd:
        values += (m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve)
    values += msg.reserve
    values.append(msg.crc)
    return LOWCMD_STRUCT.pack(*values)


def pack_lowstate(msg: Any) -> bytes:
    """The 2092 bytes of a ``unitree_hg`` LowState as the robot's C struct (crc field included, as it is)."""
    imu = msg.imu_state
    values: list[Any] = [*msg.version, msg.mode_pr, msg.mode_machine, msg.tick]
    values += (*imu.quaternion, *imu.gyroscope, *imu.accelerometer, *imu.rpy, imu.temperature)
    for m in msg.motor_state:
        values += (m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate, *m.reserve)
    values += (*msg.wireless_remote, *msg.reserve, msg.crc)
    return LOWSTATE_STRUCT.pack(*values)


def lowcmd_crc(msg: Any) -> int:
    """The CRC the robot expects in ``msg.crc``."""
    return unitree_crc32(pack_lowcmd(msg))


def lowstate_crc(msg: Any) -> int:
    """The CRC the robot writes into ``msg.crc``."""
    return unitree_crc32(pack_lowstate(msg))
