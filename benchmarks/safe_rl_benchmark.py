"""Offline safe RL on a DSRL dataset: FISOR, BC-All, BC-Safe and BCQ-Lagrangian side by side.

    python benchmarks/safe_rl_benchmark.py --dataset PATH [--task NAME] [--steps N] [--batch-size B]
        [--seeds 0 1 2] [--episodes 10] [--cost-limit 10] [--algorithms fisor bc_all bc_safe bcq_lag]
        [--device cpu] [--threads N] [--fisor-precision fp32|bf16]
        [--out-dir outputs/bench/safe_rl | --run-root DIR] [--checkpoint-every N] [--results-dir DIR] [--quick]
        [--json PATH]

Each algorithm trains ``--steps`` gradient steps per seed with its reference hyperparameters (``--batch-size``
overrides every batch size; BC-Safe and BCQ-Lag use ``--cost-limit`` as their constraint and BCQ-Lag the task's
episode length), then the final policy runs ``--episodes`` episodes in the task's DSRL environment (env seed =
training seed). The table shows DSRL's normalized reward and cost (cost / limit; safe means <= 1) as mean ± std
over seeds (population std of the per-seed means) beside the numbers FISOR's paper publishes for BC-All, BCQ-Lag
and FISOR at limit 10 (Zheng et al., ICLR 2024, Table 1; BC-Safe is not in it). Those come from 1e6 steps on
DSRL's official data: a short run on a generated dataset is a different experiment, and the table says so.

Long benchmarks span sessions: with ``--run-root DIR`` every (algorithm, seed) run lives in ``DIR/<algo>_seed<k>``,
checkpoints every ``--checkpoint-every`` steps, keeps each finished step count's policy in ``policies/step_<N>.pt``
(``training.safe_rl.export``'s format) and its full training checkpoint in ``checkpoints/step_<N>.pt`` (critics
included, what ``benchmarks/fisor_feasibility.py --checkpoints`` reads; a hard link to that step's ``last.pt``, so
it costs no disk until the next checkpoint replaces ``last.pt``, a copy where the filesystem has no hard links),
and a rerun of the same command skips the runs that finished
(``result_<steps>.json``) and resumes the others from their ``last.pt`` (bit-identical to an uninterrupted run).
Rerunning with a larger ``--steps`` continues the same runs (the learning-rate schedules do not depend on the step
budget), so the figures at 25k, 50k, 100k ... steps come from one training run per seed. ``s/100k`` is the
wall-clock training time per 100k gradient steps measured over the steps trained by this call. Each finished run's
row (``result_<steps>.json``, the ``--results-dir`` record) also carries its ``training_curve``: the logged ``train/``
scalars (losses, critic values, BCQ-Lag's multiplier and cost violation, FISOR's feasible share) on about 50 points up
to that step, so the record explains its figure after the run folder is gone.

``--fisor-precision bf16`` trains FISOR's actor under bfloat16 autocast (about 1.8x faster per step on a CPU with
avx512_bf16; fp32, the reference, is the default); ``--threads`` sets torch's CPU threads, so that two benchmark
processes on disjoint ``--seeds`` or ``--algorithms`` can share a run root, one core each.

``--quick`` is a smoke run (20 steps, one seed, one episode, small networks): its figures mean nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/safe_rl_benchmark.py`

from benchmarks._common import BenchmarkArgs, Column, Table, machine_info, run_benchmark, write_json
from envs.safe_rl import DSRLTask, load_dsrl
from policies.baselines import BCConfig, BCQLagConfig
from policies.fisor import FISORConfig
from robot.cli import UserError
from robot.files import atomic_write, git_revision
from training.run_dir import RunDir
from training.safe_rl.checkpoint import load_checkpoint, policy_from_checkpoint, save_policy
from training.safe_rl.config import ALGORITHM_NAMES, EvalConfig, TrainConfig
from training.safe_rl.evaluate import evaluate, mean_std
from training.safe_rl.train import resolve_task, train

#: FISOR's Table 1 (Zheng et al., ICLR 2024): normalized reward, normalized cost at limit 10
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "BallRun": {"bc_all": (0.67, 11.38), "bcq_lag": (0.43, 6.25), "fisor": (0.18, 0.00)},
    "CarRun": {"bc_all": (0.96, 1.88), "bcq_lag": (0.84, 2.51), "fisor": (0.73, 0.14)},
    "BallCircle": {"bc_all": (0.72, 10.02), "bcq_lag": (0.67, 8.50), "fisor": (0.34, 0.00)},
    "CarCircle": {"bc_all": (0.65, 11.16), "bcq_lag": (0.68, 8.84), "fisor": (0.40, 0.11)},
}
QUICK_FISOR = {"critic_hidden": (64, 64), "actor_width": 64, "actor_blocks": 1, "num_candidates": 4}
QUICK_BASELINE = {"actor_hidden": (64, 64), "critic_hidden": (64, 64), "vae_hidden": 64}


def algorithm_config(
    name: str,
    task: DSRLTask,
    steps: int,
    batch_size: int | None,
    cost_limit: float,
    quick: bool,
    fisor_precision: Literal["fp32", "bf16"] = "fp32",
) -> FISORConfig | BCConfig | BCQLagConfig:
    """The reference config of ``name`` with the benchmark's step budget, batch size and cost limit."""
    batch = {} if batch_size is None else {"batch_size": batch_size}
    if name == "fisor":
        if batch_size is not None:
            batch["critic_batch_size"] = min(256, batch_size)
        extra = QUICK_FISOR if quick else {}
        return FISORConfig(num_steps=steps, actor_precision=fisor_precision, **batch, **extra)
    if name in ("bc_all", "bc_safe"):
        return BCConfig(mode=name[3:], cost_limit=cost_limit, num_steps=steps, **batch)
    extra = QUICK_BASELINE if quick else {}
    return BCQLagConfig(cost_limit=cost_limit, episode_len=task.max_episode_steps, num_steps=steps, **batch, **extra)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def run_seed(name: str, seed: int, task: DSRLTask, args: Args, run_root: Path) -> dict[str, float]:
    """One (algorithm, seed) run to ``args.steps``: reused when finished, resumed from ``last.pt`` when started."""
    run_dir = run_root / f"{name}_seed{seed}"
    done = run_dir / f"result_{args.steps}.json"
    if done.is_file():
        row = json.loads(done.read_text())
        record = (
            None
            if args.results_dir is None
            else result_record_path(args.results_dir, task.name, name, seed, args.steps)
        )
        if record is not None and not record.is_file():
            write_result_record(args.results_dir, name, task, args, row)
        return row
    last = RunDir(run_dir).last
    config = TrainConfig(
        algorithm=algorithm_config(
            name, task, args.steps, args.batch_size, args.cost_limit, args.quick, args.fisor_precision
        ),
        dataset=args.dataset,
        task=task.name,
        seed=seed,
        run_dir=run_dir,
        checkpoint_every=min(args.checkpoint_every, args.steps),
        log_every=max(args.steps // 50, 1),
        eval_every=0,
        device=args.device,
        progress=not args.quick,
        resume=last.is_file(),
    )
    started = time.perf_counter()
    first = load_checkpoint(last)["step"] if last.is_file() else 0
    result = train(config)
    train_s = time.perf_counter() - started
    trained = result.step - first
    started = time.perf_counter()
    summary = evaluate(result.algorithm, task, EvalConfig(args.episodes, (seed,), args.cost_limit)).summary()
    row = {
        **summary,
        "seed": seed,
        "steps": result.step,
        "train_s": train_s,
        "steps_trained_now": trained,
        "s_per_100k_steps": train_s / trained * 1e5 if trained > 0 else math.nan,
        "eval_s": time.perf_counter() - started,
        "training_curve": training_curve(RunDir(run_dir).metrics, result.step),
    }
    # the rung's policy alone (a later rung overwrites last.pt), from last.pt itself: a run resumed at its last step
    # trains nothing, so the trainer's model/policy.pt may be an older version's or missing
    policy = policy_from_checkpoint(load_checkpoint(last), result.algorithm.acting_parts)
    save_policy(run_dir / "policies" / f"step_{result.step}.pt", policy)
    keep_checkpoint(last, last.with_name(f"step_{result.step}.pt"))
    write_json(done, row)
    if args.results_dir is not None:
        write_result_record(args.results_dir, name, task, args, row)
    return row


def training_curve(metrics: Path, steps: int, points: int = 50) -> dict[str, list[Optional[float]]]:
    """The run's logged ``train/`` and ``eval/`` scalars up to ``steps``, about ``points`` rows, as columns:
    ``{"step": [...], name: [...]}`` (``None`` where a scalar was not logged at that step) from its ``metrics.csv``
    (long form ``step,name,value``; the rows on a grid of ``steps // points`` steps, and the last one). Kept in the
    record because the run folder may not outlive the sitting, and a figure such as BCQ-Lag's cost is read against
    its Lagrange multiplier and cost critic. ``{}`` without a metrics file or rows."""
    if not metrics.is_file():
        return {}
    grid = max(steps // points, 1)
    logged: dict[int, dict[str, float]] = {}
    with metrics.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step, name = int(row["step"]), row["name"]
            if step <= steps and name.startswith(("train/", "eval/")):
                logged.setdefault(step, {})[name] = float(row["value"])  # a resumed run's rewrite wins
    if not logged:
        return {}
    last = max(logged)
    kept = [s for s in sorted(logged) if s % grid == 0 or s == last]
    names = sorted({name for s in kept for name in logged[s]})
    curve: dict[str, list[Optional[float]]] = {"step": [s for s in kept]}
    for name in names:
        curve[name] = [None if name not in logged[s] else float(f"{logged[s][name]:.6g}") for s in kept]
    return curve


def keep_checkpoint(last: Path, kept: Path) -> Path:
    """Keep the training state in ``last`` as ``kept`` (replacing an older one), through :func:`atomic_write`: a
    hard link, since the trainer replaces ``last.pt`` by renaming a new file over it and so never writes into the
    linked one; a copy where the filesystem refuses hard links."""

    def link_or_copy(temporary: str) -> None:
        os.unlink(temporary)  # atomic_write's empty placeholder: a link is not made over an existing name
        try:
            os.link(last, temporary)
        except OSError:
            shutil.copyfile(last, temporary)

    return atomic_write(kept, link_or_copy)


def result_record_path(results_dir: Path, task: str, name: str, seed: int, steps: int) -> Path:
    """Where one finished (task, algorithm, seed, steps) run's record goes: one small JSON per run."""
    return results_dir / task / f"{name}_seed{seed}_{steps}.json"


def write_result_record(results_dir: Path, name: str, task: DSRLTask, args: Args, row: dict[str, Any]) -> Path:
    """Write the run's figures with what produced them (dataset hash, commit, machine, command) into ``results_dir``.

    Written as each run finishes, so a campaign spread over sittings keeps every finished run in the repository.
    """
    path = result_record_path(results_dir, task.name, name, row["seed"], row["steps"])
    record = {
        "task": task.name,
        "algorithm": name,
        **row,
        "episodes": args.episodes,
        "cost_limit": args.cost_limit,
        "batch_size": args.batch_size,
        "fisor_precision": args.fisor_precision if name == "fisor" else None,
        "dataset": str(args.dataset),
        "dataset_sha256": hashlib.sha256(Path(args.dataset).read_bytes()).hexdigest(),
        "commit": git_revision(),
        "command": " ".join(["python", *sys.argv]),
        "machine": machine_info(),
    }
    write_json(path, record)
    print(f"  {name} seed {row['seed']} at {row['steps']} steps: wrote {path}", flush=True)
    return path


def run_algorithm(name: str, task: DSRLTask, args: Args, run_root: Path) -> dict[str, Any]:
    """Train (or reuse, or resume) and evaluate one algorithm over every seed; returns its table row."""
    per_seed = [run_seed(name, seed, task, args, run_root) for seed in args.seeds]
    reward, reward_std = mean_std([s["normalized_reward"] for s in per_seed])
    cost, cost_std = mean_std([s["normalized_cost"] for s in per_seed])
    published = PUBLISHED.get(task.name, {}).get(name)
    return {
        "algorithm": name,
        "seeds": len(per_seed),
        "steps": args.steps,
        "reward": f"{reward:.3f} ± {reward_std:.3f}",
        "cost": f"{cost:.3f} ± {cost_std:.3f}",
        "normalized_reward": reward,
        "normalized_reward_std": reward_std,
        "normalized_cost": cost,
        "normalized_cost_std": cost_std,
        "safe": cost <= 1.0,
        "published": None if published is None else f"{published[0]:.2f} / {published[1]:.2f}",
        "published_reward": None if published is None else published[0],
        "published_cost": None if published is None else published[1],
        "train_s": sum(s["train_s"] for s in per_seed) / len(per_seed),
        "s_per_100k_steps": _finite_mean([s["s_per_100k_steps"] for s in per_seed]),
        "per_seed": per_seed,
    }


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    dataset: Optional[Path] = None
    """DSRL HDF5 file (or give --task)"""
    task: Optional[str] = None
    """DSRL task; default: from the file name"""
    steps: Optional[int] = None
    """gradient steps per run (default 20000, quick 20)"""
    batch_size: Optional[int] = None
    """override every algorithm's batch size"""
    seeds: Optional[tuple[int, ...]] = None
    """training seeds (default 0 1 2)"""
    episodes: Optional[int] = None
    """evaluation episodes per seed (default 10)"""
    cost_limit: float = 10.0
    """cost limit of the normalized cost"""
    algorithms: tuple[str, ...] = tuple(ALGORITHM_NAMES)
    """algorithms to run, from fisor, bc_all, bc_safe, bcq_lag"""
    device: str = "cpu"
    """torch device"""
    out_dir: Path = Path("outputs/bench/safe_rl")
    """run folders go here"""
    run_root: Optional[Path] = None
    """fixed folder of the runs: rerun to reuse or resume them"""
    results_dir: Optional[Path] = None
    """also write each finished run's figures, training curve, commit, machine and command to
    DIR/<task>/<algo>_seed<k>_<steps>.json (e.g. benchmarks/results/safe_rl/campaign)"""
    checkpoint_every: int = 5000
    """checkpoint period of every run (steps)"""
    fisor_precision: Literal["fp32", "bf16"] = "fp32"
    """FISOR actor training precision"""
    threads: Optional[int] = None
    """torch CPU threads (default: torch's choice)"""


def main(args: Args) -> int:
    unknown = sorted(set(args.algorithms) - set(ALGORITHM_NAMES))
    if unknown:
        raise UserError(f"--algorithms: unknown {unknown}; expected some of {list(ALGORITHM_NAMES)}")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads: expected >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    args.steps = args.steps or (20 if args.quick else 20_000)
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.episodes = args.episodes or (1 if args.quick else 10)
    if args.quick and args.batch_size is None:
        args.batch_size = 64
    if args.dataset is None and args.task is None:
        raise UserError("expected --dataset PATH or --task NAME")
    data = load_dsrl(task=args.task, path=args.dataset)
    task = resolve_task(args.task, data)
    if task is None:
        raise UserError(f"{data.source}: cannot tell the DSRL task from the file name; pass --task")
    args.dataset = Path(data.source)
    run_root = args.run_root or args.out_dir / f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}_{task.name}"
    print(
        f"{task.name}: {data.source}, {data.num_transitions} transitions; {args.steps} steps x seeds {args.seeds}, "
        f"{args.episodes} episodes per seed, cost limit {args.cost_limit:g}; runs in {run_root}"
    )
    table = Table(
        [
            Column("algorithm", "algorithm", 10),
            Column("seeds", "seeds", 6),
            Column("steps", "steps", 8),
            Column("reward", "norm. reward", 16),
            Column("cost", "norm. cost", 16),
            Column("safe", "safe", 6, lambda v: "yes" if v else "no"),
            Column("published", "published r / c", 16),
            Column("train_s", "train s/seed", 13, lambda v: f"{v:.1f}"),
            Column("s_per_100k_steps", "s/100k", 9, lambda v: "-" if not math.isfinite(v) else f"{v:.0f}"),
        ]
    )
    table.header()
    rows = []
    for name in args.algorithms:
        rows.append(run_algorithm(name, task, args, run_root))
        table.row(rows[-1])
    print(
        "published: FISOR's Table 1 (1e6 steps, DSRL's official data, limit 10); not the same experiment as a "
        "short run on generated data."
    )
    if args.json is not None:
        options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {"task": dataclasses.asdict(task), "options": options, "machine": machine_info(), "rows": rows}
        write_json(args.json, payload)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
