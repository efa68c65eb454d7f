"""The robot's side of the policy check: the G1's gain sets and the comparison, on any object with a policy's
fields (no deploy import)."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from robot.compat import PolicyRobotMismatchError, RobotSpec, check_policy_robot, policy_robot_differences
from robot.g1 import constants as C
from robot.g1.gains import GAIN_PROFILES


@dataclass
class Facts:
    robot: str = "unitree_g1_29dof"
    joint_names: list[str] = field(default_factory=lambda: list(C.JOINT_NAMES))
    default_joint_pos_rad: list[float] = field(default_factory=lambda: C.DEFAULT_JOINT_POS_RAD.tolist())
    gain_profile: str = "stand"
    kp_nm_per_rad: list[float] = field(default_factory=lambda: C.STAND_KP_NM_PER_RAD.tolist())
    kd_nms_per_rad: list[float] = field(default_factory=lambda: C.STAND_KD_NMS_PER_RAD.tolist())


def test_g1_spec_offers_the_constants_gain_sets():
    spec = RobotSpec.g1()
    assert spec.joint_names == C.JOINT_NAMES and sorted(spec.gain_profiles) == ["policy", "stand"]
    np.testing.assert_array_equal(spec.gain_profile("policy")[0], C.KP_NM_PER_RAD)
    np.testing.assert_array_equal(spec.gain_profile("stand")[1], C.STAND_KD_NMS_PER_RAD)
    spec.gain_profiles.pop("stand")
    assert "stand" in GAIN_PROFILES and "stand" in RobotSpec.g1().gain_profiles  # each spec owns its table
    with pytest.raises(KeyError, match=r"expected one of \['policy'\]"):
        spec.gain_profile("stand")


def test_check_reads_any_object_with_the_policy_fields():
    spec = RobotSpec.g1()
    assert policy_robot_differences(Facts(), spec, C.JOINT_NAMES) == []
    kd = (C.STAND_KD_NMS_PER_RAD * 2.0).tolist()
    with pytest.raises(PolicyRobotMismatchError, match=r"kd \(stand, Nms/rad\) differs on 29 joint\(s\)"):
        check_policy_robot(Facts(kd_nms_per_rad=kd), spec)


def test_spec_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"expected shape \(2,\)"):
        RobotSpec("r", ("a", "b"), np.zeros(3), {})
    with pytest.raises(ValueError, match="gain profile 'x'"):
        RobotSpec("r", ("a", "b"), np.zeros(2), {"x": (np.zeros(2), np.zeros(3))})
