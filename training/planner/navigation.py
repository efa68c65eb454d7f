"""Navigation trials of an exported G1 planner: waypoints, goals behind a wall, and goals past a keep-out region
that only a learned feasibility term knows (rows of :mod:`training.planner.evaluate`), under any
:class:`~training.locomotion.evaluate.Conditions` of the expert benchmark."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
import torch
from tqdm import tqdm

from envs.g1.vec_env import DomainRandomizationConfig
from envs.locomotion.config import CommandConfig, LocomotionConfig
from envs.locomotion.env import G1LocomotionEnv
from envs.planner.costs import points_to_plan_frame, scene_params_to_plan_frame
from envs.planner.runtime import gate_offsets
from envs.tasks.obstacles import BoxObstacle, ObstacleScene
from envs.tasks.route import Route, pursuit_point
from training.locomotion.evaluate import Conditions
from training.planner.collect import RecordingEnv
from training.planner.control import PlannerController, expert_task
from training.planner.estimated_state import planar_pose

if TYPE_CHECKING:
    from training.planner.evaluate import PlannerEvalConfig

NAVIGATION_ROWS = ("waypoint", "obstacles", "obstacles_off", "obstacles_direct", "keepout", "keepout_feasibility")
KEEPOUT_ROWS = ("keepout", "keepout_feasibility")
"""A keep-out disc across the straight path to the goal; the waypoint cost does not know it, and only in
``keepout_feasibility`` does the planner's keep-out term (``deploy.export_planner --keepout-critic``) get it."""


def task_under(train: LocomotionConfig, conditions: Conditions) -> LocomotionConfig:
    """The expert's task with the physics step of ``conditions`` (the other changes are applied per world by
    :class:`~training.locomotion.evaluate.FixedConditionsEnv`)."""
    robot = train.env.robot
    robot = dataclasses.replace(robot, model=dataclasses.replace(robot.model, physics_dt_s=conditions.physics_dt_s))
    return dataclasses.replace(train, env=dataclasses.replace(train.env, robot=robot))


class ObstacleRecordingEnv(RecordingEnv):
    """RecordingEnv with one box obstacle per world (placed per world by :meth:`place_obstacles`) and contact
    checks against it."""

    def _modify_spec(self, spec: mujoco.MjSpec) -> None:
        super()._modify_spec(spec)
        ObstacleScene(boxes=[BoxObstacle(center_xy_m=(100.0, 0.0), half_extents_xy_m=(0.1, 0.1))]).add_to_spec(spec)

    def place_obstacles(self, boxes: list[BoxObstacle]) -> None:
        """Move world i's box to ``boxes[i]`` (every world has its own compiled model)."""
        if len(boxes) != self.num_envs:
            raise ValueError(f"expected one box per world ({self.num_envs}), got {len(boxes)}")
        g = self.models[0].geom("obstacle_box_0").id
        for m, box in zip(self.models, boxes, strict=True):
            m.geom_pos[g, :2] = box.center_xy_m
            m.geom_quat[g] = (math.cos(box.yaw_rad / 2.0), 0.0, 0.0, math.sin(box.yaw_rad / 2.0))
            m.geom_size[g, :2] = box.half_extents_xy_m

    def touching_obstacle(self) -> np.ndarray:
        """(N,) bool: the robot touches its world's obstacle now."""
        g = self.models[0].geom("obstacle_box_0").id
        out = np.zeros(self.num_envs, dtype=bool)
        for i in range(self.num_envs):
            d = self.env_data(i)
            c = d.contact[: d.ncon]
            out[i] = bool(np.any((c.geom1 == g) | (c.geom2 == g)))
        return out


def carrot(goals_xy: np.ndarray, xy: np.ndarray, lookahead_m: float, min_lookahead_m: float = 0.0) -> np.ndarray:
    """(N, 2) pure-pursuit targets on the straight lines from ``xy (N, 2)`` to ``goals_xy (N, 2)``: the point
    ``lookahead_m`` along the line, the goal once closer, or the point ``min_lookahead_m`` along the line (past the
    goal) once the goal is closer than that (:func:`envs.tasks.route.pursuit_point`, row by row).

    The planner's action head was fitted on goals where the expert was 0.5-5 s later (about 0.2-4 m); a far goal
    pulls the plan into a fast walk (goals beyond ~5 m made the planner fall), a near one into steps too short to
    reach it. The obstacle rows' route is followed the same way."""
    return np.stack(
        [pursuit_point(np.stack([p, g]), lookahead_m, min_lookahead_m) for p, g in zip(xy, goals_xy, strict=True)]
    )


def navigate(
    cfg: PlannerEvalConfig, module: Any, meta: dict[str, Any], row: str, conditions: Conditions | None = None
) -> dict[str, Any]:
    """One navigation row (:data:`NAVIGATION_ROWS`) of ``cfg.episodes`` trials under ``conditions`` (nominal when
    None); the goals depend on ``cfg.seed`` only, so every condition sees the same trials."""
    conditions = conditions or Conditions()
    train = task_under(expert_task(cfg.expert), conditions)
    n = cfg.episodes
    rng = np.random.default_rng(cfg.seed + 17)
    dist = rng.uniform(*cfg.goal_distance_m, size=n)
    angle = rng.uniform(-math.pi, math.pi, size=n)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    env_cfg = dataclasses.replace(
        train,
        num_envs=n,
        num_threads=cfg.num_threads,
        randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0),
        episode_length_s=cfg.waypoint_time_s + 1.0,
        commands=CommandConfig(standing_fraction=1.0, curriculum_initial_scale=1.0, curriculum_step=0.0),
        seed=cfg.seed,
    )
    with_obstacle = row not in ("waypoint", *KEEPOUT_ROWS)
    env = ObstacleRecordingEnv(env_cfg, conditions) if with_obstacle else RecordingEnv(env_cfg, conditions)
    gates, P = gate_offsets(meta["cost_terms"]), int(meta["cost_param_dim"])
    start_xy = env.qpos[:, :2].copy()
    goals = start_xy + dist[:, None] * direction
    scene_params = None
    boxes: list[BoxObstacle] = []
    if isinstance(env, ObstacleRecordingEnv):
        boxes = [  # a wall across the straight path, halfway to the goal
            BoxObstacle(
                center_xy_m=tuple(start_xy[i] + 0.5 * dist[i] * direction[i]),
                half_extents_xy_m=(0.15, cfg.obstacle_half_width_m),
                yaw_rad=float(angle[i]),
            )
            for i in range(n)
        ]
        env.place_obstacles(boxes)
        scene_params = np.stack([ObstacleScene(boxes=[b]).to_params(1, 2) for b in boxes])
        if scene_params.shape[1] != P - gates["obstacles"] - 1:
            env.close()
            raise ValueError("the planner's obstacle parameters do not hold one box and two cylinders")
    keepout = row in KEEPOUT_ROWS
    region = None
    if keepout:  # the disc's centre halfway to the goal, a little to either side (its own draws: goals unchanged)
        side = np.random.default_rng(cfg.seed + 29).uniform(-1.0, 1.0, size=n) * cfg.keepout_side_offset_m
        normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
        region = start_xy + 0.5 * dist[:, None] * direction + side[:, None] * normal
        if row == "keepout_feasibility":
            check_keepout_term(meta, cfg.keepout_radius_m)
    routes = (
        [Route(ObstacleScene(boxes=[b]), goals[i], cfg.route) for i, b in enumerate(boxes)]
        if row in ("obstacles", "obstacles_off")
        else None
    )

    def params_fn(e: G1LocomotionEnv) -> torch.Tensor:
        # The goal in the plan frame from the pose the controller knows (the estimator's, when it is the source);
        # success and collisions below are still scored on the simulator's truth.
        xy, yaw = planar_pose(e, ctrl.history.source)  # (N, 2), (N,)
        params = np.zeros((e.num_envs, P))
        o = gates["waypoint"]
        params[:, o] = 1.0
        if routes is None:
            targets = (
                goals
                if cfg.goal_lookahead_m is None
                else carrot(goals, xy, cfg.goal_lookahead_m, cfg.goal_min_lookahead_m)
            )
        else:
            targets = np.stack([r.target(xy[i]) for i, r in enumerate(routes)])
        params[:, o + 1 : o + 3] = points_to_plan_frame(targets, xy, yaw)
        if scene_params is not None and row in ("obstacles", "obstacles_direct"):
            o = gates["obstacles"]
            params[:, o] = cfg.obstacle_gate
            for i in range(e.num_envs):
                params[i, o + 1 :] = scene_params_to_plan_frame(scene_params[i], 1, 2, xy[i], yaw[i])
        if region is not None and row == "keepout_feasibility":
            o = gates["keepout"]
            params[:, o] = cfg.keepout_gate
            params[:, o + 1 : o + 3] = points_to_plan_frame(region, xy, yaw)
        return torch.from_numpy(params).float()

    ctrl = PlannerController(module, meta, params_fn, cfg.seed, cfg.state_source)
    ctrl.bind(env)
    steps = round(cfg.waypoint_time_s / env.cfg.env.ctrl_dt_s)
    reached = np.zeros(n, dtype=bool)
    fell = np.zeros(n, dtype=bool)
    collided = np.zeros(n, dtype=bool)
    entered = np.zeros(n, dtype=bool)
    time_to_goal = np.full(n, np.nan)
    obs = env.get_observations()["policy"]
    try:
        for t in tqdm(range(steps), desc=row, unit="step", leave=False):
            active = ~(reached | fell)
            with torch.inference_mode():
                actions = ctrl(obs)
            groups, _, terminated, _, _ = env.step(actions)
            fell |= active & terminated.numpy()
            if isinstance(env, ObstacleRecordingEnv):
                collided |= active & env.touching_obstacle()
            if region is not None:
                entered |= active & (np.linalg.norm(env.qpos[:, :2] - region, axis=1) < cfg.keepout_radius_m)
            d = np.linalg.norm(env.qpos[:, :2] - goals, axis=1)
            now = active & ~fell & (d < cfg.reach_radius_m)
            time_to_goal[now] = (t + 1) * env.cfg.env.ctrl_dt_s
            reached |= now
            obs = groups["policy"]
            if not active.any():
                break
        final = np.linalg.norm(env.qpos[:, :2] - goals, axis=1)
    finally:
        env.close()
    success = reached & ~fell & ~collided & ~entered
    return {
        "name": row,
        "condition": conditions.name,
        "state_source": cfg.state_source,
        "episodes": n,
        "success_rate": float(success.mean()),
        "reached_rate": float(reached.mean()),
        "fall_rate": float(fell.mean()),
        "collision_rate": float(collided.mean()) if with_obstacle else None,
        "keepout_entry_rate": float(entered.mean()) if keepout else None,
        "mean_time_to_goal_s": float(np.nanmean(time_to_goal)) if reached.any() else None,
        "mean_final_distance_m": float(np.where(reached, 0.0, final).mean()),
    }


def check_keepout_term(meta: dict[str, Any], radius_m: float) -> None:
    """The planner carries a keep-out term whose critic learned a disc of at least ``radius_m``; one clear error
    otherwise. A critic for a larger disc than the trials' is a safety margin; one for a smaller disc would steer the
    robot round the wrong region."""
    keepout = meta.get("extra", {}).get("keepout")
    if keepout is None:
        raise ValueError(
            "the keepout_feasibility row needs a planner exported with a keep-out term "
            "(python -m deploy.export_planner --keepout-critic ...)"
        )
    if float(keepout["radius_m"]) < radius_m - 1e-9:
        raise ValueError(
            f"keepout_radius_m: the trials use {radius_m} m, the planner's keep-out critic learned only "
            f"{keepout['radius_m']} m"
        )
