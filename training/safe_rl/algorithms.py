"""The four offline safe-RL algorithms as the trainer drives them: data preparation, optimisers, one update, act.

Each :class:`SafeRLAlgorithm` owns a policy from ``policies`` (pure torch, no optimiser) and the optimisers the
policy's reference implementation uses; :meth:`SafeRLAlgorithm.update` is one gradient step and reads top to
bottom. Randomness: batches come from the trainer's sampler generator, training noise (diffusion noise, dropout,
VAE samples) from torch's global generator, both saved in checkpoints.
"""

import abc
import math
from typing import Optional

import numpy as np
import torch
from torch.optim import Adam, Optimizer

from envs.safe_rl import DSRLData, DSRLTask, filter_safe_episodes, fisor_transitions, transitions
from policies.base import Policy
from policies.baselines import BC, BCConfig, BCQLag, BCQLagConfig
from policies.fisor import FISOR, FISORConfig
from training.safe_rl.config import algorithm_name

Batch = dict[str, torch.Tensor]


class SafeRLAlgorithm(abc.ABC):
    """A policy, its optimisers and its update rule."""

    policy: Policy
    optimizers: dict[str, Optimizer]
    acting_parts: Optional[tuple[str, ...]] = None
    """The submodules of ``policy`` that :meth:`act` reads (None: all of them); a policy file may keep only these."""

    def __init__(self, config: FISORConfig | BCConfig | BCQLagConfig) -> None:
        self.config = config
        self.name = algorithm_name(config)

    @property
    def num_steps(self) -> int:
        """Gradient steps of a full run (the algorithm config's ``num_steps``)."""
        return self.config.num_steps

    @property
    def batch_size(self) -> int:
        """Transitions drawn per step."""
        return self.config.batch_size

    @abc.abstractmethod
    def prepare(self, data: DSRLData, task: Optional[DSRLTask]) -> dict[str, np.ndarray]:
        """The training transitions this algorithm learns from (arrays with N rows)."""

    @abc.abstractmethod
    def update(self, batch: Batch, step: int) -> dict[str, float]:
        """One gradient step on ``batch`` (``step`` = updates done before this one); returns scalar metrics."""

    @abc.abstractmethod
    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Actions in [-1, 1] for observations ``(B, S)``: ``(B, A)``."""

    def histograms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-sample quantities worth a TensorBoard histogram (none by default)."""
        return {}

    def state_dict(self) -> dict[str, object]:
        """Policy (targets and EMA included) and optimiser states."""
        return {
            "policy": self.policy.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Inverse of :meth:`state_dict`; raises ``KeyError`` / ``RuntimeError`` on a mismatching state."""
        self.policy.load_state_dict(state["policy"])
        saved = state["optimizers"]
        if set(saved) != set(self.optimizers):
            raise KeyError(f"optimizers: expected {sorted(self.optimizers)}, got {sorted(saved)}")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(saved[name])


def _step(optimizer: Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def cosine_decay(base: float, count: int, decay_steps: int) -> float:
    """optax's ``cosine_decay_schedule`` (alpha 0): ``base * (1 + cos(pi * min(count, T) / T)) / 2``."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(count, decay_steps) / decay_steps))


class FISORAlgorithm(SafeRLAlgorithm):
    """FISOR's reference schedule (``jaxrl5/agents/fisor/fisor.py``): per step, ``actor_minibatches`` actor updates
    on equal slices of the batch (EMA after each), then one ``V`` step and one ``Q`` step on the first
    ``critic_batch_size`` rows, then the target update. Adam everywhere; the actor's learning rate follows a cosine
    decay over ``actor_lr_decay_steps`` actor updates (optax counts each of the minibatch updates)."""

    config: FISORConfig
    acting_parts = ("obs_normalizer", "actor_ema", "q_h_target")  # candidates from the EMA actor, ranked by Q_h

    def __init__(self, config: FISORConfig, obs_dim: int, act_dim: int, device: torch.device) -> None:
        super().__init__(config)
        self.policy = FISOR(obs_dim, act_dim, config).to(device)
        self.optimizers = {
            "actor": Adam(self.policy.actor_parameters(), lr=config.learning_rate),
            "critic": Adam(self.policy.critic_parameters(), lr=config.learning_rate),
        }

    def prepare(self, data: DSRLData, task: Optional[DSRLTask]) -> dict[str, np.ndarray]:
        cfg = self.config
        if cfg.normalize_rewards and task is None:
            raise ValueError(
                f"{data.source}: FISOR rescales rewards by T_max / (R_max - R_min) of the DSRL task, but no task is "
                "known: pass --task NAME, or --algorithm.no-normalize-rewards to train on raw rewards"
            )
        scale = task.reward_scale if cfg.normalize_rewards and task is not None else 1.0
        return fisor_transitions(data, reward_scale=scale, violation_h=cfg.violation_h, action_eps=cfg.action_eps)

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        cfg, fisor = self.config, self.policy
        actor_opt, critic_opt = self.optimizers["actor"], self.optimizers["critic"]
        metrics: dict[str, float] = {}
        size = cfg.batch_size // cfg.actor_minibatches
        for i in range(cfg.actor_minibatches):
            lr = cosine_decay(cfg.learning_rate, step * cfg.actor_minibatches + i, cfg.actor_lr_decay_steps)
            for group in actor_opt.param_groups:
                group["lr"] = lr
            loss, info = fisor.actor_loss({k: v[i * size : (i + 1) * size] for k, v in batch.items()})
            _step(actor_opt, loss)
            fisor.update_actor_ema()
            for key, value in info.items():
                metrics[key] = metrics.get(key, 0.0) + value / cfg.actor_minibatches
        critic_batch = {k: v[: cfg.critic_batch_size] for k, v in batch.items()}
        loss, info_v = fisor.value_loss(critic_batch)  # V before Q, as the reference
        _step(critic_opt, loss)
        loss, info_q = fisor.q_loss(critic_batch)
        _step(critic_opt, loss)
        fisor.update_critic_targets()
        return {**metrics, **info_v, **info_q, "actor_lr": lr}

    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.policy.act(obs, generator=generator)

    def histograms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """FISOR's actor weights and region (0 infeasible, 1 feasible and safe, 2 zero weight) on ``batch``."""
        weights, region = self.policy.actor_weights(batch)
        return {"actor_weights": weights, "actor_region": region.float()}


class BCAlgorithm(SafeRLAlgorithm):
    """BC-All (every episode) and BC-Safe (episodes with cost <= ``cost_limit``): one Adam step on the MSE."""

    config: BCConfig

    def __init__(self, config: BCConfig, obs_dim: int, act_dim: int, device: torch.device) -> None:
        super().__init__(config)
        self.policy = BC(obs_dim, act_dim, config).to(device)
        self.optimizers = {"actor": Adam(self.policy.parameters(), lr=config.learning_rate)}

    def prepare(self, data: DSRLData, task: Optional[DSRLTask]) -> dict[str, np.ndarray]:
        kept = filter_safe_episodes(data, self.config.cost_limit) if self.config.mode == "safe" else data
        arrays = transitions(kept)
        return {"observations": arrays["observations"], "actions": arrays["actions"]}

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        loss, metrics = self.policy.loss(batch)
        _step(self.optimizers["actor"], loss)
        return metrics

    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.policy.act(obs)  # deterministic


class BCQLagAlgorithm(SafeRLAlgorithm):
    """BCQ-Lagrangian: one Adam step on the sum of its four losses (each reaches only its own parameters), then
    the target update. Rewards are multiplied by ``reward_scale`` (OSRL's data-side scaling)."""

    config: BCQLagConfig

    def __init__(self, config: BCQLagConfig, obs_dim: int, act_dim: int, device: torch.device) -> None:
        super().__init__(config)
        self.policy = BCQLag(obs_dim, act_dim, config).to(device)
        self.optimizers = {"all": Adam(self.policy.parameters(), lr=config.learning_rate)}

    def prepare(self, data: DSRLData, task: Optional[DSRLTask]) -> dict[str, np.ndarray]:
        if task is not None and task.max_episode_steps != self.config.episode_len:
            print(
                f"note: BCQ-Lag episode_len is {self.config.episode_len} but {task.name} episodes last "
                f"{task.max_episode_steps} steps; set --algorithm.episode-len {task.max_episode_steps} for OSRL's "
                "per-step cost threshold"
            )
        arrays = transitions(data)
        arrays["rewards"] = (arrays["rewards"] * self.config.reward_scale).astype(np.float32)
        return arrays

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        loss, metrics = self.policy.loss(batch)
        _step(self.optimizers["all"], loss)
        self.policy.update_targets()
        return metrics

    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.policy.act(obs, generator=generator)


_CLASSES: dict[type, type[SafeRLAlgorithm]] = {
    FISORConfig: FISORAlgorithm,
    BCConfig: BCAlgorithm,
    BCQLagConfig: BCQLagAlgorithm,
}


def make_algorithm(
    config: FISORConfig | BCConfig | BCQLagConfig, obs_dim: int, act_dim: int, device: str | torch.device = "cpu"
) -> SafeRLAlgorithm:
    """The algorithm for a config (networks initialised from torch's global generator)."""
    cls = _CLASSES.get(type(config))
    if cls is None:
        raise TypeError(f"algorithm config: expected one of {[c.__name__ for c in _CLASSES]}, got {type(config)}")
    return cls(config, obs_dim, act_dim, torch.device(device))
