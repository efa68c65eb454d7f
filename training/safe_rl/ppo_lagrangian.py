"""PPO-Lagrangian: online safe RL with rsl-rl-lib's PPO and a Lagrange multiplier on the episode cost.

The constrained problem ``max_pi J_r(pi)  s.t.  J_c(pi) <= d`` (J undiscounted episode sums, d the cost limit) is
solved through its Lagrangian ``min_{lambda >= 0} max_pi J_r(pi) - lambda (J_c(pi) - d)`` (Altman 1999; as used by
Ray et al. 2019, "Benchmarking Safe Exploration in Deep RL", and by DSRL to make its datasets):

- primal step: one PPO iteration (rsl-rl-lib's :class:`rsl_rl.algorithms.PPO`, unchanged) on the reward
  ``r'_t = reward_scale * (r_t - lambda * c_t)``; a positive ``reward_scale`` rescales the objective, not its optimum;
- dual step: projected gradient ascent ``lambda <- clip(lambda + lr_lambda * (J_c - d), 0, lambda_max)`` with J_c
  the mean cost of the episodes that ended during the iteration's rollout.

:class:`GymVecEnv` runs N gymnasium environments (each reporting ``info["cost"]``) in lock-step behind rsl-rl's
:class:`VecEnv` interface: actions clipped to the action box, automatic reset, ``time_outs`` for time-limit ends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from robot.files import atomic_write, atomic_write_text

try:
    from rsl_rl.algorithms import PPO
    from rsl_rl.env import VecEnv
    from rsl_rl.models import MLPModel
    from rsl_rl.storage import RolloutStorage
    from tensordict import TensorDict
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError("training.safe_rl.ppo_lagrangian needs rsl-rl-lib: pip install -e '.[rl]'") from error

OBS_GROUP = "policy"


class GymVecEnv(VecEnv):
    """N gymnasium environments stepped in lock-step, as an rsl-rl :class:`VecEnv` (CPU tensors).

    ``step(actions (N, A))`` returns ``obs`` (TensorDict ``{"policy": (N, S)}``, the first observation of the new
    episode where one ended), raw ``rewards (N,)``, ``dones (N,)`` bool (terminal or time limit) and ``extras``:

    - ``time_outs (N,)`` bool: the episode was cut by the time limit and did not reach a terminal state;
    - ``terminals (N,)`` bool: the episode reached a terminal state (no bootstrap);
    - ``costs (N,)`` float: ``info["cost"]`` of the step;
    - ``actions (N, A)``: the actions executed (clipped to the action box; PPO's Gaussian samples are unbounded);
    - ``next_observations (N, S)``: ``s_{t+1}`` of the step, the final observation where an episode ended;
    - ``episode_returns (K,)``, ``episode_costs (K,)``, ``episode_envs (K,)``: sums of the K episodes that ended.
    """

    def __init__(self, envs: Sequence[gymnasium.Env], max_episode_length: int | None = None) -> None:
        if not envs:
            raise ValueError("GymVecEnv: expected at least one environment, got none")
        space = envs[0].action_space
        if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"GymVecEnv: expected a 1-d Box action space, got {space}")
        spec_length = envs[0].spec.max_episode_steps if envs[0].spec is not None else None
        length = max_episode_length if max_episode_length is not None else spec_length
        if length is None or length < 1:
            raise ValueError(
                f"GymVecEnv: expected max_episode_length >= 1 (argument or env.spec.max_episode_steps), got {length}"
            )
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.num_actions = int(space.shape[0])
        self.max_episode_length = int(length)
        self.device = "cpu"  # the Bullet envs step on the CPU; so do the small PPO networks
        self.cfg = {"num_envs": self.num_envs, "max_episode_length": self.max_episode_length}
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long)
        self._low = space.low.astype(np.float64)
        self._high = space.high.astype(np.float64)
        self._return = np.zeros(self.num_envs)
        self._cost = np.zeros(self.num_envs)
        self._obs = np.stack([np.asarray(env.reset()[0], dtype=np.float32) for env in self.envs])  # (N, S)
        self.num_obs = int(self._obs.shape[1])

    def reset(self, seed: int | None = None) -> TensorDict:
        """Start a new episode in every env (env i gets ``seed + i`` when a seed is given)."""
        for i, env in enumerate(self.envs):
            self._obs[i] = env.reset(seed=None if seed is None else seed + i)[0]
        self.episode_length_buf.zero_()
        self._return[:] = 0.0
        self._cost[:] = 0.0
        return self.get_observations()

    def get_observations(self) -> TensorDict:
        """The current observations ``{"policy": (N, S)}``."""
        obs = torch.from_numpy(self._obs.copy())
        return TensorDict({OBS_GROUP: obs}, batch_size=[self.num_envs], device=self.device)

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every env once with ``actions (N, A)``; finished episodes are reset (see the class docstring)."""
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions: expected shape {(self.num_envs, self.num_actions)}, got {tuple(actions.shape)}")
        executed = np.clip(actions.detach().cpu().numpy().astype(np.float64), self._low, self._high)  # (N, A)
        n = self.num_envs
        rewards, costs = np.zeros(n), np.zeros(n)
        terminals, time_outs = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        next_obs = np.zeros_like(self._obs)  # (N, S)
        ended: list[tuple[int, float, float]] = []
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(executed[i].astype(env.action_space.dtype))
            if "cost" not in info:
                raise KeyError(f"env {i} ({env}): expected info['cost'] from step(), got keys {sorted(info)}")
            rewards[i], costs[i] = float(reward), float(info["cost"])
            next_obs[i] = obs
            self._return[i] += rewards[i]
            self._cost[i] += costs[i]
            terminals[i] = bool(terminated)
            time_outs[i] = bool(truncated) and not terminals[i]
            if terminals[i] or time_outs[i]:
                ended.append((i, self._return[i], self._cost[i]))
                self._return[i] = self._cost[i] = 0.0
                self._obs[i] = env.reset()[0]
            else:
                self._obs[i] = obs
        dones = torch.from_numpy(terminals | time_outs)
        self.episode_length_buf += 1
        self.episode_length_buf[dones] = 0
        extras = {
            "time_outs": torch.from_numpy(time_outs),
            "terminals": torch.from_numpy(terminals),
            "costs": torch.from_numpy(costs.astype(np.float32)),
            "actions": torch.from_numpy(executed.astype(np.float32)),
            "next_observations": torch.from_numpy(next_obs),
            "episode_envs": torch.tensor([e[0] for e in ended], dtype=torch.long),
            "episode_returns": torch.tensor([e[1] for e in ended], dtype=torch.float64),
            "episode_costs": torch.tensor([e[2] for e in ended], dtype=torch.float64),
        }
        return self.get_observations(), torch.from_numpy(rewards.astype(np.float32)), dones, extras

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()


@dataclass
class LagrangeMultiplier:
    """``lambda >= 0`` on the constraint ``J_c <= cost_limit``, updated by projected gradient (dual) ascent."""

    cost_limit: float
    """d, the episode-cost limit of the agent (undiscounted sum of c_t)"""
    lr: float = 0.05
    """dual step size lr_lambda (lambda per unit of episode-cost excess)"""
    value: float = 0.0
    """current lambda (the initial value when constructed)"""
    max_value: float = 100.0
    """upper clip of lambda (keeps r - lambda c bounded while the cost estimate is noisy)"""

    def __post_init__(self) -> None:
        if self.cost_limit < 0 or self.lr <= 0 or not 0 <= self.value <= self.max_value:
            raise ValueError(
                "LagrangeMultiplier: expected cost_limit >= 0, lr > 0 and 0 <= value <= max_value, got "
                f"{self.cost_limit}, {self.lr}, {self.value}, {self.max_value}"
            )

    def update(self, episode_cost: float) -> float:
        """``lambda <- clip(lambda + lr (episode_cost - cost_limit), 0, max_value)``; returns the new lambda."""
        step = self.lr * (float(episode_cost) - self.cost_limit)
        self.value = float(min(max(self.value + step, 0.0), self.max_value))
        return self.value


@dataclass
class PPOLagrangianConfig:
    """PPO (rsl-rl-lib) and Lagrange-multiplier hyperparameters of one safe-RL agent."""

    steps_per_env: int | None = None
    """rollout length per env and iteration (None: one episode, the env's max_episode_length)"""
    hidden_dims: tuple[int, ...] = (64, 64)
    """hidden layers of the actor and critic MLPs"""
    activation: str = "tanh"
    """activation of the MLPs (an rsl-rl name: elu, relu, tanh, ...)"""
    init_std: float = 0.6
    """initial standard deviation of the Gaussian policy (actions live in [-1, 1])"""
    learning_rate: float = 1e-3
    """Adam learning rate (adapted to the KL target)"""
    desired_kl: float = 0.01
    """KL target of the adaptive learning-rate schedule"""
    num_learning_epochs: int = 5
    """PPO epochs per iteration"""
    num_mini_batches: int = 4
    """mini-batches per epoch"""
    clip_param: float = 0.2
    """PPO ratio clip"""
    gamma: float = 0.99
    """discount"""
    lam: float = 0.95
    """GAE lambda"""
    entropy_coef: float = 0.0
    """entropy bonus"""
    reward_scale: float | None = None
    """positive factor on r - lambda c fed to PPO, to keep value targets near 1 (None: 1)"""
    lambda_lr: float = 0.05
    """dual step size of the Lagrange multiplier"""
    lambda_init: float = 0.0
    """initial Lagrange multiplier"""
    lambda_max: float = 100.0
    """upper clip of the Lagrange multiplier"""

    def __post_init__(self) -> None:
        if self.steps_per_env is not None and self.steps_per_env < 1:
            raise ValueError(f"steps_per_env: expected >= 1 or None, got {self.steps_per_env}")
        if (self.reward_scale is not None and self.reward_scale <= 0) or self.init_std <= 0 or self.learning_rate <= 0:
            raise ValueError(
                "reward_scale, init_std, learning_rate: expected > 0, got "
                f"{self.reward_scale}, {self.init_std}, {self.learning_rate}"
            )


@dataclass
class IterationStats:
    """What one PPO-Lagrangian iteration measured."""

    iteration: int
    """iterations done so far (1 after the first)"""
    episodes: int
    """episodes that ended during the rollout"""
    episode_return: float
    """their mean undiscounted reward sum (NaN when none ended)"""
    episode_cost: float
    """their mean undiscounted cost sum (NaN when none ended)"""
    multiplier: float
    """lambda after the dual step"""
    losses: dict[str, float] = field(default_factory=dict)
    """PPO's mean losses (value, surrogate, entropy)"""


def build_actor(obs_dim: int, act_dim: int, cfg: PPOLagrangianConfig) -> MLPModel:
    """The Gaussian MLP policy (observation normalisation as buffers, so it travels with the weights)."""
    obs = TensorDict({OBS_GROUP: torch.zeros(1, obs_dim)}, batch_size=[1])
    distribution = {"class_name": "GaussianDistribution", "init_std": cfg.init_std}
    groups = {"actor": [OBS_GROUP], "critic": [OBS_GROUP]}
    hidden = list(cfg.hidden_dims)
    return MLPModel(obs, groups, "actor", act_dim, hidden, cfg.activation, True, distribution)


class PPOLagrangian:
    """One safe-RL agent at one cost limit: rsl-rl PPO on ``reward_scale * (r - lambda c)`` plus dual ascent."""

    def __init__(self, env: GymVecEnv, cost_limit: float, cfg: PPOLagrangianConfig | None = None) -> None:
        self.env = env
        self.cfg = cfg = cfg or PPOLagrangianConfig()
        self.steps_per_env = cfg.steps_per_env or env.max_episode_length
        self.reward_scale = 1.0 if cfg.reward_scale is None else cfg.reward_scale
        self.multiplier = LagrangeMultiplier(cost_limit, cfg.lambda_lr, cfg.lambda_init, cfg.lambda_max)
        obs = env.get_observations()
        actor = build_actor(env.num_obs, env.num_actions, cfg)
        groups = {"actor": [OBS_GROUP], "critic": [OBS_GROUP]}
        critic = MLPModel(obs, groups, "critic", 1, list(cfg.hidden_dims), cfg.activation, True)
        storage = RolloutStorage("rl", env.num_envs, self.steps_per_env, obs, [env.num_actions], "cpu")
        self.ppo = PPO(
            actor,
            critic,
            storage,
            num_learning_epochs=cfg.num_learning_epochs,
            num_mini_batches=cfg.num_mini_batches,
            clip_param=cfg.clip_param,
            gamma=cfg.gamma,
            lam=cfg.lam,
            entropy_coef=cfg.entropy_coef,
            learning_rate=cfg.learning_rate,
            desired_kl=cfg.desired_kl,
            device="cpu",
        )
        self.iteration = 0
        self._obs = obs

    @property
    def actor(self) -> MLPModel:
        """The policy network (``actor(obs)`` gives the mean action, ``stochastic_output=True`` a sample)."""
        return self.ppo.get_policy()

    def learn_iteration(self) -> IterationStats:
        """Roll out ``steps_per_env`` steps in every env, update PPO, then take the dual step on lambda."""
        self.ppo.train_mode()
        returns: list[torch.Tensor] = []
        costs: list[torch.Tensor] = []
        lam = self.multiplier.value
        with torch.inference_mode():
            obs = self._obs
            for _ in range(self.steps_per_env):
                actions = self.ppo.act(obs)
                obs, rewards, dones, extras = self.env.step(actions)
                shaped = self.reward_scale * (rewards - lam * extras["costs"])  # (N,)
                self.ppo.process_env_step(obs, shaped, dones, extras)
                returns.append(extras["episode_returns"])
                costs.append(extras["episode_costs"])
            self.ppo.compute_returns(obs)
        self._obs = obs
        losses = self.ppo.update()
        ep_returns, ep_costs = torch.cat(returns), torch.cat(costs)  # (K,)
        if len(ep_costs):
            self.multiplier.update(float(ep_costs.mean()))
        self.iteration += 1
        nan = float("nan")
        return IterationStats(
            iteration=self.iteration,
            episodes=len(ep_costs),
            episode_return=float(ep_returns.mean()) if len(ep_returns) else nan,
            episode_cost=float(ep_costs.mean()) if len(ep_costs) else nan,
            multiplier=self.multiplier.value,
            losses={k: float(v) for k, v in losses.items() if v is not None},
        )


def save_actor_checkpoint(directory: Path, agent: PPOLagrangian, stats: IterationStats | None = None) -> Path:
    """Write ``actor.safetensors`` (weights and normaliser) and ``checkpoint.json`` (config, lambda, stats)."""
    weights = {k: v.detach().clone().contiguous() for k, v in agent.actor.state_dict().items()}
    meta = {
        "obs_dim": agent.env.num_obs,
        "act_dim": agent.env.num_actions,
        "iteration": agent.iteration,
        "cost_limit": agent.multiplier.cost_limit,
        "multiplier": agent.multiplier.value,
        "config": asdict(agent.cfg),
        "stats": asdict(stats) if stats is not None else None,
    }
    atomic_write(directory / "actor.safetensors", lambda tmp: save_file(weights, tmp))
    atomic_write_text(directory / "checkpoint.json", json.dumps(meta, indent=2) + "\n")
    return directory


def load_actor_checkpoint(directory: Path) -> tuple[MLPModel, dict[str, Any]]:
    """The policy of a checkpoint folder (in eval mode) and its ``checkpoint.json`` contents."""
    meta_path, weights_path = directory / "checkpoint.json", directory / "actor.safetensors"
    if not meta_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{directory}: expected checkpoint.json and actor.safetensors (a PPO-L checkpoint)")
    meta = json.loads(meta_path.read_text())
    cfg = dict(meta["config"])
    cfg["hidden_dims"] = tuple(cfg["hidden_dims"])
    actor = build_actor(int(meta["obs_dim"]), int(meta["act_dim"]), PPOLagrangianConfig(**cfg))
    actor.load_state_dict(load_file(str(weights_path)))
    return actor.eval(), meta
