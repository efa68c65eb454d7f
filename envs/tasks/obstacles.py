"""Obstacle avoidance: boxes and cylinders in the MuJoCo scene and a barrier cost on their SDF.

Guidance cost (Diffuse-CLoC, Huang et al. 2025) on a predicted trajectory ``x0`` (B, H, D):

    G = sum_h sum_b B(SDF(p_b,h) - r_b, delta),

over tracked body points ``p_b`` (planar position features in the state, each with a clearance radius
``r_b``) and the relaxed log barrier ``B`` of :mod:`envs.tasks.sdf`. With an activation distance ``a > 0`` the
barrier is cut off beyond it, ``max(B(x) + ln a, 0)`` (zero and inactive for clearances ``x >= a``): the
published barrier (``a = 0``) never vanishes, so it also pushes a plan away from a goal that lies near an
obstacle. The same obstacles are added to the
MuJoCo model as static geoms that collide with the robot, so contacts in simulation are real.

Sim side: waypoint reaching through the scene, minus a penalty whenever the root's clearance drops below
``robot_radius_m``.
"""

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch
from torch import nn

from envs.tasks.sdf import BOX_PARAMS, CYLINDER_PARAMS, relaxed_log_barrier, scene_sdf
from envs.tasks.waypoint import WaypointTask, WaypointTaskConfig
from robot.g1.model import ROBOT_CONTYPE, WORLD_CONTYPE


@dataclass
class BoxObstacle:
    """A box standing on the floor."""

    center_xy_m: tuple[float, float]
    """Centre in the world plane."""
    half_extents_xy_m: tuple[float, float]
    """Half sizes along its own x and y."""
    yaw_rad: float = 0.0
    """Rotation about the vertical."""
    height_m: float = 1.0
    """Height above the floor."""


@dataclass
class CylinderObstacle:
    """A vertical cylinder standing on the floor."""

    center_xy_m: tuple[float, float]
    """Centre in the world plane."""
    radius_m: float
    """Radius."""
    height_m: float = 1.0
    """Height above the floor."""


@dataclass
class ObstacleScene:
    """Static obstacles of one scene."""

    boxes: list[BoxObstacle] = field(default_factory=list)
    """Boxes."""
    cylinders: list[CylinderObstacle] = field(default_factory=list)
    """Cylinders."""

    def __post_init__(self) -> None:
        for i, box in enumerate(self.boxes):
            if min(box.half_extents_xy_m) <= 0.0 or box.height_m <= 0.0:
                raise ValueError(f"boxes[{i}]: expected positive half extents and height, got {box}")
        for i, cyl in enumerate(self.cylinders):
            if cyl.radius_m <= 0.0 or cyl.height_m <= 0.0:
                raise ValueError(f"cylinders[{i}]: expected positive radius and height, got {cyl}")

    def to_params(self, num_boxes: int | None = None, num_cylinders: int | None = None) -> np.ndarray:
        """Cost parameters (P,), padded with inactive obstacles up to the given counts."""
        nb = len(self.boxes) if num_boxes is None else num_boxes
        nc = len(self.cylinders) if num_cylinders is None else num_cylinders
        if nb < len(self.boxes) or nc < len(self.cylinders):
            raise ValueError(
                f"scene has {len(self.boxes)} boxes / {len(self.cylinders)} cylinders, more than the {nb} / {nc} slots"
            )
        params = np.zeros(nb * BOX_PARAMS + nc * CYLINDER_PARAMS)
        for k, b in enumerate(self.boxes):
            params[k * BOX_PARAMS : (k + 1) * BOX_PARAMS] = (*b.center_xy_m, *b.half_extents_xy_m, b.yaw_rad, 1.0)
        off = nb * BOX_PARAMS
        for k, c in enumerate(self.cylinders):
            params[off + k * CYLINDER_PARAMS : off + (k + 1) * CYLINDER_PARAMS] = (*c.center_xy_m, c.radius_m, 1.0)
        return params

    def add_to_spec(self, spec: mujoco.MjSpec) -> list[str]:
        """Add the obstacles as static colliding geoms; returns their geom names."""
        names = []
        for k, b in enumerate(self.boxes):
            geom = spec.worldbody.add_geom()
            geom.name = f"obstacle_box_{k}"
            geom.type = mujoco.mjtGeom.mjGEOM_BOX
            geom.size = (*b.half_extents_xy_m, b.height_m / 2.0)
            geom.pos = (*b.center_xy_m, b.height_m / 2.0)
            geom.quat = (np.cos(b.yaw_rad / 2.0), 0.0, 0.0, np.sin(b.yaw_rad / 2.0))
            names.append(geom.name)
        for k, c in enumerate(self.cylinders):
            geom = spec.worldbody.add_geom()
            geom.name = f"obstacle_cylinder_{k}"
            geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
            geom.size = (c.radius_m, c.height_m / 2.0, 0.0)
            geom.pos = (*c.center_xy_m, c.height_m / 2.0)
            names.append(geom.name)
        for name in names:
            geom = spec.geom(name)
            geom.contype = WORLD_CONTYPE
            geom.conaffinity = WORLD_CONTYPE | ROBOT_CONTYPE
            geom.rgba = (0.8, 0.35, 0.2, 1.0)
        return names


def default_scene() -> ObstacleScene:
    """A small course: one yawed box and two cylinders within 3 m of the origin."""
    return ObstacleScene(
        boxes=[BoxObstacle((1.5, 0.6), (0.3, 0.2), yaw_rad=0.4)],
        cylinders=[CylinderObstacle((1.2, -0.8), 0.25), CylinderObstacle((-1.5, 1.0), 0.3)],
    )


@dataclass
class ObstacleTaskConfig:
    """Scene, goal sampling and penalties of the obstacle task."""

    scene: ObstacleScene = field(default_factory=default_scene)
    """Obstacles added to the model."""
    waypoint: WaypointTaskConfig = field(default_factory=WaypointTaskConfig)
    """Goal sampling and progress reward."""
    robot_radius_m: float = 0.3
    """Clearance below which the root counts as hitting an obstacle."""
    collision_penalty: float = 1.0
    """Reward subtracted per step in collision."""

    def __post_init__(self) -> None:
        if self.robot_radius_m <= 0.0 or self.collision_penalty < 0.0:
            raise ValueError(
                f"robot_radius_m > 0 and collision_penalty >= 0 expected, got {self.robot_radius_m}, "
                f"{self.collision_penalty}"
            )

    def build(self) -> "ObstacleTask":
        """The sim task this config describes."""
        return ObstacleTask(self)


class ObstacleTask(WaypointTask):
    """Waypoint reaching through an obstacle scene (params: goal x, y)."""

    def __init__(self, cfg: ObstacleTaskConfig) -> None:
        super().__init__(cfg.waypoint)
        self.obstacle_cfg = cfg
        self.scene_params = torch.as_tensor(cfg.scene.to_params(), dtype=torch.float64)[None]  # (1, P)

    def clearance_m(self, planar: np.ndarray) -> np.ndarray:
        """Distance from the root to the nearest obstacle surface, (N, 6) -> (N,)."""
        p = torch.as_tensor(planar[:, None, :2], dtype=torch.float64)  # (N, 1, 2)
        params = self.scene_params.expand(p.shape[0], -1)
        scene = self.obstacle_cfg.scene
        return scene_sdf(p, params, len(scene.boxes), len(scene.cylinders))[:, 0].numpy()

    def reward(self, planar: np.ndarray, params: np.ndarray) -> np.ndarray:
        hit = self.clearance_m(planar) < self.obstacle_cfg.robot_radius_m
        return super().reward(planar, params) - self.obstacle_cfg.collision_penalty * hit

    def metrics(self, planar: np.ndarray, params: np.ndarray) -> dict[str, np.ndarray]:
        out = super().metrics(planar, params)
        out["clearance_m"] = self.clearance_m(planar)
        return out

    def modify_spec(self, spec: mujoco.MjSpec) -> None:
        self.obstacle_cfg.scene.add_to_spec(spec)


@dataclass
class ObstacleCostConfig:
    """Obstacle slots, tracked body points and barrier sharpness."""

    num_boxes: int = 1
    """Box slots in the parameter vector."""
    num_cylinders: int = 2
    """Cylinder slots in the parameter vector."""
    body_xy_idx: list[tuple[int, int]] = field(default_factory=lambda: [(0, 1)])
    """Feature index pairs of the planar positions of tracked bodies."""
    body_radii_m: list[float] = field(default_factory=lambda: [0.3])
    """Clearance radius of each tracked body."""
    delta_m: float = 0.05
    """Relaxation distance of the barrier."""
    activation_m: float = 0.0
    """Clearance beyond which the barrier is zero (0: never cut off, the published barrier); must exceed
    ``delta_m`` when set."""

    def __post_init__(self) -> None:
        if self.activation_m != 0.0 and self.activation_m <= self.delta_m:
            raise ValueError(f"activation_m: expected 0 or > delta_m ({self.delta_m}), got {self.activation_m}")
        if self.num_boxes < 0 or self.num_cylinders < 0 or self.num_boxes + self.num_cylinders == 0:
            raise ValueError(f"expected >= 1 obstacle slot, got {self.num_boxes} boxes, {self.num_cylinders} cylinders")
        if len(self.body_xy_idx) != len(self.body_radii_m) or not self.body_xy_idx:
            raise ValueError(
                f"body_xy_idx and body_radii_m: expected equal non-zero lengths, got "
                f"{len(self.body_xy_idx)} and {len(self.body_radii_m)}"
            )
        if self.delta_m <= 0.0:
            raise ValueError(f"delta_m: expected > 0, got {self.delta_m}")


class ObstacleCost(nn.Module):
    """``G(x0, params)`` of the module docstring; params (B, P) from :meth:`ObstacleScene.to_params`."""

    param_dim: int
    param_names: list[str]

    def __init__(self, cfg: ObstacleCostConfig) -> None:
        super().__init__()
        self.num_boxes = int(cfg.num_boxes)
        self.num_cylinders = int(cfg.num_cylinders)
        self.x_idx = [int(i) for i, _ in cfg.body_xy_idx]
        self.y_idx = [int(j) for _, j in cfg.body_xy_idx]
        self.radii = [float(r) for r in cfg.body_radii_m]
        self.delta = float(cfg.delta_m)
        self.activation = float(cfg.activation_m)
        self.param_dim = self.num_boxes * BOX_PARAMS + self.num_cylinders * CYLINDER_PARAMS
        names: list[str] = []
        for k in range(self.num_boxes):
            names += [f"box{k}_{n}" for n in ("x_m", "y_m", "half_x_m", "half_y_m", "yaw_rad", "active")]
        for k in range(self.num_cylinders):
            names += [f"cylinder{k}_{n}" for n in ("x_m", "y_m", "radius_m", "active")]
        self.param_names = names

    def forward(self, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x0 (B, H, D) physical trajectory, params (B, P) -> (B,) cost."""
        cost = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)  # (B,)
        for b in range(len(self.radii)):
            p = torch.stack([x0[:, :, self.x_idx[b]], x0[:, :, self.y_idx[b]]], dim=-1)  # (B, H, 2)
            clearance = scene_sdf(p, params, self.num_boxes, self.num_cylinders) - self.radii[b]  # (B, H)
            barrier = relaxed_log_barrier(clearance, self.delta)  # (B, H)
            if self.activation > 0.0:
                barrier = torch.clamp(barrier + math.log(self.activation), min=0.0)
            cost = cost + barrier.sum(dim=1)
        return cost
