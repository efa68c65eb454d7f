"""Shared by the env and data tests: a quiet walking-task config and a mirror-image world."""

import numpy as np

from envs.g1.vec_env import DomainRandomizationConfig
from envs.locomotion.config import LocomotionConfig, ObservationNoiseConfig
from envs.locomotion.env import G1LocomotionEnv
from robot.g1 import constants as C


def quiet_locomotion_config(num_envs: int = 2, **kw) -> LocomotionConfig:
    """Nominal robot, no pushes, no observation noise, one physics thread."""
    return LocomotionConfig(
        num_envs=num_envs,
        num_threads=1,
        randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0),
        noise=ObservationNoiseConfig(scale=0.0),
        **kw,
    )


def mirror_world_state(env: G1LocomotionEnv, src: int, dst: int) -> None:
    """Put env ``dst`` in the mirror image of env ``src`` (about the x-z plane)."""
    qpos, qvel = env._qpos[src].copy(), env._qvel[src].copy()
    qpos[1] = -qpos[1]
    qpos[3:7] = qpos[3:7] * np.array([1.0, -1.0, 1.0, -1.0])
    qpos[env._qadr] = C.mirror_joint_values(qpos[env._qadr])
    qvel[1] = -qvel[1]
    qvel[3:6] = qvel[3:6] * np.array([-1.0, 1.0, -1.0])
    qvel[env._vadr] = C.mirror_joint_values(qvel[env._vadr])
    env._qpos[dst], env._qvel[dst] = qpos, qvel
    for name in ("_targets", "_last_action", "_prev_dq"):
        getattr(env, name)[dst] = C.mirror_joint_values(getattr(env, name)[src])
    env._ctrl[dst] = env._kp[dst] * env._targets[dst]
    env._prev_ctrl[dst] = env._ctrl[dst]
    env.command[dst] = env.command[src] * np.array([1.0, -1.0, -1.0])
    env._command_timer[:] = 100.0
    period_steps = round(env.loco.gait_period_s / env.cfg.env.ctrl_dt_s)
    env.episode_length[dst] = env.episode_length[src] + period_steps // 2
