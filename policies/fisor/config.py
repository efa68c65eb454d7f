"""FISOR's hyperparameters: one set for every task, defaults of the reference implementation.

Zheng et al., "Safe Offline Reinforcement Learning with Feasibility-Guided Diffusion Model", ICLR 2024;
reference code ``ZhengYinan-AIR/FISOR`` (``configs/train_config.py``, ``jaxrl5/agents/fisor/fisor.py``).
The data-side and optimisation fields are read by the data pipeline and the trainer; the policy reads the rest.
"""

from dataclasses import dataclass
from typing import Literal


@dataclass
class FISORConfig:
    """Every FISOR hyperparameter (reference defaults)."""

    # --- data preparation (envs.safe_rl.fisor_transitions) -------------------------------------------------
    violation_h: float = 25.0
    """constraint signal h on a step with cost > 0 (the reference's cost_scale); -1 on a safe step"""
    action_eps: float = 1e-5
    """dataset actions are clipped to ±(1 - action_eps) so the diffusion target stays inside [-1, 1]"""
    normalize_rewards: bool = True
    """rescale rewards by T_max / (R_max - R_min) with the task's DSRL reference returns"""

    # --- critics -----------------------------------------------------------------------------------------
    discount: float = 0.99
    """discount gamma of the reward critic, also g of the HJ reachability backup (the reference shares them)"""
    reward_expectile: float = 0.9
    """IQL expectile tau of V_r towards min over heads of the target Q_r"""
    feasibility_expectile: float = 0.9
    """reversed expectile tau of V_h towards max over heads of the target Q_h (approximates min over actions)"""
    critic_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of every Q and V MLP (ReLU)"""
    num_critic_heads: int = 2
    """Q heads per critic ensemble"""
    polyak: float = 0.005
    """rate of the critics' target networks: target <- (1 - rate) target + rate online"""

    # --- actor weights (three regions) ---------------------------------------------------------------------
    infeasible_temperature: float = 5.0
    """alpha_h in w = exp(alpha_h (V_h - Q_h)) where V_h(s) > 0 (the reference's cost_temperature)"""
    infeasible_weight_min: float = 0.0
    """lower clip of the infeasible-region weight (0 as in the paper and the reference's clip(., 0, cost_ub))"""
    infeasible_weight_max: float = 150.0
    """upper clip of the infeasible-region weight (the reference's cost_ub)"""
    feasible_temperature: float = 3.0
    """alpha_r in w = exp(alpha_r (Q_r - V_r)) where V_h(s) <= 0 and Q_h(s, a) <= 0 (reward_temperature)"""
    feasible_weight_max: float = 100.0
    """upper clip of the feasible-region weight (lower clip 0)"""

    # --- diffusion actor -------------------------------------------------------------------------------------
    diffusion_steps: int = 5
    """T, training and sampling steps of the discrete VP schedule"""
    vp_beta_min: float = 0.1
    """b_min of the VP schedule"""
    vp_beta_max: float = 10.0
    """b_max of the VP schedule"""
    time_features: int = 64
    """learnable Fourier time features"""
    time_hidden: int = 128
    """width of the two-layer mish time MLP"""
    actor_width: int = 256
    """width of the residual MLP noise network"""
    actor_blocks: int = 3
    """residual blocks (LayerNorm, dropout, mish)"""
    actor_expansion: int = 4
    """hidden width of a block = expansion * width (1024)"""
    actor_dropout: float = 0.1
    """dropout at the entry of every residual block (training only)"""
    clip_sample: float = 1.0
    """clip the sample to [-clip_sample, clip_sample] after every sampler step (the reference's clip_sampler;
    its DDPM steps add noise of variance beta_t)"""
    ema_rate: float = 0.001
    """rate of the EMA copy of the actor, the copy used at inference"""

    # --- inference ---------------------------------------------------------------------------------------------
    num_candidates: int = 16
    """candidate actions sampled per state; the one with the lowest Q_h (max over heads) is taken"""

    # --- optimisation (read by the trainer) ---------------------------------------------------------------------
    learning_rate: float = 3e-4
    """Adam learning rate of every network"""
    actor_lr_decay_steps: int = 3_000_000
    """cosine decay horizon of the actor's learning rate"""
    num_steps: int = 1_000_000
    """gradient steps"""
    batch_size: int = 2048
    """transitions drawn per step; the actor takes actor_minibatches updates on equal slices of it"""
    actor_minibatches: int = 2
    """actor updates per step (halves of 1024 in the reference)"""
    critic_batch_size: int = 256
    """the critics train on the first critic_batch_size rows of the batch"""
    actor_precision: Literal["fp32", "bf16"] = "fp32"
    """matmul precision of the actor's training forward/backward: fp32 (the reference) or bf16 (CPU/CUDA autocast
    to bfloat16 with fp32 weights, optimiser and loss; about 1.8x faster per step on a CPU with avx512_bf16);
    the critics, the EMA and inference stay fp32"""

    def __post_init__(self) -> None:
        _check_open_unit("reward_expectile", self.reward_expectile)
        _check_open_unit("feasibility_expectile", self.feasibility_expectile)
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount: expected a value in [0, 1), got {self.discount}")
        for name in ("polyak", "ema_rate"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name}: expected a rate in (0, 1], got {value}")
        for name in ("violation_h", "infeasible_temperature", "feasible_temperature", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a value > 0, got {getattr(self, name)}")
        if self.actor_precision not in ("fp32", "bf16"):
            raise ValueError(f"actor_precision: expected 'fp32' or 'bf16', got {self.actor_precision!r}")
        if not 0.0 <= self.infeasible_weight_min <= self.infeasible_weight_max:
            raise ValueError(
                "infeasible weight clip: expected 0 <= infeasible_weight_min <= infeasible_weight_max, got "
                f"{self.infeasible_weight_min}, {self.infeasible_weight_max}"
            )
        if not self.feasible_weight_max > 0:
            raise ValueError(f"feasible_weight_max: expected > 0, got {self.feasible_weight_max}")
        if not 0.0 <= self.action_eps < 1.0:
            raise ValueError(f"action_eps: expected a value in [0, 1), got {self.action_eps}")
        if not 0.0 <= self.actor_dropout < 1.0:
            raise ValueError(f"actor_dropout: expected a probability in [0, 1), got {self.actor_dropout}")
        if not self.clip_sample >= 0.0:
            raise ValueError(f"clip_sample: expected >= 0 (0 disables), got {self.clip_sample}")
        if len(self.critic_hidden) == 0 or any(int(w) < 1 for w in self.critic_hidden):
            raise ValueError(f"critic_hidden: expected one or more positive widths, got {self.critic_hidden}")
        for name in (
            "num_critic_heads",
            "diffusion_steps",
            "time_hidden",
            "actor_width",
            "actor_blocks",
            "actor_expansion",
            "num_candidates",
            "actor_lr_decay_steps",
            "num_steps",
            "batch_size",
            "actor_minibatches",
            "critic_batch_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.time_features < 2 or self.time_features % 2:
            raise ValueError(f"time_features: expected an even integer >= 2, got {self.time_features}")
        if self.batch_size % self.actor_minibatches:
            raise ValueError(
                f"batch_size: expected a multiple of actor_minibatches = {self.actor_minibatches}, "
                f"got {self.batch_size}"
            )
        if self.critic_batch_size > self.batch_size:
            raise ValueError(
                f"critic_batch_size: expected at most batch_size = {self.batch_size}, got {self.critic_batch_size}"
            )


def _check_open_unit(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: expected a value in (0, 1), got {value}")
