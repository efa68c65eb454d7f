"""Training cost of one gradient step of every offline safe-RL algorithm, side by side.

    python benchmarks/safe_rl_step.py [--task BallRun] [--threads 1 2] [--rounds 3] [--steps 8] [--compile] [--quick]
        [--json PATH]

Each algorithm runs its reference config (FISOR: batch 2048, two actor updates of 1024 plus critics on 256; BC and
BCQ-Lag: batch 512) on random transitions of the task's dimensions, through the trainer's own ``update``. FISOR is
measured twice: fp32 (the reference) and ``actor_precision = "bf16"`` (bfloat16 autocast of the noise network);
``--compile`` adds the bf16 row with the noise network under ``torch.compile`` (inductor; compiled before the timed
steps, the compile time printed apart). Rows are measured in interleaved rounds at each thread count and the best
round is kept, so a busy neighbour biases every row alike; ``h/100k`` is the wall-clock hours per 100k steps at that
rate and ``vs fisor fp32`` the speed ratio to the reference FISOR step at the same thread count.
"""

import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/safe_rl_step.py`

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, run_benchmark, write_json
from envs.safe_rl import get_task, validate_arrays
from policies.baselines import BCConfig, BCQLagConfig
from policies.fisor import FISORConfig
from robot.cli import UserError
from training.safe_rl.algorithms import SafeRLAlgorithm, make_algorithm

SMALL_FISOR = {"critic_hidden": (64, 64), "actor_width": 64, "actor_blocks": 1, "batch_size": 256}


def random_data(obs_dim: int, act_dim: int, episodes: int = 40, length: int = 100, seed: int = 0) -> Any:
    """Random DSRL-layout transitions (a tenth of the steps costly) of the given dimensions."""
    rng = np.random.default_rng(seed)
    n = episodes * length
    timeouts = np.zeros(n, np.float32)
    timeouts[length - 1 :: length] = 1.0
    return validate_arrays(
        {
            "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "costs": (rng.uniform(size=n) < 0.1).astype(np.float32),
            "terminals": np.zeros(n, np.float32),
            "timeouts": timeouts,
        }
    )


def configs(task_len: int, quick: bool) -> dict[str, FISORConfig | BCConfig | BCQLagConfig]:
    """The rows: reference configs (small networks with ``quick``)."""
    fisor = SMALL_FISOR if quick else {}
    return {
        "fisor fp32": FISORConfig(**fisor),
        "fisor bf16": FISORConfig(**fisor, actor_precision="bf16"),
        "bc_all": BCConfig(mode="all"),
        "bc_safe": BCConfig(mode="safe", cost_limit=10.0),
        "bcq_lag": BCQLagConfig(cost_limit=10.0, episode_len=task_len),
    }


def time_steps(algorithm: SafeRLAlgorithm, tensors: dict[str, torch.Tensor], steps: int, seed: int) -> float:
    """Median seconds of ``steps`` timed updates (after two untimed ones) on random batches."""
    gen = torch.Generator().manual_seed(seed)
    rows = len(next(iter(tensors.values())))
    times = []
    for step in range(steps + 2):
        batch = {k: v[torch.randint(0, rows, (algorithm.batch_size,), generator=gen)] for k, v in tensors.items()}
        start = time.perf_counter()
        algorithm.update(batch, step)
        if step >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    task: str = "BallRun"
    """DSRL task whose dimensions and episode length are used"""
    threads: tuple[int, ...] = (1, 2)
    """torch CPU thread counts to measure"""
    rounds: Optional[int] = None
    """interleaved rounds (default 3, quick 1)"""
    steps: Optional[int] = None
    """timed steps per row and round (default 8, quick 3)"""
    compile: bool = False
    """add a row with FISOR's bf16 noise network under torch.compile (compiled in the untimed first steps)"""


def main(args: Args) -> int:
    rounds = args.rounds or (1 if args.quick else 3)
    steps = args.steps or (3 if args.quick else 8)
    if rounds < 1 or steps < 1 or min(args.threads) < 1:
        raise UserError("--rounds, --steps and --threads: expected values >= 1")
    task = get_task(args.task)
    data = random_data(task.obs_dim, task.act_dim, length=task.max_episode_steps)
    table = Table(
        [
            Column("threads", "threads", 8),
            Column("row", "algorithm", 20),
            Column("batch", "batch", 6),
            Column("ms_per_step", "ms/step", 9, lambda v: f"{v:.1f}"),
            Column("steps_per_s", "steps/s", 9, lambda v: f"{v:.2f}"),
            Column("hours_per_100k", "h/100k", 8, lambda v: f"{v:.2f}"),
            Column("ratio", "vs fisor fp32", 14, lambda v: f"{v:.2f}x"),
        ]
    )
    print(f"{task.name} dimensions ({task.obs_dim} obs, {task.act_dim} act); best of {rounds} rounds x {steps} steps")
    table.header()
    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        best: dict[str, float] = {}
        setups = {}
        rows_configs = configs(task.max_episode_steps, args.quick)
        if args.compile:
            rows_configs["fisor bf16 compiled"] = rows_configs["fisor bf16"]
        for name, config in rows_configs.items():
            torch.manual_seed(0)
            algorithm = make_algorithm(config, task.obs_dim, task.act_dim)
            tensors = {k: torch.from_numpy(v) for k, v in algorithm.prepare(data, task).items()}
            if name.endswith("compiled"):
                denoiser = algorithm.policy.actor.denoiser
                algorithm.policy.actor.denoiser = torch.compile(denoiser)
                started = time.perf_counter()
                time_steps(algorithm, tensors, 1, seed=99)  # compiles forward and backward
                print(f"{name}: compiled in {time.perf_counter() - started:.0f} s (not timed)")
            setups[name] = (algorithm, tensors)
        for r in range(rounds):
            for name, (algorithm, tensors) in setups.items():
                seconds = time_steps(algorithm, tensors, steps, seed=r)
                best[name] = min(best.get(name, float("inf")), seconds)
        for name, seconds in best.items():
            row = {
                "threads": threads,
                "row": name,
                "batch": setups[name][0].batch_size,
                "ms_per_step": seconds * 1e3,
                "steps_per_s": 1.0 / seconds,
                "hours_per_100k": seconds * 1e5 / 3600,
                "ratio": best["fisor fp32"] / seconds,
                "config": dataclasses.asdict(setups[name][0].config),
            }
            rows.append(row)
            table.row(row)
    if args.json is not None:
        write_json(
            args.json, {"task": task.name, "rounds": rounds, "steps": steps, "machine": machine_info(), "rows": rows}
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
