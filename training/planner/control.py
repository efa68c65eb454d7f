"""Receding-horizon control of N simulated G1 worlds with an exported planner, and where its state comes from.

Every control step each world's planner state is read from a :class:`StateSource`, the last ``Hh`` states and the
``Hh`` actions before the current one are inpainted, and the first planned action is executed (receding horizon;
the previous plan warm-starts the next when the export has ``rolling_start > 0``).

The state source is the one place where the controller learns where the robot is. :class:`GroundTruthStates` reads
the simulator's exact base pose, twist and joints; ``"estimator"``
(:class:`training.planner.estimated_state.EstimatedStates`) runs the robot's base-state estimator on simulated
sensors instead (one filter per world, restarted when a world's episode begins), and every evaluation row runs on
either unchanged (:data:`STATE_SOURCES`, built per env). The navigation rows also need the base pose for the goal's
position in the plan frame (``training.planner.navigation.navigate``); a source that estimates one supplies it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from envs.locomotion.config import LocomotionConfig
from envs.locomotion.env import G1LocomotionEnv
from envs.planner.runtime import ExportedPlanner
from robot.configio import from_jsonable
from training.planner.collect import RecordingEnv
from training.planner.estimated_state import EstimatedStates
from training.run_dir import run_config_of


def expert_task(expert: Path) -> LocomotionConfig:
    """The simulated task (gains, periods, model) of the expert whose data the planner learned: its training
    ``config.json`` beside the exported policy (or in the run folder above its ``export/``)."""
    config_path = run_config_of(expert)
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: the expert's training config must sit beside {expert.name}")
    return from_jsonable(LocomotionConfig, json.loads(config_path.read_text())["env"], f"{config_path}:env")


class StateSource(Protocol):
    """Where the planner's state of every world comes from."""

    name: str
    """Recorded in the evaluation's JSON as ``state_source``."""

    def __call__(self, env: RecordingEnv, fresh: np.ndarray) -> np.ndarray:
        """(N, S) planner state of every world now; ``fresh (N,)`` marks worlds whose episode has just begun (a
        per-world estimator restarts there)."""
        ...


class GroundTruthStates:
    """The planner state from the simulator's exact base pose, twist and joints (what the training data holds)."""

    name = "ground_truth"

    def __call__(self, env: RecordingEnv, fresh: np.ndarray) -> np.ndarray:
        """(N, S) planner state of every world from the simulator."""
        return env.planner_states()


STATE_SOURCES: dict[str, Callable[[RecordingEnv], StateSource]] = {
    "ground_truth": lambda env: GroundTruthStates(),
    "estimator": EstimatedStates,
}
"""State sources by name: a factory from the env (its worlds and sensors) to the source used in it."""


class ControlHistory:
    """What a planner conditions on at each step of N worlds: the last ``Hh`` planner states and the ``Hh`` actions
    executed before the current one (a world that has just reset repeats its first state and has zero actions)."""

    def __init__(self, num_envs: int, history: int, action_dim: int, source: StateSource | None = None) -> None:
        self.history = history
        self.source: StateSource = source or GroundTruthStates()
        self.states: torch.Tensor | None = None
        self.actions = torch.zeros(num_envs, history, action_dim)
        self.fresh = torch.ones(num_envs, dtype=torch.bool)

    def observe(self, env: RecordingEnv) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the current state; returns ``states (N, Hh, S)`` (oldest first) and ``actions (N, Hh, A)``.
        ``self.fresh (N,)`` marks the worlds whose episode has just begun."""
        fresh_np = env.episode_length == 0
        state = torch.from_numpy(np.asarray(self.source(env, fresh_np), dtype=np.float32))  # (N, S)
        fresh = torch.from_numpy(fresh_np)
        self.fresh = fresh
        if self.states is None:
            self.states = state[:, None].repeat(1, self.history, 1)
        else:
            self.states = torch.cat([self.states[:, 1:], state[:, None]], dim=1)
        self.states[fresh] = state[fresh, None]
        self.actions[fresh] = 0.0
        return self.states, self.actions

    def executed(self, action: torch.Tensor) -> None:
        """Record the actions ``(N, A)`` sent this step."""
        self.actions = torch.cat([self.actions[:, 1:], action[:, None]], dim=1)


class PlannerController:
    """Receding-horizon control of N worlds with an exported planner (module docstring).

    ``params_fn(env) -> (N, P)`` gives each world's cost parameters at this step (None: unguided sampling);
    ``state_source`` names the planner state's source in :data:`STATE_SOURCES`.
    """

    def __init__(
        self,
        module: torch.jit.ScriptModule,
        meta: dict[str, Any],
        params_fn: Any,
        seed: int,
        state_source: str = "ground_truth",
    ) -> None:
        if state_source not in STATE_SOURCES:
            raise ValueError(f"state_source: expected one of {sorted(STATE_SOURCES)}, got {state_source!r}")
        self.planner = ExportedPlanner(module, meta, seed)
        self.params_fn = params_fn
        self.state_source = state_source
        self.env: RecordingEnv | None = None

    def bind(self, env: G1LocomotionEnv) -> None:
        """Act in ``env`` (a :class:`RecordingEnv`: the planner state needs the tracked-body sensors)."""
        if not isinstance(env, RecordingEnv):
            raise TypeError(f"the planner needs a RecordingEnv (tracked-body sensors), got {type(env).__name__}")
        self.env = env
        source = STATE_SOURCES[self.state_source](env)
        self.history = ControlHistory(env.num_envs, self.planner.history, self.planner.action_dim, source)
        self.planner.reset()

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``(N, A)`` for this step (``obs``, the expert's observation, is not used)."""
        env = self.env
        if env is None:
            raise RuntimeError("PlannerController.bind(env) must be called first")
        with torch.inference_mode(False):  # the histories take part in the guidance graph
            states, actions = self.history.observe(env)
            # A world that has just reset starts cold: its warm start would be the plan of its previous episode.
            action = self.planner.plan(states, actions, self.params_fn(env), self.history.fresh)[:, 0]  # (N, A)
            self.history.executed(action)
        return action
