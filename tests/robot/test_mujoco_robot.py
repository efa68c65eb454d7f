"""MuJoCo backend: state, commands, latency, noise, threads, and every safety case ending in damping."""

import time

import mujoco
import numpy as np
import pytest

from robot.g1 import constants as C
from robot.interface import RobotCommand, RobotState
from robot.safety import SafetyConfig
from robot.sim import MujocoRobot, SimRobotConfig


@pytest.fixture(scope="module")
def shared_model() -> mujoco.MjModel:
    return MujocoRobot(SimRobotConfig(threaded=False)).model


def manual_robot(model: mujoco.MjModel, **kwargs) -> MujocoRobot:
    return MujocoRobot(SimRobotConfig(threaded=False, **kwargs), model=model)


def stand_command(q: np.ndarray = C.DEFAULT_JOINT_POS_RAD) -> RobotCommand:
    return RobotCommand.position(q, C.STAND_KP_NM_PER_RAD, C.STAND_KD_NMS_PER_RAD)


def assert_finite_state(state: RobotState) -> None:
    for arr in (state.joint_pos_rad, state.joint_vel_rad_per_s, state.imu_quat_wxyz, state.imu_gyro_rad_per_s):
        assert np.all(np.isfinite(arr))
    assert np.all(np.isfinite(state.imu_accel_m_per_s2)) and np.isfinite(state.timestamp_s)


def test_state_fields_while_standing(shared_model):
    robot = manual_robot(shared_model)
    with robot:
        state = robot.step(200)
    assert state.timestamp_s == pytest.approx(1.0)
    assert state.joint_pos_rad.shape == (29,) and state.joint_vel_rad_per_s.shape == (29,)
    np.testing.assert_allclose(state.joint_pos_rad, C.DEFAULT_JOINT_POS_RAD, atol=0.1)
    assert np.linalg.norm(state.imu_quat_wxyz) == pytest.approx(1.0)
    assert abs(state.imu_quat_wxyz[0]) > 0.99
    assert state.imu_accel_m_per_s2[2] == pytest.approx(9.81, abs=0.3)
    assert np.linalg.norm(state.imu_gyro_rad_per_s) < 0.1
    assert not state.damping
    assert robot.safety.damping and robot.safety.fault_reason == "closed"  # close() leaves damping


def test_command_above_limits_never_reaches_physics(shared_model):
    robot = manual_robot(shared_model, safety=SafetyConfig(max_delta_q_per_tick_rad=0.05))
    robot.connect()
    rng = np.random.default_rng(0)
    prev_q = robot.read_state().joint_pos_rad
    for _ in range(50):
        cmd = RobotCommand(
            rng.uniform(-20.0, 20.0, 29),
            rng.uniform(-500.0, 500.0, 29),
            rng.uniform(0.0, 5e3, 29),
            rng.uniform(0.0, 500.0, 29),
            rng.uniform(-1e3, 1e3, 29),
        )
        robot.send_command(cmd)
        applied = robot.applied_command
        assert np.all(applied.q_target_rad >= C.JOINT_LOWER_RAD) and np.all(applied.q_target_rad <= C.JOINT_UPPER_RAD)
        assert np.all(np.abs(applied.tau_ff_nm) <= C.EFFORT_LIMIT_NM)
        assert np.all(applied.kp_nm_per_rad <= robot.cfg.safety.max_kp_nm_per_rad)
        assert np.all(np.abs(applied.q_target_rad - prev_q) <= 0.05 + 1e-9) or prev_q is None
        prev_q = applied.q_target_rad
        for _ in range(4):
            robot.step(1)
            assert np.all(np.abs(robot.data.actuator_force) <= C.EFFORT_LIMIT_NM + 1e-9)
            assert np.all(np.isfinite(robot.data.qpos))
    assert robot.safety.num_clamped_commands == 50


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_command_ends_in_damping_without_nan(shared_model, bad):
    robot = manual_robot(shared_model)
    robot.connect()
    robot.send_command(stand_command())
    robot.step(20)
    cmd = stand_command()
    cmd.tau_ff_nm[3] = bad
    robot.send_command(cmd)
    for _ in range(300):
        state = robot.step(1)
        assert_finite_state(state)
        assert np.all(np.isfinite(robot.data.ctrl)) and np.all(np.isfinite(robot.data.qacc))
    assert state.damping and robot.safety.damping
    assert np.all(robot.applied_command.kp_nm_per_rad == 0.0)
    np.testing.assert_allclose(-robot.model.actuator_biasprm[:, 2], C.DAMPING_KD_NMS_PER_RAD)
    # Damping means no stiffness: torques are pure damping, -kd dq, whatever the position.
    mujoco.mj_forward(robot.model, robot.data)
    dq = robot.data.qvel[robot._vadr]
    np.testing.assert_allclose(robot.data.actuator_force, np.clip(-8.0 * dq, -C.EFFORT_LIMIT_NM, C.EFFORT_LIMIT_NM))
    robot.send_command(stand_command())  # latched until an explicit reset
    assert robot.safety.damping


def test_watchdog_trips_when_commands_stop(shared_model):
    robot = manual_robot(shared_model, safety=SafetyConfig(watchdog_timeout_s=0.05))
    robot.connect()
    for _ in range(25):  # 0.5 s at 50 Hz
        robot.send_command(stand_command())
        robot.step(4)
    assert not robot.safety.damping
    state = robot.step(5)  # 45 ms since the last command (20 ms already stepped in the loop)
    assert not state.damping
    state = robot.step(4)  # 65 ms
    assert state.damping and "watchdog" in robot.safety.fault_reason
    for _ in range(400):
        assert_finite_state(robot.step(1))
    assert np.all(robot.applied_command.kp_nm_per_rad == 0.0)


def test_command_latency_delays_application(shared_model):
    robot = manual_robot(shared_model, command_latency_s=0.02)
    robot.connect()
    target = C.DEFAULT_JOINT_POS_RAD.copy()
    target[18] += 0.2  # left elbow
    robot.send_command(stand_command(target))
    assert robot.applied_command.q_target_rad[18] == pytest.approx(C.DEFAULT_JOINT_POS_RAD[18])
    robot.step(3)  # 15 ms
    assert robot.applied_command.q_target_rad[18] == pytest.approx(C.DEFAULT_JOINT_POS_RAD[18])
    robot.step(2)
    assert robot.applied_command.q_target_rad[18] == pytest.approx(target[18])


def test_sensor_noise_has_configured_std(shared_model):
    robot = manual_robot(shared_model, joint_pos_noise_rad=0.01, gyro_noise_rad_per_s=0.05, seed=3)
    robot.connect()
    errors, gyros = [], []
    for _ in range(200):
        state = robot.step(1)
        errors.append(state.joint_pos_rad - robot.data.qpos[robot._qadr])
        gyros.append(state.imu_gyro_rad_per_s - robot.data.sensor(C.SENSOR_IMU_GYRO).data)
    errors = np.asarray(errors)
    # 5800 samples: the std estimate is within ~3 % (1 sigma ~ 1 %).
    assert np.std(errors) == pytest.approx(0.01, rel=0.05)
    assert np.std(gyros) == pytest.approx(0.05, rel=0.15)


def test_threaded_realtime_robot_tracks_wall_clock_and_watchdog():
    cfg = SimRobotConfig(threaded=True, realtime=True, safety=SafetyConfig(watchdog_timeout_s=0.1))
    with MujocoRobot(cfg) as robot:
        t0 = time.perf_counter()
        s0 = robot.read_state().timestamp_s
        for _ in range(15):
            robot.send_command(stand_command())
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        sim_elapsed = robot.read_state().timestamp_s - s0
        assert sim_elapsed == pytest.approx(elapsed, rel=0.25)
        assert not robot.read_state().damping
        with pytest.raises(RuntimeError, match="manual-mode"):
            robot.step(1)
        time.sleep(0.3)  # commands stop
        state = robot.read_state()
        assert state.damping and "watchdog" in robot.safety.fault_reason
        assert_finite_state(state)
    assert not robot.is_connected


def test_threaded_fast_mode_runs_faster_than_real_time():
    with MujocoRobot(SimRobotConfig(threaded=True, realtime=False)) as robot:
        time.sleep(0.3)
        assert robot.read_state().timestamp_s > 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="initial_mode"):
        SimRobotConfig(initial_mode="walk")
    with pytest.raises(ValueError, match="command_latency_s"):
        SimRobotConfig(command_latency_s=-1.0)
