"""The metadata of an exported feed-forward policy: what it needs from, and promises to, the robot.

An export is the network (``policy.pt``, TorchScript, or ``policy.onnx``) with this metadata embedded in it
(the extra file / ``metadata_props`` entry ``metadata.json``) and the same JSON as ``policy.json`` beside it. It
says everything the runtime needs to feed the network and to turn its output into motor commands: joint order,
default pose, PD gains, action scale and clip, control period, observation layout and scales, history length and
command ranges (as mjlab's exports carry). :mod:`robot.compat` checks it against the robot before any command.

Needs numpy, ``robot`` and ``envs`` only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.g1.observations import COMMAND_DIM, ObservationConfig, observation_dim, observation_names
from envs.planner.onnx import PLANNER_FORMAT as PLANNER_FORMAT  # re-exported beside POLICY_FORMAT
from robot.compat import RobotSpec
from robot.g1 import constants as C

POLICY_FORMAT = "steer.policy"
POLICY_METADATA_VERSION = 1
EMBEDDED_METADATA = "metadata.json"


@dataclass
class PolicyMetadata:
    """What an exported policy needs from, and promises to, the robot (saved as JSON)."""

    joint_names: list[str]
    """Joint order of actions and of the per-joint observation blocks."""
    default_joint_pos_rad: list[float]
    """(J,) default pose; actions are offsets from it."""
    kp_nm_per_rad: list[float]
    """(J,) position gains the policy was trained with."""
    kd_nms_per_rad: list[float]
    """(J,) velocity gains the policy was trained with."""
    action_scale_rad: list[float]
    """(J,) targets are ``default + scale * action``."""
    robot: str = "unitree_g1_29dof"
    """Robot model the policy was trained for."""
    gain_profile: str = "policy"
    """Name of the robot's gain set the gains come from (see :attr:`robot.compat.RobotSpec.gain_profiles`)."""
    action_clip: float = 4.0
    """Actions are clipped to +-this before scaling."""
    control_dt_s: float = 0.02
    """Control period the policy was trained at."""
    history_length: int = 1
    """Observation frames stacked, oldest first (1: the current frame only)."""
    obs_ang_vel_scale: float = 0.25
    """:class:`envs.g1.observations.ObservationConfig` ``ang_vel_scale``."""
    obs_joint_vel_scale: float = 0.05
    """:class:`envs.g1.observations.ObservationConfig` ``joint_vel_scale``."""
    obs_clip: float = 100.0
    """:class:`envs.g1.observations.ObservationConfig` ``clip``."""
    obs_gait_period_s: float = 0.0
    """:class:`envs.g1.observations.ObservationConfig` ``gait_period_s`` (0: no gait clock in the observation)."""
    command_names: list[str] = field(default_factory=lambda: ["vx_m_per_s", "vy_m_per_s", "yaw_rate_rad_per_s"])
    """Meaning of the command entries of the observation."""
    command_low: list[float] = field(default_factory=lambda: [-1.0, -0.5, -1.0])
    """(3,) lowest command the policy was trained on."""
    command_high: list[float] = field(default_factory=lambda: [1.0, 0.5, 1.0])
    """(3,) highest command the policy was trained on."""
    observation_names: list[str] = field(default_factory=list)
    """Name of every observation entry of one frame (filled from ``joint_names`` when empty)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (training run, git revision, ...)."""
    format: str = POLICY_FORMAT
    """File format tag."""
    metadata_version: int = POLICY_METADATA_VERSION
    """Version of this layout."""

    def __post_init__(self) -> None:
        if self.format != POLICY_FORMAT:
            raise ValueError(f"format: expected {POLICY_FORMAT!r}, got {self.format!r}")
        if self.metadata_version != POLICY_METADATA_VERSION:
            raise ValueError(f"metadata_version: expected {POLICY_METADATA_VERSION}, got {self.metadata_version}")
        n = len(self.joint_names)
        for name in ("default_joint_pos_rad", "kp_nm_per_rad", "kd_nms_per_rad", "action_scale_rad"):
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(f"{name}: expected {n} values (one per joint), got {len(values)}")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name}: expected finite values, got {values}")
        for name in ("command_low", "command_high", "command_names"):
            if len(getattr(self, name)) != COMMAND_DIM:
                raise ValueError(f"{name}: expected {COMMAND_DIM} entries, got {len(getattr(self, name))}")
        if any(lo > hi for lo, hi in zip(self.command_low, self.command_high, strict=True)):
            raise ValueError(f"command ranges: expected low <= high, got {self.command_low} / {self.command_high}")
        for name in ("action_clip", "control_dt_s", "obs_ang_vel_scale", "obs_joint_vel_scale", "obs_clip"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        if self.history_length < 1:
            raise ValueError(f"history_length: expected >= 1, got {self.history_length}")
        if self.obs_gait_period_s < 0.0:
            raise ValueError(f"obs_gait_period_s: expected >= 0, got {self.obs_gait_period_s}")
        obs_cfg = self.observation_config()
        if not self.observation_names:
            self.observation_names = observation_names(self.joint_names, obs_cfg)
        if len(self.observation_names) != observation_dim(n, obs_cfg):
            raise ValueError(
                f"observation_names: expected {observation_dim(n, obs_cfg)} names for {n} joints, "
                f"got {len(self.observation_names)}"
            )

    @property
    def num_joints(self) -> int:
        """J."""
        return len(self.joint_names)

    @property
    def obs_dim(self) -> int:
        """Network input length: one frame times the history length."""
        return observation_dim(self.num_joints, self.observation_config()) * self.history_length

    @property
    def control_freq_hz(self) -> float:
        """1 / control period."""
        return 1.0 / self.control_dt_s

    def observation_config(self) -> ObservationConfig:
        """The scales to build observations with (same as in training)."""
        return ObservationConfig(
            self.obs_ang_vel_scale, self.obs_joint_vel_scale, self.obs_clip, gait_period_s=self.obs_gait_period_s
        )

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyMetadata:
        """Parse a metadata dictionary; unknown keys are an error (a newer exporter wrote the file)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"policy metadata: unknown keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**data)

    @classmethod
    def for_g1(cls, gain_profile: str = "policy", **overrides: Any) -> PolicyMetadata:
        """Metadata of a G1 policy from :mod:`robot.g1.constants` (``gain_profile`` 'policy' or 'stand')."""
        kp, kd = RobotSpec.g1().gain_profile(gain_profile)
        fields: dict[str, Any] = {
            "joint_names": list(C.JOINT_NAMES),
            "default_joint_pos_rad": C.DEFAULT_JOINT_POS_RAD.tolist(),
            "kp_nm_per_rad": kp.tolist(),
            "kd_nms_per_rad": kd.tolist(),
            "action_scale_rad": C.ACTION_SCALE_RAD.tolist(),
            "gain_profile": gain_profile,
        }
        fields.update(overrides)
        return cls(**fields)


def read_metadata_file(path: Path) -> tuple[PolicyMetadata, dict[str, Any]]:
    """The ``.json`` beside an exported network ``path``: parsed metadata and the raw dictionary."""
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"exported policy: expected {p} to exist (export writes both files together)")
    data = json.loads(meta_path.read_text())
    if data.get("format") != POLICY_FORMAT:
        raise ValueError(f"{meta_path}: expected format {POLICY_FORMAT!r}, got {data.get('format')!r}")
    return PolicyMetadata.from_dict(data), data


def check_embedded_metadata(embedded_text: str | None, data: dict[str, Any], path: Path) -> None:
    """Refuse a network whose embedded metadata differs from the ``.json`` beside it (files of two exports)."""
    embedded = json.loads(embedded_text) if embedded_text else None
    if embedded != data:
        raise ValueError(
            f"{path.with_suffix('.json')} does not match the metadata embedded in {path}: "
            "the two files come from different exports"
        )
