"""BCQ-Lagrangian hyperparameters (defaults of OSRL's ``examples/configs/bcql_configs.py`` unless noted)."""

from dataclasses import dataclass
from typing import Literal


@dataclass
class BCQLagConfig:
    """BCQ (Fujimoto et al. 2019) with a cost critic and a Lagrangian penalty (OSRL's BCQ-L)."""

    cost_limit: float = 10.0
    """episode cost limit; the critics compare Q_c with the per-step threshold derived from it"""
    episode_len: int = 300
    """episode length used to turn cost_limit into a discounted Q_c threshold (the task's T_max)"""
    discount: float = 0.99
    """discount of the reward and cost critics"""
    polyak: float = 0.005
    """rate of the target critics and target actor"""
    phi: float = 0.05
    """largest perturbation the actor adds to a VAE action, as a fraction of the action range"""
    lmbda: float = 0.75
    """soft clipped double-Q mix: lmbda * min + (1 - lmbda) * max over heads in the targets"""
    beta: float = 0.5
    """weight of the KL term of the VAE loss"""
    num_samples: int = 10
    """VAE actions sampled per next state in the critic targets"""
    num_critic_heads: int = 2
    """Q heads per critic (OSRL's double-Q critic)"""
    actor_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of the perturbation actor (ReLU, tanh output)"""
    critic_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of every Q head (ReLU)"""
    vae_hidden: int = 400
    """width of the VAE's two encoder and two decoder layers"""
    multiplier_update: Literal["pid", "gradient"] = "pid"
    """how lambda follows the cost: ``pid`` (OSRL's PID Lagrangian, Stooke et al. 2020, from lambda = 0) or
    ``gradient`` (Adam ascent on softplus^-1(lambda) from ``multiplier_init``, at ``learning_rate``)"""
    pid_gains: tuple[float, float, float] = (0.1, 0.003, 0.001)
    """(K_P, K_I, K_D) of the PID Lagrangian, OSRL's values"""
    multiplier_init: float = 1.0
    """initial Lagrange multiplier of the ``gradient`` update"""
    cost_target_mask: bool = False
    """stop the cost critic's bootstrap at episode ends like the reward critic's; OSRL does not (False): its cost
    target is ``c + gamma * Q_c(s', a')`` at every step, time-outs and terminals included"""
    learning_rate: float = 1e-3
    """Adam learning rate of every part, the multiplier included (read by the trainer)"""
    batch_size: int = 512
    """transitions per step (read by the trainer)"""
    num_steps: int = 100_000
    """gradient steps (read by the trainer)"""
    reward_scale: float = 0.1
    """rewards are multiplied by this before training (data side, read by the trainer)"""

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount: expected a value in [0, 1), got {self.discount}")
        if not 0.0 < self.polyak <= 1.0:
            raise ValueError(f"polyak: expected a rate in (0, 1], got {self.polyak}")
        if not 0.0 <= self.lmbda <= 1.0:
            raise ValueError(f"lmbda: expected a value in [0, 1], got {self.lmbda}")
        if self.multiplier_update not in ("pid", "gradient"):
            raise ValueError(f"multiplier_update: expected one of ('pid', 'gradient'), got {self.multiplier_update!r}")
        if len(self.pid_gains) != 3 or any(not g >= 0.0 for g in self.pid_gains):
            raise ValueError(f"pid_gains: expected three gains (K_P, K_I, K_D) >= 0, got {self.pid_gains}")
        for name in ("cost_limit", "phi", "beta", "multiplier_init"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("learning_rate", "reward_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        for name in ("episode_len", "num_samples", "num_critic_heads", "vae_hidden", "batch_size", "num_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("actor_hidden", "critic_hidden"):
            widths = getattr(self, name)
            if len(widths) == 0 or any(int(w) < 1 for w in widths):
                raise ValueError(f"{name}: expected one or more positive widths, got {widths}")
