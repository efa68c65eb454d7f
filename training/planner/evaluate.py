"""Closed-loop evaluation of an exported G1 planner in MuJoCo: joystick tracking, waypoints, obstacles.

    python -m training.planner.evaluate --planner assets/g1_planner/planner.pt

The planner is the TorchScript file of ``python -m deploy.export_planner`` (what the deploy runtime runs). Every
control step each world's planner state is read from the simulator, the last ``Hh`` states and the ``Hh``
actions before the current one are inpainted, and the first planned action is executed (receding horizon; the
previous plan warm-starts the next when the export has ``rolling_start > 0``).

Rows (fixed seeds, so reruns give the same figures):

- ``expert``: the walking expert the data came from, same worlds and commands (the reference);
- ``joystick``: commands from the expert's ranges, changed every ``command_interval_s``, joystick cost on;
- ``unguided``: the same with every cost gate closed (the planner only imitates the data);
- ``waypoint``: one goal per world at ``goal_distance_m`` in a random direction; success = within
  ``reach_radius_m`` before ``waypoint_time_s`` without falling;
- ``obstacles``: a goal behind a wall across the straight path; success additionally requires no contact between
  the robot and the wall. The waypoint cost follows a route round the wall (:mod:`envs.tasks.route`: the
  shortest path around the wall grown by ``route.clearance_m``, the point ``route.lookahead_m`` along it) and
  the obstacle barrier keeps the plan clear;
- ``obstacles_off``: the same trials and route with the obstacle cost off (its collision rate is what the
  barrier prevents);
- ``obstacles_direct``: the same trials with the obstacle cost on and the waypoint cost on the goal itself (no
  route): the planner alone, whose 0.3 s horizon cannot see round the wall.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch
import tyro
from tqdm import tqdm

from envs.locomotion import CommandConfig, G1LocomotionEnv, LocomotionConfig
from envs.observations import yaw_from_quat
from envs.planner_runtime import ExportedPlanner, gate_offsets
from envs.tasks.g1_planner import points_to_plan_frame, scene_params_to_plan_frame
from envs.tasks.obstacles import BoxObstacle, ObstacleScene
from envs.tasks.route import Route, RouteConfig
from envs.vec_env import DomainRandomizationConfig
from robot.configio import from_jsonable
from robot.files import read_metadata_beside
from training.locomotion.collect import RecordingEnv
from training.locomotion.evaluate import (
    DEFAULT_EXPERT_POLICY,
    Conditions,
    EvalConfig,
    evaluate,
    load_exported_policy,
)

DEFAULT_PLANNER = Path(__file__).resolve().parents[2] / "assets" / "g1_planner" / "planner.pt"
"""The committed G1 planner (``planner.pt`` + ``planner.json``)."""
ROWS = ("expert", "joystick", "unguided", "waypoint", "obstacles", "obstacles_off", "obstacles_direct")
NAVIGATION_ROWS = ("waypoint", "obstacles", "obstacles_off", "obstacles_direct")


def load_planner(path: Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The exported G1 planner and its metadata; errors name the missing or foreign file."""
    meta = read_metadata_beside(path, "steer.planner")
    if "ctrl_dt_s" not in meta.get("extra", {}):
        raise ValueError(f"{path.with_suffix('.json')}: not an exported G1 planner (export with deploy.export_planner)")
    return torch.jit.load(str(path), map_location="cpu").eval(), meta


class ControlHistory:
    """What a planner conditions on at each step of N worlds: the last ``Hh`` planner states and the ``Hh`` actions
    executed before the current one (a world that has just reset repeats its first state and has zero actions)."""

    def __init__(self, num_envs: int, history: int, action_dim: int) -> None:
        self.history = history
        self.states: torch.Tensor | None = None
        self.actions = torch.zeros(num_envs, history, action_dim)
        self.fresh = torch.ones(num_envs, dtype=torch.bool)

    def observe(self, env: RecordingEnv) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the current state; returns ``states (N, Hh, S)`` (oldest first) and ``actions (N, Hh, A)``.
        ``self.fresh (N,)`` marks the worlds whose episode has just begun."""
        state = torch.from_numpy(env.step_record()["state"])  # (N, S)
        fresh = torch.from_numpy(env.episode_length == 0)
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

    ``params_fn(env) -> (N, P)`` gives each world's cost parameters at this step (None: unguided sampling).
    """

    def __init__(self, module: torch.jit.ScriptModule, meta: dict[str, Any], params_fn: Any, seed: int) -> None:
        self.planner = ExportedPlanner(module, meta, seed)
        self.params_fn = params_fn
        self.env: RecordingEnv | None = None

    def bind(self, env: G1LocomotionEnv) -> None:
        """Act in ``env`` (a :class:`RecordingEnv`: the planner state needs the tracked-body sensors)."""
        if not isinstance(env, RecordingEnv):
            raise TypeError(f"the planner needs a RecordingEnv (tracked-body sensors), got {type(env).__name__}")
        self.env = env
        self.history = ControlHistory(env.num_envs, self.planner.history, self.planner.action_dim)
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


@dataclass
class PlannerEvalConfig:
    """What to evaluate and how."""

    planner: Path = DEFAULT_PLANNER
    """Exported planner (``.pt`` with its ``.json``)."""
    expert: Path = DEFAULT_EXPERT_POLICY
    """Walking expert (its ``config.json`` beside it defines the simulated task: gains, periods, model)."""
    rows: tuple[str, ...] = ROWS
    """Which rows to run."""
    episodes: int = 32
    """Worlds per row (one episode or trial each)."""
    episode_length_s: float = 20.0
    """Joystick episode length."""
    command_interval_s: float = 5.0
    """Joystick: a new command every this long."""
    goal_distance_m: tuple[float, float] = (2.0, 5.0)
    """Waypoint and obstacle trials: goal distance range."""
    reach_radius_m: float = 0.3
    """Waypoint success radius."""
    waypoint_time_s: float = 20.0
    """Time allowed per waypoint trial."""
    obstacle_half_width_m: float = 0.5
    """Obstacle trials: half width of the box placed halfway between start and goal, across the path."""
    obstacle_gate: float = 1.0
    """Obstacle trials: the obstacle cost's gate (its weight per call; the export's weight multiplies it)."""
    route: RouteConfig = dataclasses.field(default_factory=RouteConfig)
    """Obstacle trials: the route round the wall that the waypoint cost follows (not in ``obstacles_direct``)."""
    seed: int = 1
    """Seed of commands, goals, initial states and sampling noise."""
    num_threads: int = 2
    """Physics worker threads."""
    torch_threads: int = 1
    """Torch threads for the planner."""
    json_out: Path | None = None
    """Also write the rows as JSON here."""

    def __post_init__(self) -> None:
        unknown = set(self.rows) - set(ROWS)
        if unknown:
            raise ValueError(f"rows: unknown {sorted(unknown)}; expected some of {ROWS}")
        if self.episodes < 1:
            raise ValueError(f"episodes: expected >= 1, got {self.episodes}")


def expert_task(expert: Path) -> LocomotionConfig:
    """The simulated task (gains, periods, model) of the expert whose data the planner learned: its training
    ``config.json`` beside the exported policy."""
    config_path = expert.with_name("config.json")
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: the expert's training config must sit beside {expert.name}")
    return from_jsonable(LocomotionConfig, json.loads(config_path.read_text())["env"], f"{config_path}:env")


def joystick_params(meta: dict[str, Any]) -> Any:
    """``params_fn(env) -> (N, P)``: every world's joystick term on, with its current command."""
    gates = gate_offsets(meta["cost_terms"])
    P = int(meta["cost_param_dim"])

    def joystick(env: G1LocomotionEnv) -> torch.Tensor:
        params = torch.zeros(env.num_envs, P)
        o = gates["joystick"]
        params[:, o] = 1.0
        params[:, o + 1 : o + 4] = torch.from_numpy(env.command).float()
        return params

    return joystick


def joystick_rows(cfg: PlannerEvalConfig, module: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Expert, guided and unguided joystick tracking on the same worlds and commands."""
    train = expert_task(cfg.expert)
    ecfg = EvalConfig(
        episodes=cfg.episodes,
        episode_length_s=cfg.episode_length_s,
        command_interval_s=cfg.command_interval_s,
        num_threads=cfg.num_threads,
        seed=cfg.seed,
        train=train,
    )
    joystick = joystick_params(meta)
    rows = []
    for row in ("expert", "joystick", "unguided"):
        if row not in cfg.rows:
            continue
        if row == "expert":
            policy, _ = load_exported_policy(cfg.expert)
            result = evaluate(policy, ecfg, Conditions(name=row), env_cls=RecordingEnv)
        else:
            ctrl = PlannerController(module, meta, joystick if row == "joystick" else lambda env: None, cfg.seed)
            result = evaluate(ctrl, ecfg, Conditions(name=row), env_cls=RecordingEnv)  # type: ignore[arg-type]
        d = result.as_dict()
        d.pop("ok")
        rows.append(d)
    return rows


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


def navigation_rows(cfg: PlannerEvalConfig, module: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Waypoint and obstacle trials (module docstring)."""
    rows = []
    for row in NAVIGATION_ROWS:
        if row in cfg.rows:
            rows.append(navigate(cfg, module, meta, row))
    return rows


def navigate(cfg: PlannerEvalConfig, module: Any, meta: dict[str, Any], row: str) -> dict[str, Any]:
    """One navigation row (:data:`NAVIGATION_ROWS`) of ``cfg.episodes`` trials."""
    train = expert_task(cfg.expert)
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
    with_obstacle = row != "waypoint"
    env = ObstacleRecordingEnv(env_cfg, Conditions()) if with_obstacle else RecordingEnv(env_cfg, Conditions())
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
    routes = (
        [Route(ObstacleScene(boxes=[b]), goals[i], cfg.route) for i, b in enumerate(boxes)]
        if row in ("obstacles", "obstacles_off")
        else None
    )

    def params_fn(e: G1LocomotionEnv) -> torch.Tensor:
        qpos = e.qpos
        yaw = yaw_from_quat(qpos[:, 3:7])
        params = np.zeros((e.num_envs, P))
        o = gates["waypoint"]
        params[:, o] = 1.0
        targets = goals if routes is None else np.stack([r.target(qpos[i, :2]) for i, r in enumerate(routes)])
        params[:, o + 1 : o + 3] = points_to_plan_frame(targets, qpos[:, :2], yaw)
        if scene_params is not None and row in ("obstacles", "obstacles_direct"):
            o = gates["obstacles"]
            params[:, o] = cfg.obstacle_gate
            for i in range(e.num_envs):
                params[i, o + 1 :] = scene_params_to_plan_frame(scene_params[i], 1, 2, qpos[i, :2], yaw[i])
        return torch.from_numpy(params).float()

    ctrl = PlannerController(module, meta, params_fn, cfg.seed)
    ctrl.bind(env)
    steps = round(cfg.waypoint_time_s / env.cfg.env.ctrl_dt_s)
    reached = np.zeros(n, dtype=bool)
    fell = np.zeros(n, dtype=bool)
    collided = np.zeros(n, dtype=bool)
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
    success = reached & ~fell & ~collided
    return {
        "name": row,
        "episodes": n,
        "success_rate": float(success.mean()),
        "reached_rate": float(reached.mean()),
        "fall_rate": float(fell.mean()),
        "collision_rate": float(collided.mean()) if with_obstacle else None,
        "mean_time_to_goal_s": float(np.nanmean(time_to_goal)) if reached.any() else None,
        "mean_final_distance_m": float(np.where(reached, 0.0, final).mean()),
    }


def run(cfg: PlannerEvalConfig) -> list[dict[str, Any]]:
    """All requested rows."""
    torch.set_num_threads(cfg.torch_threads)
    module, meta = load_planner(cfg.planner)
    rows = joystick_rows(cfg, module, meta) + navigation_rows(cfg, module, meta)
    if cfg.json_out is not None:
        cfg.json_out.parent.mkdir(parents=True, exist_ok=True)
        cfg.json_out.write_text(json.dumps({"planner": str(cfg.planner), "rows": rows}, indent=2) + "\n")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown tables: tracking rows, then navigation rows."""

    def f(v: Any, nd: int = 3) -> str:
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    out = []
    track = [r for r in rows if "lin_err_m_per_s" in r]
    if track:
        out.append("| row | episodes | fall rate | v err (m/s) | yaw err (rad/s) | mean cmd speed (m/s) |")
        out.append("|---|---|---|---|---|---|")
        for r in track:
            out.append(
                f"| {r['name']} | {r['episodes']} | {f(r['fall_rate'])} | {f(r['lin_err_m_per_s'])} "
                f"| {f(r['yaw_err_rad_per_s'])} | {f(r['mean_command_speed_m_per_s'])} |"
            )
    nav = [r for r in rows if "success_rate" in r]
    if nav:
        out.append("")
        out.append("| row | trials | success | reached | falls | collisions | time to goal (s) | final dist (m) |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in nav:
            out.append(
                f"| {r['name']} | {r['episodes']} | {f(r['success_rate'])} | {f(r['reached_rate'])} "
                f"| {f(r['fall_rate'])} | {f(r['collision_rate'])} | {f(r['mean_time_to_goal_s'], 1)} "
                f"| {f(r['mean_final_distance_m'], 2)} |"
            )
    return "\n".join(out)


def main(cfg: PlannerEvalConfig) -> None:
    """CLI entry point."""
    print(format_table(run(cfg)))


if __name__ == "__main__":
    main(tyro.cli(PlannerEvalConfig))
