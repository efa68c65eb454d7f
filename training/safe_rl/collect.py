"""Build a DSRL-format dataset for a DSRL Bullet task: ``python -m training.safe_rl.collect --task BallRun``.

As DSRL (Liu et al., "Datasets and Benchmarks for Offline Safe RL"), the data must cover the reward-cost trade-off:

1. train one PPO-Lagrangian agent (:mod:`training.safe_rl.ppo_lagrangian`) per cost limit ``d_k``
   (fractions of the task's MaxCost), saving ``checkpoints_per_agent`` policies evenly along training;
2. record ``episodes_per_policy`` episodes from every checkpoint with its mean action plus Gaussian noise
   ``a = clip(mu(s) + sigma * eps, -1, 1)`` for every ``sigma`` of ``noise_stds`` (0: the deterministic policy);
3. drop episodes whose cost exceeds MaxCost; when more than ``num_trajectories`` remain, keep a grid-balanced
   subsample in the (cost, return) plane (DSRL filtered its data by density too);
4. write ``<out_dir>/<Task>-v0-<MaxCost>-<NumTraj>.hdf5`` with :func:`envs.safe_rl.write_dsrl`, a scatter plot of
   episode return against episode cost (``.png``) and the source of every trajectory (``.json``) beside it.

Agents, checkpoints (safetensors + JSON) and TensorBoard logs go to ``<out_dir>/<Task>-v0-seed<seed>-<preset>/``.
Everything is derived from ``--seed``: the same command on the same machine (and ``num_threads``) rebuilds the
same arrays. A long build resumes: a finished agent leaves ``done.json`` in its folder and every recorded variant an
``episodes/<v>.npz``; rerunning the same command after a kill reuses them (an agent killed half-way is trained
again from its start), and every agent and recording is seeded on its own, so the result is the uninterrupted one.
A work folder made by a different configuration is refused (``--overwrite`` discards it).

``--preset small`` builds ~100 trajectories in about a minute on 2 cores; ``--preset dsrl`` aims at
DSRL's sizes (BallRun 940 x 100 steps, ...; hours on a CPU).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from envs.safe_rl.dsrl_data import (
    COMPRESSION,
    DSRL_KEYS,
    arrays_sha256,
    dsrl_file_name,
    make_dsrl_env,
    read_dsrl,
    write_dsrl,
)
from envs.safe_rl.tasks import DSRLTask, get_task
from robot.cli import run_cli
from robot.files import atomic_write, atomic_write_text
from training.safe_rl.plots import plot_return_vs_cost
from training.safe_rl.ppo_lagrangian import (
    OBS_GROUP,
    GymVecEnv,
    PPOLagrangian,
    PPOLagrangianConfig,
    load_actor_checkpoint,
    save_actor_checkpoint,
)


@dataclass(frozen=True)
class CollectPreset:
    """Sizes of one dataset build."""

    num_envs: int
    """parallel environments per agent (training and recording)"""
    env_steps_per_agent: int
    """environment steps of PPO-Lagrangian training per agent"""
    checkpoints_per_agent: int
    """policies saved evenly along each agent's training (the last one is the final policy)"""
    cost_limit_fractions: tuple[float, ...]
    """agent cost limits as fractions of the task's MaxCost"""
    noise_stds: tuple[float, ...]
    """Gaussian action-noise std of the recorded variants of every checkpoint (0: deterministic)"""
    episodes_per_policy: int
    """episodes recorded per (checkpoint, noise std)"""
    num_trajectories: int | None
    """trajectories kept (grid-balanced subsample of those under MaxCost); None: all of them"""

    def __post_init__(self) -> None:
        counts = (self.num_envs, self.env_steps_per_agent, self.checkpoints_per_agent, self.episodes_per_policy)
        if min(counts) < 1 or (self.num_trajectories is not None and self.num_trajectories < 1):
            raise ValueError(f"preset sizes: expected counts >= 1, got {self}")
        if not self.cost_limit_fractions or min(self.cost_limit_fractions) < 0:
            raise ValueError(f"cost_limit_fractions: expected one or more values >= 0, got {self.cost_limit_fractions}")
        if not self.noise_stds or min(self.noise_stds) < 0:
            raise ValueError(f"noise_stds: expected one or more values >= 0, got {self.noise_stds}")


def official_num_trajectories(task: DSRLTask) -> int:
    """The NumTraj of DSRL's official file name (``SafetyBallRun-v0-80-940.hdf5`` -> 940)."""
    return int(task.file_name.rsplit("-", 1)[1].removesuffix(".hdf5"))


def preset_for(name: str, task: DSRLTask) -> CollectPreset:
    """``small``: a demo/test dataset in about a minute; ``dsrl``: DSRL's trajectory count for ``task``."""
    if name == "small":
        return CollectPreset(8, 40 * 8 * task.max_episode_steps, 5, (0.05, 0.25, 0.6), (0.0, 0.3), 4, None)
    if name == "dsrl":
        fractions, noise, checkpoints = (0.05, 0.125, 0.25, 0.4, 0.6, 0.8, 1.0), (0.0, 0.1, 0.3), 10
        target = official_num_trajectories(task)
        # twice the target before the MaxCost filter and the density subsample
        per_policy = math.ceil(2 * target / (len(fractions) * checkpoints * len(noise)))
        return CollectPreset(16, 1_000_000, checkpoints, fractions, noise, per_policy, target)
    raise ValueError(f"preset: expected 'small' or 'dsrl', got {name!r}")


@dataclass
class CollectConfig:
    """Build a DSRL-format dataset from PPO-Lagrangian agents (see the module docstring)."""

    task: str = "BallRun"
    """DSRL Bullet task (BallRun, CarRun, BallCircle, CarCircle; OfflineBallRun-v0 works too)"""
    preset: Literal["small", "dsrl"] = "small"
    """dataset size: small (about a minute, tests and demo) or dsrl (DSRL's trajectory count; hours)"""
    seed: int = 0
    """seed of everything (networks, PPO sampling, env resets, action noise, subsampling)"""
    out_dir: Path = Path("outputs/safe_rl/datasets")
    """folder of the dataset, its plot and its JSON; agents go to a sub-folder"""
    overwrite: bool = False
    """replace an existing dataset of the same task in out_dir"""
    cost_limits: tuple[float, ...] | None = None
    """agent cost limits (None: the preset's fractions of the task's MaxCost)"""
    env_steps_per_agent: int | None = None
    """training steps per agent (None: the preset's)"""
    episodes_per_policy: int | None = None
    """episodes per (checkpoint, noise std) (None: the preset's)"""
    num_trajectories: int | None = None
    """trajectories kept (None: the preset's)"""
    max_cost: float | None = None
    """largest episode cost kept, the MaxCost of the file name (None: the task's, as DSRL)"""
    num_threads: int = 1
    """torch threads (results are reproducible for a fixed value)"""
    compress: bool = True
    """store the arrays gzip-compressed (still DSRL's layout; h5py and dsrl read it as is; about a third smaller)"""
    ppo: PPOLagrangianConfig = field(default_factory=PPOLagrangianConfig)
    """PPO-Lagrangian hyperparameters (reward_scale None: the task's T_max / (R_max - R_min))"""

    def __post_init__(self) -> None:
        get_task(self.task)  # raises KeyError naming the known tasks
        if self.max_cost is not None and self.max_cost < 0:
            raise ValueError(f"max_cost: expected >= 0, got {self.max_cost}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads: expected >= 1, got {self.num_threads}")

    def sizes(self) -> CollectPreset:
        """The preset with this config's overrides applied."""
        task = get_task(self.task)
        base = preset_for(self.preset, task)
        overrides: dict[str, Any] = {
            "env_steps_per_agent": self.env_steps_per_agent,
            "episodes_per_policy": self.episodes_per_policy,
            "num_trajectories": self.num_trajectories,
        }
        if self.cost_limits is not None:
            overrides["cost_limit_fractions"] = tuple(d / task.cost_max for d in self.cost_limits)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def seed_from(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys`` (independent streams per agent / recording)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed torch (networks, PPO sampling) and numpy's global RNG (bullet-safety-gym draws its resets there)."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def train_agent(
    env: GymVecEnv, cost_limit: float, cfg: PPOLagrangianConfig, sizes: CollectPreset, seed: int, folder: Path
) -> list[Path]:
    """Train one agent (TensorBoard in ``folder/tb``); returns its checkpoint folders in order.

    An agent that finished before (``folder/done.json``) is not trained again; one that was interrupted is
    trained again from its start (its folder is cleared first).
    """
    done = folder / "done.json"
    if done.is_file():
        saved = [folder / name for name in json.loads(done.read_text())["checkpoints"]]
        if all((path / "checkpoint.json").is_file() for path in saved):
            print(f"PPO-L d={cost_limit:g}: finished before, reusing {len(saved)} checkpoints in {folder}")
            return saved
    if folder.exists():
        shutil.rmtree(folder)
    seed_everything(seed)
    env.reset(seed=seed)
    agent = PPOLagrangian(env, cost_limit, cfg)
    iterations = max(1, math.ceil(sizes.env_steps_per_agent / (env.num_envs * agent.steps_per_env)))
    marks = {math.ceil(iterations * (k + 1) / sizes.checkpoints_per_agent) for k in range(sizes.checkpoints_per_agent)}
    writer = SummaryWriter(str(folder / "tb"))
    saved = []
    bar = tqdm(range(1, iterations + 1), desc=f"PPO-L d={cost_limit:g}", unit="it", dynamic_ncols=True)
    try:
        for it in bar:
            stats = agent.learn_iteration()
            bar.set_postfix(
                R=f"{stats.episode_return:.0f}", C=f"{stats.episode_cost:.1f}", lam=f"{stats.multiplier:.2f}"
            )
            step = it * env.num_envs * agent.steps_per_env
            for tag, value in (
                ("train/episode_return", stats.episode_return),
                ("train/episode_cost", stats.episode_cost),
                ("train/lambda", stats.multiplier),
                *((f"loss/{k}", v) for k, v in stats.losses.items()),
            ):
                writer.add_scalar(tag, value, step)
            if it in marks:
                saved.append(save_actor_checkpoint(folder / "checkpoints" / f"{it:06d}", agent, stats))
    finally:
        writer.close()
    checkpoints = [str(path.relative_to(folder)) for path in saved]
    atomic_write_text(done, json.dumps({"iterations": iterations, "checkpoints": checkpoints}, indent=1) + "\n")
    return saved


def record_episodes(
    env: GymVecEnv, actor: torch.nn.Module, noise_std: float, num_episodes: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """The first ``num_episodes`` whole episodes of ``a = clip(actor(s) + noise_std * eps, -1, 1)``, eps ~ N(0, I).

    Each episode is a dict of DSRL arrays (``observations (T, S)``, ..., ``timeouts (T,)``, float32). ``seed`` seeds
    the noise, the env resets and numpy's global RNG (where bullet-safety-gym draws its initial states).
    """
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    obs = env.reset(seed=seed)
    history: dict[str, list[np.ndarray]] = {key: [] for key in DSRL_KEYS}  # per step, (N, ...) each
    start = np.zeros(env.num_envs, dtype=np.int64)  # step where each env's current episode began
    episodes: list[dict[str, np.ndarray]] = []
    while len(episodes) < num_episodes:
        with torch.inference_mode():
            mean = actor(obs)  # (N, A)
        noise = torch.from_numpy(rng.standard_normal(tuple(mean.shape)).astype(np.float32) * noise_std)
        next_obs, rewards, dones, extras = env.step(mean + noise)
        row = (obs[OBS_GROUP], extras["next_observations"], extras["actions"], rewards, extras["costs"])
        row += (extras["terminals"], extras["time_outs"])
        for key, value in zip(DSRL_KEYS, row, strict=True):
            history[key].append(value.numpy().astype(np.float32))
        now = len(history["rewards"])
        for i in np.nonzero(dones.numpy())[0]:
            if len(episodes) < num_episodes:
                episodes.append(
                    {key: np.stack([step[i] for step in rows[start[i] : now]]) for key, rows in history.items()}
                )
            start[i] = now
        obs = next_obs
    return episodes


def balanced_subsample(returns: np.ndarray, costs: np.ndarray, k: int, seed: int, bins: int = 20) -> np.ndarray:
    """Sorted indices of ``k`` episodes spread evenly over a ``bins x bins`` grid of the (cost, return) plane.

    Cells are visited round-robin (a random order inside each cell), so sparse regions of the trade-off keep all
    their episodes and dense ones are thinned.
    """
    if k >= len(returns):
        return np.arange(len(returns))

    def cell(x: np.ndarray) -> np.ndarray:
        span = max(float(x.max() - x.min()), 1e-9)
        return np.minimum(((x - x.min()) / span * bins).astype(np.int64), bins - 1)

    cells = cell(costs) * bins + cell(returns)
    order = np.random.default_rng(seed).permutation(len(returns))
    rank = np.zeros(len(returns), dtype=np.int64)
    seen: dict[int, int] = {}
    for i in order:
        rank[i] = seen.get(int(cells[i]), 0)
        seen[int(cells[i])] = rank[i] + 1
    position = np.empty(len(returns), dtype=np.int64)
    position[order] = np.arange(len(returns))
    return np.sort(np.lexsort((position, rank))[:k])


def existing_datasets(out_dir: Path, task: DSRLTask) -> list[Path]:
    """Files in ``out_dir`` that the loader would take for ``task`` (``<Task>-v0-<MaxCost>-<NumTraj>.hdf5``)."""
    return sorted(out_dir.glob(f"{task.name}-v0-*-*.hdf5")) if out_dir.is_dir() else []


def save_episodes(path: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    """Write recorded episodes to one ``.npz`` atomically (concatenated DSRL arrays plus ``lengths``)."""
    lengths = np.array([len(e["rewards"]) for e in episodes], dtype=np.int64)
    arrays = {key: np.concatenate([e[key] for e in episodes]) for key in DSRL_KEYS}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as file:
            np.savez(file, lengths=lengths, **arrays)

    atomic_write(path, write)


def load_episodes(path: Path) -> list[dict[str, np.ndarray]]:
    """The episodes of :func:`save_episodes`."""
    with np.load(path) as data:
        bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
        arrays = {key: data[key] for key in DSRL_KEYS}
    return [{key: value[a:b] for key, value in arrays.items()} for a, b in itertools.pairwise(bounds)]


def build_episodes(
    cfg: CollectConfig, task: DSRLTask, sizes: CollectPreset, limits: list[float], work: Path
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
    """Train one agent per cost limit, then record every (checkpoint, noise std); returns episodes and sources.

    Finished agents and recorded variants found in ``work`` are reused (module docstring).
    """
    ppo_cfg = cfg.ppo if cfg.ppo.reward_scale is not None else replace(cfg.ppo, reward_scale=task.reward_scale)
    seed_everything(cfg.seed)
    length = task.max_episode_steps
    env = GymVecEnv([make_dsrl_env(task) for _ in range(sizes.num_envs)], length)
    recorder = GymVecEnv([make_dsrl_env(task) for _ in range(min(sizes.num_envs, sizes.episodes_per_policy))], length)
    episodes: list[dict[str, np.ndarray]] = []
    sources: list[dict[str, Any]] = []
    try:
        checkpoints = [
            (a, path)
            for a, limit in enumerate(limits)
            for path in train_agent(
                env, limit, ppo_cfg, sizes, seed_from(cfg.seed, 0, a), work / "agents" / f"{a}_limit_{limit:g}"
            )
        ]
        variants = [(a, path, std) for a, path in checkpoints for std in sizes.noise_stds]
        for v, (a, path, std) in enumerate(tqdm(variants, desc="record", unit="policy", dynamic_ncols=True)):
            actor, meta = load_actor_checkpoint(path)
            cache = work / "episodes" / f"{v:04d}.npz"
            if cache.is_file():
                found = load_episodes(cache)
            else:
                found = record_episodes(recorder, actor, std, sizes.episodes_per_policy, seed_from(cfg.seed, 1, v))
                save_episodes(cache, found)
            episodes += found
            source = {"agent": a, "cost_limit": limits[a], "iteration": meta["iteration"], "noise_std": std}
            sources += [dict(source) for _ in found]
    finally:
        env.close()
        recorder.close()
    return episodes, sources


def prepare_work_folder(work: Path, run_config: dict[str, Any], overwrite: bool) -> None:
    """Create ``work`` or check that it was made by ``run_config`` (``overwrite``: discard one that was not)."""
    path = work / "config.json"
    if path.is_file():
        before = json.loads(path.read_text())
        if before != run_config:
            if not overwrite:
                changed = sorted(
                    {
                        key
                        for part in ("collect", "sizes")
                        for key in set(before.get(part, {})) | set(run_config[part])
                        if before.get(part, {}).get(key) != run_config[part].get(key)
                    }
                )
                raise FileExistsError(
                    f"{work}: made by a different configuration (changed: {changed or ['limits']}); pass --overwrite "
                    "to discard its agents and recordings, or use another --out-dir"
                )
            print(f"{work}: made by a different configuration, discarding it (--overwrite)")
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(run_config, indent=2) + "\n")


def select_episodes(
    episodes: list[dict[str, np.ndarray]], max_cost: float, num_trajectories: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices kept (cost <= max_cost, then grid-balanced down to ``num_trajectories``), all returns, all costs."""
    returns = np.array([float(e["rewards"].astype(np.float64).sum()) for e in episodes])
    costs = np.array([float(e["costs"].astype(np.float64).sum()) for e in episodes])
    under = np.nonzero(costs <= max_cost)[0]
    if len(under) == 0:
        raise RuntimeError(
            f"no episode has cost <= max_cost={max_cost} (lowest {costs.min():.1f}): "
            "train longer (--env-steps-per-agent) or raise --max-cost"
        )
    target = num_trajectories or len(under)
    return under[balanced_subsample(returns[under], costs[under], target, seed)], returns, costs


def main(cfg: CollectConfig) -> Path:
    """Train the agents, record, filter, write the dataset, its plot and its JSON; returns the dataset path."""
    task, sizes = get_task(cfg.task), cfg.sizes()
    max_cost = task.cost_max if cfg.max_cost is None else cfg.max_cost
    old = existing_datasets(cfg.out_dir, task)
    if old and not cfg.overwrite:
        raise FileExistsError(f"{old[0]}: a {task.name} dataset is already in {cfg.out_dir}; pass --overwrite")
    start = time.perf_counter()
    torch.set_num_threads(cfg.num_threads)
    limits = [round(f * task.cost_max, 6) for f in sizes.cost_limit_fractions]
    work = cfg.out_dir / f"{task.name}-v0-seed{cfg.seed}-{cfg.preset}"
    collect_config = asdict(cfg) | {"out_dir": str(cfg.out_dir)}
    collect_config.pop("overwrite")  # not part of what the work folder holds
    run_config = json.loads(json.dumps({"collect": collect_config, "sizes": asdict(sizes), "limits": limits}))
    prepare_work_folder(work, run_config, cfg.overwrite)
    episodes, sources = build_episodes(cfg, task, sizes, limits, work)
    keep, returns, costs = select_episodes(episodes, max_cost, sizes.num_trajectories, seed_from(cfg.seed, 2))
    target = sizes.num_trajectories or len(keep)
    arrays = {key: np.concatenate([episodes[i][key] for i in keep]) for key in DSRL_KEYS}
    path = cfg.out_dir / dsrl_file_name(task.name, max_cost, len(keep))
    attrs = {"generator": "training.safe_rl.collect", "task": task.name, "seed": cfg.seed, "preset": cfg.preset}
    written = write_dsrl(
        path, arrays, overwrite=cfg.overwrite, attrs=attrs | {"config": json.dumps(run_config)}, compress=cfg.compress
    )
    for stale in old:
        if stale != path:  # the loader refuses a folder with two datasets of one task
            for file in (stale, stale.with_suffix(".png"), stale.with_suffix(".json")):
                file.unlink(missing_ok=True)
    title = f"{task.name}: {len(keep)} trajectories (seed {cfg.seed}, preset {cfg.preset}, MaxCost {max_cost:g})"
    groups = np.array([sources[i]["agent"] for i in keep])
    labels = [f"limit {d:g}" for d in limits]
    plot_return_vs_cost(path.with_suffix(".png"), returns[keep], costs[keep], groups, labels, title)
    summary = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "arrays_sha256": arrays_sha256(read_dsrl(written, task=task.name)),
        "compression": COMPRESSION if cfg.compress else None,
        "trajectories": len(keep),
        "transitions": len(arrays["rewards"]),
        "recorded_episodes": len(episodes),
        "dropped_over_max_cost": int((costs > max_cost).sum()),
        "return_range": [float(returns[keep].min()), float(returns[keep].max())],
        "cost_range": [float(costs[keep].min()), float(costs[keep].max())],
        "seconds": round(time.perf_counter() - start, 1),
        "episodes": [sources[i] | {"return": float(returns[i]), "cost": float(costs[i])} for i in keep],
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")
    short = f" (asked for {sizes.num_trajectories}: record more episodes)" if len(keep) < target else ""
    print(
        f"wrote {path}: {len(keep)} trajectories{short}, {summary['transitions']} transitions, "
        f"return {returns[keep].min():.1f} .. {returns[keep].max():.1f}, cost {costs[keep].min():.0f} .. "
        f"{costs[keep].max():.0f}, {summary['dropped_over_max_cost']} of {len(episodes)} episodes over MaxCost "
        f"{max_cost:g}, {summary['seconds']} s; plot {path.with_suffix('.png')}"
    )
    return path


def cli(args: Sequence[str] | None = None) -> int:
    """Command ``steer-collect-safe-rl``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(CollectConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
