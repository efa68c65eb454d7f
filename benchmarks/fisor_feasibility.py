"""How FISOR's feasibility critic classifies a dataset's states as it trains: is the start of an episode feasible?

    python benchmarks/fisor_feasibility.py --dataset PATH [--steps 100000] [--every 5000] [--seed 0] [--json PATH]

FISOR's critics (Q_r, V_r, Q_h, V_h) learn from the dataset's own actions and never read the actor, so this trains
them alone with FISOR's reference schedule (one V step, then one Q step on 256 transitions, then the target update)
at about 20 ms a step instead of a full FISOR step's ~300 ms: the same critic updates as a FISOR run of that
config, on other random batches (FISOR draws 2048 rows and its actor draws noise from the same generator), so the
same dynamics but not the same numbers as a given run. Every ``--every`` steps it prints the share of states with
``V_h(s) <= 0`` (FISOR's feasible region) among all states, among states whose own episode incurs no more cost from
there on ("zero future cost": feasible by the data's own evidence) and among the rest, plus ``V_h`` at the episodes'
initial states. While the initial states read infeasible (``V_h(s_0) > 0``) the actor learns the infeasible-region
objective (reduce future violation) and the candidate selection takes the lowest Q_h.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/fisor_feasibility.py`

from benchmarks._common import BenchmarkArgs, machine_info, run_benchmark, write_json
from envs.safe_rl import DSRLData, load_dsrl
from envs.safe_rl.preprocess import episode_bounds
from policies.fisor import FISORConfig
from robot.cli import UserError
from training.safe_rl.algorithms import FISORAlgorithm, _step
from training.safe_rl.train import resolve_task


def future_cost(data: DSRLData) -> tuple[np.ndarray, np.ndarray]:
    """``(cost from each step to its episode's end (N,), index of every episode's first step (E,))``."""
    bounds = episode_bounds(data)
    costs = np.asarray(data.costs, dtype=np.float64)
    remaining = np.empty_like(costs)
    for start, end in bounds:  # summed from the episode's end, so a costless tail is exactly 0
        remaining[start:end] = np.cumsum(costs[start:end][::-1])[::-1]
    return remaining, bounds[:, 0]


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    dataset: Path
    """DSRL HDF5 file"""
    task: Optional[str] = None
    """DSRL task; default: from the file name"""
    steps: int = 100_000
    """critic steps"""
    every: int = 5000
    """report period (steps)"""
    seed: int = 0
    """torch seed of the networks and the batches"""
    threads: int = 1
    """torch CPU threads"""


def main(args: Args) -> int:
    if args.quick:
        args.steps, args.every = 200, 100
    if args.steps < 1 or args.every < 1 or args.threads < 1:
        raise UserError("--steps, --every and --threads: expected values >= 1")
    torch.set_num_threads(args.threads)
    data = load_dsrl(args.task, path=args.dataset)
    task = resolve_task(args.task, data)
    if task is None:
        raise UserError(f"{args.dataset}: no DSRL task in the file name; pass --task NAME (FISOR rescales its rewards)")
    torch.manual_seed(args.seed)
    algorithm = FISORAlgorithm(FISORConfig(), task.obs_dim, task.act_dim, torch.device("cpu"))
    arrays = {k: torch.from_numpy(v) for k, v in algorithm.prepare(data, task).items()}
    remaining, starts = future_cost(data)
    safe_after = remaining == 0
    fisor, optimizer = algorithm.policy, algorithm.optimizers["critic"]
    batch_size = algorithm.config.critic_batch_size
    generator = torch.Generator().manual_seed(args.seed)
    rows = len(arrays["observations"])
    print(
        f"{task.name}: {args.dataset}, {rows} transitions, {len(starts)} episodes; "
        f"{safe_after.mean():.1%} of states have zero future cost, {(remaining[starts] == 0).mean():.1%} of episodes"
    )
    print(
        f"{'step':>8} {'s':>6} {'feasible':>9} {'zero fut.':>10} {'costly':>8} {'s0 feas.':>9}  V_h(s0) q05 / q50 / q95"
    )
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        index = torch.randint(0, rows, (batch_size,), generator=generator)
        batch = {k: v[index] for k, v in arrays.items()}
        loss, _ = fisor.value_loss(batch)  # V before Q, as FISOR's update
        _step(optimizer, loss)
        loss, _ = fisor.q_loss(batch)
        _step(optimizer, loss)
        fisor.update_critic_targets()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                v_h = fisor.v_h(fisor.normalize(arrays["observations"])).numpy()
            feasible = v_h <= 0
            q05, q50, q95 = np.quantile(v_h[starts], [0.05, 0.5, 0.95])
            row = {
                "step": step,
                "seconds": round(time.perf_counter() - started, 1),
                "feasible": float(feasible.mean()),
                "feasible_zero_future_cost": float(feasible[safe_after].mean()),
                "feasible_with_future_cost": float(feasible[~safe_after].mean()),
                "feasible_initial": float(feasible[starts].mean()),
                "v_h_initial_quantiles": [float(q05), float(q50), float(q95)],
            }
            history.append(row)
            print(
                f"{step:>8} {row['seconds']:>6.0f} {row['feasible']:>9.3f} {row['feasible_zero_future_cost']:>10.3f} "
                f"{row['feasible_with_future_cost']:>8.3f} {row['feasible_initial']:>9.3f}  "
                f"{q05:.2f} / {q50:.2f} / {q95:.2f}",
                flush=True,
            )
    if args.json:
        write_json(
            args.json, {"machine": machine_info(), "task": task.name, "dataset": str(args.dataset), "rows": history}
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
