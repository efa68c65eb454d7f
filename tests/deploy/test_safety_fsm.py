"""Safety state machine on the simulated G1 (manual stepping): every trigger ends in damping, from every state,
and no command above the limits ever reaches the backend."""

import numpy as np
import pytest
import torch
from torch import nn

from deploy.policies.export import build_mlp_policy, export_policy
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata
from deploy.safety_fsm import Mode, SafetyFsm, SafetyFsmConfig
from deploy.teleop import ModeRequest, ScriptedTeleop, ScriptEvent, TeleopSample
from robot.g1 import constants as C
from robot.messages import RobotState
from robot.sim import MujocoRobot, SimRobotConfig
from tests.deploy.helpers import (
    STAND_THEN_WALK,
    assert_within_limits,
    export_hold_policy,
    is_damping,
    make_loop,
    manual_robot,
    run_manual,
)


@pytest.fixture(scope="module")
def model():
    return MujocoRobot(SimRobotConfig(threaded=False)).model


@pytest.fixture(scope="module")
def hold_policy(tmp_path_factory):
    return export_hold_policy(tmp_path_factory.mktemp("hold"))


def assert_ends_in_damping(loop, robot, reason: str) -> None:
    assert loop.fsm.mode is Mode.DAMPING
    last = loop.fsm.transitions[-1]
    assert last.target is Mode.DAMPING and reason in last.reason, str(last)
    assert robot.safety.damping  # the backend's own latch holds too
    assert is_damping(robot.delivered[-1][1]) and is_damping(robot.applied_command)
    assert_within_limits(robot)


def test_nominal_sequence_reaches_policy_and_keeps_standing(model, hold_policy):
    robot = manual_robot(model)
    loop = make_loop(robot, hold_policy)
    modes = run_manual(loop, robot, 4.0)
    assert [t.target for t in loop.fsm.transitions] == [Mode.MOVE_TO_DEFAULT, Mode.HOLD, Mode.POLICY]
    assert modes[-1] is Mode.POLICY and not robot.safety.damping
    assert robot.data.qpos[2] > 0.7  # still standing
    assert_within_limits(robot)


def script_with(event: ScriptEvent) -> ScriptedTeleop:
    return ScriptedTeleop(sorted([*STAND_THEN_WALK, event], key=lambda e: e.t_s))


@pytest.mark.parametrize("t_s", [0.0, 1.0, 2.2, 3.0], ids=["zero_torque", "move", "hold", "policy"])
def test_estop_from_every_state(model, hold_policy, t_s):
    robot = manual_robot(model)
    events = [ScriptEvent(0.0, deadman=False), ScriptEvent(0.05, deadman=False, estop=True)] if t_s == 0.0 else []
    teleop = ScriptedTeleop(events) if events else script_with(ScriptEvent(t_s, estop=True, deadman=t_s > 2.3))
    loop = make_loop(robot, hold_policy, teleop)
    run_manual(loop, robot, 3.5)
    assert_ends_in_damping(loop, robot, "e-stop")
    expected_source = {0.0: Mode.ZERO_TORQUE, 1.0: Mode.MOVE_TO_DEFAULT, 2.2: Mode.HOLD, 3.0: Mode.POLICY}[t_s]
    assert loop.fsm.transitions[-1].source is expected_source


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ScriptEvent(3.0, request="damp"), "damping requested"),
        (ScriptEvent(3.0, deadman=False), "deadman released"),
        (ScriptEvent(3.0, connected=False), "joystick disconnected"),
    ],
)
def test_operator_triggers_end_in_damping(model, hold_policy, event, reason):
    robot = manual_robot(model)
    loop = make_loop(robot, hold_policy, script_with(event))
    run_manual(loop, robot, 3.5)
    assert_ends_in_damping(loop, robot, reason)
    assert loop.fsm.transitions[-1].time_s == pytest.approx(3.0, abs=0.021)


def test_damping_is_latched_against_later_requests(model, hold_policy):
    robot = manual_robot(model)
    events = [*STAND_THEN_WALK[:2], ScriptEvent(1.0, estop=True), ScriptEvent(1.2, request="stand")]
    events += [ScriptEvent(1.4, request="walk", deadman=True)]
    loop = make_loop(robot, hold_policy, ScriptedTeleop(events))
    modes = run_manual(loop, robot, 2.0)
    assert all(m is Mode.DAMPING for m in modes[51:])
    assert_ends_in_damping(loop, robot, "e-stop")


class FrozenTeleop(ScriptedTeleop):
    """The device keeps answering but stops refreshing its timestamp from ``t_freeze_s`` on (a hung driver)."""

    def __init__(self, t_freeze_s: float) -> None:
        super().__init__(STAND_THEN_WALK)
        self.t_freeze_s = t_freeze_s

    def read(self, now_s: float) -> TeleopSample:
        sample = super().read(now_s)
        sample.timestamp_s = min(sample.timestamp_s, self.t_freeze_s)
        return sample


@pytest.mark.parametrize("disconnect", ["unplugged", "silent"])
def test_joystick_loss_stops_the_robot_within_100_ms(model, hold_policy, disconnect):
    robot = manual_robot(model)
    t_loss = 3.01  # between two ticks, the worst phase for detection
    teleop = script_with(ScriptEvent(t_loss, connected=False)) if disconnect == "unplugged" else FrozenTeleop(t_loss)
    loop = make_loop(robot, hold_policy, teleop)
    run_manual(loop, robot, 3.5)
    assert_ends_in_damping(loop, robot, "joystick")
    first_damping_s = next(t for t, cmd in robot.delivered if is_damping(cmd))
    assert first_damping_s > t_loss  # no false alarm before the loss
    assert first_damping_s - t_loss <= 0.1


def test_stale_robot_state_ends_in_damping(model, hold_policy):
    robot = manual_robot(model)
    loop = make_loop(robot, hold_policy)
    run_manual(loop, robot, 3.5, step_robot=lambda t: t < 3.0)  # physics (the state stream) stops at 3 s
    assert_ends_in_damping(loop, robot, "stale robot state")
    assert 3.05 <= loop.fsm.transitions[-1].time_s <= 3.05 + 0.021


def test_tilt_beyond_the_limit_ends_in_damping(model, hold_policy):
    robot = manual_robot(model)
    loop = make_loop(robot, hold_policy)
    pelvis = model.body("pelvis").id

    def push(k, t):
        robot.data.xfrc_applied[pelvis, 0] = 400.0 if 3.0 <= t < 3.3 else 0.0  # a hard shove from behind

    run_manual(loop, robot, 4.5, before_tick=push)
    assert_ends_in_damping(loop, robot, "tilt")
    assert loop.fsm.transitions[-1].source is Mode.POLICY


class NanOnCommand(nn.Module):
    """Zero action until the forward command (observation entry 6) exceeds 0.3, then NaN."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        bad = (obs[:, 6:7] > 0.3).expand(obs.shape[0], 29)  # (B, J)
        zeros = torch.zeros(obs.shape[0], 29)
        return torch.where(bad, torch.full_like(zeros, float("nan")), zeros)


def test_nan_action_ends_in_damping_and_never_reaches_the_motors(model, tmp_path):
    meta = PolicyMetadata.for_g1("stand")
    policy = load_policy(export_policy(NanOnCommand(), meta, tmp_path / "nan.pt")[0])
    robot = manual_robot(model)
    loop = make_loop(robot, policy)  # STAND_THEN_WALK commands vx = 0.5 at 2.6 s
    run_manual(loop, robot, 3.0)
    assert_ends_in_damping(loop, robot, "non-finite policy action")
    assert loop.fsm.transitions[-1].time_s == pytest.approx(2.6, abs=0.021)


def test_consecutive_deadline_misses_end_in_damping_but_isolated_ones_do_not(model, hold_policy):
    robot = manual_robot(model)
    loop = make_loop(robot, hold_policy)
    run_manual(loop, robot, 3.0, before_tick=lambda k, t: {"lateness_s": 0.005} if k % 2 else None)
    assert loop.fsm.mode is Mode.POLICY and loop.stats.misses == 75
    run_manual(loop, robot, 0.2, before_tick=lambda k, t: {"lateness_s": 0.005} if k >= 2 else None)
    assert_ends_in_damping(loop, robot, "3 consecutive deadline misses")


def test_wild_policy_commands_stay_within_limits(model, tmp_path):
    meta = PolicyMetadata.for_g1("stand")
    net = build_mlp_policy(meta.obs_dim, 29, (64,), seed=1)
    with torch.no_grad():
        net[-1].weight.mul_(300.0)  # actions far outside +-action_clip
    policy = load_policy(export_policy(net, meta, tmp_path / "wild.pt")[0])
    robot = manual_robot(model)
    loop = make_loop(robot, policy)
    run_manual(loop, robot, 4.0)
    assert_within_limits(robot)
    q = np.array([cmd.q_target_rad for _, cmd in robot.delivered if not is_damping(cmd)])
    assert np.max(np.abs(np.diff(q, axis=0))) <= robot.cfg.safety.max_delta_q_per_tick_rad + 1e-9
    assert loop.fsm.mode is Mode.DAMPING  # a wild policy throws the robot over: tilt
    assert robot.safety.num_clamped_commands > 0


def _state(q: np.ndarray, t: float) -> RobotState:
    return RobotState(q, np.zeros(29), np.array([1.0, 0, 0, 0]), np.zeros(3), np.array([0, 0, 9.81]), t)


def test_move_to_default_is_smooth_and_ends_at_the_default_pose():
    z = np.zeros(29)
    fsm = SafetyFsm(SafetyFsmConfig(move_duration_s=2.0), C.DEFAULT_JOINT_POS_RAD, z + 100, z + 5, z + 40, z + 2)
    q0 = np.full(29, 0.3)
    fsm.update(_state(q0, 0.0), TeleopSample(np.zeros(3), request=ModeRequest.STAND, timestamp_s=0.0), 0, 0.0)
    assert fsm.mode is Mode.MOVE_TO_DEFAULT
    targets = []
    for k in range(101):
        t = 0.02 * k
        fsm.update(_state(q0, t), TeleopSample(np.zeros(3), timestamp_s=t), 0, t)
        targets.append(fsm.command(_state(q0, t), t).q_target_rad)
    targets = np.array(targets)
    np.testing.assert_allclose(targets[0], q0)
    np.testing.assert_allclose(targets[50], 0.5 * (q0 + C.DEFAULT_JOINT_POS_RAD), atol=1e-9)
    np.testing.assert_allclose(targets[-1], C.DEFAULT_JOINT_POS_RAD)
    assert fsm.mode is Mode.HOLD
    step = np.abs(np.diff(targets, axis=0)).max(axis=1)
    assert step[0] < 0.1 * step[50]  # starts and stops gently (cosine profile)
    assert step.max() <= np.pi / 2 * np.abs(q0 - C.DEFAULT_JOINT_POS_RAD).max() * 0.01 + 1e-9


def test_walk_needs_the_deadman_and_config_is_validated():
    z = np.zeros(29)
    fsm = SafetyFsm(SafetyFsmConfig(move_duration_s=0.1), C.DEFAULT_JOINT_POS_RAD, z + 1, z, z, z)
    q = C.DEFAULT_JOINT_POS_RAD.copy()
    fsm.update(_state(q, 0.0), TeleopSample(np.zeros(3), request=ModeRequest.STAND, timestamp_s=0.0), 0, 0.0)
    fsm.update(_state(q, 0.2), TeleopSample(np.zeros(3), timestamp_s=0.2), 0, 0.2)
    assert fsm.mode is Mode.HOLD
    fsm.update(_state(q, 0.22), TeleopSample(np.zeros(3), request=ModeRequest.WALK, timestamp_s=0.22), 0, 0.22)
    assert fsm.mode is Mode.HOLD
    sample = TeleopSample(np.zeros(3), deadman=True, request=ModeRequest.WALK, timestamp_s=0.24)
    fsm.update(_state(q, 0.24), sample, 0, 0.24)
    assert fsm.mode is Mode.POLICY
    with pytest.raises(ValueError, match="POLICY needs policy_targets_rad"):
        fsm.command(_state(q, 0.24), 0.24)
    with pytest.raises(ValueError, match=r"tilt_limit_rad: expected in \(0, pi\), got 4"):
        SafetyFsmConfig(tilt_limit_rad=4.0)
    with pytest.raises(ValueError, match="max_consecutive_misses"):
        SafetyFsmConfig(max_consecutive_misses=0)
