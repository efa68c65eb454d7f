"""The G1 planner as the control loop's policy: fed the true planner state and the command; damping when it
cannot plan."""

import numpy as np
import pytest

from deploy.policies.loader import load_policy
from deploy.policies.planner import PlannerPolicy, load_planner_policy
from deploy.safety_fsm import Mode
from envs.planner.state import PlannerStateEstimator
from robot.g1.model import build_g1_model
from tests.deploy.helpers import make_loop, manual_robot, run_manual
from tests.training.helpers import export_tiny_planner


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny_planner(tmp_path_factory.mktemp("planner"))


class Spy:
    def __init__(self, module):
        self.module, self.calls = module, []

    def __call__(self, states, actions, params, noise, prev):
        plan, tokens = self.module(states, actions, params, noise, prev)
        self.calls.append((states.clone(), actions.clone(), params.clone(), plan.detach().clone()))
        return plan, tokens


def test_the_loop_feeds_the_true_planner_state_and_the_command(exported):
    policy = load_policy(exported)
    assert isinstance(policy, PlannerPolicy) and policy.metadata.control_dt_s == 0.02
    spy = Spy(policy.planner.module)
    policy.planner.module = spy
    robot = manual_robot(build_g1_model())
    loop = make_loop(robot, policy)
    estimator = PlannerStateEstimator()
    truths = []

    def record(k, t):
        s = robot.read_state()
        truths.append(
            estimator(
                s.base_pos_m,
                s.imu_quat_wxyz,
                s.base_lin_vel_m_per_s,
                s.imu_gyro_rad_per_s,
                s.joint_pos_rad,
                s.joint_vel_rad_per_s,
            )
        )

    try:
        modes = run_manual(loop, robot, 2.7, before_tick=record)
    finally:
        robot.close()
    first = modes.index(Mode.POLICY)
    assert len(spy.calls) == len(modes) - first  # one plan per POLICY tick
    states, actions, params, _ = spy.calls[-1]
    np.testing.assert_allclose(states[0, -1].numpy(), truths[-1], atol=1e-5)  # newest state, in the right slot
    np.testing.assert_allclose(states[0, -2].numpy(), truths[-2], atol=1e-5)
    assert params[0, 0] == 1.0  # joystick gate
    np.testing.assert_allclose(params[0, 1:4].numpy(), [0.5, 0.0, 0.2], atol=1e-6)  # the scripted command
    executed = [
        np.clip(c[3][0, 0, -29:].numpy(), -policy.metadata.action_clip, policy.metadata.action_clip) for c in spy.calls
    ]
    np.testing.assert_allclose(actions[0].numpy(), np.stack(executed[-5:-1]), atol=1e-6)  # a_{t-4} .. a_{t-1}
    s0, a0, _, _ = spy.calls[0]
    assert (s0[0] == s0[0, -1]).all() and not a0.any()  # a fresh start repeats the first state, no actions


def test_no_base_estimate_means_damping_with_the_reason(exported, caplog):
    policy = load_planner_policy(exported)
    robot = manual_robot(build_g1_model())
    original = robot.read_state

    def without_base():
        s = original()
        s.base_pos_m = np.zeros(0)
        return s

    robot.read_state = without_base
    loop = make_loop(robot, policy)
    try:
        modes = run_manual(loop, robot, 2.6)
    finally:
        robot.close()
    assert modes[-1] is Mode.DAMPING  # on the very tick the walk was requested
    assert "non-finite" in loop.fsm.damping_reason
    assert "no base position" in caplog.text


def test_planner_files_are_checked(exported, tmp_path):
    import json
    import shutil

    with pytest.raises(FileNotFoundError, match="to exist"):
        load_planner_policy(tmp_path / "none.pt")
    shutil.copy(exported, tmp_path / "p.pt")
    meta = json.loads(exported.with_suffix(".json").read_text())
    meta["extra"].pop("policy_metadata")
    (tmp_path / "p.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no robot metadata"):
        load_planner_policy(tmp_path / "p.pt")
