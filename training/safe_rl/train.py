"""Train FISOR, BC-All, BC-Safe or BCQ-Lagrangian on a DSRL dataset.

    python -m training.safe_rl.train --dataset data/BallRun-v0-80-940.hdf5 algorithm:fisor
    python -m training.safe_rl.train --task CarCircle --eval-every 20000 algorithm:bcq-lag --algorithm.episode-len 300
    python -m training.safe_rl.train --run-dir runs/<run> --resume   # the run's options from its config.json
    python -m training.safe_rl.train --preset bcq-lag-ballrun-small   # a committed benchmark configuration

A run folder (:mod:`training.run_dir`) holds ``config.json`` (options and dataset facts), ``tb/`` (TensorBoard:
``train/`` losses, critic values and FISOR's actor-weight statistics, ``eval/`` normalized reward and cost,
``timing/``), ``metrics.csv`` (the same scalars in long form: ``step,name,value``, since each algorithm logs its own
names), ``checkpoints/last.pt`` (every ``checkpoint_every`` steps and at the end), ``checkpoints/best.pt`` (the
evaluation with the lowest normalized cost, then the highest normalized reward) and ``model/policy.safetensors`` with
its ``.json`` (the policy of ``last.pt`` alone, :data:`training.safe_rl.checkpoint.POLICY_FORMAT`). ``--resume``
restores the policy, optimisers, EMA and targets, the step, the best score and every RNG state (python, numpy, torch,
the batch sampler), so an interrupted run resumed from ``last.pt`` ends with the same parameters as an uninterrupted
one.
"""

import csv
import datetime
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from envs.safe_rl import (
    DSRL_TASKS,
    DSRLData,
    DSRLTask,
    arrays_sha256,
    canonical_task_name,
    get_task,
    load_dsrl,
)
from robot.files import atomic_write_text
from training.checkpoint import CheckpointError, truncate_log_rows
from training.run_config import check_resume, trainer_cli
from training.run_dir import RunDir
from training.safe_rl.algorithms import Batch, SafeRLAlgorithm, make_algorithm
from training.safe_rl.checkpoint import (
    CHECKPOINT_FORMAT,
    EvalScore,
    capture_rng,
    is_better,
    load_checkpoint,
    policy_from_checkpoint,
    restore_rng,
    save_checkpoint,
    save_policy,
)
from training.safe_rl.config import (
    PRESETS,
    RESUME_MAY_CHANGE,
    TrainConfig,
    config_from_record,
    config_record,
    read_run_config,
)
from training.safe_rl.evaluate import EnvFactory, dsrl_env_available, evaluate

METRIC_FIELDS = ("step", "name", "value")
"""Columns of ``metrics.csv``: long form, one scalar a row (each algorithm logs its own names)."""


@dataclass
class TrainResult:
    """What a finished :func:`train` call leaves: the run folder, the trained algorithm and its evaluations."""

    run_dir: Path
    step: int
    algorithm: SafeRLAlgorithm
    evaluations: list[EvalScore] = field(default_factory=list)
    best: Optional[EvalScore] = None


def resolve_task(task: Optional[str], data: DSRLData) -> Optional[DSRLTask]:
    """The DSRL task named by ``task``, else the one in the dataset's file name, else None (unknown task)."""
    if task is not None:
        return get_task(task)
    match = re.match(r"^(?:Safety)?([A-Za-z]+)-v0-", Path(data.source).name)
    if match is not None and canonical_task_name(match.group(1)) in DSRL_TASKS:
        return get_task(match.group(1))
    return None


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Meter:
    """Means of scalar metrics over a logging interval."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def flush(self) -> dict[str, float]:
        means = {key: value / max(self.count, 1) for key, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def _new_run_dir(config: TrainConfig, task: Optional[DSRLTask], data: DSRLData) -> Path:
    if config.run_dir is not None:
        return config.run_dir
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = task.name if task is not None else Path(data.source).stem
    return config.runs_root / f"{stamp}_{config.algorithm_name}_{name}"


def _open_run(
    config: TrainConfig,
    run_dir: Path,
    record: dict[str, Any],
    data_info: dict[str, Any],
    algorithm: SafeRLAlgorithm,
    sampler: torch.Generator,
) -> tuple[int, Optional[EvalScore]]:
    """Start a new run folder, or restore the state of ``last.pt`` for ``--resume``; returns (step, best)."""
    run = RunDir(run_dir)
    last = run.last
    text = json.dumps({"config": record, "data": data_info}, indent=2) + "\n"
    if not config.resume:
        if run.has_checkpoint():
            raise FileExistsError(f"{run_dir}: holds a run already; pass --resume to continue it, or another --run-dir")
        run.start(text, METRIC_FIELDS)
        return 0, None
    payload = load_checkpoint(last)  # on the CPU: RNG states must stay there; load_state_dict moves the weights
    check_resume(config_from_record(payload["config"], f"{last}: config"), config, RESUME_MAY_CHANGE, last)
    if payload["data"]["fingerprint"] != data_info["fingerprint"]:
        raise ValueError(f"{last}: the run trained on other data than {data_info['source']} (fingerprints differ)")
    step = int(payload["step"])
    if step > algorithm.num_steps:
        raise ValueError(f"{last}: the run is at step {step}, past --algorithm.num-steps {algorithm.num_steps}")
    try:
        algorithm.load_state_dict(payload["algorithm"])
        restore_rng(payload["rng"], sampler)
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{last}: does not fit this algorithm ({error})") from error
    atomic_write_text(run.config, text)  # num_steps may grow
    truncate_log_rows(run.metrics, step, METRIC_FIELDS)
    best = payload["best"]
    return step, None if best is None else EvalScore(**best)


@dataclass
class _Run:
    """What the loop's side tasks (logging, evaluation, checkpoints) need besides the algorithm."""

    config: TrainConfig
    run_dir: Path
    record: dict[str, Any]
    data_info: dict[str, Any]
    algorithm: SafeRLAlgorithm
    sampler: torch.Generator
    writer: SummaryWriter
    result: TrainResult

    def __post_init__(self) -> None:
        self.paths = RunDir(self.run_dir)

    def save(self, name: str, step: int) -> None:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "config": self.record,
            "algorithm": self.algorithm.state_dict(),
            "rng": capture_rng(self.sampler),
            "best": None if self.result.best is None else vars(self.result.best).copy(),
            "data": self.data_info,
        }
        save_checkpoint(self.paths.checkpoints / name, payload)
        if name == "last.pt":
            save_policy(
                self.paths.model("policy.safetensors"), policy_from_checkpoint(payload, self.algorithm.acting_parts)
            )

    def log_csv(self, step: int, values: dict[str, float]) -> None:
        """Append ``step,name,value`` rows to ``metrics.csv``."""
        with self.paths.metrics.open("a", newline="") as handle:
            csv.writer(handle).writerows([step, name, f"{value:.6g}"] for name, value in values.items())

    def log_train(self, metrics: dict[str, float], batch: Batch, step: int, steps_per_s: float) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        self.log_csv(step, {**{f"train/{k}": v for k, v in metrics.items()}, "timing/steps_per_s": steps_per_s})
        for key, values in self.algorithm.histograms(batch).items():
            self.writer.add_histogram(f"train/{key}", values.detach().cpu(), step)
        self.writer.add_scalar("timing/steps_per_s", steps_per_s, step)

    def evaluate(self, task: DSRLTask, env_factory: Optional[EnvFactory], step: int) -> EvalScore:
        """Evaluate, log under ``eval/`` and keep ``best.pt`` when the score beats the best so far."""
        started = time.perf_counter()
        summary = evaluate(self.algorithm, task, self.config.eval, env_factory).summary()
        score = EvalScore(step, summary["normalized_reward"], summary["normalized_cost"])
        self.result.evaluations.append(score)
        keys = ("normalized_reward", "normalized_cost", "episode_return", "episode_cost", "length")
        for key in keys:
            self.writer.add_scalar(f"eval/{key}", summary[key], step)
        self.log_csv(step, {f"eval/{key}": summary[key] for key in keys})
        self.writer.add_scalar("timing/eval_s", time.perf_counter() - started, step)
        if is_better(score, self.result.best):
            self.result.best = score
            self.save("best.pt", step)
        return score


def train(config: TrainConfig, env_factory: Optional[EnvFactory] = None) -> TrainResult:
    """Run (or resume) one training run; ``env_factory(task)`` replaces the DSRL environment in evaluations."""
    seed_everything(config.seed)
    data = load_dsrl(task=config.task, path=config.dataset, directory=config.dataset_dir)
    task = resolve_task(config.task, data)
    algorithm = make_algorithm(config.algorithm, data.obs_dim, data.act_dim, config.device)
    tensors = {k: torch.from_numpy(v).to(config.device) for k, v in algorithm.prepare(data, task).items()}
    num_rows = next(iter(tensors.values())).shape[0]
    sampler = torch.Generator().manual_seed(config.seed)
    record = config_record(config)
    data_info = {
        "fingerprint": arrays_sha256(data),  # a resumed run must see the same arrays (compressed or not)
        "num_transitions": data.num_transitions,
        "obs_dim": data.obs_dim,
        "act_dim": data.act_dim,
        "task": task.name if task is not None else None,
        "source": data.source,
    }
    run_dir = _new_run_dir(config, task, data)
    start, best = _open_run(config, run_dir, record, data_info, algorithm, sampler)
    can_eval = config.eval_every > 0 and task is not None and (env_factory is not None or dsrl_env_available())
    if config.eval_every > 0 and not can_eval:
        why = "no DSRL task is known (--task)" if task is None else "dsrl / bullet-safety-gym are not installed"
        print(f"note: periodic evaluation off: {why}; best.pt is written only after evaluations")
    result = TrainResult(run_dir=run_dir, step=start, algorithm=algorithm, best=best)
    writer = SummaryWriter(str(RunDir(run_dir).tb), purge_step=start if config.resume else None)
    run = _Run(config, run_dir, record, data_info, algorithm, sampler, writer, result)
    bar = tqdm(total=algorithm.num_steps, initial=start, unit="step", disable=not config.progress, dynamic_ncols=True)
    meter, tick = _Meter(), time.perf_counter()
    try:
        for step in range(start + 1, algorithm.num_steps + 1):
            rows = torch.randint(0, num_rows, (algorithm.batch_size,), generator=sampler).to(config.device)
            batch = {key: value[rows] for key, value in tensors.items()}
            meter.add(algorithm.update(batch, step - 1))
            bar.update(1)
            if step % config.log_every == 0 or step == algorithm.num_steps:
                steps_per_s = meter.count / (time.perf_counter() - tick)
                means = meter.flush()
                run.log_train(means, batch, step, steps_per_s)
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:3]}, refresh=False)
                tick = time.perf_counter()
            if can_eval and step % config.eval_every == 0:
                assert task is not None  # can_eval implies it
                score = run.evaluate(task, env_factory, step)
                bar.write(
                    f"step {step}: normalized reward {score.normalized_reward:.3f}, cost {score.normalized_cost:.3f}"
                )
                tick = time.perf_counter()
            if step % config.checkpoint_every == 0 or step == algorithm.num_steps:
                run.save("last.pt", step)
            result.step = step
    finally:
        bar.close()
        writer.close()
    return result


def main(config: TrainConfig) -> TrainResult:
    """CLI entry: train and say where the run is."""
    result = train(config)
    print(f"run folder: {result.run_dir} (step {result.step})")
    if result.best is not None:
        b = result.best
        print(f"best: step {b.step}, normalized reward {b.normalized_reward:.3f}, cost {b.normalized_cost:.3f}")
    return result


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-train-safe-rl``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return trainer_cli(
        TrainConfig,
        main,
        args,
        run_config=read_run_config,
        may_change=RESUME_MAY_CHANGE,
        presets=PRESETS,
        description="Train FISOR, BC-All, BC-Safe or BCQ-Lagrangian on a DSRL dataset.",
    )


if __name__ == "__main__":
    sys.exit(cli())
