"""The ``unitree_hg`` low-level messages of the G1 as Cyclone DDS IDL types, with a fast CDR codec.

Field order, types and array sizes follow Unitree's ``unitree_hg`` IDL exactly, and the registered type names are
Unitree's (``unitree_hg.msg.dds_.LowCmd_`` here; Cyclone DDS puts ``unitree_hg::msg::dds_::LowCmd_`` on the wire),
so these samples interoperate with the robot and with Unitree's SDKs. All structs are ``@final`` as Unitree
generates them. The C layouts the CRC is computed over are in :mod:`robot.unitree.crc`.

Topics: commands on ``rt/lowcmd`` (:class:`LowCmd_`), state on ``rt/lowstate`` (:class:`LowState_`, 500 Hz on the
robot). Motor slot ``i`` is joint ``i`` of :data:`robot.g1.constants.JOINT_NAMES` (Unitree motor order); slots
29..34 are unused on the 29-DoF G1.

Codec: Cyclone's generic Python serializer needs ~0.5-1 ms per LowCmd / LowState, which at 500 Hz in both
directions costs more than a core. Every field here has a fixed size, so :class:`LowCmd_` and :class:`LowState_`
override ``serialize`` / ``deserialize`` with one precompiled :class:`struct.Struct` each for little-endian XCDR1
(the encoding Cyclone uses for ``@final`` types, header ``00 01 00 00``), byte-identical to the generic path (a
test checks both directions); anything else (XCDR2, big endian, a caller's buffer) falls back to the generic path.
XCDR1 aligns each primitive to its size from the start of the payload and pads no struct, so the first motor slot
starts 2 bytes in, unlike the C layout of :mod:`robot.unitree.crc`.
"""

# No ``from __future__ import annotations``: Cyclone DDS reads the field annotations as objects.
import struct
from dataclasses import dataclass, field
from typing import Any

from robot.unitree.crc import NUM_MOTORS

try:
    import cyclonedds.idl as idl
    import cyclonedds.idl.annotations as annotate
    import cyclonedds.idl.types as types
    from cyclonedds.idl._support import Buffer, Endianness
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "robot.unitree needs Cyclone DDS 0.10.2 for Python: run .ci/install_cyclonedds.sh (as root it installs "
        "Debian's cyclonedds-dev and builds the cyclonedds==0.10.2 binding against it)"
    ) from exc

TOPIC_LOWCMD = "rt/lowcmd"
TOPIC_LOWSTATE = "rt/lowstate"
MOTOR_MODE_DISABLE = 0
"""``MotorCmd_.mode`` of an unused slot."""
MOTOR_MODE_ENABLE = 1
"""``MotorCmd_.mode`` of a driven motor (Unitree's G1 examples enable every used slot with 1)."""
MODE_PR = 0
"""``LowCmd_.mode_pr``: ankle and waist linkages commanded as pitch/roll joints (1 would be the A/B motors)."""
MODE_MACHINE_G1_29DOF = 5
"""``LowState_.mode_machine`` reported by the G1 29-DoF rev 1.0; commands echo the robot's value."""
MODE_MACHINE_BY_ROBOT = {"unitree_g1_29dof": MODE_MACHINE_G1_29DOF}
"""Robot model name (``PolicyMetadata.robot``) -> the ``mode_machine`` that robot reports."""


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorCmd_(idl.IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):  # noqa: N801 - Unitree's type name
    """One motor slot: ``tau = kp (q - q_meas) + kd (dq - dq_meas) + tau``, evaluated by the motor driver."""

    mode: types.uint8 = 0
    q: types.float32 = 0.0
    dq: types.float32 = 0.0
    tau: types.float32 = 0.0
    kp: types.float32 = 0.0
    kd: types.float32 = 0.0
    reserve: types.uint32 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowCmd_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):  # noqa: N801
    """``rt/lowcmd``: all motor slots, the linkage mode, the robot type echoed back and the CRC."""

    mode_pr: types.uint8 = 0
    mode_machine: types.uint8 = 0
    motor_cmd: types.array[MotorCmd_, NUM_MOTORS] = field(
        default_factory=lambda: [MotorCmd_() for _ in range(NUM_MOTORS)]
    )
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])
    crc: types.uint32 = 0

    def serialize(
        self, buffer: Buffer | None = None, endianness: Endianness | None = None, use_version_2: bool | None = None
    ) -> bytes:
        """CDR bytes with header (fast path for XCDR1 little endian, see module docstring)."""
        if buffer is not None or endianness not in (None, Endianness.Little) or use_version_2:
            return super().serialize(buffer, endianness, use_version_2)
        values: list[Any] = [self.mode_pr, self.mode_machine]
        for m in self.motor_cmd:
            values += (m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve)
        values += (*self.reserve, self.crc)
        return _XCDR1_LE_HEADER + _LOWCMD_CDR.pack(*values)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "LowCmd_":
        """Inverse of :meth:`serialize` (fast path for XCDR1 little endian)."""
        if not _fast_path(data, has_header, use_version_2, _LOWCMD_CDR.size):
            return super().deserialize(data, has_header, use_version_2)
        v = _LOWCMD_CDR.unpack_from(data, 4)
        motors = [MotorCmd_(*v[i : i + 7]) for i in range(2, 2 + 7 * NUM_MOTORS, 7)]
        return cls(v[0], v[1], motors, list(v[-5:-1]), v[-1])


@dataclass
@annotate.final
@annotate.autoid("sequential")
class IMUState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):  # noqa: N801
    """Pelvis IMU: quaternion (w, x, y, z), gyroscope rad/s, accelerometer m/s^2, roll-pitch-yaw rad, deg C."""

    quaternion: types.array[types.float32, 4] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    gyroscope: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    accelerometer: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rpy: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    temperature: types.int16 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):  # noqa: N801
    """One motor slot as measured: position, velocity, acceleration, estimated torque, temperatures, status."""

    mode: types.uint8 = 0
    q: types.float32 = 0.0
    dq: types.float32 = 0.0
    ddq: types.float32 = 0.0
    tau_est: types.float32 = 0.0
    temperature: types.array[types.int16, 2] = field(default_factory=lambda: [0, 0])
    vol: types.float32 = 0.0
    sensor: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])
    motorstate: types.uint32 = 0
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowState_(idl.IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):  # noqa: N801
    """``rt/lowstate``: IMU, all motor slots, the remote's 40 bytes, a tick counter and the CRC."""

    version: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])
    mode_pr: types.uint8 = 0
    mode_machine: types.uint8 = 0
    tick: types.uint32 = 0
    imu_state: IMUState_ = field(default_factory=IMUState_)
    motor_state: types.array[MotorState_, NUM_MOTORS] = field(
        default_factory=lambda: [MotorState_() for _ in range(NUM_MOTORS)]
    )
    wireless_remote: types.array[types.uint8, 40] = bytes(40)
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])
    crc: types.uint32 = 0

    def serialize(
        self, buffer: Buffer | None = None, endianness: Endianness | None = None, use_version_2: bool | None = None
    ) -> bytes:
        """CDR bytes with header (fast path for XCDR1 little endian, see module docstring)."""
        if buffer is not None or endianness not in (None, Endianness.Little) or use_version_2:
            return super().serialize(buffer, endianness, use_version_2)
        imu = self.imu_state
        values: list[Any] = [*self.version, self.mode_pr, self.mode_machine, self.tick]
        values += (*imu.quaternion, *imu.gyroscope, *imu.accelerometer, *imu.rpy, imu.temperature)
        for m in self.motor_state:
            values += (m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate, *m.reserve)
        values += (*self.wireless_remote, *self.reserve, self.crc)
        return _XCDR1_LE_HEADER + _LOWSTATE_CDR.pack(*values)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "LowState_":
        """Inverse of :meth:`serialize` (fast path for XCDR1 little endian)."""
        if not _fast_path(data, has_header, use_version_2, _LOWSTATE_CDR.size):
            return super().deserialize(data, has_header, use_version_2)
        v = _LOWSTATE_CDR.unpack_from(data, 4)
        imu = IMUState_(list(v[5:9]), list(v[9:12]), list(v[12:15]), list(v[15:18]), v[18])
        motors = [_motor_state(v, i) for i in range(19, 19 + 15 * NUM_MOTORS, 15)]
        end = 19 + 15 * NUM_MOTORS
        wireless, reserve = bytes(v[end : end + 40]), list(v[end + 40 : end + 44])
        return cls(list(v[0:2]), v[2], v[3], v[4], imu, motors, wireless, reserve, v[end + 44])


def _motor_state(v: tuple, i: int) -> MotorState_:
    """The MotorState_ whose 15 unpacked values start at ``v[i]``."""
    return MotorState_(
        *v[i : i + 5], list(v[i + 5 : i + 7]), v[i + 7], list(v[i + 8 : i + 10]), v[i + 10], list(v[i + 11 : i + 15])
    )


_XCDR1_LE_HEADER = bytes((0, 1, 0, 0))
# XCDR1 payload layouts (no header); the first motor slot follows the u8 fields directly (see module docstring).
_LOWCMD_CDR = struct.Struct("<2B" + "Bx5fI" + "B3x5fI" * (NUM_MOTORS - 1) + "5I")
_LOWSTATE_CDR = struct.Struct("<2I2B2xI" + "13fh" + "Bx4f2hf7I" + "B3x4f2hf7I" * (NUM_MOTORS - 1) + "40B5I")
assert (_LOWCMD_CDR.size, _LOWSTATE_CDR.size) == (1000, 2088), "unitree_hg XCDR1 layout changed"


def _fast_path(data: bytes, has_header: bool, use_version_2: bool | None, payload_size: int) -> bool:
    """Whether ``data`` is one XCDR1 little-endian sample of ``payload_size`` bytes (trailing padding allowed)."""
    return (
        has_header
        and use_version_2 is None
        and isinstance(data, (bytes, bytearray, memoryview))
        and len(data) >= 4 + payload_size
        and bytes(data[:4]) == _XCDR1_LE_HEADER
    )
