"""Why does a planner fall under physics it never saw? Its first action against the expert's, and how far its states
leave the training data, per sim-to-sim condition.

    python benchmarks/planner_support.py --planner assets/g1_planner/planner.pt --data data/planner/g1_walk_dr.h5
        [--episodes 8] [--seconds 10] [--seed 3] [--conditions nominal "mass x1.2"] [--json PATH]

For every condition of the expert benchmark (:data:`training.planner.evaluate.CONDITIONS`) two loops on the same
worlds and joystick commands, both with the planner (joystick cost on) and the expert queried at every step:

- ``expert drives``: the expert's action is executed; the planner's first action is scored open loop against it
  (leg RMSE, action units) on states the expert reaches under that physics;
- ``planner drives``: the planner's action is executed (closed loop, fall rate as in the evaluation) and scored
  against what the expert would do in the state the planner reached.

Support: every visited planner state (every 5th step) is scaled by the data's per-feature mean and std and its
distance to the nearest of ``--support-states`` data states is taken; ``outside`` is the share of visited states
farther than the 99th percentile of the same distance for held-out data episodes (their own nearest-neighbour
distance to the rest). A planner whose error grows where its states leave the support has a data problem; one that
errs on in-support states has a model problem.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks._common import machine_info, run_benchmark, write_json
from envs.planner.dataset import load_planner_dataset
from robot.g1 import constants as C
from training.locomotion.evaluate import EvalConfig, Policy, evaluate, load_exported_policy
from training.planner.collect import RecordingEnv
from training.planner.control import PlannerController
from training.planner.evaluate import CONDITIONS, DEFAULT_PLANNER, PlannerEvalConfig, joystick_params, load_planner

LEGS = list(C.LEG_JOINT_IDS)


class Probe:
    """Runs the planner controller and the expert side by side; executes one of them and records both."""

    def __init__(self, expert: Policy, ctrl: PlannerController, planner_drives: bool) -> None:
        self.expert, self.ctrl, self.planner_drives = expert, ctrl, planner_drives
        self.sq_err: list[np.ndarray] = []
        self.states: list[np.ndarray] = []

    def bind(self, env: RecordingEnv) -> None:
        self.ctrl.bind(env)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            expert = self.expert(obs)  # (N, A)
        planner = self.ctrl(obs)  # (N, A)
        self.sq_err.append(((planner - expert)[:, LEGS] ** 2).mean(dim=1).numpy())
        self.states.append(self.ctrl.history.states[:, -1].numpy().copy())  # (N, S)
        if self.planner_drives:
            return planner
        self.ctrl.history.actions[:, -1] = expert  # the planner's history holds what was executed
        return expert


def nearest_distance(queries: np.ndarray, support: torch.Tensor, chunk: int = 512) -> np.ndarray:
    """(Q,) Euclidean distance of each query (Q, S) to its nearest support row (M, S)."""
    out = []
    for i in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[i : i + chunk]).float()
        out.append(torch.cdist(q, support).min(dim=1).values.numpy())
    return np.concatenate(out)


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    planner: Path = DEFAULT_PLANNER
    """exported planner (.pt + .json)"""
    data: Path
    """the planner's training data (the support)"""
    episodes: int = 8
    """worlds per condition"""
    seconds: float = 10.0
    """episode length"""
    seed: int = 3
    """seed of commands, initial states and noise"""
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    """physics conditions by name (default: every one of ``training.planner.evaluate.CONDITIONS``)"""
    support_states: int = 40000
    """data states the nearest-neighbour distances are taken against"""
    num_threads: int = 1
    """physics worker threads"""
    json: Optional[Path] = None
    """also write the rows as JSON here"""


def main(args: Args) -> int:
    torch.set_num_threads(1)
    data = load_planner_dataset(args.data)
    states = data.arrays["state"]  # (E, T, S)
    rng = np.random.default_rng(0)
    held = rng.permutation(len(states))[: max(1, len(states) // 20)]
    rest = np.setdiff1d(np.arange(len(states)), held)
    flat = states[rest].reshape(-1, states.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-3
    pick = rng.choice(len(flat), size=min(args.support_states, len(flat)), replace=False)
    support = torch.from_numpy((flat[pick] - mean) / std).float()
    held_states = states[held][:, ::5].reshape(-1, states.shape[-1])
    held_states = held_states[rng.choice(len(held_states), size=min(2000, len(held_states)), replace=False)]
    threshold = float(np.percentile(nearest_distance((held_states - mean) / std, support), 99.0))
    module, meta = load_planner(args.planner)
    expert, train = load_exported_policy(PlannerEvalConfig().expert)
    ecfg = EvalConfig(
        episodes=args.episodes, episode_length_s=args.seconds, num_threads=args.num_threads, seed=args.seed, train=train
    )
    rows = []
    print(f"support: {len(support)} states of {args.data}; held-out 99th percentile distance {threshold:.2f}")
    print("| condition | driver | falls | first-action leg RMSE | median NN distance | outside support |")
    print("|---|---|---|---|---|---|")
    for name in args.conditions:
        for planner_drives in (False, True):
            ctrl = PlannerController(module, meta, joystick_params(meta), args.seed)
            probe = Probe(expert, ctrl, planner_drives)
            result = evaluate(probe, ecfg, CONDITIONS[name], progress=False, env_cls=RecordingEnv)  # type: ignore[arg-type]
            visited = np.concatenate(probe.states[::5])
            dist = nearest_distance((visited - mean) / std, support)
            row = {
                "condition": name,
                "driver": "planner" if planner_drives else "expert",
                "fall_rate": result.fall_rate,
                "first_action_leg_rmse": float(np.sqrt(np.mean(np.concatenate(probe.sq_err)))),
                "median_nn_distance": float(np.median(dist)),
                "outside_support": float(np.mean(dist > threshold)),
            }
            rows.append(row)
            print(
                f"| {name} | {row['driver']} | {100 * row['fall_rate']:.0f} % | {row['first_action_leg_rmse']:.3f} "
                f"| {row['median_nn_distance']:.2f} | {100 * row['outside_support']:.1f} % |"
            )
    if args.json:
        write_json(
            args.json,
            {
                "planner": str(args.planner),
                "data": str(args.data),
                "seed": args.seed,
                "episodes": args.episodes,
                "seconds": args.seconds,
                "support_threshold": threshold,
                "rows": rows,
                "machine": machine_info(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
