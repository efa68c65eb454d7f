"""Does an exported policy fit the robot it is about to drive? The robot's side of that check.

A :class:`RobotSpec` says what a robot offers: its joint order, default pose and the gain sets it is validated
to run. :func:`policy_robot_differences` compares a policy's promises (any object with the fields of
:class:`PolicyRobotFacts`, such as the deploy metadata of an exported policy) with it and lists every
difference; :func:`check_policy_robot` raises :class:`PolicyRobotMismatchError` with all of them. A policy
trained with another joint order or other gains must never reach the motors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robot.cli import UserError
from robot.g1 import constants as C
from robot.g1.gains import GAIN_PROFILES
from robot.joint_order import joint_list_differences


class PolicyRobotMismatchError(UserError, RuntimeError):
    """The exported policy does not fit the robot it was about to drive; ``differences`` lists why."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        lines = "\n".join(f"  - {d}" for d in differences)
        super().__init__(f"refusing to run: policy metadata does not match the robot ({len(differences)}):\n{lines}")


class PolicyRobotFacts(Protocol):
    """What a policy promises the robot (the fields the check reads; the deploy metadata has them all)."""

    @property
    def robot(self) -> str:
        """Robot model the policy was trained for."""
        ...

    @property
    def joint_names(self) -> Sequence[str]:
        """Joint order of the policy's actions."""
        ...

    @property
    def default_joint_pos_rad(self) -> Sequence[float]:
        """(J,) default pose the actions are offsets from."""
        ...

    @property
    def gain_profile(self) -> str:
        """Name of the robot's gain set the gains come from."""
        ...

    @property
    def kp_nm_per_rad(self) -> Sequence[float]:
        """(J,) position gains the policy was trained with."""
        ...

    @property
    def kd_nms_per_rad(self) -> Sequence[float]:
        """(J,) velocity gains the policy was trained with."""
        ...


@dataclass
class RobotSpec:
    """What a policy is checked against: the robot's joints, pose and the gain sets it is validated to run."""

    name: str
    """Robot model name (compared with the policy's ``robot``)."""
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
        """The Unitree G1 29-DoF from :mod:`robot.g1.constants` with the gain sets of :mod:`robot.g1.gains`."""
        return cls("unitree_g1_29dof", C.JOINT_NAMES, np.asarray(C.DEFAULT_JOINT_POS_RAD), dict(GAIN_PROFILES))

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
    metadata: PolicyRobotFacts, spec: RobotSpec, backend_joint_names: Sequence[str] | None = None
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
    joints = joint_list_differences(policy_names, robot_names)
    if joints.missing:
        diffs.append(f"joints of the robot missing from the policy: {joints.missing}")
    if joints.extra:
        diffs.append(f"joints of the policy unknown to the robot: {joints.extra}")
    if (i := joints.first_out_of_order) is not None:
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
    metadata: PolicyRobotFacts, spec: RobotSpec, backend_joint_names: Sequence[str] | None = None
) -> None:
    """Raise :class:`PolicyRobotMismatchError` listing every difference (see :func:`policy_robot_differences`)."""
    diffs = policy_robot_differences(metadata, spec, backend_joint_names)
    if diffs:
        raise PolicyRobotMismatchError(diffs)
