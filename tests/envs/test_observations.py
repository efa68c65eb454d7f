"""Observation functions: frames, layout, and identical results for a RobotState and for batches."""

import numpy as np
import pytest

from envs.g1.observations import (
    ObservationConfig,
    joint_targets_from_action,
    observation_dim,
    observation_from_state,
    observation_names,
    policy_observation,
    projected_gravity,
    quat_rotate,
    quat_rotate_inverse,
    root_planar_state,
    yaw_from_quat,
)
from robot.g1 import constants as C
from robot.messages import RobotState


def axis_angle_quat(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def test_projected_gravity_and_rotations():
    np.testing.assert_allclose(projected_gravity(np.array([1.0, 0, 0, 0])), [0, 0, -1])
    # Rolled +90 deg about x: gravity appears along -y of the body... rotate world -z into body frame.
    q = axis_angle_quat([1, 0, 0], np.pi / 2)
    np.testing.assert_allclose(projected_gravity(q), [0, -1, 0], atol=1e-12)
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(10, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    v = rng.normal(size=(10, 3))
    np.testing.assert_allclose(quat_rotate_inverse(quats, quat_rotate(quats, v)), v, atol=1e-12)
    assert yaw_from_quat(axis_angle_quat([0, 0, 1], 0.7)) == pytest.approx(0.7)


def test_policy_observation_layout():
    n = C.NUM_JOINTS
    cfg = ObservationConfig(ang_vel_scale=0.5, joint_vel_scale=0.1)
    q = C.DEFAULT_JOINT_POS_RAD + 0.01
    dq = np.arange(n, dtype=float)
    gyro = np.array([1.0, 2.0, 3.0])
    command = np.array([0.5, -0.2, 0.3])
    last = np.linspace(-1, 1, n)
    obs = policy_observation(q, dq, np.array([1.0, 0, 0, 0]), gyro, command, last, C.DEFAULT_JOINT_POS_RAD, cfg)
    assert obs.shape == (observation_dim(n),) == (96,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[0:3], gyro * 0.5)
    np.testing.assert_allclose(obs[3:6], [0, 0, -1])
    np.testing.assert_allclose(obs[6:9], command, rtol=1e-6)
    np.testing.assert_allclose(obs[9 : 9 + n], 0.01, rtol=1e-4)
    np.testing.assert_allclose(obs[9 + n : 9 + 2 * n], dq * 0.1, rtol=1e-6)
    np.testing.assert_allclose(obs[9 + 2 * n :], last, rtol=1e-6)
    assert len(observation_names(C.JOINT_NAMES)) == 96
    with pytest.raises(ValueError, match="command"):
        policy_observation(q, dq, np.array([1.0, 0, 0, 0]), gyro, command[:2], last, C.DEFAULT_JOINT_POS_RAD, cfg)


def test_state_entry_point_matches_batched_function():
    rng = np.random.default_rng(1)
    cfg = ObservationConfig()
    states = [
        RobotState(
            rng.normal(size=29),
            rng.normal(size=29),
            axis_angle_quat(rng.normal(size=3), 0.3),
            rng.normal(size=3),
            rng.normal(size=3),
            0.0,
        )
        for _ in range(4)
    ]
    commands, actions = rng.normal(size=(4, 3)), rng.normal(size=(4, 29))
    single = np.stack(
        [
            observation_from_state(s, c, a, C.DEFAULT_JOINT_POS_RAD, cfg)
            for s, c, a in zip(states, commands, actions, strict=True)
        ]
    )
    batched = policy_observation(
        np.stack([s.joint_pos_rad for s in states]),
        np.stack([s.joint_vel_rad_per_s for s in states]),
        np.stack([s.imu_quat_wxyz for s in states]),
        np.stack([s.imu_gyro_rad_per_s for s in states]),
        commands,
        actions,
        C.DEFAULT_JOINT_POS_RAD,
        cfg,
    )
    np.testing.assert_array_equal(single, batched)


def test_action_mapping_and_planar_state():
    a = np.ones(29)
    np.testing.assert_allclose(
        joint_targets_from_action(a, C.DEFAULT_JOINT_POS_RAD, C.ACTION_SCALE_RAD),
        C.DEFAULT_JOINT_POS_RAD + C.ACTION_SCALE_RAD,
    )
    planar = root_planar_state(
        np.array([1.0, 2.0, 0.7]), axis_angle_quat([0, 0, 1], 0.4), np.array([0.3, -0.1, 0.0]), np.array(0.2)
    )
    np.testing.assert_allclose(planar, [1.0, 2.0, 0.4, 0.3, -0.1, 0.2])
