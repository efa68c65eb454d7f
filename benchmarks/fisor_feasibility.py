"""How FISOR's feasibility critic classifies a dataset's states as it trains: is the start of an episode feasible?

    python benchmarks/fisor_feasibility.py --dataset PATH [--steps 100000] [--every 5000] [--seed 0] [--json PATH]
    python benchmarks/fisor_feasibility.py --dataset PATH --checkpoints RUN/checkpoints/step_30000.pt [...]
        [--episodes 5]

FISOR's critics (Q_r, V_r, Q_h, V_h) learn from the dataset's own actions and never read the actor, so this trains
them alone with FISOR's reference schedule (one V step, then one Q step on 256 transitions, then the target update)
at about 20 ms a step instead of a full FISOR step's ~300 ms: the same critic updates as a FISOR run of that
config, on other random batches (FISOR draws 2048 rows and its actor draws noise from the same generator), so the
same dynamics but not the same numbers as a given run. Every ``--every`` steps it prints the share of states with
``V_h(s) <= 0`` (FISOR's feasible region) among all states, among states whose own episode incurs no more cost from
there on ("zero future cost": feasible by the data's own evidence) and among the rest, plus ``V_h`` at the episodes'
initial states. While the initial states read infeasible (``V_h(s_0) > 0``) the actor learns the infeasible-region
objective (reduce future violation) and the candidate selection takes the lowest Q_h.

With ``--checkpoints`` it trains nothing: it reads the critics of FISOR training checkpoints (a run's
``checkpoints/step_<N>.pt``, which ``benchmarks/safe_rl_benchmark.py --run-root`` keeps at each finished step
count, or a ``checkpoints/last.pt``; a policy file keeps only what acting reads and is refused),
prints the same shares for each, then runs the policy for ``--episodes`` episodes in the DSRL environment and
reports, besides its normalized reward and cost, the share of the states it visits that its own ``V_h`` classes
infeasible and its mean action magnitude: a policy that incurs no cost yet spends its episodes in the critic's
infeasible region is acting on the infeasible-region objective, i.e. held back by a critic that has not converged.
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
from envs.safe_rl import DSRLData, DSRLTask, load_dsrl
from envs.safe_rl.preprocess import episode_bounds
from policies.fisor import FISOR, FISORConfig
from robot.cli import UserError
from training.safe_rl.algorithms import FISORAlgorithm, _step
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import EnvFactory, load_algorithm_of, run_episodes
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
    checkpoints: tuple[Path, ...] = ()
    """FISOR training checkpoints to probe instead of training critics (module docstring)"""
    episodes: int = 5
    """with --checkpoints: episodes of each policy in the DSRL environment"""
    eval_seed: Optional[int] = None
    """with --checkpoints: environment seed of the episodes; default: each checkpoint's training seed, the seed the
    campaign evaluates it with, so the rollouts reproduce its record"""
    cost_limit: float = 10.0
    """with --checkpoints: cost limit of the normalized cost"""


HEADER = (
    f"{'step':>8} {'s':>6} {'feasible':>9} {'zero fut.':>10} {'costly':>8} {'s0 feas.':>9}  V_h(s0) q05 / q50 / q95"
)


def classify(fisor: FISOR, observations: torch.Tensor, safe_after: np.ndarray, starts: np.ndarray) -> dict[str, Any]:
    """Shares of the dataset's states with ``V_h <= 0``: all, zero future cost, with future cost, initial."""
    with torch.no_grad():
        v_h = fisor.v_h(fisor.normalize(observations)).numpy()
    feasible = v_h <= 0
    q05, q50, q95 = np.quantile(v_h[starts], [0.05, 0.5, 0.95])
    return {
        "feasible": float(feasible.mean()),
        "feasible_zero_future_cost": float(feasible[safe_after].mean()),
        "feasible_with_future_cost": float(feasible[~safe_after].mean()),
        "feasible_initial": float(feasible[starts].mean()),
        "v_h_initial_quantiles": [float(q05), float(q50), float(q95)],
    }


def format_row(row: dict[str, Any]) -> str:
    q05, q50, q95 = row["v_h_initial_quantiles"]
    return (
        f"{row['step']:>8} {row['seconds']:>6.0f} {row['feasible']:>9.3f} {row['feasible_zero_future_cost']:>10.3f} "
        f"{row['feasible_with_future_cost']:>8.3f} {row['feasible_initial']:>9.3f}  {q05:.2f} / {q50:.2f} / {q95:.2f}"
    )


def rollouts(
    algorithm: FISORAlgorithm, task: DSRLTask, config: EvalConfig, env_factory: Optional[EnvFactory] = None
) -> dict[str, Any]:
    """The policy in the DSRL environment: its scores, the share of visited states with ``V_h > 0``, mean ``|a|``."""
    fisor = algorithm.policy.eval()
    visited_v_h: list[float] = []
    magnitudes: list[float] = []

    def act(obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        state = torch.from_numpy(obs).unsqueeze(0)  # (1, S)
        with torch.no_grad():
            visited_v_h.append(float(fisor.v_h(fisor.normalize(state))[0]))
        action = algorithm.act(state, generator)[0].numpy()  # (A,)
        magnitudes.append(float(np.abs(action).mean()))
        return action

    summary = run_episodes(act, task, config, env_factory).summary()
    return {
        "normalized_reward": summary["normalized_reward"],
        "normalized_cost": summary["normalized_cost"],
        "episodes": config.episodes,
        "visited_infeasible": float(np.mean(np.asarray(visited_v_h) > 0)),
        "mean_abs_action": float(np.mean(magnitudes)),
    }


def probe_checkpoints(
    args: Args,
    data: DSRLData,
    task: DSRLTask,
    safe_after: np.ndarray,
    starts: np.ndarray,
    env_factory: Optional[EnvFactory] = None,
) -> list[dict[str, Any]]:
    """For each checkpoint: the dataset shares of its critic, and its policy's own rollouts (module docstring)."""
    observations = torch.from_numpy(np.asarray(data.observations, dtype=np.float32))
    print(HEADER + "   rollouts: norm. reward / cost, visited states infeasible, mean |a|")
    history: list[dict[str, Any]] = []
    for path in args.checkpoints:
        started = time.perf_counter()
        algorithm, payload = load_algorithm_of(path, FISORAlgorithm, "a FISOR training checkpoint")
        if "acting_parts" in payload:
            raise UserError(
                f"{path}: a policy file keeps only what acting reads ({', '.join(payload['acting_parts'])}), not V_h; "
                "pass a training checkpoint (RUN/checkpoints/step_<N>.pt or last.pt)"
            )
        seed = int(payload["config"]["seed"]) if args.eval_seed is None else args.eval_seed
        row = {
            "step": int(payload["step"]),
            "checkpoint": str(path),
            "eval_seed": seed,
            **classify(algorithm.policy.eval(), observations, safe_after, starts),
            **rollouts(algorithm, task, EvalConfig(args.episodes, (seed,), args.cost_limit), env_factory),
        }
        row["seconds"] = round(time.perf_counter() - started, 1)
        history.append(row)
        print(
            f"{format_row(row)}   {row['normalized_reward']:.3f} / {row['normalized_cost']:.2f}, "
            f"{row['visited_infeasible']:.2f}, {row['mean_abs_action']:.2f}",
            flush=True,
        )
    return history


def main(args: Args) -> int:
    if args.quick:
        args.steps, args.every = 200, 100
    if args.steps < 1 or args.every < 1 or args.threads < 1 or args.episodes < 1:
        raise UserError("--steps, --every, --threads and --episodes: expected values >= 1")
    torch.set_num_threads(args.threads)
    data = load_dsrl(args.task, path=args.dataset)
    task = resolve_task(args.task, data)
    if task is None:
        raise UserError(f"{args.dataset}: no DSRL task in the file name; pass --task NAME (FISOR rescales its rewards)")
    remaining, starts = future_cost(data)
    safe_after = remaining == 0
    print(
        f"{task.name}: {args.dataset}, {len(remaining)} transitions, {len(starts)} episodes; "
        f"{safe_after.mean():.1%} of states have zero future cost, {(remaining[starts] == 0).mean():.1%} of episodes"
    )
    if args.checkpoints:
        history = probe_checkpoints(args, data, task, safe_after, starts)
    else:
        history = train_critics(args, data, task, safe_after, starts)
    if args.json:
        write_json(
            args.json, {"machine": machine_info(), "task": task.name, "dataset": str(args.dataset), "rows": history}
        )
        print(f"wrote {args.json}")
    return 0


def train_critics(
    args: Args, data: DSRLData, task: DSRLTask, safe_after: np.ndarray, starts: np.ndarray
) -> list[dict[str, Any]]:
    """FISOR's critics alone, with the shares every ``--every`` steps (module docstring)."""
    torch.manual_seed(args.seed)
    algorithm = FISORAlgorithm(FISORConfig(), task.obs_dim, task.act_dim, torch.device("cpu"))
    arrays = {k: torch.from_numpy(v) for k, v in algorithm.prepare(data, task).items()}
    fisor, optimizer = algorithm.policy, algorithm.optimizers["critic"]
    batch_size = algorithm.config.critic_batch_size
    generator = torch.Generator().manual_seed(args.seed)
    rows = len(arrays["observations"])
    print(HEADER)
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
            row = {
                "step": step,
                "seconds": round(time.perf_counter() - started, 1),
                **classify(fisor, arrays["observations"], safe_after, starts),
            }
            history.append(row)
            print(format_row(row), flush=True)
    return history


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
