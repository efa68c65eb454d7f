"""Common face of the tasks: a sim-side command sampler, reward and metrics on planar root states.

Every task has two faces (the second lives in each task module as a torch ``nn.Module`` cost):

- sim side (this base class, numpy, batched over envs ``(N, ...)``): sample a command at reset, turn it into
  the 3-vector the policy observes, score the root motion with a reward and report metrics;
- guidance side: a differentiable cost ``forward(x0 (B, H, D), params (B, P)) -> (B,)`` on predicted physical
  state trajectories, scriptable with ``torch.jit.script``.

Planar root states are ``(x, y, yaw, vx, vy, yaw_rate)`` in the world frame (see
:func:`envs.g1.observations.root_planar_state`).
"""

from __future__ import annotations

import abc

import mujoco
import numpy as np

PLANAR_DIM = 6


def world_to_heading(vec_xy: np.ndarray, yaw_rad: np.ndarray) -> np.ndarray:
    """Rotate world-frame planar vectors into the heading (yaw) frame. (N, 2), (N,) -> (N, 2)."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.stack([c * vec_xy[..., 0] + s * vec_xy[..., 1], -s * vec_xy[..., 0] + c * vec_xy[..., 1]], axis=-1)


class SimTask(abc.ABC):
    """Sim-side face of a task (see module docstring)."""

    command_dim: int = 3
    """Length of the command part of the policy observation."""
    param_dim: int
    """Length of the stored per-env task parameters (e.g. goal position)."""

    @abc.abstractmethod
    def sample_params(self, rng: np.random.Generator, planar: np.ndarray) -> np.ndarray:
        """New task parameters for envs starting at ``planar`` (N, 6) -> (N, param_dim)."""

    @abc.abstractmethod
    def command(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        """What the policy observes about the task, (N, 6), (N, P) -> (N, 3)."""

    @abc.abstractmethod
    def reward(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Per-step task reward, (N, 6), (N, P) -> (N,)."""

    @abc.abstractmethod
    def metrics(self, planar: np.ndarray, params: np.ndarray) -> dict[str, np.ndarray]:
        """Named per-env metrics, each (N,)."""

    def modify_spec(self, spec: mujoco.MjSpec) -> None:  # noqa: B027 - optional hook, default no scene change
        """Add task geometry (obstacles, markers) to the model before it is compiled."""
