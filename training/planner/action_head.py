"""Train a planner's action head on the planner's own guided samples.

    python -m training.planner.action_head --model runs/g1_planner/model/planner_model.safetensors \\
        --data data/planner/g1_walk.h5 --out-dir runs/g1_planner_head --guidance-mode x0 --guidance-scale 10 \\
        --sampler-steps 3
    python -m training.planner.action_head --preset g1-planner-head   # the committed head's settings

The diffusion model's first action is the least precise part of its plan (``benchmarks/planner_bc_probe.py``): a
regressor on the same history is far more accurate. The action head (``PlannerConfig.action_head_states``) reads
the executed action from the history and the start of the sampled plan. It learns from what the planner really
samples at run time: for random training windows the planner, with the sampler and guidance of the export, samples a
plan; the head is fitted from (history, plan) to the expert's action. So it learns what sampled plans mean, errors
included, and guidance still steers the action through the plan.

The guidance of a window must ask for what the expert did next, or the head learns to ignore the plan: joystick
windows use the window's recorded command, waypoint windows a goal where the expert really was 0.5-5 s later
(hindsight). A head fitted with random goals and unguided windows mixed in (targets that disagree with their plans)
tracked the joystick no better than unguided sampling (v err 0.565 against 0.582). Obstacle detours have no expert
action, so they are not in the fit.

Writes ``out_dir/planner_model.safetensors`` with its ``.json`` (the planner with its head and the sampling settings it
was fitted for; export it with ``python -m deploy.export_planner``), ``head_metrics.json`` and, so that a rerun skips
the sampling, the sampled windows (``head_windows.pt``). Held-out windows from the planner's validation episodes score
the head against the planner's own first action (leg RMSE).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from envs.g1.observations import yaw_from_quat
from envs.planner.costs import (
    G1CostConfig,
    g1_joystick_cost,
    g1_obstacle_cost,
    g1_waypoint_cost,
    points_to_plan_frame,
)
from envs.planner.dataset import load_planner_dataset
from envs.planner.runtime import gate_offsets
from envs.planner.state import linear_velocity_columns, planner_state_mirror_map
from policies.diffusion.guidance import CostSum, Gated
from policies.diffusion.planner import (
    PLANNER_MODEL_FORMAT,
    DiffusionPlanner,
    PlannerConfig,
    load_planner_model,
    with_sampling,
)
from policies.model_file import save_model_file
from robot.cli import run_cli
from robot.configio import from_jsonable, to_jsonable
from robot.files import atomic_write_text
from robot.g1 import constants as C
from training.checkpoint import load_checkpoint, save_checkpoint
from training.planner.config import HEAD_PRESETS, HEAD_TASKS
from training.planner.config import ActionHeadConfig as ActionHeadConfig  # re-exported: callers import it from here
from training.run_config import parse_cli

LEGS = slice(0, 12)
TASKS = HEAD_TASKS


def head_config(model: dict[str, Any], cfg: ActionHeadConfig) -> PlannerConfig:
    """The model's planner config with the head and the sampling settings of the fit."""
    pc = from_jsonable(PlannerConfig, model["planner_config"], f"{cfg.model}:planner_config")
    if pc.action_head_states > 0:
        raise ValueError(f"{cfg.model}: this planner already has an action head; start from the one without")
    pc = with_sampling(
        pc, cfg.guidance_mode, cfg.guidance_scale, cfg.sampler_steps, rolling_start=0, denoiser_int8=cfg.int8
    )
    return dataclasses.replace(
        pc, action_head_states=cfg.states, action_head_width=cfg.width, action_head_mirror=cfg.mirror
    )


def set_g1_mirror_maps(planner: DiffusionPlanner) -> None:
    """The G1's left-right reflection of the planner state (:func:`envs.planner.state.planner_state_mirror_map`)
    and of joint vectors (:data:`robot.g1.constants.MIRROR_JOINT_INDEX`) for a mirrored action head."""
    perm, sign = planner_state_mirror_map()
    planner.set_mirror_maps(
        torch.as_tensor(perm),
        torch.as_tensor(sign),
        torch.as_tensor(np.array(C.MIRROR_JOINT_INDEX)),
        torch.as_tensor(np.array(C.MIRROR_JOINT_SIGN)),
    )


def g1_costs(history: int, ctrl_dt_s: float) -> CostSum:
    """The export's gated joystick, waypoint and obstacle terms with its default weights and parameter layout
    (``deploy.export_planner``; a test keeps the two equal)."""
    cfg = G1CostConfig()
    terms = [
        Gated(g1_joystick_cost(cfg), "joystick"),
        Gated(g1_waypoint_cost(history, ctrl_dt_s), "waypoint"),
        Gated(g1_obstacle_cost(cfg, history, ctrl_dt_s), "obstacles"),
    ]
    return CostSum(terms, [1.0, 1.0, 1.0])


def task_params(
    costs: CostSum, w: dict[str, torch.Tensor], arrays: dict[str, np.ndarray], cfg: ActionHeadConfig, seed: int
) -> torch.Tensor:
    """Cost parameters ``(n, P)`` of windows ``w`` (their ``episode``, ``step`` and recorded ``command``), one task
    each drawn from ``cfg.task_mix``: the joystick with the recorded command, or a waypoint at the root position
    ``lookahead_s`` later in the same episode, in the plan frame of the window's current root."""
    layout = gate_offsets(costs.param_layout())
    e, k = w["episode"].numpy(), w["step"].numpy()
    n, P, T = len(e), int(costs.param_dim), arrays["root_pos"].shape[1]
    rng = np.random.default_rng(seed)
    share = np.asarray(cfg.task_mix, dtype=np.float64)
    task = rng.choice(len(TASKS), n, p=share / share.sum())
    ahead = np.round(rng.uniform(*cfg.lookahead_s, n) / arrays["ctrl_dt_s"]).astype(np.int64)
    later = np.minimum(k + np.maximum(ahead, 1), T - 1)
    yaw = yaw_from_quat(arrays["root_quat"][e, k])
    goal = points_to_plan_frame(arrays["root_pos"][e, later, :2], arrays["root_pos"][e, k, :2], yaw)
    params = np.zeros((n, P))
    joy, way = layout["joystick"], layout["waypoint"]
    j, g = task == TASKS.index("joystick"), task == TASKS.index("waypoint")
    params[j, joy] = 1.0
    params[j, joy + 1 : joy + 4] = w["command"].numpy()[j]
    params[g, way] = 1.0
    params[g, way + 1 : way + 3] = goal[g]
    return torch.from_numpy(params).float()


def windows(
    arrays: dict[str, np.ndarray], episodes: np.ndarray, n: int, history: int, seed: int
) -> dict[str, torch.Tensor]:
    """``n`` random windows of ``episodes`` from ``arrays`` (``state``, ``action``, ``command``; episodes first):
    history states ``s_{k-Hh+1..k}``, the actions before them ``a_{k-Hh..k-1}``, the command at k and the target
    ``a_k``."""
    states, actions = arrays["state"], arrays["action"]
    T = states.shape[1]
    rng = np.random.default_rng(seed)
    e = np.sort(rng.choice(episodes, n))
    k = rng.integers(history, T - 1, n)
    hs = np.stack([states[e, k - history + 1 + j] for j in range(history)], axis=1)
    ha = np.stack([actions[e, k - history + j] for j in range(history)], axis=1)
    out = {"states": hs, "actions": ha, "command": arrays["command"][e, k], "target": actions[e, k]}
    tensors = {key: torch.as_tensor(np.asarray(v, dtype=np.float32)) for key, v in out.items()}
    return {**tensors, "episode": torch.as_tensor(e), "step": torch.as_tensor(k)}


def add_velocity_noise(states: torch.Tensor, max_std_m_per_s: float, seed: int) -> torch.Tensor:
    """``states (n, Hh, S)`` with a base-velocity error added to every step (``ActionHeadConfig.
    history_velocity_noise_m_per_s``): one vector per window step on the root's and every body's linear velocity."""
    if max_std_m_per_s <= 0.0:
        return states
    gen = torch.Generator().manual_seed(seed)
    n, Hh = states.shape[:2]
    std = torch.rand(n, 1, 1, generator=gen) * max_std_m_per_s  # (n, 1, 1)
    error = torch.randn(n, Hh, 1, 3, generator=gen) * std[..., None]  # (n, Hh, 1, 3)
    cols = torch.as_tensor(linear_velocity_columns())  # (1 + K, 3)
    out = states.clone()
    out[:, :, cols] += error.to(states.dtype)  # (n, Hh, 1 + K, 3)
    return out


def sample_plans(planner: DiffusionPlanner, w: dict[str, torch.Tensor], M: int, seed: int, desc: str) -> torch.Tensor:
    """The first ``M`` steps ``(n, M, S + A)`` of the guided plans of ``planner`` (without a head: the first
    action is the diffusion model's) for windows ``w`` with their cost parameters ``w["params"]``."""
    if planner.action_head is not None:
        raise ValueError("sample_plans: expected the planner without its action head")
    n = len(w["target"])
    gen = torch.Generator().manual_seed(seed)
    out = []
    bar = tqdm(total=n, desc=desc, unit="window")
    for i in range(0, n, 512):
        s, a, params = w["states"][i : i + 512], w["actions"][i : i + 512], w["params"][i : i + 512]
        noise = torch.randn(len(s), planner.config.window, planner.config.token_dim, generator=gen)
        with torch.enable_grad():
            plan, _ = planner(s, a, params, noise, None)
        out.append(plan.detach()[:, :M])
        bar.update(len(s))
    bar.close()
    return torch.cat(out)


def leg_rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """RMSE over the 12 leg joints."""
    return float((pred - target)[:, LEGS].pow(2).mean().sqrt())


def fit(cfg: ActionHeadConfig) -> dict[str, Any]:
    """Sample, fit, write; returns the metrics."""
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    model = load_planner_model(cfg.model)
    pc = head_config(model, cfg)
    costs = g1_costs(pc.history, float(model["ctrl_dt_s"]))
    sampler = DiffusionPlanner(dataclasses.replace(pc, action_head_states=0, action_head_mirror=False), costs)
    sampler.load_weights(model["weights"])
    sampler.quantize_for_inference()
    planner = DiffusionPlanner(pc)
    planner.load_weights(model["weights"], without_action_head=True)
    if cfg.mirror:
        set_g1_mirror_maps(planner)
    data = load_planner_dataset(cfg.data)
    if data.arrays["state"].shape[2] != pc.state_dim or data.arrays[cfg.action_key].shape[2] != pc.action_dim:
        raise ValueError(f"{cfg.data}: state/action dimensions do not fit the planner ({pc.state_dim}/{pc.action_dim})")
    E = data.num_episodes
    arrays = {
        "state": np.asarray(data.arrays["state"], dtype=np.float32),
        "action": np.asarray(data.arrays[cfg.action_key], dtype=np.float32),
        "command": np.asarray(data.arrays["command"], dtype=np.float32),
        "root_pos": np.asarray(data.arrays["root_pos"], dtype=np.float64),
        "root_quat": np.asarray(data.arrays["root_quat"], dtype=np.float64),
    }
    order = np.random.default_rng(cfg.seed).permutation(E)  # training.planner.train's episode split
    n_val = max(1, round(cfg.val_fraction * E))
    settings = {
        "model": str(cfg.model),
        "data": str(cfg.data),
        "states": cfg.states,
        "plans": "diffusion model without the head",
        "task_mix": list(cfg.task_mix),
        "lookahead_s": list(cfg.lookahead_s),
        **(
            {"history_velocity_noise_m_per_s": cfg.history_velocity_noise_m_per_s}
            if cfg.history_velocity_noise_m_per_s
            else {}
        ),
        "windows": cfg.windows,
        "val_windows": cfg.val_windows,
        "seed": cfg.seed,
        "sampler": to_jsonable(pc.diffusion.sampler),
        "guidance": to_jsonable(pc.diffusion.guidance),
        **({"denoiser_int8": True} if pc.denoiser_int8 else {}),
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    cache = cfg.out_dir / "head_windows.pt"
    cached = load_checkpoint(cache) if cache.is_file() else None
    if cached is not None and cached.get("settings") == settings:
        train, val = cached["train"], cached["val"]
        print(f"reusing the sampled windows of {cache}")
    else:
        train = windows(arrays, order[n_val:], cfg.windows, pc.history, cfg.seed + 1)
        val = windows(arrays, order[:n_val], cfg.val_windows, pc.history, cfg.seed + 2)
        timing = {**arrays, "ctrl_dt_s": data.ctrl_dt_s}
        train["states"] = add_velocity_noise(train["states"], cfg.history_velocity_noise_m_per_s, cfg.seed + 8)
        val["states"] = add_velocity_noise(val["states"], cfg.history_velocity_noise_m_per_s, cfg.seed + 9)
        train["params"] = task_params(costs, train, timing, cfg, cfg.seed + 6)
        val["params"] = task_params(costs, val, timing, cfg, cfg.seed + 7)
        train["plan"] = sample_plans(sampler, train, cfg.states, cfg.seed + 3, "sampling training plans")
        val["plan"] = sample_plans(sampler, val, cfg.states, cfg.seed + 4, "sampling held-out plans")
        save_checkpoint({"settings": settings, "train": train, "val": val}, cache)
    head = planner.action_head
    assert head is not None
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=0.1 * cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 5)
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="action head", unit="step")
    n = len(train["target"])
    for step in bar:
        i = torch.randint(n, (cfg.batch_size,), generator=gen)
        loss, _ = planner.action_head_loss({k: v[i] for k, v in train.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        pred = planner._head_action(val["states"], val["actions"], val["plan"])
    metrics = {
        "val_leg_rmse_head": leg_rmse(pred, val["target"]),
        "val_leg_rmse_planner_first_action": leg_rmse(val["plan"][:, 0, pc.state_dim :], val["target"]),
        "fit_s": round(fit_s, 1),
        "mirror": cfg.mirror,
        "settings": settings,
    }
    out = {
        **{k: v for k, v in model.items() if k not in ("planner_config", "weights")},
        "format": PLANNER_MODEL_FORMAT,
        "planner_config": to_jsonable(pc),
        "weights": planner.weights(),
        "action_head": metrics,
    }
    save_model_file(cfg.out_dir / "planner_model.safetensors", out)
    atomic_write_text(cfg.out_dir / "head_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(cfg: ActionHeadConfig) -> None:
    """CLI entry point."""
    metrics = fit(cfg)
    print(
        f"held-out leg RMSE: action head {metrics['val_leg_rmse_head']:.3f}, the planner's first action "
        f"{metrics['val_leg_rmse_planner_first_action']:.3f}; fit {metrics['fit_s']:.0f} s\n"
        f"planner with its head: {cfg.out_dir / 'planner_model.safetensors'} (export: python -m deploy.export_planner "
        f"--model {cfg.out_dir / 'planner_model.safetensors'} --out PATH)"
    )


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-fit-head``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(
        lambda argv, prog: main(
            parse_cli(
                ActionHeadConfig,
                presets=HEAD_PRESETS,
                description="Fit a planner's action head on the planner's own guided samples.",
                args=argv,
                prog=prog,
            )
        ),
        args,
    )


if __name__ == "__main__":
    sys.exit(cli())
