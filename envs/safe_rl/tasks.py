"""DSRL task facts: dimensions, episode lengths, reference returns and the official dataset file names.

One table, one source. Every number below was read from ``dsrl==0.1.0`` (PyPI):

- ``max_episode_steps``, ``reward_max``, ``reward_min``, ``cost_max``, ``file_name``: ``dsrl/infos.py``
  (``DEFAULT_MAX_EPISODE_STEPS``, ``MAX_EPISODE_REWARD``, ``MIN_EPISODE_REWARD``, ``MAX_EPISODE_COST``,
  the base name of ``DATASET_URLS``);
- ``obs_dim`` and ``act_dim``: the observation and action spaces of ``gymnasium.make("Offline<Task>-v0")`` with
  ``bullet-safety-gym==1.4.0`` (measured; actions are boxes in [-1, 1]).

DSRL's normalised score (``OfflineEnv.get_normalized_score``) is
``reward_norm = (R - reward_min) / (reward_max - reward_min)`` and ``cost_norm = C / cost_limit`` with R, C the
undiscounted episode sums. FISOR rescales rewards by ``max_episode_steps / (reward_max - reward_min)``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: DSRL's usual cost limits for the Bullet tasks; FISOR evaluates every task at 10.
BULLET_COST_LIMITS = (10.0, 20.0, 40.0)


@dataclass(frozen=True)
class DSRLTask:
    """Facts of one DSRL task."""

    name: str
    """short task name, e.g. BallRun (gymnasium id Offline<name>-v0)"""
    obs_dim: int
    """observation dimension S"""
    act_dim: int
    """action dimension A (actions in [-1, 1])"""
    max_episode_steps: int
    """episode length T_max (time limit)"""
    reward_max: float
    """DSRL reference maximum episode return (normalised reward 1)"""
    reward_min: float
    """DSRL reference minimum episode return (normalised reward 0)"""
    cost_max: float
    """largest episode cost kept in the official dataset (the MaxCost of its file name)"""
    file_name: str
    """file name of the official dataset (dsrl's download URL base name)"""

    @property
    def gym_id(self) -> str:
        """The gymnasium id ``dsrl`` registers for this task."""
        return f"Offline{self.name}-v0"

    @property
    def reward_scale(self) -> float:
        """FISOR's reward rescaling factor ``T_max / (R_max - R_min)``."""
        return self.max_episode_steps / (self.reward_max - self.reward_min)

    def normalized_score(self, episode_return: float, episode_cost: float, cost_limit: float) -> tuple[float, float]:
        """DSRL's ``(normalised reward, normalised cost)`` of one episode at ``cost_limit`` (> 0)."""
        if cost_limit <= 0:
            raise ValueError(f"cost_limit: expected > 0, got {cost_limit}")
        reward = (episode_return - self.reward_min) / (self.reward_max - self.reward_min)
        return reward, episode_cost / cost_limit


DSRL_TASKS: dict[str, DSRLTask] = {
    task.name: task
    for task in (
        DSRLTask("AntRun", 33, 8, 200, 955.4818725585938, 0.001767391717990563, 150.0, "SafetyAntRun-v0-150-1816.hdf5"),
        DSRLTask(
            "AntCircle", 34, 8, 500, 460.7091979980469, 0.0177031010389328, 200.0, "SafetyAntCircle-v0-200-5728.hdf5"
        ),
        DSRLTask("BallRun", 7, 2, 100, 1327.445556640625, 26.339754104614258, 80.0, "SafetyBallRun-v0-80-940.hdf5"),
        DSRLTask(
            "BallCircle", 8, 2, 200, 881.46337890625, 0.38312244415283203, 80.0, "SafetyBallCircle-v0-80-886.hdf5"
        ),
        DSRLTask("CarRun", 7, 2, 200, 574.6533203125, 204.28726196289062, 40.0, "SafetyCarRun-v0-40-651.hdf5"),
        DSRLTask(
            "CarCircle", 8, 2, 300, 534.3060913085938, 3.484419822692871, 100.0, "SafetyCarCircle-v0-100-1450.hdf5"
        ),
        DSRLTask("DroneRun", 17, 4, 200, 682.8330078125, 10.557029724121094, 140.0, "SafetyDroneRun-v0-140-1990.hdf5"),
        DSRLTask(
            "DroneCircle", 18, 4, 300, 996.38916015625, 207.794189453125, 100.0, "SafetyDroneCircle-v0-100-1923.hdf5"
        ),
    )
}


def canonical_task_name(task: str) -> str:
    """``"OfflineBallRun-v0"``, ``"SafetyBallRun"`` or ``"BallRun"`` -> ``"BallRun"``."""
    name = task.strip()
    if name.endswith("-v0"):
        name = name[: -len("-v0")]
    for prefix in ("Offline", "Safety"):
        if name.startswith(prefix) and name[len(prefix) :] in DSRL_TASKS:
            name = name[len(prefix) :]
    return name


def get_task(task: str) -> DSRLTask:
    """The facts of a DSRL task by name (accepts the gymnasium id and dsrl's file prefix too)."""
    name = canonical_task_name(task)
    if name not in DSRL_TASKS:
        raise KeyError(f"unknown DSRL task {task!r}: expected one of {sorted(DSRL_TASKS)}")
    return DSRL_TASKS[name]
