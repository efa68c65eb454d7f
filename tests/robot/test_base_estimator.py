"""Contact-aided base state estimator: exactness on kinematic data, convergence, bias tracking, input faults."""

import math

import numpy as np
import pytest

from robot.estimation import BaseStateEstimator, ContactKalmanFilter, EstimatorConfig, FilterConfig
from robot.g1 import constants as C
from robot.g1.kinematics import LegKinematics
from robot.messages import RobotState

KIN = LegKinematics.from_links()
DT = 0.002
YAW = 0.3
QUAT = np.array([math.cos(YAW / 2), 0.0, 0.0, math.sin(YAW / 2)])
ROT = np.array([[math.cos(YAW), -math.sin(YAW), 0.0], [math.sin(YAW), math.cos(YAW), 0.0], [0.0, 0.0, 1.0]])
FOOT_WORLD = np.array([0.4, -0.2, 0.0])
AMP = np.array([0.15, 0.05, 0.05, 0.2, 0.1, 0.03])  # left leg, pelvis down


def joints(t: float) -> tuple[np.ndarray, np.ndarray]:
    """A moving left leg (its sole fixed in the world) and a lifted right leg."""
    q, dq = C.DEFAULT_JOINT_POS_RAD.copy(), np.zeros(C.NUM_JOINTS)
    q[0:6] += AMP * np.sin(2.0 * t + np.arange(6))
    dq[0:6] = 2.0 * AMP * np.cos(2.0 * t + np.arange(6))
    q[6], q[9] = -0.9, 1.6  # right hip pitch, knee: the right sole well above the left
    return q, dq


def pelvis(t: float) -> np.ndarray:
    q, _ = joints(t)
    return FOOT_WORLD - ROT @ KIN.feet(q).sole_pos_m[0]


def kinematic_sample(t: float) -> tuple[RobotState, np.ndarray, np.ndarray]:
    """The robot's readings with the base moved by the stance leg, and the true pelvis position and velocity."""
    q, dq = joints(t)
    h = 1e-4  # the specific force from the exact pelvis path (central second difference, error ~1e-8 m/s^2)
    acc_world = (pelvis(t + h) - 2.0 * pelvis(t) + pelvis(t - h)) / h**2
    imu_accel = ROT.T @ (acc_world + np.array([0.0, 0.0, 9.81]))
    vel = -ROT @ KIN.sole_velocity(KIN.feet(q), dq)[0]
    state = RobotState(q, dq, QUAT.copy(), np.zeros(3), imu_accel, t)
    return state, pelvis(t), vel


def run(est: BaseStateEstimator, seconds: float, t0: float = 0.0):
    for k in range(round(seconds / DT) + 1):
        state, pos, vel = kinematic_sample(t0 + k * DT)
        out = est.update(state)
    return out, pos, vel


def test_exact_on_noiseless_kinematic_data():
    tight = FilterConfig(kinematic_vel_noise_m_per_s=1e-7, kinematic_pos_noise_m=1e-7, init_vel_std_m_per_s=1.0)
    est = BaseStateEstimator(EstimatorConfig(filter=tight, frozen_imu_samples=10**6))
    _, pos0, vel0 = kinematic_sample(0.0)
    est.reset(base_xy_m=tuple(pos0[:2]), lin_vel_m_per_s=vel0)
    out, pos, vel = run(est, 1.0)
    assert out.valid and out.foot_contact.tolist() == [True, False]
    np.testing.assert_allclose(out.base_lin_vel_m_per_s, vel, atol=1e-6)
    np.testing.assert_allclose(out.base_pos_m, pos, atol=1e-6)
    assert out.height_m == pytest.approx(pos[2], abs=1e-6) and out.yaw_rad == pytest.approx(YAW, abs=1e-9)
    c, s = math.cos(YAW), math.sin(YAW)
    heading = np.array([c * vel[0] + s * vel[1], -s * vel[0] + c * vel[1], vel[2]])
    np.testing.assert_allclose(out.base_lin_vel_heading_m_per_s, heading, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(out.vel_cov_m2_per_s2) > 0.0) and out.height_var_m2 > 0.0


def test_converges_from_a_wrong_initial_velocity():
    est = BaseStateEstimator(EstimatorConfig(frozen_imu_samples=10**6))
    state, pos0, vel0 = kinematic_sample(0.0)
    est.reset(base_xy_m=tuple(pos0[:2]), lin_vel_m_per_s=vel0 + np.array([0.8, -0.5, 0.3]))
    first = est.update(state)
    assert np.linalg.norm(first.base_lin_vel_m_per_s - vel0) > 0.5
    out, _, vel = run(est, 0.3, t0=DT)
    assert np.linalg.norm(out.base_lin_vel_m_per_s - vel) < 0.02


def test_accelerometer_and_gyro_biases_are_tracked():
    rng = np.random.default_rng(0)
    accel_bias, gyro_bias = np.array([0.3, -0.2, 0.25]), np.array([0.01, -0.02, 0.015])
    est = BaseStateEstimator()
    q = C.DEFAULT_JOINT_POS_RAD
    # 10 s standing still, with a little sensor noise so that the IMU is not frozen; the bias std after T seconds
    # is about accel_noise_m_per_s2_sqrt_s / sqrt(T) = 0.016 m/s^2, the tolerance three of those
    for k in range(5000):
        gyro = gyro_bias + rng.normal(0.0, 1e-3, 3)
        accel = ROT.T @ np.array([0.0, 0.0, 9.81]) + accel_bias + rng.normal(0.0, 0.02, 3)
        out = est.update(RobotState(q, np.zeros(C.NUM_JOINTS), QUAT, gyro, accel, k * DT))
    assert out.valid
    np.testing.assert_allclose(out.accel_bias_m_per_s2, accel_bias, atol=0.05)
    # 50 windows of 0.2 s against the reported orientation (assumed 2 mrad noise): posterior std 2e-3 rad/s
    np.testing.assert_allclose(out.gyro_bias_rad_per_s, gyro_bias, atol=3e-3)
    assert np.all(np.abs(out.gyro_bias_rad_per_s - gyro_bias) < 0.15 * np.abs(gyro_bias))
    assert abs(out.yaw_rad - YAW) < 0.25 * gyro_bias[2] * 10.0  # a fraction of the uncorrected heading drift
    assert np.linalg.norm(out.base_lin_vel_m_per_s) < 0.01


def standing(t: float, **changes) -> RobotState:
    state = RobotState(
        C.DEFAULT_JOINT_POS_RAD.copy(),
        np.zeros(C.NUM_JOINTS),
        QUAT.copy(),
        np.array([0.0, 0.0, 1e-3 * t]),
        np.array([0.0, 0.0, 9.81 + 1e-3 * math.sin(1e3 * t)]),
        t,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"imu_gyro_rad_per_s": np.array([0.0, math.nan, 0.0])}, "non-finite imu_gyro_rad_per_s"),
        ({"joint_pos_rad": np.where(np.arange(29) == 3, 3.5, C.DEFAULT_JOINT_POS_RAD)}, "joint left_knee_joint"),
        ({"imu_quat_wxyz": np.array([2.0, 0.0, 0.0, 0.0])}, "expected unit norm"),
        ({"timestamp_s": 0.0}, "timestamp went backwards"),
    ],
)
def test_bad_inputs_mark_the_estimate_invalid_and_leave_the_filter_intact(change, reason):
    est = BaseStateEstimator()
    for k in range(20):
        good = est.update(standing(k * DT))
    bad = est.update(standing(20 * DT, **change))
    assert not bad.valid and reason in bad.reason
    np.testing.assert_array_equal(bad.base_pos_m, good.base_pos_m)
    after = est.update(standing(21 * DT))
    assert after.valid and np.all(np.isfinite(after.base_lin_vel_m_per_s))


def test_frozen_imu_and_state_gap_are_faults_and_repeats_are_not():
    est = BaseStateEstimator(EstimatorConfig(frozen_imu_samples=30))
    for k in range(10):
        assert est.update(standing(k * DT)).valid
    assert est.update(standing(9 * DT)).valid  # the same sample again (jitter): not new, not a fault
    frozen = standing(0.0)
    for k in range(10, 40):
        out = est.update(
            standing(k * DT, imu_gyro_rad_per_s=frozen.imu_gyro_rad_per_s, imu_accel_m_per_s2=frozen.imu_accel_m_per_s2)
        )
    assert not out.valid and "frozen IMU" in out.reason
    assert est.update(standing(40 * DT)).valid
    gap = est.update(standing(40 * DT + 0.2))
    assert not gap.valid and "state gap" in gap.reason


def test_batched_filter_matches_single_worlds():
    kf = ContactKalmanFilter(3)
    q = np.stack([joints(0.1 * i)[0] for i in range(3)])
    quat = np.tile(QUAT, (3, 1))
    kf.initialize(np.ones(3, bool), quat, q)
    singles = [ContactKalmanFilter(1) for _ in range(3)]
    for i, s in enumerate(singles):
        s.initialize(np.ones(1, bool), quat[i : i + 1], q[i : i + 1])
    rng = np.random.default_rng(1)
    for _ in range(20):
        gyro, accel = rng.normal(0, 0.1, (3, 3)), rng.normal([0, 0, 9.81], 0.3, (3, 3))
        dq = rng.normal(0, 0.5, (3, 29))
        kf.step(np.full(3, DT), quat, gyro, accel, q, dq)
        for i, s in enumerate(singles):
            s.step(np.full(1, DT), quat[i : i + 1], gyro[i : i + 1], accel[i : i + 1], q[i : i + 1], dq[i : i + 1])
    for i, s in enumerate(singles):
        np.testing.assert_allclose(kf.x[i], s.x[0], atol=1e-12)
        np.testing.assert_allclose(kf.p[i], s.p[0], atol=1e-12)
