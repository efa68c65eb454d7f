"""Where a planner's joystick error sits: what its plan asks for against what the robot does, per velocity axis.

    python benchmarks/planner_tracking_bias.py --planners assets/g1_planner/planner.pt OTHER.pt [--episodes 16]
        [--seconds 20] [--seed 7] [--condition nominal] [--quick] [--json PATH]

The expert and each exported planner (joystick cost on) drive the same worlds and commands
(:func:`training.locomotion.evaluate.evaluate`, a new command every 5 s). On settled steps (2 s after a command
change onwards) the error ``v - v_cmd`` of every axis (forward, lateral in the pelvis frame, yaw rate) is fitted by
least squares as ``bias + gain_x vx* + gain_y vy* + gain_yaw wz*``: ``bias`` is a drift that no command asks for,
``gain`` below 0 an under-tracked axis (-0.2: 80 % of the command reached). For a planner the same fit is made of
its own plan, the mean planned root velocity over the future steps in the heading frame: a plan that tracks while
the robot does not puts the error in the action read-out (the action head), not in the sampled plan. Also the
per-step planar error (the evaluation's figure) and the error of the stride-averaged velocity (0.7 s), which
removes the within-stride sway.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any

import numpy as np
import torch

from benchmarks._common import BenchmarkArgs, machine_info, moving_average, run_benchmark, write_json
from robot.cli import UserError
from training.locomotion.evaluate import EvalConfig, evaluate, load_exported_policy
from training.planner.collect import RecordingEnv
from training.planner.control import PlannerController, expert_task
from training.planner.evaluate import CONDITIONS, DEFAULT_EXPERT_POLICY, DEFAULT_PLANNER, joystick_params, load_planner

SETTLE_S = 2.0
STRIDE_S = 0.7
ROOT_LIN_VEL = slice(7, 9)  # planner state: forward and lateral root velocity in the heading frame


class _Logged(RecordingEnv):
    """Records every step's command (the one in force during the step) and the velocity reached."""

    log: list[tuple[np.ndarray, np.ndarray]]

    def step(self, actions: torch.Tensor) -> Any:
        command = self.command.copy()
        out = super().step(actions)
        self.log.append((command, self.base_velocity().copy()))
        return out


class _PlanTap:
    """An exported planner module that also keeps the mean planned future root velocity of each call."""

    def __init__(self, module: Any, history: int, state_dim: int) -> None:
        self.module, self.history, self.state_dim = module, history, state_dim
        self.planned: list[np.ndarray] = []

    def __call__(self, *args: Any) -> Any:
        plan, tokens = self.module(*args)
        self.planned.append(plan.detach()[:, :, ROOT_LIN_VEL].mean(dim=1).numpy())  # (N, 2)
        return plan, tokens


def fit_axes(command: np.ndarray, error: np.ndarray) -> dict[str, list[float]]:
    """Least-squares ``error[:, j] ~ bias + gains . command`` per axis; ``command (n, 3)``, ``error (n, k)``."""
    X = np.concatenate([np.ones((len(command), 1)), command], axis=1)
    coef, *_ = np.linalg.lstsq(X, error, rcond=None)  # (4, k)
    return {
        "bias": coef[0].round(4).tolist(),
        "gain_vx": coef[1].round(4).tolist(),
        "gain_vy": coef[2].round(4).tolist(),
        "gain_yaw": coef[3].round(4).tolist(),
    }


def summarise(
    name: str, log: list[tuple[np.ndarray, np.ndarray]], dt: float, interval_s: float, planned: list[np.ndarray] | None
) -> dict[str, Any]:
    """The row of one controller (module docstring)."""
    cmd = np.stack([c for c, _ in log])  # (T, N, 3)
    vel = np.stack([v for _, v in log])  # (T, N, 3)
    T = cmd.shape[0]
    interval, settle, stride = round(interval_s / dt), round(SETTLE_S / dt), round(STRIDE_S / dt)
    settled = (np.arange(T) % interval) >= settle  # (T,)
    err = vel - cmd
    row: dict[str, Any] = {"name": name, "lin_err_m_per_s": float(np.linalg.norm(err[..., :2], axis=-1).mean())}
    row["robot"] = fit_axes(cmd[settled].reshape(-1, 3), err[settled].reshape(-1, 3))
    smooth = moving_average(vel[..., :2], stride)  # (T-stride+1, N, 2)
    ok = settled[stride - 1 :] & ((np.arange(stride - 1, T) % interval) >= settle + stride)
    row["stride_lin_err_m_per_s"] = float(np.linalg.norm(smooth[ok] - cmd[stride - 1 :][ok][..., :2], axis=-1).mean())
    if planned is not None:
        plan = np.stack(planned[:T])  # (T, N, 2): the plan made before step t
        row["plan"] = fit_axes(cmd[settled].reshape(-1, 3), (plan - cmd[..., :2])[settled].reshape(-1, 2))
    return row


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    planners: tuple[Path, ...] = (DEFAULT_PLANNER,)
    """exported planners"""
    episodes: Optional[int] = None
    """worlds (default 16, quick 4)"""
    seconds: Optional[float] = None
    """episode length (default 20, quick 8)"""
    seed: int = 7
    """seed of worlds, commands and sampling noise"""
    condition: str = "nominal"
    """physics condition"""


def main(args: Args) -> int:
    """CLI entry point."""
    args.episodes = args.episodes or (4 if args.quick else 16)
    args.seconds = args.seconds or (8.0 if args.quick else 20.0)
    if args.seconds <= SETTLE_S + STRIDE_S:
        raise UserError(f"--seconds: expected > {SETTLE_S + STRIDE_S} (settling plus one stride), got {args.seconds}")
    torch.set_num_threads(1)
    ecfg = EvalConfig(
        episodes=args.episodes,
        episode_length_s=args.seconds,
        command_interval_s=5.0,
        num_threads=1,
        seed=args.seed,
        train=expert_task(DEFAULT_EXPERT_POLICY),
    )
    if args.condition not in CONDITIONS:
        raise UserError(f"--condition: expected one of {list(CONDITIONS)}, got {args.condition!r}")
    condition = CONDITIONS[args.condition]
    dt = ecfg.train.env.ctrl_dt_s
    rows = []
    _Logged.log = []
    expert, _ = load_exported_policy(DEFAULT_EXPERT_POLICY)
    evaluate(expert, ecfg, condition, progress=False, env_cls=_Logged)
    rows.append(summarise("expert", _Logged.log, dt, ecfg.command_interval_s, None))
    for path in args.planners:
        module, meta = load_planner(path)
        tap = _PlanTap(module, int(meta["history"]), int(meta["state_dim"]))
        _Logged.log = []
        ctrl = PlannerController(tap, meta, joystick_params(meta), args.seed)  # type: ignore[arg-type]
        evaluate(ctrl, ecfg, condition, progress=False, env_cls=_Logged)  # type: ignore[arg-type]
        rows.append(summarise(str(path), _Logged.log, dt, ecfg.command_interval_s, tap.planned))
    print(f"joystick tracking by axis, {args.condition}, seed {args.seed}, {args.episodes} worlds x {args.seconds:g} s")
    print("| controller | v err m/s | stride-averaged | what | bias vx, vy | gain vx | gain vy | gain yaw (on vy) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for what in ("robot", "plan"):
            if what in r:
                f = r[what]
                print(
                    f"| {r['name']} | {r['lin_err_m_per_s']:.3f} | {r['stride_lin_err_m_per_s']:.3f} | {what} | "
                    f"{f['bias'][0]:+.3f}, {f['bias'][1]:+.3f} | {f['gain_vx'][0]:+.3f} | {f['gain_vy'][1]:+.3f} | "
                    f"{f['gain_yaw'][1]:+.3f} |"
                )
    if args.json:
        write_json(
            args.json,
            {
                "condition": args.condition,
                "seed": args.seed,
                "episodes": args.episodes,
                "seconds": args.seconds,
                "rows": rows,
                "machine": machine_info(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
