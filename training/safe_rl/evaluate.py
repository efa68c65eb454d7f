"""Evaluate offline safe-RL policies in the real DSRL environment: N episodes x seeds, DSRL's normalized scores.

    python -m training.safe_rl.evaluate --checkpoint runs/<run>/checkpoints/best.pt --eval.episodes 20 \
        --eval.seeds 0 1 2 --eval.cost-limit 10 --json outputs/eval.json

Per episode, with R and C the undiscounted sums of the reward and of ``info["cost"]`` (DSRL,
``OfflineEnv.get_normalized_score``)::

    normalized reward = (R - R_min) / (R_max - R_min)        (the task's DSRL reference returns)
    normalized cost   = C / cost_limit                        (FISOR: limit 10 for every task; safe means <= 1)

The library entry :func:`evaluate` takes any ``act(obs) -> action`` and an environment factory, so the trainer's
periodic evaluation and tests (a tiny gymnasium env reporting ``info["cost"]``) share one loop.
"""

import importlib.util
import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar

import gymnasium
import numpy as np
import torch
import tyro

from envs.safe_rl import DSRLTask, get_task, make_dsrl_env
from robot.cli import UserError, run_cli
from robot.files import atomic_write_text
from training.checkpoint import one_line
from training.safe_rl.algorithms import SafeRLAlgorithm, make_algorithm
from training.safe_rl.checkpoint import POLICY_FORMAT, CheckpointError, load_policy_or_checkpoint, preserved_rng
from training.safe_rl.config import EvalConfig, algorithm_config

#: ``env_factory(task)`` makes a fresh environment of a DSRL task
EnvFactory = Callable[[DSRLTask], gymnasium.Env]
#: ``act(obs (S,) float32, generator) -> action (A,)``
ActFn = Callable[[np.ndarray, torch.Generator], np.ndarray]


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode."""

    seed: int
    episode: int
    episode_return: float
    episode_cost: float
    length: int
    normalized_reward: float
    normalized_cost: float


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


@dataclass
class EvalResult:
    """All episodes of one evaluation and their summary."""

    task: str
    cost_limit: float
    episodes: list[EpisodeResult] = field(default_factory=list)

    def summary(self, episodes: Optional[list[EpisodeResult]] = None) -> dict[str, float]:
        """Means and standard deviations (over episodes) of the raw and normalized reward and cost."""
        rows = self.episodes if episodes is None else episodes
        if not rows:
            raise ValueError("summary: expected at least one episode, got none")
        out: dict[str, float] = {"episodes": float(len(rows))}
        for key in ("normalized_reward", "normalized_cost", "episode_return", "episode_cost", "length"):
            out[key], out[f"{key}_std"] = mean_std([float(getattr(r, key)) for r in rows])
        return out

    def per_seed(self) -> dict[int, dict[str, float]]:
        """:meth:`summary` of each seed's episodes."""
        seeds = sorted({r.seed for r in self.episodes})
        return {s: self.summary([r for r in self.episodes if r.seed == s]) for s in seeds}

    def to_json(self) -> dict[str, Any]:
        """Summary, per-seed summaries and every episode."""
        return {
            "task": self.task,
            "cost_limit": self.cost_limit,
            "summary": self.summary(),
            "per_seed": {str(s): v for s, v in self.per_seed().items()},
            "episodes": [asdict(r) for r in self.episodes],
        }


def dsrl_env_available() -> bool:
    """Whether dsrl, bullet_safety_gym and pybullet are installed (the real environments can be made)."""
    return all(importlib.util.find_spec(name) is not None for name in ("dsrl", "bullet_safety_gym", "pybullet"))


def run_episodes(
    act: ActFn,
    task: DSRLTask,
    config: EvalConfig,
    env_factory: Optional[EnvFactory] = None,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """``config.episodes`` episodes per seed; a fresh env per seed, reset with the seed once, then unseeded.

    ``act`` gets a torch generator on ``device`` seeded with the seed, for policies that sample. The global numpy
    and ``random`` generators are seeded with it too, and restored afterwards: the Bullet safety-gym tasks draw from
    the global numpy generator besides their own, so without this the same policy and seed scored differently in
    two processes (BC-All on BallRun, 20 episodes: normalized cost 1.71 in one, 2.69 in the next).

    Raises:
        KeyError: the environment's ``info`` has no ``"cost"`` (every DSRL env reports one).
    """
    factory = env_factory if env_factory is not None else make_dsrl_env
    result = EvalResult(task=task.name, cost_limit=config.cost_limit)
    with preserved_rng():
        for seed in config.seeds:
            _episodes_of_seed(act, task, config, factory, device, int(seed), result)
    return result


def _episodes_of_seed(
    act: ActFn,
    task: DSRLTask,
    config: EvalConfig,
    factory: EnvFactory,
    device: str | torch.device,
    seed: int,
    result: EvalResult,
) -> None:
    """One seed's episodes of :func:`run_episodes`, appended to ``result``."""
    np.random.seed(seed)
    random.seed(seed)
    env = factory(task)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    low, high = env.action_space.low, env.action_space.high
    try:
        for episode in range(config.episodes):
            obs, _ = env.reset(seed=int(seed)) if episode == 0 else env.reset()
            total_r, total_c, length, done = 0.0, 0.0, 0, False
            while not done:
                action = np.clip(act(np.asarray(obs, dtype=np.float32), generator), low, high)
                obs, reward, terminated, truncated, info = env.step(action)
                if "cost" not in info:
                    raise KeyError(
                        f"{task.gym_id}: expected info['cost'] from env.step (DSRL envs report it), "
                        f"got info keys {sorted(info)}"
                    )
                total_r, total_c, length = total_r + float(reward), total_c + float(info["cost"]), length + 1
                done = bool(terminated or truncated)
            norm_r, norm_c = task.normalized_score(total_r, total_c, config.cost_limit)
            result.episodes.append(EpisodeResult(seed, episode, total_r, total_c, length, norm_r, norm_c))
    finally:
        env.close()


def evaluate(
    algorithm: SafeRLAlgorithm, task: DSRLTask, config: EvalConfig, env_factory: Optional[EnvFactory] = None
) -> EvalResult:
    """:func:`run_episodes` with the algorithm's policy in eval mode; training's RNG states are left untouched."""
    policy = algorithm.policy
    device = next(policy.parameters()).device
    was_training = policy.training

    def act(obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        action = algorithm.act(torch.from_numpy(obs).to(device).unsqueeze(0), generator)  # (1, A)
        return action[0].detach().cpu().numpy()

    policy.eval()
    try:
        with preserved_rng():
            return run_episodes(act, task, config, env_factory, device)
    finally:
        policy.train(was_training)


def load_algorithm(checkpoint: Path, device: str = "cpu") -> tuple[SafeRLAlgorithm, dict[str, Any]]:
    """The trained algorithm in a checkpoint (policy and optimisers) or a policy file (policy only), and the file.

    Raises:
        FileNotFoundError: no file there.
        CheckpointError: not a safe-RL checkpoint or policy file, corrupt, or its weights do not fit its config.
    """
    payload = load_policy_or_checkpoint(checkpoint)  # on the CPU; load_state_dict moves the weights
    return algorithm_from_payload(payload, checkpoint, device), payload


AlgorithmT = TypeVar("AlgorithmT", bound=SafeRLAlgorithm)


def load_algorithm_of(
    checkpoint: Path, kind: type[AlgorithmT], expected: str, device: str = "cpu"
) -> tuple[AlgorithmT, dict[str, Any]]:
    """:func:`load_algorithm` for a tool that reads one algorithm's parts: a missing or unreadable file, or another
    algorithm's, is a one-line :class:`robot.cli.UserError` (``"<path>: a <name> file; expected <expected>"``)."""
    try:
        algorithm, payload = load_algorithm(checkpoint, device)
    except (FileNotFoundError, CheckpointError) as error:
        raise UserError(str(error)) from error
    if not isinstance(algorithm, kind):
        raise UserError(f"{checkpoint}: a {algorithm.name} file; expected {expected}")
    return algorithm, payload


def algorithm_from_payload(payload: dict[str, Any], source: Path, device: str = "cpu") -> SafeRLAlgorithm:
    """The algorithm of a loaded checkpoint or policy file (``source`` names it in errors): :func:`load_algorithm`
    without the read."""
    record, data = payload["config"], payload["data"]
    config = algorithm_config(record["algorithm_name"], record["algorithm"])
    algorithm = make_algorithm(config, int(data["obs_dim"]), int(data["act_dim"]), device)
    try:
        if payload["format"] == POLICY_FORMAT and "acting_parts" in payload:
            parts = tuple(payload["acting_parts"])
            missing, unexpected = algorithm.policy.load_state_dict(payload["policy"], strict=False)
            lacking = [k for k in missing if k.split(".", 1)[0] in parts]
            if unexpected or lacking:
                raise RuntimeError(f"unexpected keys {unexpected[:3]}, missing keys of the acting parts {lacking[:3]}")
        elif payload["format"] == POLICY_FORMAT:
            algorithm.policy.load_state_dict(payload["policy"])
        else:
            algorithm.load_state_dict(payload["algorithm"])
    except (KeyError, RuntimeError) as error:
        raise CheckpointError(
            f"{source}: the weights do not fit the {record['algorithm_name']} config stored with them "
            f"({type(error).__name__}: {one_line(error)})"
        ) from error
    return algorithm


def format_table(result: EvalResult) -> str:
    """Per-seed rows and an "all" row of normalized reward and cost (mean ± std over episodes)."""
    head = f"{'seed':>6} {'episodes':>8} {'return':>10} {'cost':>8} {'norm. reward':>16} {'norm. cost':>16}"
    lines = [f"{result.task} at cost limit {result.cost_limit:g}", head, "-" * len(head)]
    rows = [(str(s), v) for s, v in result.per_seed().items()] + [("all", result.summary())]
    for name, s in rows:
        lines.append(
            f"{name:>6} {int(s['episodes']):>8} {s['episode_return']:>10.2f} {s['episode_cost']:>8.2f} "
            f"{s['normalized_reward']:>8.3f} ± {s['normalized_reward_std']:<5.3f} "
            f"{s['normalized_cost']:>8.3f} ± {s['normalized_cost_std']:<5.3f}"
        )
    return "\n".join(lines)


@dataclass
class EvaluateConfig:
    """Evaluate a checkpoint of training.safe_rl.train in the DSRL environment of its task."""

    checkpoint: Path
    """checkpoint file (runs/<run>/checkpoints/best.pt or last.pt) or policy file (``training.safe_rl.export``)"""
    task: Optional[str] = None
    """DSRL task to evaluate on; default: the task the checkpoint was trained for"""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """episodes, seeds and cost limit"""
    json: Optional[Path] = None
    """also write the summary, per-seed summaries and every episode here"""
    device: str = "cpu"
    """torch device of the policy"""


def main(config: EvaluateConfig, env_factory: Optional[EnvFactory] = None) -> EvalResult:
    """Load, evaluate, print the table, write the JSON."""
    algorithm, payload = load_algorithm(config.checkpoint, config.device)
    task_name = config.task if config.task is not None else payload["data"]["task"]
    if task_name is None:
        raise ValueError(f"{config.checkpoint}: the run had no DSRL task; pass --task NAME to choose the environment")
    task = get_task(task_name)
    result = evaluate(algorithm, task, config.eval, env_factory)
    print(f"{algorithm.name} from {config.checkpoint} (step {payload['step']})")
    print(format_table(result))
    if config.json is not None:
        record = {"checkpoint": str(config.checkpoint), "step": payload["step"], "algorithm": algorithm.name}
        text = json.dumps({**record, **result.to_json()}, indent=2) + "\n"
        atomic_write_text(config.json, text)
        print(f"wrote {config.json}")
    return result


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-eval-safe-rl``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(EvaluateConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
