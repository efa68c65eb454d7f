"""Shared pieces of the deploy tests: exported hold policies, a backend that records what reaches it, a manual loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np

from deploy.loop import ControlLoop, LoopConfig
from deploy.policies.base import RuntimePolicy
from deploy.policies.export import build_mlp_policy, export_policy
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop, ScriptEvent, TeleopSource
from robot.g1 import constants as C
from robot.interface import RobotCommand
from robot.sim import MujocoRobot, SimRobotConfig

# Stand at 0.02 s, policy from 2.4 s with the deadman held (the move to the default pose takes 2 s).
STAND_THEN_WALK = [
    ScriptEvent(0.0, deadman=False),
    ScriptEvent(0.02, request="stand", deadman=False),
    ScriptEvent(2.3, deadman=True),
    ScriptEvent(2.4, request="walk", deadman=True),
    ScriptEvent(2.6, command=(0.5, 0.0, 0.2), deadman=True),
]


def export_hold_policy(tmp_path: Path, gain_profile: str = "stand", **meta_overrides) -> RuntimePolicy:
    """Zero-action MLP (asks for the default pose) exported with G1 metadata, loaded back."""
    meta = PolicyMetadata.for_g1(gain_profile, **meta_overrides)
    net = build_mlp_policy(meta.obs_dim, meta.num_joints, (32, 32), zero_output=True)
    pt, _ = export_policy(net, meta, tmp_path / f"hold_{gain_profile}.pt")
    return load_policy(pt)


class RecordingRobot(MujocoRobot):
    """MujocoRobot that keeps every command delivered to the motors (after the safety layer)."""

    def __init__(self, *args, **kwargs) -> None:
        self.delivered: list[tuple[float, RobotCommand]] = []
        super().__init__(*args, **kwargs)

    def _apply_command(self, command: RobotCommand) -> None:
        self.delivered.append((float(self.data.time), command.copy()))
        super()._apply_command(command)


def manual_robot(model: mujoco.MjModel, **kwargs) -> RecordingRobot:
    robot = RecordingRobot(SimRobotConfig(threaded=False, **kwargs), model=model)
    robot.connect()
    return robot


def run_manual(
    loop: ControlLoop,
    robot: MujocoRobot,
    seconds: float,
    before_tick: Callable[[int, float], dict | None] | None = None,
    step_robot: Callable[[float], bool] | None = None,
) -> list[Mode]:
    """Tick ``loop`` at its period on simulated time; ``before_tick(k, t)`` may return tick kwargs (lateness_s,
    skipped); ``step_robot(t)`` False freezes physics (stale state)."""
    substeps = round(loop.period_s / robot.model.opt.timestep)
    modes, t = [], 0.0
    for k in range(round(seconds / loop.period_s)):
        kwargs = (before_tick(k, t) if before_tick else None) or {}
        modes.append(loop.tick(t, **kwargs))
        if step_robot is None or step_robot(t):
            robot.step(substeps)
        t += loop.period_s
    return modes


def make_loop(robot: MujocoRobot, policy: RuntimePolicy, teleop: TeleopSource | None = None, **cfg) -> ControlLoop:
    return ControlLoop(robot, policy, teleop or ScriptedTeleop(STAND_THEN_WALK), cfg=LoopConfig(**cfg))


def assert_within_limits(robot: RecordingRobot) -> None:
    """Every delivered command respects the safety limits of the robot."""
    s = robot.cfg.safety
    assert robot.delivered, "nothing reached the backend"
    for _, cmd in robot.delivered:
        for arr in cmd.arrays():
            assert np.all(np.isfinite(arr))
        assert np.all(cmd.q_target_rad >= C.JOINT_LOWER_RAD - 1e-12)
        assert np.all(cmd.q_target_rad <= C.JOINT_UPPER_RAD + 1e-12)
        assert np.all((cmd.kp_nm_per_rad >= 0) & (cmd.kp_nm_per_rad <= s.max_kp_nm_per_rad))
        assert np.all((cmd.kd_nms_per_rad >= 0) & (cmd.kd_nms_per_rad <= s.max_kd_nms_per_rad))
        assert np.all(np.abs(cmd.tau_ff_nm) <= C.EFFORT_LIMIT_NM)
        assert np.all(np.abs(cmd.dq_target_rad_per_s) <= C.VELOCITY_LIMIT_RAD_PER_S)


def is_damping(cmd: RobotCommand) -> bool:
    return bool(np.all(cmd.kp_nm_per_rad == 0.0) and np.all(cmd.kd_nms_per_rad > 0.0) and np.all(cmd.tau_ff_nm == 0.0))
