"""Export a feed-forward policy (observation -> action MLP) with its robot metadata, load it, check it fits the robot.

The exported pair is ``policy.pt`` (TorchScript; the metadata JSON is also embedded as the extra file
``metadata.json``) and ``policy.json`` beside it. The metadata says everything the runtime needs to feed the
network and to turn its output into motor commands: joint order, default pose, PD gains, action scale and clip,
control period, observation layout and scales, history length and command ranges (as mjlab's exports carry).

Before driving a robot, :func:`check_policy_robot` compares the metadata with a :class:`RobotSpec` (and the joint
names the backend reports) and raises :class:`PolicyRobotMismatchError` listing every difference: a policy trained
with another joint order or other gains must never reach the motors.

This module imports only numpy, ``robot`` and ``envs`` (torch when a TorchScript file is exported or loaded): the
runtime loads policies without ``policies``, and ONNX ones without torch.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where a TorchScript file is written or run: ONNX needs none
    import torch
    from torch import nn

from envs.observations import COMMAND_DIM, ObservationConfig, observation_dim, observation_names
from robot.files import atomic_write
from robot.g1 import constants as C
from robot.messages import RobotState

POLICY_FORMAT = "steer.policy"
POLICY_METADATA_VERSION = 1
EMBEDDED_METADATA = "metadata.json"


class PolicyRobotMismatchError(RuntimeError):
    """The exported policy does not fit the robot it was about to drive; ``differences`` lists why."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        lines = "\n".join(f"  - {d}" for d in differences)
        super().__init__(f"refusing to run: policy metadata does not match the robot ({len(differences)}):\n{lines}")


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
    """Name of the robot's gain set the gains come from (see :attr:`RobotSpec.gain_profiles`)."""
    action_clip: float = 4.0
    """Actions are clipped to +-this before scaling."""
    control_dt_s: float = 0.02
    """Control period the policy was trained at."""
    history_length: int = 1
    """Observation frames stacked, oldest first (1: the current frame only)."""
    obs_ang_vel_scale: float = 0.25
    """:class:`envs.observations.ObservationConfig` ``ang_vel_scale``."""
    obs_joint_vel_scale: float = 0.05
    """:class:`envs.observations.ObservationConfig` ``joint_vel_scale``."""
    obs_clip: float = 100.0
    """:class:`envs.observations.ObservationConfig` ``clip``."""
    obs_gait_period_s: float = 0.0
    """:class:`envs.observations.ObservationConfig` ``gait_period_s`` (0: no gait clock in the observation)."""
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


@dataclass
class RobotSpec:
    """What a policy is checked against: the robot's joints, pose and the gain sets it is validated to run."""

    name: str
    """Robot model name (compared with :attr:`PolicyMetadata.robot`)."""
    joint_names: tuple[str, ...]
    """Joint order of the backend."""
    default_joint_pos_rad: np.ndarray
    """(J,) default pose."""
    gain_profiles: dict[str, tuple[np.ndarray, np.ndarray]]
    """Named (kp, kd) pairs, each (J,), that this robot may run with."""
    pose_tolerance_rad: float = 1e-6
    """Largest accepted difference of default poses."""
    gain_rtol: float = 1e-6
    """Largest accepted relative difference of gains."""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if np.shape(self.default_joint_pos_rad) != (n,):
            raise ValueError(
                f"default_joint_pos_rad: expected shape ({n},), got {np.shape(self.default_joint_pos_rad)}"
            )
        for profile, (kp, kd) in self.gain_profiles.items():
            if np.shape(kp) != (n,) or np.shape(kd) != (n,):
                raise ValueError(f"gain profile {profile!r}: expected (kp, kd) of shape ({n},) each")

    @classmethod
    def g1(cls) -> RobotSpec:
        """The Unitree G1 29-DoF from :mod:`robot.g1.constants`: 'policy' (10 Hz) and 'stand' (30 Hz) gains."""
        return cls(
            "unitree_g1_29dof",
            C.JOINT_NAMES,
            np.asarray(C.DEFAULT_JOINT_POS_RAD),
            {
                "policy": (np.asarray(C.KP_NM_PER_RAD), np.asarray(C.KD_NMS_PER_RAD)),
                "stand": (np.asarray(C.STAND_KP_NM_PER_RAD), np.asarray(C.STAND_KD_NMS_PER_RAD)),
            },
        )

    def gain_profile(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(kp, kd) of one profile, with the list of profiles on a typo."""
        if name not in self.gain_profiles:
            raise KeyError(f"gain profile {name!r}: expected one of {sorted(self.gain_profiles)}")
        return self.gain_profiles[name]


def _per_joint_differences(
    what: str, names: Sequence[str], got: np.ndarray, expected: np.ndarray, close: np.ndarray, limit: int = 6
) -> list[str]:
    bad = [i for i in range(len(names)) if not close[i]]
    if not bad:
        return []
    shown = ", ".join(f"{names[i]} policy {got[i]:.6g} vs robot {expected[i]:.6g}" for i in bad[:limit])
    more = f" (+{len(bad) - limit} more)" if len(bad) > limit else ""
    return [f"{what} differs on {len(bad)} joint(s): {shown}{more}"]


def policy_robot_differences(
    metadata: PolicyMetadata, spec: RobotSpec, backend_joint_names: Sequence[str] | None = None
) -> list[str]:
    """Every way ``metadata`` does not fit ``spec`` (and the backend's joint names); empty when it fits."""
    diffs: list[str] = []
    if metadata.robot != spec.name:
        diffs.append(f"robot: policy trained for {metadata.robot!r}, robot is {spec.name!r}")
    if backend_joint_names is not None and tuple(backend_joint_names) != tuple(spec.joint_names):
        diffs.append("backend joint names differ from the robot spec (the backend reports another joint order)")
    policy_names, robot_names = list(metadata.joint_names), list(spec.joint_names)
    if len(policy_names) != len(robot_names):
        diffs.append(f"joint count: policy has {len(policy_names)}, robot has {len(robot_names)}")
    missing = [n for n in robot_names if n not in policy_names]
    extra = [n for n in policy_names if n not in robot_names]
    if missing:
        diffs.append(f"joints of the robot missing from the policy: {missing}")
    if extra:
        diffs.append(f"joints of the policy unknown to the robot: {extra}")
    if not missing and not extra and policy_names != robot_names:
        i = next(k for k, (a, b) in enumerate(zip(policy_names, robot_names, strict=True)) if a != b)
        diffs.append(f"joint order differs from index {i}: policy {policy_names[i]!r}, robot {robot_names[i]!r}")
    if policy_names != robot_names:
        return diffs  # per-joint comparisons are meaningless with another joint set or order
    pose = np.asarray(metadata.default_joint_pos_rad)
    close = np.abs(pose - spec.default_joint_pos_rad) <= spec.pose_tolerance_rad
    diffs += _per_joint_differences("default pose (rad)", robot_names, pose, spec.default_joint_pos_rad, close)
    if metadata.gain_profile not in spec.gain_profiles:
        diffs.append(
            f"gain profile {metadata.gain_profile!r} unknown to the robot; expected one of {sorted(spec.gain_profiles)}"
        )
        return diffs
    kp_robot, kd_robot = spec.gain_profiles[metadata.gain_profile]
    for what, got, expected in (
        (f"kp ({metadata.gain_profile}, Nm/rad)", np.asarray(metadata.kp_nm_per_rad), kp_robot),
        (f"kd ({metadata.gain_profile}, Nms/rad)", np.asarray(metadata.kd_nms_per_rad), kd_robot),
    ):
        close = np.isclose(got, expected, rtol=spec.gain_rtol, atol=1e-9)
        diffs += _per_joint_differences(what, robot_names, got, expected, close)
    return diffs


def check_policy_robot(
    metadata: PolicyMetadata, spec: RobotSpec, backend_joint_names: Sequence[str] | None = None
) -> None:
    """Raise :class:`PolicyRobotMismatchError` listing every difference (see :func:`policy_robot_differences`)."""
    diffs = policy_robot_differences(metadata, spec, backend_joint_names)
    if diffs:
        raise PolicyRobotMismatchError(diffs)


# ----- export and load -----------------------------------------------------------------------------------------
def build_mlp_policy(
    obs_dim: int, action_dim: int, hidden: Sequence[int] = (64, 64), seed: int = 0, zero_output: bool = False
) -> nn.Module:
    """A plain ELU MLP ``(B, obs_dim) -> (B, action_dim)`` (the shape of a PPO actor mean).

    ``zero_output`` zeroes the last layer: the policy then always asks for the default pose (tests, demos).
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    width = obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ELU()]
        width = h
    layers.append(nn.Linear(width, action_dim))
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(max(p.shape[-1], 1))))
        if zero_output:
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    return net


def checked_eval_copy(policy: nn.Module, metadata: PolicyMetadata) -> nn.Module:
    """An eval-mode copy of ``policy`` after checking its output on a zero observation (shape, finiteness)."""
    import torch

    frozen = policy if isinstance(policy, torch.jit.ScriptModule) else copy.deepcopy(policy)
    frozen.eval()
    with torch.no_grad():
        out = frozen(torch.zeros(1, metadata.obs_dim))
    if tuple(out.shape) != (1, metadata.num_joints):
        raise ValueError(
            f"policy output: expected shape (1, {metadata.num_joints}) for an input (1, {metadata.obs_dim}), "
            f"got {tuple(out.shape)}"
        )
    if not torch.isfinite(out).all():
        raise ValueError("policy output: non-finite action on a zero observation; refusing to export")
    return frozen


def export_policy(policy: nn.Module, metadata: PolicyMetadata, path: str | Path) -> tuple[Path, Path]:
    """Script ``policy`` (``(B, obs_dim) -> (B, J)``) to ``path`` (``.pt``) and write the ``.json`` beside it.

    The network is checked on a zero observation first (output shape and finiteness). Both writes are atomic.
    """
    import torch

    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"export path: expected a file name ending in .pt, got {path}")
    frozen = checked_eval_copy(policy, metadata)
    try:
        scripted = torch.jit.script(frozen)
    except Exception:  # modules with Python-only features still trace as a fixed graph
        scripted = torch.jit.trace(frozen, torch.zeros(1, metadata.obs_dim))
    text = metadata.to_json()
    meta_path = path.with_suffix(".json")
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files={EMBEDDED_METADATA: text}))
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(text))
    return path, meta_path


class ExportedPolicy:
    """A loaded policy: ``act(obs (obs_dim,)) -> action (J,)`` float64, clipped to ``+-action_clip``."""

    def __init__(self, module: torch.jit.ScriptModule, metadata: PolicyMetadata, path: Path | None = None) -> None:
        self.module = module
        self.metadata = metadata
        self.path = path
        self._clip = metadata.action_clip

    def warmup(self, calls: int = 5) -> None:
        """Run the network on zeros: TorchScript's profiling executor optimises the graph during the first calls,
        which take milliseconds; do that before the loop starts, not in its first ticks."""
        zeros = np.zeros(self.metadata.obs_dim, dtype=np.float32)
        for _ in range(calls):
            self.act(zeros)

    def reset(self) -> None:
        """Forget internal state when the loop leaves POLICY (a feed-forward network has none)."""

    def observe_state(self, state: RobotState, command: np.ndarray) -> None:
        """Called by the loop each tick before :meth:`act` with the raw robot state and the clipped command; a
        policy that needs more than the observation vector (a planner's body state) takes it from here."""

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network on a batch ``(B, O)`` float32 -> ``(B, J)`` (no clipping)."""
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(obs)).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One action; non-finite outputs are passed through (the safety state machine decides what to do)."""
        y = self.forward(np.ascontiguousarray(obs, dtype=np.float32)[None])  # (1, J)
        a = y[0].astype(np.float64)
        if a.shape != (self.metadata.num_joints,):
            raise RuntimeError(f"policy output: expected shape ({self.metadata.num_joints},), got {a.shape}")
        return np.clip(a, -self._clip, self._clip)  # NaN stays NaN through clip


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


def load_policy(path: str | Path) -> ExportedPolicy:
    """Load ``policy.pt`` (or ``policy.onnx``, through ONNX Runtime) and its ``.json``; refuses a missing file, a
    foreign format or a mismatched pair."""
    path = Path(path)
    if path.suffix == ".onnx":
        from deploy.onnx_io import load_onnx_policy

        return load_onnx_policy(path)  # an ONNX planner too (its metadata is embedded)
    meta_path = path.with_suffix(".json")
    # an exported planner (format "steer.planner"): loaded lazily, so a plain policy never imports policies/
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("format") == "steer.planner":
        from deploy.planner_policy import load_planner_policy

        return load_planner_policy(path)
    metadata, data = read_metadata_file(path)
    import torch

    extra = {EMBEDDED_METADATA: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    check_embedded_metadata(extra[EMBEDDED_METADATA], data, path)
    module.eval()
    return ExportedPolicy(module, metadata, path)
