"""Tasks with two faces: sim-side reward/metrics and a differentiable torch cost for guidance."""

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
