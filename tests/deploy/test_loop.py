"""The control loop: observations identical to the envs functions, history stacking, real-time runs with the
threaded simulator (joystick loss -> damping within 100 ms of wall time), the CLI, and import hygiene."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.loop import ControlLoop, LoopConfig
from deploy.run import MotionMonitor, RunConfig, main
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop, ScriptEvent
from envs.g1.observations import ObservationConfig, observation_from_state
from robot.g1 import constants as C
from robot.interface import RobotState
from robot.sim import SimRobotConfig
from tests.deploy.helpers import (
    STAND_THEN_WALK,
    RecordingRobot,
    export_hold_policy,
    is_damping,
    make_loop,
    manual_robot,
    run_manual,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("history", [1, 3])
def test_policy_sees_the_envs_observation_and_stacks_history(tmp_path, history):
    policy = export_hold_policy(tmp_path, history_length=history)
    seen, states = [], []
    act = policy.act

    def spy(x):
        seen.append(x.copy())
        return act(x)

    policy.act = spy
    robot = manual_robot(RecordingRobot(SimRobotConfig(threaded=False)).model)
    loop = make_loop(robot, policy)
    read = robot.read_state

    def read_spy():
        states.append(read())
        return states[-1]

    robot.read_state = read_spy
    run_manual(loop, robot, 3.0)
    n_policy = len(seen)
    assert n_policy == round((3.0 - 2.4) / 0.02)
    frame = 9 + 3 * 29
    cmd = np.array([0.5, 0.0, 0.2])  # from 2.6 s on
    expected = observation_from_state(states[-1], cmd, np.zeros(29), C.DEFAULT_JOINT_POS_RAD, ObservationConfig())
    np.testing.assert_array_equal(seen[-1][-frame:], expected)
    assert seen[-1].shape == (history * frame,)
    if history > 1:
        np.testing.assert_array_equal(seen[-1][-2 * frame : -frame], seen[-2][-frame:])  # shifted by one tick
        np.testing.assert_array_equal(seen[0][:frame], seen[0][-frame:])  # first tick repeats its frame


def test_loop_rate_must_match_the_policy(tmp_path):
    policy = export_hold_policy(tmp_path)
    robot = manual_robot(RecordingRobot(SimRobotConfig(threaded=False)).model)
    with pytest.raises(ValueError, match=r"trained at 50\.000 Hz"):
        ControlLoop(robot, policy, ScriptedTeleop(STAND_THEN_WALK), cfg=LoopConfig(freq_hz=100.0))


def test_realtime_joystick_unplugged_stops_the_robot_within_100_ms(tmp_path):
    policy = export_hold_policy(tmp_path)
    robot = RecordingRobot(SimRobotConfig(threaded=True, realtime=True, initial_mode="damping"))
    delivered_wall: list[tuple[float, bool]] = []
    apply = robot._apply_command

    def timed_apply(cmd):
        delivered_wall.append((time.perf_counter(), is_damping(cmd)))
        apply(cmd)

    robot._apply_command = timed_apply
    unplugged_at: list[float] = []

    class Unplug(ScriptedTeleop):
        def read(self, now_s):
            sample = super().read(now_s)
            if not sample.connected and not unplugged_at:
                unplugged_at.append(sample.timestamp_s)  # last time the device was heard of
            return sample

    events = [ScriptEvent(0.0, request="stand"), ScriptEvent(0.505, connected=False)]
    with robot:
        loop = ControlLoop(robot, policy, Unplug(events), cfg=LoopConfig())
        stats = loop.run(0.8)
    assert loop.fsm.transitions[1].target is Mode.DAMPING and "joystick" in loop.fsm.transitions[1].reason
    t_loss = loop.teleop._t0_s + 0.505
    first_damping = next(t for t, damp in delivered_wall if damp and t > t_loss - 0.05)
    assert 0.0 < first_damping - t_loss <= 0.1
    assert stats.n >= 35 and robot.safety.damping


def test_cli_runs_the_simulated_g1_and_writes_logs(tmp_path):
    script = ScriptedTeleop.write(
        tmp_path / "s.json", [ScriptEvent(0.0, request="stand"), ScriptEvent(0.6, request="walk", deadman=True)]
    )
    cfg = RunConfig(script=script, duration_s=1.0, out_dir=tmp_path / "run", loop=LoopConfig())
    cfg.loop.fsm.move_duration_s = 0.5
    summary = main(cfg)
    assert summary["ticks"] >= 45
    assert [t.split(": ")[0].split("] ")[1] for t in summary["transitions"]] == [
        "zero_torque -> move_to_default",
        "move_to_default -> hold",
        "hold -> policy",
        "policy -> damping",
    ]
    assert summary["first_damping_reason"] == "run finished" and summary["base_height_m"] > 0.7
    motion = summary["motion"]
    assert not motion["fell"] and motion["min_base_height_m"] > 0.7 and 15 <= motion["policy_ticks"] <= 22
    assert (tmp_path / "run" / "timing.csv").is_file() and list((tmp_path / "run" / "tb").glob("events.*"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["ticks"] == summary["ticks"]


def _state(height: float, v_world: tuple[float, float, float], yaw_rate: float, yaw: float = 0.0) -> RobotState:
    quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    zeros = np.zeros(29)
    return RobotState(
        zeros, zeros, quat, np.array([0.0, 0.0, yaw_rate]), np.array([0.0, 0.0, 9.81]), 0.0,
        base_pos_m=np.array([0.0, 0.0, height]), base_lin_vel_m_per_s=np.array(v_world),
    )  # fmt: skip


def test_motion_monitor_errors_in_the_body_frame_settling_and_falls():
    m = MotionMonitor(fall_height_m=0.45, settle_s=1.0)
    cmd = np.array([0.5, 0.0, 0.2])
    m(0.0, _state(0.78, (0.0, 0.0, 0.0), 0.0), np.zeros(3), Mode.HOLD)  # not counted: not POLICY
    # heading 90 degrees: moving +y in the world is +x in the body frame, so it tracks vx = 0.5 exactly
    m(0.5, _state(0.76, (0.0, 0.5, 0.0), 0.0, yaw=np.pi / 2), cmd, Mode.POLICY)
    m(1.6, _state(0.74, (0.0, 0.2, 0.0), 0.5, yaw=np.pi / 2), cmd, Mode.POLICY)  # settled: 1.1 s after the change
    s = m.summary()
    assert s["policy_ticks"] == 2 and not s["fell"] and s["min_base_height_m"] == pytest.approx(0.74)
    assert s["lin_err_m_per_s"] == pytest.approx((0.0 + 0.3) / 2) and s["yaw_err_rad_per_s"] == pytest.approx(0.25)
    assert s["settled_lin_err_m_per_s"] == pytest.approx(0.3) and s["settled_yaw_err_rad_per_s"] == pytest.approx(0.3)
    m(2.0, _state(0.30, (0.0, 0.0, 0.0), 0.0), cmd, Mode.DAMPING)
    s = m.summary()
    assert s["fell"] and s["fall_time_s"] == pytest.approx(2.0) and "FELL at 2.0 s" in m.report()
    assert np.isnan(MotionMonitor().summary()["lin_err_m_per_s"])  # nothing driven yet: no figure, not zero


def test_runtime_modules_import_no_policies_or_training():
    code = (
        "import sys, deploy.loop, deploy.safety_fsm, deploy.teleop, deploy.unitree_remote, deploy.gamepad, "
        "deploy.policies, deploy.timing, deploy.run\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('policies', 'training'))\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_loop_timing_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "lt.json"
    args = [sys.executable, "benchmarks/loop_timing.py", "--quick", "--duration-s", "1.5", "--json", str(out)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ["unloaded", "loaded"] and all(r["ticks"] >= 70 for r in rows)
