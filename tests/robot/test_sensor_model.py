"""Sensor model of the simulated G1: noise and bias statistics, heading drift, jitter, hidden ground truth.

Statistical checks use fixed seeds; a std estimated from n independent samples has a relative standard error of
about 1 / sqrt(2 n), and the tolerances below are four of those.
"""

import math

import mujoco
import numpy as np
import pytest

from robot.g1 import constants as C
from robot.sensor_model import SensorModel, SensorModelConfig
from robot.sim import MujocoRobot, SimRobotConfig


@pytest.fixture(scope="module")
def shared_model() -> mujoco.MjModel:
    return MujocoRobot(SimRobotConfig(threaded=False)).model


def rel_tol(n: int) -> float:
    return 4.0 / math.sqrt(2.0 * n)


def test_config_validates_and_preset_is_in_the_mems_class():
    with pytest.raises(ValueError, match="gyro_noise_rad_per_s: expected a finite value >= 0, got -1"):
        SensorModelConfig(gyro_noise_rad_per_s=-1.0)
    assert SensorModelConfig().ideal and not SensorModelConfig.g1_mems().ideal
    mems = SensorModelConfig.g1_mems()
    assert 1e-3 < mems.gyro_noise_rad_per_s < 1e-2 and 0.01 < mems.accel_noise_m_per_s2 < 0.05


def test_bias_random_walk_grows_as_sqrt_time():
    cfg = SensorModelConfig(
        gyro_bias_init_rad_per_s=0.01, gyro_bias_walk_rad_per_s_sqrt_s=0.02, accel_bias_walk_m_per_s2_sqrt_s=0.05
    )
    worlds, steps, dt = 500, 100, 0.04  # 4 s
    start, end, accel = [], [], []
    for seed in range(worlds):
        model = SensorModel(cfg, np.random.default_rng(seed))
        start.append(model.gyro_bias_rad_per_s.copy())
        for _ in range(steps):
            model.advance(dt)
        end.append(model.gyro_bias_rad_per_s.copy())
        accel.append(model.accel_bias_m_per_s2.copy())
    n = 3 * worlds
    assert np.std(start) == pytest.approx(0.01, rel=rel_tol(n))
    assert np.std(np.subtract(end, start)) == pytest.approx(0.02 * math.sqrt(steps * dt), rel=rel_tol(n))
    assert np.std(accel) == pytest.approx(0.05 * math.sqrt(steps * dt), rel=rel_tol(n))


def test_imu_noise_bias_and_heading_drift_in_the_simulated_robot(shared_model):
    sensors = SensorModelConfig(
        gyro_noise_rad_per_s=0.01,
        accel_noise_m_per_s2=0.03,
        gyro_bias_init_rad_per_s=0.02,
        heading_drift_rad_per_s=0.05,
        joint_pos_noise_rad=0.002,
    )
    robot = MujocoRobot(SimRobotConfig(threaded=False, sensors=sensors, seed=2), model=shared_model)
    gyro_err, accel_err, q_err = [], [], []
    for _ in range(300):
        state = robot.step(1)
        truth = robot.ground_truth()
        gyro_err.append(
            state.imu_gyro_rad_per_s - robot.data.sensor(C.SENSOR_IMU_GYRO).data - truth.gyro_bias_rad_per_s
        )
        accel_err.append(state.imu_accel_m_per_s2 - robot.data.sensor(C.SENSOR_IMU_ACCEL).data)
        q_err.append(state.joint_pos_rad - robot.data.qpos[robot._qadr])
    assert np.std(gyro_err) == pytest.approx(0.01, rel=rel_tol(900))
    assert np.std(accel_err) == pytest.approx(0.03, rel=rel_tol(900))
    assert np.std(q_err) == pytest.approx(0.002, rel=rel_tol(300 * 29))
    assert np.all(truth.gyro_bias_rad_per_s != 0.0)
    # heading drift: the reported yaw leaves the true one at a constant rate
    rate = robot._sensor_model.heading_drift_rad_per_s
    w, x, y, z = state.imu_quat_wxyz
    tw, tx, ty, tz = truth.base_quat_wxyz
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    true_yaw = math.atan2(2 * (tw * tz + tx * ty), 1 - 2 * (ty * ty + tz * tz))
    assert yaw - true_yaw == pytest.approx(rate * state.timestamp_s, rel=1e-6)


def test_oracle_off_hides_base_state_but_ground_truth_stays(shared_model):
    robot = MujocoRobot(SimRobotConfig(threaded=False, oracle=False), model=shared_model)
    state = robot.step(10)
    assert state.base_pos_m.size == 0 and state.base_lin_vel_m_per_s.size == 0
    truth = robot.ground_truth()
    np.testing.assert_array_equal(truth.base_pos_m, robot.data.qpos[:3])
    assert truth.timestamp_s == state.timestamp_s and truth.foot_contact.tolist() == [True, True]
    default = MujocoRobot(SimRobotConfig(threaded=False), model=shared_model).step(10)
    np.testing.assert_array_equal(default.base_pos_m, truth.base_pos_m)  # oracle on by default (for now)


def test_state_jitter_delivers_late_samples_in_order(shared_model):
    robot = MujocoRobot(SimRobotConfig(threaded=False, state_jitter_steps=3, seed=5), model=shared_model)
    dt = shared_model.opt.timestep
    stamps, lags = [], []
    for _ in range(400):
        state = robot.step(1)
        stamps.append(state.timestamp_s)
        lags.append(round((robot.data.time - state.timestamp_s) / dt))
        assert robot.ground_truth().timestamp_s == state.timestamp_s
    assert np.all(np.diff(stamps) >= 0.0) and np.any(np.diff(stamps) == 0.0)  # repeats, never backwards
    assert min(lags) == 0 and max(lags) == 3
