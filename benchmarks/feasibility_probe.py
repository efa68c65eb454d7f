"""What a feasibility critic sees: its value on the robot's states before a fall, against its value on the states
the planner predicts from them.

    python benchmarks/feasibility_probe.py --planner PLANNER.pt --critic runs/g1_feasibility/model/critic.safetensors \\
        --data data/planner/g1_walk_falls.h5 [--episodes 40] [--json PATH]

For episodes of a ``--keep-falls`` collection that end in a fall, and for episodes that stand, the last
``history`` recorded states and actions at a given number of control steps before the fall feed the exported
planner (joystick cost on with the recorded command, feasibility term closed, fixed noise); the critic's ``V_h``
is read on the current state and on the plan's future states. A guidance term on predicted states can only act
where the critic classes some of them infeasible (``V_h > threshold``): when the planner predicts safe states from
a state the critic already classes infeasible, the term has nothing to push against. When the critic file carries
``Q_h``, its value for the current state with the plan's first actions and with the recorded ones is printed too
(as many actions as the critic's ``action_chunk``), and with the recorded ones plus a held offset of up to 0.5 on
every leg joint (a wrong reaction): an action term (``--feasibility-term action``) can only steer where ``Q_h``
depends on the actions. The plan's step k is the state k control steps after the current one.
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

from benchmarks._common import machine_info, run_benchmark, write_json
from envs.planner.dataset import load_planner_dataset
from envs.planner.runtime import gate_offsets
from policies.feasibility import load_feasibility_critic, load_feasibility_q
from robot.g1 import constants as C
from training.planner.evaluate import load_planner

LEADS = (30, 15, 8, 4)
"""Control steps before the fall at which the planner is asked (0.6, 0.3, 0.16, 0.08 s at 50 Hz)."""


def probe(planner_path: Path, critic_path: Path, data_path: Path, episodes: int, seed: int) -> list[dict[str, Any]]:
    """One row per (outcome, steps before the fall): the critic's value now and along the plan."""
    torch.set_num_threads(1)
    module, meta = load_planner(planner_path)
    value, _ = load_feasibility_critic(critic_path)
    try:
        q = load_feasibility_q(critic_path)
    except ValueError:
        q = None  # a file with V_h only
    data = load_planner_dataset(data_path, allow_falls=True).arrays
    if "fell_at" not in data:
        raise ValueError(f"{data_path}: no fell_at; probe a collection made with --keep-falls")
    fell_at, steps = data["fell_at"], data["state"].shape[1]
    hist, horizon = int(meta["history"]), int(meta["horizon"])
    gates, P = gate_offsets(meta["cost_terms"]), int(meta["cost_param_dim"])
    rows = []
    cases = [("fell", np.flatnonzero(fell_at < steps)[:episodes], lead) for lead in LEADS]
    cases.append(("stood", np.flatnonzero(fell_at == steps)[:episodes], steps // 2))
    for outcome, eps, lead in cases:
        ends = [int(fell_at[e]) - lead if outcome == "fell" else lead for e in eps]
        keep = [(e, t) for e, t in zip(eps, ends, strict=True) if t >= hist]
        if not keep:
            continue
        states = torch.from_numpy(np.stack([data["state"][e, t - hist + 1 : t + 1] for e, t in keep]))
        actions = torch.from_numpy(np.stack([data["action"][e, t - hist : t] for e, t in keep]))
        params = torch.zeros(len(keep), P)
        o = gates["joystick"]
        params[:, o] = 1.0
        params[:, o + 1 : o + 4] = torch.from_numpy(np.stack([data["command"][e, t] for e, t in keep]))
        noise = torch.randn(
            len(keep), hist + horizon, int(meta["token_dim"]), generator=torch.Generator().manual_seed(seed)
        )
        with torch.enable_grad():
            plan, _ = module(states, actions, params, noise, None)
        S = states.shape[-1]
        with torch.no_grad():
            v_now = value(states[:, -1])
            v_plan = value(plan.detach()[:, :, :S])  # (B, horizon): the plan holds the future steps only
            if q is not None:
                k = q.action_chunk  # Q_h scores the next k actions (1: the action now)
                last = [min(int(fell_at[e]), steps - 1) for e, _ in keep]
                chunks = [
                    data["action"][e, np.minimum(np.arange(t, t + k), m)] for (e, t), m in zip(keep, last, strict=True)
                ]
                recorded = torch.from_numpy(np.stack(chunks))  # (B, k, A): recorded from now (past the end: the last)
                q_plan = q(states[:, -1], plan.detach()[:, :k, S:].flatten(1)).max(dim=0).values
                q_recorded = q(states[:, -1], recorded.flatten(1)).max(dim=0).values
                offset = torch.zeros_like(recorded[:, 0])  # a wrong reaction held: +-0.5 units on every leg joint
                legs = list(C.LEG_JOINT_IDS)
                offset[:, legs] = torch.rand(len(keep), len(legs), generator=torch.Generator().manual_seed(seed)) - 0.5
                q_offset = q(states[:, -1], (recorded + offset[:, None]).flatten(1)).max(dim=0).values
        extra = (
            {}
            if q is None
            else {
                "q_now_plan_action_mean": float(q_plan.mean()),
                "q_now_recorded_action_mean": float(q_recorded.mean()),
                "q_plan_minus_recorded_abs_mean": float((q_plan - q_recorded).abs().mean()),
                "q_now_offset_action_mean": float(q_offset.mean()),
                "q_offset_minus_recorded_abs_mean": float((q_offset - q_recorded).abs().mean()),
            }
        )
        rows.append(
            extra
            | {
                "outcome": outcome,
                "steps_before_fall": lead if outcome == "fell" else None,
                "episodes": len(keep),
                "v_now_mean": float(v_now.mean()),
                "infeasible_now_share": float((v_now > 0).float().mean()),
                "v_plan_mean_by_step": [float(v) for v in v_plan.mean(dim=0)],
                "v_plan_max": float(v_plan.max()),
                "infeasible_plan_state_share": float((v_plan > 0).float().mean()),
            }
        )
    return rows


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    planner: Path
    """exported planner (.pt + .json)"""
    critic: Path
    """critic of training.planner.feasibility (model/critic.safetensors, or a critic.pt)"""
    data: Path
    """a --keep-falls planner dataset"""
    episodes: int = 40
    """episodes per outcome"""
    seed: int = 0
    """sampling noise"""
    json: Optional[Path] = None
    """also write the rows here"""


def main(args: Args) -> int:
    rows = probe(args.planner, args.critic, args.data, args.episodes, args.seed)
    print(
        "| outcome | steps before the fall | episodes | V_h now | infeasible now "
        "| V_h of the plan, steps 1 / 2 / 4 / 8 / 16 | max V_h in the plan | infeasible plan states |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["v_plan_mean_by_step"]
        steps = " / ".join(f"{v[k]:+.2f}" for k in (0, 1, 3, 7, 15) if k < len(v))
        print(
            f"| {r['outcome']} | {r['steps_before_fall'] or '-'} | {r['episodes']} | {r['v_now_mean']:+.2f} | "
            f"{100 * r['infeasible_now_share']:.0f} % | {steps} | {r['v_plan_max']:+.2f} | "
            f"{100 * r['infeasible_plan_state_share']:.1f} % |"
        )
    for r in rows:
        if "q_now_plan_action_mean" in r:
            print(
                f"  {r['outcome']} {r['steps_before_fall'] or '-'}: Q_h(s now, the plan's actions) "
                f"{r['q_now_plan_action_mean']:+.2f}, Q_h(s now, the recorded actions) "
                f"{r['q_now_recorded_action_mean']:+.2f} "
                f"(mean |difference| {r['q_plan_minus_recorded_abs_mean']:.3f}); "
                f"recorded actions +-0.5 on the legs {r['q_now_offset_action_mean']:+.2f} "
                f"(mean |difference| {r['q_offset_minus_recorded_abs_mean']:.3f})"
            )
    if args.json is not None:
        write_json(
            args.json,
            {
                "benchmark": "feasibility_probe",
                "planner": str(args.planner),
                "critic": str(args.critic),
                "data": str(args.data),
                "rows": rows,
                "machine": machine_info(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
