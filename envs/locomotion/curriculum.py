"""The command curriculum of the walking task: the command ranges grow while the finished episodes track well.

legged_gym's schedule: at most once per episode length, judged on every episode that ended in that window, the
scale of the command ranges grows by ``curriculum_step`` (up to 1) when their mean velocity-tracking kernel
(summed over each episode and divided by the full episode length, so an early fall scores low and a falling policy
never advances) exceeds ``curriculum_threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.locomotion.config import CommandConfig


class CommandCurriculum:
    """The range scale and the window it is judged on (kernel sum, episodes, steps since the last decision)."""

    def __init__(self, cfg: CommandConfig) -> None:
        self.cfg = cfg
        self.scale = cfg.curriculum_initial_scale
        self.window = np.zeros(3)

    def update(self, kernels: np.ndarray, episode_steps: int) -> None:
        """One step: ``kernels`` (one per episode that ended now) are the episodes' tracking kernel divided by the
        full episode length (0..1); the decision falls once ``episode_steps`` steps have gone by."""
        self.window += [float(np.sum(kernels)), float(len(kernels)), 1.0]  # one call per step
        total, count, steps = self.window
        if steps < episode_steps:
            return
        if count > 0 and total / count > self.cfg.curriculum_threshold:
            self.scale = min(1.0, self.scale + self.cfg.curriculum_step)
        self.window[:] = 0.0

    def state_dict(self) -> dict[str, Any]:
        """The scale and the window, under the keys the walking checkpoints have always used."""
        return {"curriculum_scale": self.scale, "curriculum_window": self.window.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (checkpoints without a window start a fresh one)."""
        self.scale = float(state["curriculum_scale"])
        self.window = np.array(state.get("curriculum_window", np.zeros(3)), dtype=np.float64)
