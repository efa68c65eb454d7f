"""Guided sampling on a point mass (``python -m deploy.demo``): train a small planner, steer it with costs, export it.

A second, smaller demonstration beside ``make demo`` (which runs :mod:`training.demo`, the G1 planner and offline
safe RL): it needs no committed asset and runs in about a minute.

It lives in ``deploy`` because it ends in the deploy path (export, load, timed plans); the few lines of Adam
that train the demo planner are kept here so that the demonstration reads as one file.

1. Make the embedded default data: point-mass trajectories from a smooth random policy (``envs.pointmass``).
2. Train a ``DiffusionPlanner`` (trajectory transformer, 4 history + 16 future steps) for a few thousand steps.
3. Without retraining, steer it with a waypoint cost (reach a goal 1-2 m away at the end of the horizon) and a
   joystick cost (hold a commanded velocity), in x0-space and through-the-network guidance, and execute the
   planned actions open loop in the true dynamics: the executed error is the honest figure, not the plan's.
4. Export to TorchScript and time guided plans on one thread.

Prints a table and writes ``metrics.json`` and ``planner.pt`` / ``planner.json`` under ``--out-dir``.
"""

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import tyro
from tqdm import tqdm

from deploy.export import export_planner, load_exported
from envs.pointmass import PointMassConfig, rollout, step, windows
from envs.tasks.joystick import JoystickCost, JoystickCostConfig
from envs.tasks.waypoint import WaypointCost, WaypointCostConfig
from policies.diffusion.guidance import CostSum, GuidanceConfig
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import DiffusionPlanner, PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from robot.cli import run_cli
from robot.files import atomic_write_text

HISTORY, HORIZON = 4, 16


@dataclass
class DemoConfig:
    """Options of the guided-sampling demo."""

    train_steps: int = 1500
    """gradient steps"""
    batch_size: int = 64
    """windows per step"""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 10 %)"""
    episodes: int = 2000
    """training episodes of the point mass"""
    eval_cases: int = 256
    """held-out starts per evaluation row"""
    seed: int = 0
    """seed of data, initialisation and sampling"""
    out_dir: Path = Path("outputs/pointmass_demo")
    """where metrics.json and the exported planner go"""
    latency_plans: int = 200
    """timed plans of the exported planner"""
    quick: bool = False
    """a smoke run: 100 steps, 32 cases, 20 timed plans (figures are then meaningless)"""

    def __post_init__(self) -> None:
        if self.quick:
            self.train_steps, self.eval_cases, self.episodes, self.latency_plans = 100, 32, 300, 20
        if self.train_steps < 1 or self.batch_size < 1 or self.eval_cases < 1:
            raise ValueError("train_steps, batch_size and eval_cases: expected integers >= 1")


def build_planner(costs: CostSum) -> DiffusionPlanner:
    """The demo's planner: 2x64 trajectory transformer, T = 20, 10 DDIM steps, x0 guidance."""
    cfg = PlannerConfig(
        state_dim=4,
        action_dim=2,
        history=HISTORY,
        horizon=HORIZON,
        denoiser=TransformerDenoiserConfig(num_layers=2, num_heads=4, width=64),
        action_loss_steps=HORIZON,
        execute_steps=4,
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(kind="cosine", num_train_steps=20),
            prediction_type="v",
            sampler=SamplerConfig(num_steps=10),
            guidance=GuidanceConfig(mode="x0", scale=1.0),
        ),
    )
    return DiffusionPlanner(cfg, costs)


def train(planner: DiffusionPlanner, data: dict[str, torch.Tensor], config: DemoConfig) -> float:
    """Plain Adam on the planner's loss with a progress bar; returns the final smoothed loss."""
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(planner.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.train_steps, eta_min=0.1 * config.lr)
    n = data["states"].shape[0]
    smooth = float("nan")
    planner.train()
    with tqdm(range(config.train_steps), desc="train planner", unit="step", mininterval=2.0) as bar:
        for i in bar:
            idx = torch.randint(0, n, (config.batch_size,), generator=gen)
            batch = {"states": data["states"][idx], "actions": data["actions"][idx], "seed": torch.tensor(i)}
            loss, _ = planner.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            value = loss.item()
            smooth = value if i == 0 else 0.98 * smooth + 0.02 * value
            bar.set_postfix(loss=f"{smooth:.4f}")
    planner.eval()
    return smooth


def closed_loop(
    planner: DiffusionPlanner, test: dict[str, torch.Tensor], params: torch.Tensor, replans: int, seed: int
) -> torch.Tensor:
    """Receding horizon: plan, execute the first ``execute_steps`` actions in the true dynamics, repeat.

    Returns the executed states ``(B, replans * execute_steps, 4)``.
    """
    dyn = PointMassConfig()
    gen = torch.Generator().manual_seed(seed)
    obs, act = test["states"][:, :HISTORY].clone(), test["actions"][:, :HISTORY].clone()
    state = step(obs[:, -1], act[:, -1], dyn)  # the state the first plan acts from
    obs = torch.cat([obs[:, 1:], state[:, None]], dim=1)
    executed = []
    for _ in range(replans):
        noise = torch.randn(obs.shape[0], HISTORY + HORIZON, planner.config.token_dim, generator=gen)
        plan, _ = planner(obs, act, params, noise)
        for a in plan[:, : planner.config.execute_steps, 4:].detach().unbind(dim=1):
            act = torch.cat([act[:, 1:], a[:, None]], dim=1)
            state = step(state, a, dyn)
            obs = torch.cat([obs[:, 1:], state[:, None]], dim=1)
            executed.append(state)
    return torch.stack(executed, dim=1)


def evaluate(
    planner: DiffusionPlanner, test: dict[str, torch.Tensor], task: str, mode: str, scale: float, seed: int
) -> dict[str, float]:
    """One row: 8 replans x 4 executed steps (3.2 s) from held-out histories; the task error of what ran."""
    gen = torch.Generator().manual_seed(seed + 1)
    B = test["states"].shape[0]
    current = test["states"][:, HISTORY - 1]
    params = torch.zeros(B, 5)  # (goal x, goal y, vx cmd, vy cmd, yaw-rate cmd)
    if task == "waypoint":
        angle = torch.rand(B, generator=gen) * 6.2832
        dist = 1.0 + torch.rand(B, generator=gen)
        params[:, :2] = current[:, :2] + dist.unsqueeze(1) * torch.stack([angle.cos(), angle.sin()], dim=1)
        planner.diffusion.costs.weights.copy_(torch.tensor([1.0, 0.0]))
    else:
        params[:, 2:4] = torch.rand(B, 2, generator=gen) * 2 - 1
        planner.diffusion.costs.weights.copy_(torch.tensor([0.0, 1.0]))
    planner.diffusion.set_sampler(planner.diffusion.sampler_config, GuidanceConfig(mode=mode, scale=scale))
    executed = closed_loop(planner, test, params if mode != "none" else None, replans=8, seed=seed)
    if task == "waypoint":
        err = (executed[:, -1, :2] - params[:, :2]).norm(dim=-1)
        return {"error": float(err.mean()), "success": float((err < 0.3).float().mean())}
    err = (executed[:, 10:, 2:] - params[:, None, 2:4]).norm(dim=-1).mean(dim=1)  # after the first second
    return {"error": float(err.mean()), "success": float((err < 0.2).float().mean())}


def time_exported(path: Path, test: dict[str, torch.Tensor], n: int = 200) -> dict[str, float]:
    """p50 / p99 latency of one guided plan (batch 1, one thread) with the exported TorchScript file."""
    module, meta = load_exported(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    obs, act = test["states"][:1, :HISTORY], test["actions"][:1, :HISTORY]
    params = torch.cat([obs[:, -1, :2] + 1.0, torch.zeros(1, 3)], dim=1)
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        module(obs, act, params, None, None)
        if i >= 20:
            times.append(time.perf_counter() - t0)
    torch.set_num_threads(threads)
    q = torch.tensor(times) * 1e3
    return {"p50_ms": float(q.median()), "p99_ms": float(q.quantile(0.99)), "steps": len(meta["sampler_steps"]) - 1}


def main(config: DemoConfig) -> dict[str, object]:
    """Run the demo end to end and return the metrics it wrote."""
    torch.manual_seed(config.seed)
    dyn = PointMassConfig()
    gen = torch.Generator().manual_seed(config.seed)
    states, actions = rollout(config.episodes, 60, dyn, gen)
    test_states, test_actions = rollout(config.eval_cases, HISTORY + HORIZON, dyn, gen)
    data = windows(states, actions, HISTORY + HORIZON, stride=2)
    test = {"states": test_states, "actions": test_actions}
    print(f"data: {data['states'].shape[0]} windows of {HISTORY}+{HORIZON} steps from {config.episodes} episodes")
    costs = CostSum(
        [
            WaypointCost(WaypointCostConfig(pos_xy_idx=(0, 1), vel_xy_idx=(2, 3))),
            JoystickCost(JoystickCostConfig(vel_xy_idx=(2, 3), yaw_rate_idx=-1)),
        ],
        [1.0, 0.0],
    )
    planner = build_planner(costs)
    planner.fit_normalizers(data["states"], data["actions"])
    t0 = time.perf_counter()
    final_loss = train(planner, data, config)
    train_s = time.perf_counter() - t0
    rows = []
    for task, settings in (
        ("waypoint", [("none", 0.0), ("x0", 0.3), ("x0", 1.0), ("classifier", 0.03), ("classifier", 0.1)]),
        ("joystick", [("none", 0.0), ("x0", 1.0), ("x0", 10.0), ("classifier", 0.03), ("classifier", 0.1)]),
    ):
        for mode, scale in settings:
            rows.append(
                {
                    "task": task,
                    "guidance": mode,
                    "scale": scale,
                    **evaluate(planner, test, task, mode, scale, config.seed),
                }
            )
    planner.diffusion.costs.weights.copy_(torch.tensor([1.0, 0.0]))
    planner.diffusion.set_sampler(planner.diffusion.sampler_config, GuidanceConfig(mode="x0", scale=1.0))
    config.out_dir.mkdir(parents=True, exist_ok=True)
    pt, _ = export_planner(planner, config.out_dir / "planner.pt", extra_metadata={"demo": "pointmass"})
    latency = time_exported(pt, test, config.latency_plans)
    print(f"\ntrained {config.train_steps} steps in {train_s:.0f} s (final loss {final_loss:.4f})\n")
    header = f"{'task':9} {'guidance':10} {'scale':>6} {'error':>7} {'success':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['task']:9} {r['guidance']:10} {r['scale']:6.2f} {r['error']:7.3f} {r['success']:8.2f}")
    print(
        f"\nclosed loop over {config.eval_cases} held-out starts: plan, execute 4 actions in the true dynamics, replan;"
    )
    print("8 plans = 3.2 s. waypoint: distance (m) to a goal 1-2 m away at the end, success = within 0.3 m.")
    print("joystick: mean |v - v_cmd| (m/s) after the first second, success = below 0.2 m/s.")
    print(
        f"guided plan latency (TorchScript, 1 thread, {latency['steps']} steps): "
        f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms"
    )
    metrics = {
        "config": {k: str(v) for k, v in asdict(config).items()},
        "train_seconds": train_s,
        "final_loss": final_loss,
        "rows": rows,
        "latency": latency,
    }
    atomic_write_text(config.out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"\nwrote {config.out_dir / 'metrics.json'} and {pt}")
    return metrics


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-demo-pointmass``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(DemoConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
