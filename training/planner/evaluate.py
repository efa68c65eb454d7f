"""Closed-loop evaluation of an exported G1 planner in MuJoCo: joystick tracking, waypoints, obstacles, under the
sim-to-sim conditions of the expert benchmark.

    python -m training.planner.evaluate --planner assets/g1_planner/planner.pt --seed 7

The planner is the TorchScript file of ``python -m deploy.export_planner`` (what the deploy runtime runs), driven
by :class:`training.planner.control.PlannerController`; its state comes from a named state source
(``state_source``; :data:`training.planner.control.STATE_SOURCES`): by default the base-state estimator on the
simulated G1's MEMS sensors, what a real G1 allows; ``ground_truth`` (the simulator's base state) for debugging and
to measure what the estimator costs.

Rows (fixed seeds, so reruns give the same figures; ``seed`` draws other commands, initial states, goals and noise):

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

Conditions: every row runs on the nominal robot; the rows in ``sim_to_sim_rows`` run again under each other
condition of ``conditions`` (:data:`training.locomotion.evaluate.SIM_TO_SIM`, the expert benchmark's physics step,
action latency, friction and mass rows), the expert on the same worlds and seeds, so ``expert_ratio`` (a tracking
row's velocity error over the expert's in the same condition) compares like with like. ``relative_lin_err`` is
mean |v - v_cmd| / mean |v_cmd| (the velocity tracking error BeyondMimic, Liao et al. 2025, reports in percent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import tyro

from envs.locomotion.env import G1LocomotionEnv
from envs.planner.onnx import PLANNER_FORMAT
from envs.planner.runtime import gate_offsets
from envs.tasks.route import RouteConfig
from robot.files import atomic_write_text, read_metadata_beside
from training.locomotion.evaluate import (
    DEFAULT_EXPERT_POLICY,
    PUSHES,
    PUSHES_MODERATE,
    SIM_TO_SIM,
    Conditions,
    EvalConfig,
    evaluate,
    load_exported_policy,
)
from training.planner.collect import RecordingEnv
from training.planner.control import (  # noqa: F401 (re-exported: the evaluation's public names)
    STATE_SOURCES,
    ControlHistory,
    PlannerController,
    expert_task,
)
from training.planner.navigation import KEEPOUT_ROWS, NAVIGATION_ROWS, ObstacleRecordingEnv, navigate  # noqa: F401

DEFAULT_PLANNER = Path(__file__).resolve().parents[2] / "assets" / "g1_planner" / "planner.pt"
"""The committed G1 planner (``planner.pt`` + ``planner.json``)."""
ROWS = ("expert", "joystick", "joystick_feasibility", "unguided", *NAVIGATION_ROWS)
TRACKING_ROWS = ("expert", "joystick", "joystick_feasibility", "unguided")
DEFAULT_ROWS = tuple(r for r in ROWS if r not in ("joystick_feasibility", *KEEPOUT_ROWS))
"""Rows run unless others are named (``joystick_feasibility`` and the keep-out rows need a planner with the
feasibility or keep-out term)."""
CONDITIONS = {c.name: c for c in (*SIM_TO_SIM, PUSHES_MODERATE, PUSHES)}
"""The expert benchmark's conditions by row name (one definition: ``SIM_TO_SIM``), plus harder pushes than the
planner's data (``PUSHES_MODERATE``, ``PUSHES``, for the feasibility term's rows; not run unless named)."""


def load_planner(path: Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The exported G1 planner and its metadata; errors name the missing or foreign file."""
    meta = read_metadata_beside(path, PLANNER_FORMAT)
    if "ctrl_dt_s" not in meta.get("extra", {}):
        raise ValueError(f"{path.with_suffix('.json')}: not an exported G1 planner (export with deploy.export_planner)")
    return torch.jit.load(str(path), map_location="cpu").eval(), meta


@dataclass
class PlannerEvalConfig:
    """What to evaluate and how."""

    planner: Path = DEFAULT_PLANNER
    """Exported planner (``.pt`` with its ``.json``)."""
    expert: Path = DEFAULT_EXPERT_POLICY
    """Walking expert (its ``config.json`` beside it defines the simulated task: gains, periods, model)."""
    rows: tuple[str, ...] = DEFAULT_ROWS
    """Which rows to run (from :data:`ROWS`)."""
    conditions: tuple[str, ...] = tuple(c.name for c in SIM_TO_SIM)
    """Physics conditions (names in :data:`CONDITIONS`; by default the expert benchmark's ``SIM_TO_SIM``); the first
    should be nominal."""
    sim_to_sim_rows: tuple[str, ...] = ("expert", "joystick", "joystick_feasibility", "waypoint")
    """Rows also run under the conditions other than nominal (the rest run on the nominal robot only)."""
    feasibility_gate: float = 1.0
    """Gate of the feasibility term in the ``*_feasibility`` rows (a planner exported with ``--feasibility-critic``);
    every other row runs with it closed."""
    state_source: str = "estimator"
    """Where the planner's state comes from (``training.planner.control.STATE_SOURCES``; ``ground_truth`` is the
    simulator's, for debugging and for measuring the estimator)."""
    episodes: int = 32
    """Worlds per row (one episode or trial each)."""
    episode_length_s: float = 20.0
    """Joystick episode length."""
    command_interval_s: float = 5.0
    """Joystick: a new command every this long."""
    goal_distance_m: tuple[float, float] = (2.0, 10.0)
    """Waypoint and obstacle trials: goal distance range."""
    goal_lookahead_m: float | None = 1.5
    """Waypoint rows: the cost's target is the goal, or the point this far along the straight line to it when the
    goal is farther (a carrot, as the obstacle rows' route gives one); None: always the goal itself."""
    goal_min_lookahead_m: float = 0.8
    """Waypoint rows with a carrot: once the goal is nearer than this, the target lies this far along the line,
    past the goal, so the pull does not fade before the reach radius (``envs.tasks.route.pursuit_point``)."""
    reach_radius_m: float = 0.3
    """Waypoint success radius."""
    waypoint_time_s: float = 30.0
    """Time allowed per waypoint trial (10 m at the ~0.55 m/s the planner walks to a goal takes ~18 s)."""
    obstacle_half_width_m: float = 0.5
    """Obstacle trials: half width of the box placed halfway between start and goal, across the path."""
    obstacle_gate: float = 1.0
    """Obstacle trials: the obstacle cost's gate (its weight per call; the export's weight multiplies it)."""
    keepout_radius_m: float = 0.5
    """Keep-out trials: radius of the disc placed halfway to the goal (the planner's keep-out critic must have
    learned the same)."""
    keepout_side_offset_m: float = 0.1
    """Keep-out trials: the disc's centre lies up to this far to either side of the straight path."""
    keepout_gate: float = 1.0
    """``keepout_feasibility`` trials: the keep-out term's gate."""
    route: RouteConfig = field(default_factory=lambda: RouteConfig(min_lookahead_m=0.8))
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
        for name, allowed in (("rows", ROWS), ("sim_to_sim_rows", ROWS), ("conditions", tuple(CONDITIONS))):
            unknown = set(getattr(self, name)) - set(allowed)
            if unknown:
                raise ValueError(f"{name}: unknown {sorted(unknown)}; expected some of {list(allowed)}")
        if not self.conditions:
            raise ValueError(f"conditions: expected at least one of {list(CONDITIONS)}, got none")
        if self.state_source not in STATE_SOURCES:
            raise ValueError(f"state_source: expected one of {sorted(STATE_SOURCES)}, got {self.state_source!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes: expected >= 1, got {self.episodes}")
        if self.goal_lookahead_m is not None and self.goal_lookahead_m <= 0.0:
            raise ValueError(f"goal_lookahead_m: expected > 0 or None, got {self.goal_lookahead_m}")
        if self.goal_lookahead_m is not None and not 0.0 <= self.goal_min_lookahead_m <= self.goal_lookahead_m:
            raise ValueError(
                f"goal_min_lookahead_m: expected 0 <= goal_min_lookahead_m <= goal_lookahead_m "
                f"({self.goal_lookahead_m}), got {self.goal_min_lookahead_m}"
            )
        if self.keepout_radius_m <= 0.0 or self.keepout_side_offset_m < 0.0:
            raise ValueError(
                f"keepout_radius_m > 0 and keepout_side_offset_m >= 0 expected, got {self.keepout_radius_m}, "
                f"{self.keepout_side_offset_m}"
            )
        lo, hi = self.goal_distance_m
        if not 0.0 < lo <= hi:
            raise ValueError(f"goal_distance_m: expected 0 < low <= high, got {self.goal_distance_m}")

    def rows_under(self, conditions: Conditions) -> tuple[str, ...]:
        """The rows to run under ``conditions``, in :data:`ROWS` order."""
        nominal = conditions == Conditions()
        return tuple(r for r in ROWS if r in self.rows and (nominal or r in self.sim_to_sim_rows))


def feasibility_gate_offset(meta: dict[str, Any], gate: float) -> int | None:
    """Offset of the feasibility term's gate, None when ``gate`` is 0; a planner without the term is an error."""
    if gate == 0.0:
        return None
    gates = gate_offsets(meta["cost_terms"])
    if "feasibility" not in gates:
        raise ValueError(
            "a *_feasibility row needs a planner exported with a feasibility term "
            "(python -m deploy.export_planner --feasibility-critic ...)"
        )
    return gates["feasibility"]


def joystick_params(meta: dict[str, Any], feasibility_gate: float = 0.0) -> Any:
    """``params_fn(env) -> (N, P)``: every world's joystick term on, with its current command (and the
    feasibility term at ``feasibility_gate``)."""
    gates = gate_offsets(meta["cost_terms"])
    P = int(meta["cost_param_dim"])
    feasibility = feasibility_gate_offset(meta, feasibility_gate)

    def joystick(env: G1LocomotionEnv) -> torch.Tensor:
        params = torch.zeros(env.num_envs, P)
        o = gates["joystick"]
        params[:, o] = 1.0
        params[:, o + 1 : o + 4] = torch.from_numpy(env.command).float()
        if feasibility is not None:
            params[:, feasibility] = feasibility_gate
        return params

    return joystick


def joystick_rows(
    cfg: PlannerEvalConfig, module: Any, meta: dict[str, Any], conditions: Conditions | None = None
) -> list[dict[str, Any]]:
    """Expert, guided and unguided joystick tracking on the same worlds and commands under ``conditions``."""
    conditions = conditions or Conditions()
    ecfg = EvalConfig(
        episodes=cfg.episodes,
        episode_length_s=cfg.episode_length_s,
        command_interval_s=cfg.command_interval_s,
        num_threads=cfg.num_threads,
        seed=cfg.seed,
        train=expert_task(cfg.expert),
    )
    rows = []
    for row in (r for r in TRACKING_ROWS if r in cfg.rows_under(conditions)):
        if row == "expert":
            policy, _ = load_exported_policy(cfg.expert)
            result = evaluate(policy, ecfg, conditions, env_cls=RecordingEnv)
            source = "ground_truth"  # the expert reads its own (noisy) observation, not the planner state
        else:
            gate = cfg.feasibility_gate if row == "joystick_feasibility" else 0.0
            params = (lambda env: None) if row == "unguided" else joystick_params(meta, gate)
            ctrl = PlannerController(module, meta, params, cfg.seed, cfg.state_source)
            result = evaluate(ctrl, ecfg, conditions, env_cls=RecordingEnv)  # type: ignore[arg-type]
            source = cfg.state_source
        d = result.as_dict()
        d.pop("ok")
        d.update(name=row, condition=conditions.name, state_source=source)
        d["relative_lin_err"] = d["lin_err_m_per_s"] / max(d["mean_command_speed_m_per_s"], 1e-9)
        rows.append(d)
    expert = next((r for r in rows if r["name"] == "expert"), None)
    for r in rows:
        if expert is not None and r is not expert:
            r["expert_ratio"] = r["lin_err_m_per_s"] / max(expert["lin_err_m_per_s"], 1e-9)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures over all conditions: worst joystick fall rate and expert ratio, the relative tracking error of the
    joystick rows (sum of mean errors over sum of mean command speeds) and the worst waypoint success."""
    out: dict[str, Any] = {}
    for name in ("joystick", "joystick_feasibility", "expert"):
        track = [r for r in rows if r["name"] == name]
        if track:
            speed = sum(r["mean_command_speed_m_per_s"] for r in track)
            out[f"{name}_relative_lin_err"] = sum(r["lin_err_m_per_s"] for r in track) / max(speed, 1e-9)
            out[f"{name}_max_fall_rate"] = max(r["fall_rate"] for r in track)
    ratios = [r["expert_ratio"] for r in rows if r["name"] == "joystick" and "expert_ratio" in r]
    if ratios:
        out["joystick_max_expert_ratio"] = max(ratios)
    waypoint = [r["success_rate"] for r in rows if r["name"] == "waypoint"]
    if waypoint:
        out["waypoint_min_success_rate"] = min(waypoint)
    return out


def run(cfg: PlannerEvalConfig) -> list[dict[str, Any]]:
    """All requested rows under every requested condition (module docstring)."""
    torch.set_num_threads(cfg.torch_threads)
    module, meta = load_planner(cfg.planner)
    rows: list[dict[str, Any]] = []
    for name in cfg.conditions:
        conditions = CONDITIONS[name]
        rows += joystick_rows(cfg, module, meta, conditions)
        rows += [
            navigate(cfg, module, meta, row, conditions) for row in cfg.rows_under(conditions) if row in NAVIGATION_ROWS
        ]
    if cfg.json_out is not None:
        payload = {
            "planner": str(cfg.planner),
            "state_source": cfg.state_source,
            "seed": cfg.seed,
            "episodes": cfg.episodes,
            "goal_distance_m": list(cfg.goal_distance_m),
            "goal_lookahead_m": cfg.goal_lookahead_m,
            "goal_min_lookahead_m": cfg.goal_min_lookahead_m,
            "rows": rows,
            "summary": summary(rows),
        }
        cfg.json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg.json_out, json.dumps(payload, indent=2) + "\n")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown tables: tracking rows, then navigation rows."""

    def f(v: Any, nd: int = 3) -> str:
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    out = []
    track = [r for r in rows if "lin_err_m_per_s" in r]
    if track:
        out.append(
            "| condition | row | episodes | fall rate | v err (m/s) | x expert | v err / mean v cmd | yaw err (rad/s) |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for r in track:
            out.append(
                f"| {r.get('condition', 'nominal')} | {r['name']} | {r['episodes']} | {f(r['fall_rate'])} "
                f"| {f(r['lin_err_m_per_s'])} | {f(r.get('expert_ratio'), 2)} | {f(r.get('relative_lin_err'))} "
                f"| {f(r['yaw_err_rad_per_s'])} |"
            )
    nav = [r for r in rows if "success_rate" in r]
    if nav:
        out.append("")
        out.append(
            "| condition | row | trials | success | reached | falls | collisions | keep-out entries | time to goal (s) "
            "| final dist (m) |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in nav:
            out.append(
                f"| {r.get('condition', 'nominal')} | {r['name']} | {r['episodes']} | {f(r['success_rate'])} "
                f"| {f(r['reached_rate'])} | {f(r['fall_rate'])} | {f(r['collision_rate'])} "
                f"| {f(r.get('keepout_entry_rate'))} "
                f"| {f(r['mean_time_to_goal_s'], 1)} | {f(r['mean_final_distance_m'], 2)} |"
            )
    return "\n".join(out)


def main(cfg: PlannerEvalConfig) -> None:
    """CLI entry point."""
    print(format_table(run(cfg)))


if __name__ == "__main__":
    main(tyro.cli(PlannerEvalConfig))
