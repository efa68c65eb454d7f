"""Gymnasium environment of the G1 at 50 Hz control over the MuJoCo backend of :mod:`robot.sim`.

One control step: action ``a`` (29,) -> position targets ``q_default + action_scale * a`` -> the robot's
safety layer (same as on hardware) -> 4 physics steps of 5 ms with the motor PD law -> observation from
:func:`envs.g1.observations.policy_observation` of the robot's reported state. Reward = task reward + alive
bonus - action-rate penalty. Terminates when the pelvis drops below ``fall_height_m`` or tilts past 60 deg;
time limits come from the registration (``TimeLimit``, 1000 steps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import mujoco
import numpy as np

from envs.g1.observations import (
    ObservationConfig,
    joint_targets_from_action,
    observation_dim,
    observation_from_state,
    root_planar_state,
)
from envs.tasks import TASK_CONFIGS, JoystickTaskConfig, TaskConfig
from robot.g1 import constants as C
from robot.g1.model import build_g1_spec
from robot.interface import RobotCommand
from robot.sim import MujocoRobot, SimRobotConfig


@dataclass
class G1EnvConfig:
    """Single G1 environment."""

    task: TaskConfig = field(default_factory=JoystickTaskConfig)
    """Task (joystick, waypoint or obstacles config)."""
    robot: SimRobotConfig = field(default_factory=lambda: SimRobotConfig(threaded=False))
    """Simulated robot (noise, latency, safety); always stepped manually by the env."""
    obs: ObservationConfig = field(default_factory=ObservationConfig)
    """Observation scales."""
    ctrl_dt_s: float = 0.02
    """Control period (50 Hz)."""
    action_clip: float = 4.0
    """Actions are clipped to +-this (4 asks for the full effort limit at zero tracking error)."""
    alive_bonus: float = 0.5
    """Reward per step for not having fallen."""
    action_rate_weight: float = 0.01
    """Penalty on ||a_t - a_{t-1}||^2."""
    fall_height_m: float = C.FALL_HEIGHT_M
    """Pelvis height that ends an episode."""
    init_joint_noise_rad: float = 0.05
    """Uniform noise on the initial joint positions."""

    def __post_init__(self) -> None:
        dt = self.robot.model.physics_dt_s
        substeps = self.ctrl_dt_s / dt
        if abs(substeps - round(substeps)) > 1e-6 or round(substeps) < 1:
            raise ValueError(f"ctrl_dt_s: expected a positive multiple of physics_dt_s={dt}, got {self.ctrl_dt_s}")
        if self.action_clip <= 0.0:
            raise ValueError(f"action_clip: expected > 0, got {self.action_clip}")
        if self.init_joint_noise_rad < 0.0:
            raise ValueError(f"init_joint_noise_rad: expected >= 0, got {self.init_joint_noise_rad}")
        if self.robot.threaded:
            self.robot = dataclasses.replace(self.robot, threaded=False)

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.ctrl_dt_s / self.robot.model.physics_dt_s)


def build_task_model(
    cfg: G1EnvConfig, modify_spec: Callable[[mujoco.MjSpec], None] | None = None
) -> tuple[mujoco.MjModel, Any]:
    """Compile the G1 model with the task's scene (and ``modify_spec``'s additions); returns (model, sim task)."""
    task = cfg.task.build()
    spec = build_g1_spec(cfg.robot.model)
    task.modify_spec(spec)
    if modify_spec is not None:
        modify_spec(spec)
    return spec.compile(), task


class G1Env(gymnasium.Env):
    """The G1 as a gymnasium environment (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012 - gymnasium convention

    def __init__(self, cfg: G1EnvConfig | None = None, task: str | None = None, render_mode: str | None = None) -> None:
        if cfg is None:
            if task is not None and task not in TASK_CONFIGS:
                raise ValueError(f"task: expected one of {sorted(TASK_CONFIGS)}, got {task!r}")
            cfg = G1EnvConfig(task=TASK_CONFIGS[task or "joystick"]())
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected None or 'rgb_array', got {render_mode!r}")
        self.cfg = cfg
        self.render_mode = render_mode
        model, self.task = build_task_model(cfg)
        self.robot = MujocoRobot(cfg.robot, model=model)
        self.robot.connect()
        n = C.NUM_JOINTS
        obs_dim = observation_dim(n)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gymnasium.spaces.Box(-cfg.action_clip, cfg.action_clip, (n,), np.float32)
        self._last_action = np.zeros(n)
        self._params = np.zeros(self.task.param_dim)
        self._renderer: mujoco.Renderer | None = None

    # ----- helpers --------------------------------------------------------------------------------------------
    def planar_state(self) -> np.ndarray:
        """Privileged planar root state (x, y, yaw, vx, vy, yaw_rate) from the simulator, (6,)."""
        d = self.robot.data
        return root_planar_state(d.qpos[:3], d.qpos[3:7], d.qvel[:3], d.qvel[5])

    def _observation(self) -> np.ndarray:
        command = self.task.command(self.planar_state()[None], self._params[None])[0]
        state = self.robot.read_state()
        return observation_from_state(state, command, self._last_action, C.DEFAULT_JOINT_POS_RAD, self.cfg.obs)

    def _info(self, planar: np.ndarray) -> dict[str, Any]:
        metrics = {k: float(v[0]) for k, v in self.task.metrics(planar[None], self._params[None]).items()}
        return {
            "planar_state": planar,
            "task_params": self._params.copy(),
            "damping": self.robot.safety.damping,
            **metrics,
        }

    # ----- gymnasium API --------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        noise = self.np_random.uniform(-1.0, 1.0, C.NUM_JOINTS) * self.cfg.init_joint_noise_rad
        q0 = np.clip(C.DEFAULT_JOINT_POS_RAD + noise, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD)
        self.robot.reset(joint_pos_rad=q0)
        self._last_action = np.zeros(C.NUM_JOINTS)
        planar = self.planar_state()
        self._params = self.task.sample_params(self.np_random, planar[None])[0]
        return self._observation(), self._info(planar)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float64), -self.cfg.action_clip, self.cfg.action_clip)
        targets = joint_targets_from_action(action, C.DEFAULT_JOINT_POS_RAD, C.ACTION_SCALE_RAD)
        self.robot.send_command(RobotCommand.position(targets, C.KP_NM_PER_RAD, C.KD_NMS_PER_RAD))
        self.robot.step(self.cfg.substeps)
        action = np.where(np.isfinite(action), action, 0.0)  # the safety layer has seen the raw numbers
        planar = self.planar_state()
        d = self.robot.data
        up_z = 1.0 - 2.0 * (d.qpos[4] ** 2 + d.qpos[5] ** 2)  # z of the pelvis z-axis in the world
        terminated = bool(d.qpos[2] < self.cfg.fall_height_m or up_z < 0.5 or self.robot.safety.damping)
        rate = float(np.sum((action - self._last_action) ** 2))
        reward = float(self.task.reward(planar[None], self._params[None])[0])
        reward += self.cfg.alive_bonus * (not terminated) - self.cfg.action_rate_weight * rate
        self._last_action = action
        return self._observation(), reward, terminated, False, self._info(planar)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.robot.model, 240, 320)
        self._renderer.update_scene(self.robot.data)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.robot.close()


_EPISODE_STEPS = 1000  # 20 s at 50 Hz
for _env_id, _task in (
    ("Steer/G1-v0", "joystick"),
    ("Steer/G1Waypoint-v0", "waypoint"),
    ("Steer/G1Obstacles-v0", "obstacles"),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            id=_env_id, entry_point="envs.g1.env:G1Env", max_episode_steps=_EPISODE_STEPS, kwargs={"task": _task}
        )
