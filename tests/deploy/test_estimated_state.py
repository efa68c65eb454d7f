"""The deploy loop on an estimated base state: the simulated G1 publishes only what a real one does, the attached
estimator fills the base position and velocity at the state rate, a fault in its inputs damps the loop, and the
committed planner walks from the estimate."""

from pathlib import Path

import numpy as np
import pytest

from deploy.policies.loader import load_policy
from deploy.run import RunConfig
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop, ScriptEvent
from envs.g1.env import G1EnvConfig
from robot.estimation import BaseStateEstimator
from robot.g1.model import build_g1_model
from robot.sensor_model import SensorModelConfig
from tests.deploy.helpers import STAND_THEN_WALK, export_hold_policy, is_damping, make_loop, manual_robot, run_manual

PLANNER = Path("assets/g1_planner/planner.pt")


@pytest.fixture(scope="module")
def model():
    return build_g1_model()


def estimating_robot(model, seed: int = 3):
    """A manually stepped G1 with the MEMS sensor model, 2-step state jitter and no published ground truth."""
    robot = manual_robot(model, sensors=SensorModelConfig.g1_mems(), oracle=False, state_jitter_steps=2, seed=seed)
    robot.attach_estimator(BaseStateEstimator())
    return robot


def test_published_base_state_is_the_estimate_and_tracks_the_truth(model, tmp_path):
    robot = estimating_robot(model)
    loop = make_loop(robot, export_hold_policy(tmp_path))
    try:
        modes = run_manual(loop, robot, 3.5)
    finally:
        robot.close()
    assert modes[-1] is Mode.POLICY
    state, truth = robot.read_state(), robot.ground_truth()
    assert state.estimator_fault == "" and robot.last_estimate is not None and robot.last_estimate.valid
    np.testing.assert_array_equal(state.base_pos_m, robot.last_estimate.base_pos_m)  # the estimate, not the truth
    assert not np.array_equal(state.base_pos_m, truth.base_pos_m)
    # standing still for 3.5 s: a few cm of drift at most (the estimator benchmark: ~1 % of distance walked)
    assert np.linalg.norm(state.base_pos_m[:2] - truth.base_pos_m[:2]) < 0.05
    assert abs(state.base_pos_m[2] - truth.base_pos_m[2]) < 0.03
    assert np.linalg.norm(state.base_lin_vel_m_per_s - truth.base_lin_vel_m_per_s) < 0.1


def test_a_frozen_imu_makes_the_estimator_invalid_and_the_loop_damp(model, tmp_path):
    robot = estimating_robot(model)
    loop = make_loop(robot, export_hold_policy(tmp_path))
    frozen: dict[str, tuple] = {}
    imu = robot._sensor_model.imu

    def freeze_after_3_s(quat, gyro, accel):
        reading = imu(quat, gyro, accel)
        if robot.data.time < 3.0:
            return reading
        frozen.setdefault("reading", tuple(a.copy() for a in reading))  # the IMU stops updating at 3 s
        return tuple(a.copy() for a in frozen["reading"])

    robot._sensor_model.imu = freeze_after_3_s
    freeze_tick: list[int] = []

    def note_first_frozen_tick(k: int, t: float) -> None:
        if "reading" in frozen and not freeze_tick:
            freeze_tick.append(k)

    try:
        modes = run_manual(loop, robot, 4.0, before_tick=note_first_frozen_tick)
    finally:
        robot.close()
    assert Mode.POLICY in modes and modes[-1] is Mode.DAMPING
    last = loop.fsm.transitions[-1]
    assert last.target is Mode.DAMPING and "state estimator invalid" in last.reason and "IMU" in last.reason, last
    # the filter flags a frozen IMU after 50 identical new samples: 0.25 s at 200 Hz, longer here because 2-step
    # jitter delivers only part of the samples as new (measured: 0.40 s); 0.5 s is 100 Hz of new samples
    ticks_to_damp = modes.index(Mode.DAMPING) - freeze_tick[0]
    assert 0.25 <= ticks_to_damp * loop.period_s <= 0.5 + loop.period_s
    assert robot.safety.damping and is_damping(robot.delivered[-1][1])


def test_walk_is_refused_while_the_estimate_is_invalid(model, tmp_path):
    robot = estimating_robot(model)
    original = robot._estimated

    def never_valid(state):
        out = original(state)
        out.estimator_fault = "test: no estimate"
        return out

    robot._estimated = never_valid
    loop = make_loop(robot, export_hold_policy(tmp_path))
    try:
        modes = run_manual(loop, robot, 3.0)
    finally:
        robot.close()
    assert modes[-1] is Mode.HOLD  # the walk request at 2.4 s was ignored, the robot keeps standing
    assert Mode.POLICY not in modes


def test_oracle_state_exists_only_in_simulation():
    with pytest.raises(ValueError, match="only the simulator"):
        RunConfig(robot="g1", state_source="oracle")
    assert RunConfig().state_source == "estimator" and RunConfig().sim_sensors == "g1_mems"


@pytest.mark.slow
def test_committed_planner_walks_from_the_estimator(model):
    """Closed-loop smoke: the committed planner, fed the estimated base state, walks forward without a fall."""
    policy = load_policy(PLANNER)
    robot = estimating_robot(model, seed=11)
    script = [*STAND_THEN_WALK[:4], ScriptEvent(2.6, command=(0.5, 0.0, 0.0), deadman=True)]
    loop = make_loop(robot, policy, ScriptedTeleop(script))
    lowest = []
    try:
        modes = run_manual(loop, robot, 6.0, before_tick=lambda k, t: lowest.append(robot.ground_truth().base_pos_m[2]))
    finally:
        robot.close()
    truth = robot.ground_truth()
    assert modes[-1] is Mode.POLICY, loop.fsm.transitions[-1]
    assert min(lowest) > G1EnvConfig.fall_height_m  # no fall
    assert truth.base_pos_m[0] > 0.5  # it walked forward on the command (3.4 s at 0.5 m/s)
