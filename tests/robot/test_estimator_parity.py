"""The estimator's one-world fast path against the batched reference and against recorded outputs.

``data/estimator_walk.npz`` holds 1.6 s of the simulated G1 walking (the walking expert through the deploy loop,
the MEMS sensor model on, state jitter; 318 samples at 200 Hz with single and double support) as ``in_*``
(12 leg joints, IMU, timestamps) and, as ``out_*``, every field of :class:`BaseEstimate` that the batched
numpy implementation produced on it before the one-world path existed.
"""

import itertools
from pathlib import Path

import numpy as np
import pytest

from robot.estimation import BaseStateEstimator, ContactKalmanFilter
from robot.g1 import constants as C
from robot.g1.kinematics import LegKinematics
from robot.messages import RobotState

DATA = np.load(Path(__file__).parent / "data" / "estimator_walk.npz")
KIN = LegKinematics.from_links()
FIELDS = (
    "base_pos_m",
    "base_lin_vel_m_per_s",
    "base_lin_vel_heading_m_per_s",
    "yaw_rad",
    "height_m",
    "foot_contact",
    "pos_cov_m2",
    "vel_cov_m2_per_s2",
    "yaw_var_rad2",
    "height_var_m2",
    "accel_bias_m_per_s2",
    "gyro_bias_rad_per_s",
    "valid",
)


def recorded_states() -> list[RobotState]:
    """The recorded samples as full 29-joint states (the joints outside the legs at the default pose)."""
    states = []
    for i in range(len(DATA["in_t"])):
        q, dq = C.DEFAULT_JOINT_POS_RAD.copy(), np.zeros(C.NUM_JOINTS)
        q[KIN.joint_ids], dq[KIN.joint_ids] = DATA["in_q"][i], DATA["in_dq"][i]
        quat, gyro, accel = DATA["in_quat"][i].copy(), DATA["in_gyro"][i].copy(), DATA["in_accel"][i].copy()
        states.append(RobotState(q, dq, quat, gyro, accel, float(DATA["in_t"][i])))
    return states


def test_recorded_walk_covers_both_contact_phases():
    contact = DATA["out_foot_contact"]
    assert contact.all(axis=1).any() and (contact.sum(axis=1) == 1).any()


def test_estimator_reproduces_the_recorded_outputs():
    est = BaseStateEstimator()
    outputs = [est.update(s) for s in recorded_states()]
    for name in FIELDS:
        got = np.array([getattr(o, name) for o in outputs])
        np.testing.assert_allclose(got, DATA[f"out_{name}"], rtol=0.0, atol=1e-10, err_msg=name)


def test_one_world_path_equals_the_batched_reference():
    fast, ref = ContactKalmanFilter(1), ContactKalmanFilter(1, reference=True)
    states = recorded_states()
    for kf in (fast, ref):
        s = states[0]
        kf.initialize(np.ones(1, bool), s.imu_quat_wxyz[None], s.joint_pos_rad[None])
    for prev, s in itertools.pairwise(states):
        args = (s.imu_quat_wxyz, s.imu_gyro_rad_per_s, s.imu_accel_m_per_s2, s.joint_pos_rad, s.joint_vel_rad_per_s)
        dt = s.timestamp_s - prev.timestamp_s
        fast.step(np.array([dt]), *(a[None] for a in args))
        ref.step(np.array([dt]), *(a[None] for a in args))
        assert fast.stance.tolist() == ref.stance.tolist()
    for name in ("x", "p", "yaw_rad", "yaw_var", "gyro_bias", "gyro_bias_var", "rot", "omega"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=0.0, atol=1e-10, err_msg=name)


def test_step_one_needs_a_one_world_filter():
    with pytest.raises(ValueError, match="one-world"):
        ContactKalmanFilter(2).step_one(0.002, np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3), *np.zeros((2, 29)))


@pytest.mark.parametrize("width", [C.NUM_JOINTS, 12])
def test_sole_pos_vel_equals_the_general_forward_kinematics(width):
    rng = np.random.default_rng(3)
    for _ in range(20):
        q, dq = rng.normal(0.0, 0.6, width), rng.normal(0.0, 3.0, width)
        fk = KIN.feet(q)
        sole, vel = KIN.sole_pos_vel(q, dq)
        np.testing.assert_allclose(sole, fk.sole_pos_m, rtol=0.0, atol=1e-12)
        np.testing.assert_allclose(vel, KIN.sole_velocity(fk, dq), rtol=0.0, atol=1e-12)
    with pytest.raises(ValueError, match="one robot"):
        KIN.sole_pos_vel(np.zeros((2, 12)), np.zeros((2, 12)))
