"""Export a trained G1 planner with its guidance costs to TorchScript (``planner.pt`` + ``planner.json``).

    python -m deploy.export_planner --model runs/g1_planner/model/planner_model.safetensors \\
        --out assets/g1_planner/planner.pt

The planner carries every G1 task cost, each behind a gate parameter (:class:`policies.diffusion.guidance.Gated`),
so one file serves joystick driving, waypoints and obstacle avoidance; the runtime turns terms on and off per
call. Parameter layout (also in ``planner.json`` under ``cost_terms``)::

    [joystick_gate, vx, vy, yaw_rate,            # command in the heading frame (m/s, m/s, rad/s)
     waypoint_gate, goal_x, goal_y,              # goal in the plan frame (m): origin at the root, x ahead
     obstacles_gate, <scene params>,             # boxes then cylinders, plan frame (envs.planner.costs)
     feasibility_gate,                           # only with --feasibility-critic (no parameters of its own)
     keepout_gate, region_x, region_y]           # only with --keepout-critic: the region's centre, plan frame

``--feasibility-critic runs/.../critic.safetensors`` adds FISOR's learned safety value as one more gated term
(:class:`envs.planner.feasibility.FeasibilityCost`: ``relu(V_h(x_t) - threshold)`` over the plan's future states,
from ``python -m training.planner.feasibility``); a runtime opens its gate to keep plans inside the feasible set.
``--keepout-critic`` adds a critic trained with a keep-out region (``--constraints.keepout-radius-m``) as the term
``keepout`` (:class:`envs.planner.feasibility.KeepOutCost`): the runtime passes the region's centre, and only this
term knows the region is there.

Sampling and guidance settings (mode, scale, steps, rolling start) can be changed at export without retraining.
``--onnx`` (``--onnx-int8``) also writes the ONNX Runtime export beside it (``planner.onnx`` and its companion
graphs, :mod:`deploy.export_planner_onnx`; docs/deploy_onnx.md says which file to run where).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro

from deploy.export import export_planner
from deploy.policies.metadata import PolicyMetadata
from envs.planner.costs import G1CostConfig, g1_joystick_cost, g1_obstacle_cost, g1_waypoint_cost
from envs.planner.feasibility import REGION_DIM, FeasibilityCost, FeasibleActionCost, KeepOutCost
from envs.planner.state import PLANNER_STATE_DIM, planner_state_names
from policies.diffusion.guidance import CostSum, Gated, GuidanceMode
from policies.diffusion.planner import DiffusionPlanner, PlannerConfig, load_planner_model, with_sampling
from policies.feasibility import load_feasibility_critic, load_feasibility_q
from robot.cli import run_cli
from robot.configio import from_jsonable
from robot.g1 import constants as C

DEFAULT_ROBOT_METADATA = Path(__file__).resolve().parents[1] / "assets" / "g1_walk" / "deploy" / "policy.json"
TASK_TERMS = ("joystick", "waypoint", "obstacles")


@dataclass
class ExportPlannerConfig:
    """Which trained planner to export, with which costs and sampler."""

    model: Path = Path("runs/g1_planner/model/planner_model.safetensors")
    """planner model written by ``python -m training.planner.train`` (``model/planner_model.safetensors``) or by
    ``training.planner.action_head``; a ``planner_model.pt`` of the earlier layout also loads."""
    robot_metadata: Path = DEFAULT_ROBOT_METADATA
    """Deploy metadata (``.json``) of the expert whose data the planner learned: the planner's actions mean the
    same joint targets, so the runtime drives it with the same gains, default pose and period."""
    out: Path = Path("runs/g1_planner/export/planner.pt")
    """TorchScript output (``.json`` beside it); pass assets/g1_planner/planner.pt to replace the committed one."""
    costs: G1CostConfig = field(default_factory=G1CostConfig)
    """How the task costs read the plan."""
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Weights of the joystick, waypoint and obstacle terms (on top of the per-call gates)."""
    feasibility_critic: Path | None = None
    """``model/critic.safetensors`` of ``python -m training.planner.feasibility``: add its value as a gated
    feasibility term."""
    feasibility_weight: float = 1.0
    """Weight of the feasibility term (on top of its per-call gate)."""
    feasibility_threshold: float = 0.0
    """The term acts where the critic's value exceeds this (0: the feasible set's boundary)."""
    feasibility_term: Literal["states", "action"] = "states"
    """states: ``V_h`` of the plan's future states; action: ``Q_h`` of the measured state and the plan's action now
    (a critic file with ``Q_h``)."""
    keepout_critic: Path | None = None
    """``model/critic.safetensors`` of a feasibility critic trained with a keep-out region
    (``--constraints.keepout-radius-m``): add its value along the plan's path as the gated ``keepout`` term."""
    keepout_weight: float = 1.0
    """Weight of the keep-out term (on top of its per-call gate)."""
    keepout_threshold: float = 0.0
    """The keep-out term acts where the critic's value exceeds this."""
    guidance_mode: GuidanceMode | None = None
    """Override the trained config's guidance mode (x0, classifier, none)."""
    guidance_scale: float | None = None
    """Override the guidance scale."""
    sampler_steps: int | None = None
    """Override the number of sampler steps."""
    rolling_start: int | None = None
    """Override the warm-start entry (0: cold start every call)."""
    int8: bool = False
    """Run the denoiser's linear layers in int8 (dynamic quantization, :mod:`policies.diffusion.quantize`: about
    half the network's time on one CPU core; x0 or no guidance only). A model whose action head was fitted with
    ``--int8`` carries the setting and is exported in int8 without this flag."""
    onnx: bool = False
    """Also write the ONNX export beside the TorchScript file (``planner.onnx`` and its ``planner.*.onnx`` graphs,
    :mod:`deploy.export_planner_onnx`): always the float network, run by ONNX Runtime with numpy host code."""
    onnx_int8: bool = False
    """With ``--onnx``: also write the denoiser quantized by ONNX Runtime (``planner.denoiser_int8.onnx``)."""


def configured(pc: PlannerConfig, cfg: ExportPlannerConfig) -> PlannerConfig:
    """The trained planner config with the export's sampler and guidance overrides."""
    return with_sampling(
        pc,
        cfg.guidance_mode,
        cfg.guidance_scale,
        cfg.sampler_steps,
        cfg.rolling_start,
        denoiser_int8=True if cfg.int8 else None,
    )


def g1_cost_sum(cfg: ExportPlannerConfig, history: int, ctrl_dt_s: float) -> CostSum:
    """The gated joystick + waypoint + obstacle costs, and the feasibility term when the export has a critic
    (layout in the module docstring)."""
    terms = [
        Gated(g1_joystick_cost(cfg.costs), "joystick"),
        Gated(g1_waypoint_cost(history, ctrl_dt_s), "waypoint"),
        Gated(g1_obstacle_cost(cfg.costs, history, ctrl_dt_s), "obstacles"),
    ]
    weights = list(cfg.weights)
    if cfg.feasibility_critic is not None:
        value, _ = checked_critic(cfg.feasibility_critic, ctrl_dt_s, keepout=False)
        term = (
            FeasibleActionCost(load_feasibility_q(cfg.feasibility_critic), history, cfg.feasibility_threshold)
            if cfg.feasibility_term == "action"
            else FeasibilityCost(value, history, cfg.feasibility_threshold)
        )
        terms.append(Gated(term, "feasibility"))
        weights.append(cfg.feasibility_weight)
    if cfg.keepout_critic is not None:
        value, meta = checked_critic(cfg.keepout_critic, ctrl_dt_s, keepout=True)
        reach = float(meta.get("keepout_range_m") or float("inf"))  # critics before the field: no clamp
        terms.append(Gated(KeepOutCost(value, history, ctrl_dt_s, cfg.keepout_threshold, reach), "keepout"))
        weights.append(cfg.keepout_weight)
    return CostSum(terms, weights)


def checked_critic(path: Path, ctrl_dt_s: float, keepout: bool) -> tuple[Any, dict[str, Any]]:
    """``V_h`` of the critic file at ``path`` and its metadata, checked against this planner: its control period,
    and its input (the planner state, plus a region offset for a keep-out critic, ``keepout``)."""
    value, meta = load_feasibility_critic(path)
    radius = float((meta.get("constraints") or {}).get("keepout_radius_m", 0.0))
    if keepout and radius <= 0.0:
        raise ValueError(f"{path}: not a keep-out critic (train one with --constraints.keepout-radius-m)")
    if not keepout and radius > 0.0:
        raise ValueError(f"{path}: a keep-out critic (it reads a region); pass it as --keepout-critic")
    expected = PLANNER_STATE_DIM + (REGION_DIM if keepout else 0)
    if int(meta["state_dim"]) != expected:
        raise ValueError(f"{path}: a critic of {meta['state_dim']}-d states; this planner's term feeds it {expected}")
    if abs(float(meta["ctrl_dt_s"]) - ctrl_dt_s) > 1e-9:
        raise ValueError(f"{path}: learned at a {meta['ctrl_dt_s']} s control period, the planner's is {ctrl_dt_s} s")
    return value, meta


def build_planner(model: dict[str, Any], cfg: ExportPlannerConfig, float_network: bool = False) -> DiffusionPlanner:
    """The trained planner with the G1 costs and the export's overrides, ready to script; ``float_network`` keeps
    the denoiser in float even when the model or ``cfg`` asks for int8 (the ONNX export quantizes its own)."""
    pc = configured(from_jsonable(PlannerConfig, model["planner_config"], f"{cfg.model}:planner_config"), cfg)
    if float_network:
        pc = dataclasses.replace(pc, denoiser_int8=False)
    planner = DiffusionPlanner(pc, g1_cost_sum(cfg, pc.history, float(model["ctrl_dt_s"])))
    planner.load_weights(model["weights"])
    return planner.quantize_for_inference()


def robot_metadata(path: Path, ctrl_dt_s: float) -> dict[str, Any]:
    """The expert's deploy metadata, checked against this robot and the planner's control period."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no robot metadata (the expert's deploy export: deploy.import_expert)")
    data = PolicyMetadata.from_dict(json.loads(path.read_text()))
    if data.joint_names != list(C.JOINT_NAMES):
        raise ValueError(f"{path}: joint order differs from the G1's")
    if abs(data.control_dt_s - ctrl_dt_s) > 1e-9:
        raise ValueError(f"{path}: control period {data.control_dt_s} s, the planner's data has {ctrl_dt_s} s")
    return dataclasses.asdict(data)


def main(cfg: ExportPlannerConfig) -> tuple[Path, Path]:
    """CLI entry point."""
    model = load_planner_model(cfg.model)
    planner = build_planner(model, cfg)
    extra = {
        "policy_metadata": robot_metadata(cfg.robot_metadata, float(model["ctrl_dt_s"])),
        "robot": "unitree_g1_29dof",
        "ctrl_dt_s": float(model["ctrl_dt_s"]),
        "joint_names": list(C.JOINT_NAMES),
        "state_names": planner_state_names(),
        "tracked_bodies": list(C.TRACKED_BODIES),
        "action": "joint position offsets: q* = q_default + action_scale * a",
        "cost_config": dataclasses.asdict(cfg.costs),
        "task_terms": list(TASK_TERMS)
        + (["feasibility"] if cfg.feasibility_critic is not None else [])
        + (["keepout"] if cfg.keepout_critic is not None else []),
        "trained_steps": int(model.get("step", -1)),
        "training_data": str(model.get("data", "")),
    }
    if cfg.feasibility_critic is not None:
        _, critic = load_feasibility_critic(cfg.feasibility_critic)
        extra["feasibility"] = {
            "critic": str(cfg.feasibility_critic),
            "weight": cfg.feasibility_weight,
            "threshold": cfg.feasibility_threshold,
            "term": cfg.feasibility_term,
            "constraints": critic.get("constraints"),
            "critic_config": critic.get("critic"),
            "data": critic.get("data"),
        }
    if cfg.keepout_critic is not None:
        _, critic = load_feasibility_critic(cfg.keepout_critic)
        extra["keepout"] = {
            "critic": str(cfg.keepout_critic),
            "radius_m": float(critic["constraints"]["keepout_radius_m"]),
            "range_m": critic.get("keepout_range_m"),
            "weight": cfg.keepout_weight,
            "threshold": cfg.keepout_threshold,
            "constraints": critic.get("constraints"),
            "critic_config": critic.get("critic"),
            "data": critic.get("data"),
        }
    pt, meta = export_planner(planner, cfg.out, extra)
    if cfg.onnx or cfg.onnx_int8:
        from deploy.export_planner_onnx import export_planner_onnx

        floating = build_planner(model, cfg, float_network=True)
        files = export_planner_onnx(floating, cfg.out.with_suffix(".onnx"), extra, int8=cfg.onnx_int8)
        print(f"{files[0]} and {len(files) - 1} graphs beside it ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)")
    n = sum(p.numel() for p in planner.parameters())
    kind = " float + the denoiser in int8" if planner.config.denoiser_int8 else ""
    print(f"{pt} ({pt.stat().st_size / 1e6:.1f} MB, {n / 1e6:.2f} M{kind} parameters) and {meta}")
    return pt, meta


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-export-planner``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(ExportPlannerConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
