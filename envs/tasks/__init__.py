"""Tasks with two faces: sim-side reward/metrics and a differentiable torch cost for guidance.

Joystick, waypoint and obstacle tasks on planar root states (the gymnasium env :mod:`envs.g1.env` rewards with
their sim side), their guidance costs, the obstacle SDFs and the route planner. The same costs on the G1
planner's state are in :mod:`envs.planner.costs`.
"""

from envs.tasks.base import SimTask
from envs.tasks.joystick import JoystickCost, JoystickCostConfig, JoystickTask, JoystickTaskConfig
from envs.tasks.obstacles import (
    BoxObstacle,
    CylinderObstacle,
    ObstacleCost,
    ObstacleCostConfig,
    ObstacleScene,
    ObstacleTask,
    ObstacleTaskConfig,
)
from envs.tasks.waypoint import WaypointCost, WaypointCostConfig, WaypointTask, WaypointTaskConfig

TaskConfig = JoystickTaskConfig | WaypointTaskConfig | ObstacleTaskConfig
TASK_CONFIGS: dict[str, type[JoystickTaskConfig] | type[WaypointTaskConfig] | type[ObstacleTaskConfig]] = {
    "joystick": JoystickTaskConfig,
    "waypoint": WaypointTaskConfig,
    "obstacles": ObstacleTaskConfig,
}

__all__ = [
    "TASK_CONFIGS",
    "BoxObstacle",
    "CylinderObstacle",
    "JoystickCost",
    "JoystickCostConfig",
    "JoystickTask",
    "JoystickTaskConfig",
    "ObstacleCost",
    "ObstacleCostConfig",
    "ObstacleScene",
    "ObstacleTask",
    "ObstacleTaskConfig",
    "SimTask",
    "TaskConfig",
    "WaypointCost",
    "WaypointCostConfig",
    "WaypointTask",
    "WaypointTaskConfig",
]
