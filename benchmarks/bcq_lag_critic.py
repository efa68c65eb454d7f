"""Does BCQ-Lag's cost critic see the cost its policy incurs? ``Q_c`` on the data's states against the policy's own.

    python benchmarks/bcq_lag_critic.py --dataset PATH --checkpoints RUN/checkpoints/step_25000.pt [...]
        [--episodes 5] [--eval-seed S] [--json PATH]

BCQ-Lagrangian's multiplier holds ``E_{s ~ data}[min_i Q_c,i(s, pi(s))]`` at the per-step threshold ``d`` (OSRL's
``qc_thres``): the constraint is enforced through the cost critic, on the dataset's states. The evaluation scores the
cost the policy incurs on the states it visits itself. For each BCQ-Lag checkpoint (a run's ``checkpoints/step_<N>.pt``,
``last.pt``, or a policy file: BCQ-Lag's keeps all of its weights, the critics too) this reports:

- ``data``: the mean of ``min_i Q_c,i(s, pi(s))`` over (up to ``--data-states``) dataset states, the quantity the
  multiplier acts on, beside ``d``;
- ``visited``: the policy in the DSRL environment for ``--episodes`` episodes; the mean of ``min_i Q_c,i(s_t, a_t)``
  over its own steps ``t < --horizon`` against the discounted cost it actually incurred from ``t`` on (summed to the
  episode's end: with ``horizon`` steps left at least, the missing tail is at most ``gamma ** (L - horizon)`` of a
  stationary cost-to-go, L the episode length), and their ratio;
- the episodes' cost and the normalized reward and cost (DSRL's, at ``--cost-limit``).

A critic whose ``visited`` estimate sits far below the realized cost-to-go is optimistic on the policy's own states:
the multiplier then sees the constraint met (``data`` near ``d``, lambda small) while the policy runs over the limit.
Reading the critic draws no random numbers, so the episodes are the ones ``evaluate`` scores with the same seed (by
default each checkpoint's training seed, as the campaign evaluates it).
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, SupportsFloat

import gymnasium
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/bcq_lag_critic.py`

from benchmarks._common import BenchmarkArgs, machine_info, run_benchmark, write_json
from envs.safe_rl import DSRLTask, load_dsrl, make_dsrl_env
from policies.baselines.bcq_lag import BCQLag
from robot.cli import UserError
from training.safe_rl.algorithms import BCQLagAlgorithm
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import EnvFactory, load_algorithm_of, run_episodes
from training.safe_rl.train import resolve_task


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    dataset: Path
    """DSRL HDF5 file the checkpoints were trained on"""
    checkpoints: tuple[Path, ...]
    """BCQ-Lag checkpoints or policy files (RUN/checkpoints/step_<N>.pt, last.pt, RUN/policies/step_<N>.pt)"""
    task: Optional[str] = None
    """DSRL task; default: from the file name"""
    episodes: int = 5
    """episodes of each policy in the DSRL environment"""
    eval_seed: Optional[int] = None
    """environment seed of the episodes; default: each checkpoint's training seed"""
    horizon: Optional[int] = None
    """visited steps t < horizon enter the comparison (the realized cost-to-go is cut at the episode's end);
    default: a third of the task's episode length"""
    data_states: int = 20_000
    """dataset states for the ``data`` mean (evenly spaced; all of them if fewer)"""
    cost_limit: float = 10.0
    """cost limit of the normalized cost"""
    threads: int = 1
    """torch CPU threads"""


def discounted_cost_to_go(costs: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = sum_{k >= t} gamma^(k - t) c_k`` over one episode's per-step costs ``(T,) -> (T,)``."""
    out = np.empty(len(costs), dtype=np.float64)
    acc = 0.0
    for t in range(len(costs) - 1, -1, -1):
        acc = float(costs[t]) + gamma * acc
        out[t] = acc
    return out


def policy_cost_critic(policy: BCQLag, observations: torch.Tensor, actions: torch.Tensor) -> np.ndarray:
    """``min_i Q_c,i(s, a)`` (the actor's and the multiplier's reading) for raw observations ``(B, S)``, ``(B, A)``."""
    with torch.no_grad():
        return policy.q_c(policy.obs_normalizer.normalize(observations), actions).min(dim=0).values.numpy()


class _CostRecorder(gymnasium.Wrapper):
    """Keeps every episode's per-step ``info["cost"]``; a reset opens a new episode."""

    def __init__(self, env: gymnasium.Env, episodes: list[list[float]]) -> None:
        super().__init__(env)
        self.episodes = episodes

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.episodes.append([])
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.episodes[-1].append(float(info.get("cost", 0.0)))
        return obs, reward, terminated, truncated, info


def rollouts(
    algorithm: BCQLagAlgorithm,
    task: DSRLTask,
    config: EvalConfig,
    horizon: int,
    env_factory: Optional[EnvFactory] = None,
) -> dict[str, Any]:
    """The policy's episodes: its scores, and its cost critic on its own steps against the cost it incurred."""
    policy = algorithm.policy.eval()
    factory = env_factory if env_factory is not None else make_dsrl_env
    costs: list[list[float]] = []
    estimates: list[list[float]] = []

    def make(task_: DSRLTask) -> gymnasium.Env:
        return _CostRecorder(factory(task_), costs)

    def act(obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        state = torch.from_numpy(obs).unsqueeze(0)  # (1, S)
        action = algorithm.act(state, generator)  # (1, A)
        if len(estimates) < len(costs):  # the first step after a reset
            estimates.append([])
        estimates[-1].append(float(policy_cost_critic(policy, state, action)[0]))
        return action[0].numpy()

    summary = run_episodes(act, task, config, make).summary()
    gamma = policy.config.discount
    predicted, realized = [], []
    for episode_costs, episode_estimates in zip(costs, estimates, strict=True):
        steps = min(horizon, len(episode_costs))
        predicted.extend(episode_estimates[:steps])
        realized.extend(discounted_cost_to_go(np.asarray(episode_costs), gamma)[:steps].tolist())
    q_visited, g_visited = float(np.mean(predicted)), float(np.mean(realized))
    return {
        "episodes": config.episodes,
        "normalized_reward": summary["normalized_reward"],
        "normalized_cost": summary["normalized_cost"],
        "episode_cost": summary["episode_cost"],
        "q_c_visited": q_visited,
        "cost_to_go_visited": g_visited,
        "critic_over_realized": q_visited / g_visited if g_visited > 0 else None,
    }


HEADER = (
    f"{'step':>8} {'lambda':>8} {'d':>6} {'Q_c data':>9} {'Q_c visited':>12} {'realized':>9} {'ratio':>6} "
    f"{'ep. cost':>9} {'norm. r / c':>13} {'s':>5}"
)


def format_row(row: dict[str, Any]) -> str:
    ratio = "-" if row["critic_over_realized"] is None else f"{row['critic_over_realized']:.2f}"
    return (
        f"{row['step']:>8} {row['multiplier']:>8.3f} {row['threshold']:>6.2f} {row['q_c_data']:>9.2f} "
        f"{row['q_c_visited']:>12.2f} {row['cost_to_go_visited']:>9.2f} {ratio:>6} {row['episode_cost']:>9.2f} "
        f"{row['normalized_reward']:>6.3f} / {row['normalized_cost']:<4.2f} {row['seconds']:>5.0f}"
    )


def horizon_of(args: Args, task: DSRLTask) -> int:
    """``--horizon``, or a third of the task's episode length when not given."""
    return args.horizon if args.horizon is not None else max(1, task.max_episode_steps // 3)


def probe(
    args: Args, observations: torch.Tensor, task: DSRLTask, env_factory: Optional[EnvFactory] = None
) -> list[dict[str, Any]]:
    """One row per checkpoint (module docstring)."""
    rows: list[dict[str, Any]] = []
    horizon = horizon_of(args, task)
    print(HEADER)
    for path in args.checkpoints:
        started = time.perf_counter()
        algorithm, payload = load_algorithm_of(path, BCQLagAlgorithm, "a BCQ-Lag checkpoint or policy file")
        policy = algorithm.policy.eval()
        data_actions = policy.act(observations, generator=torch.Generator().manual_seed(0))  # (B, A)
        seed = int(payload["config"]["seed"]) if args.eval_seed is None else args.eval_seed
        row: dict[str, Any] = {
            "step": int(payload["step"]),
            "checkpoint": str(path),
            "eval_seed": seed,
            "multiplier": float(policy.multiplier),
            "threshold": float(policy.threshold),
            "q_c_data": float(policy_cost_critic(policy, observations, data_actions).mean()),
            **rollouts(algorithm, task, EvalConfig(args.episodes, (seed,), args.cost_limit), horizon, env_factory),
        }
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def main(args: Args) -> int:
    if args.quick:
        args.episodes, args.data_states = 1, min(args.data_states, 2000)
    if not args.checkpoints:
        raise UserError("--checkpoints: expected at least one BCQ-Lag checkpoint or policy file")
    if min(args.episodes, args.data_states, args.threads) < 1 or (args.horizon is not None and args.horizon < 1):
        raise UserError("--episodes, --horizon, --data-states and --threads: expected values >= 1")
    torch.set_num_threads(args.threads)
    data = load_dsrl(args.task, path=args.dataset)
    task = resolve_task(args.task, data)
    if task is None:
        raise UserError(f"{args.dataset}: no DSRL task in the file name; pass --task NAME")
    horizon = horizon_of(args, task)
    if horizon >= task.max_episode_steps:
        raise UserError(f"--horizon {horizon}: expected fewer than {task.name}'s {task.max_episode_steps} steps")
    count = len(data.observations)
    index = np.linspace(0, count - 1, min(args.data_states, count)).astype(np.int64)
    observations = torch.from_numpy(np.asarray(data.observations, dtype=np.float32)[index])
    left = task.max_episode_steps - horizon
    print(
        f"{task.name}: {args.dataset}, Q_c over {len(index)} of {count} states; visited steps t < {horizon} of "
        f"{task.max_episode_steps} (the realized cost-to-go misses at most gamma^{left} of a stationary one)"
    )
    rows = probe(args, observations, task)
    if args.json:
        record = {"machine": machine_info(), "task": task.name, "dataset": str(args.dataset), "rows": rows}
        write_json(args.json, record)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
