"""FISOR: feasibility-guided diffusion policy for safe offline RL (Zheng et al., ICLR 2024).

Three parts, all pure torch; the trainer owns the optimisers and calls the pieces in the reference's order
(per step: ``actor_loss`` on each actor minibatch + ``update_actor_ema``, then ``value_loss`` / ``q_loss`` on
the first ``critic_batch_size`` rows, then ``update_critic_targets``).

Reward critics (IQL, Kostrikov et al. 2022)::

    L(V_r)  = E[ L^tau_2(min_i Qbar_r,i(s, a) - V_r(s)) ]                 tau = 0.9, Qbar = target heads
    L(Q_r)  = E[ (Q_r,i(s, a) - (r + gamma * mask * V_r(s')))^2 ]

Feasibility critics (Hamilton-Jacobi reachability, FISOR eq. 6-8)::

    L(V_h)  = E[ L^rev_tau(max_i Qbar_h,i(s, a) - V_h(s)) ]               reversed expectile -> min over actions
    L(Q_h)  = E[ (Q_h,i(s, a) - (mask ((1 - g) h + g max(h, V_h(s'))) + (1 - mask) h))^2 ]

A state is feasible when ``V_h(s) <= 0``. Actor: the DDPM noise-prediction loss (Ho et al. 2020) on a single
action token conditioned on the state, weighted per sample (FISOR eq. 13-14; Q from target critics, V from the
online value nets)::

    w = clip(exp(alpha_h (V_h - Q_h)), w_min, 150)   if V_h(s) > 0                 (infeasible: reduce violation)
    w = clip(exp(alpha_r (Q_r - V_r)), 0, 100)       if V_h(s) <= 0 and Q_h <= 0   (feasible: maximise reward)
    w = 0                                            otherwise                      (feasible state, unsafe action)
    L(actor) = E[ w * ||eps_theta(a_t, t, s) - eps||^2 ]

Inference: the EMA actor samples ``N = 16`` candidates with the reference's 5-step DDPM sampler
``x_{t-1} = clip((x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_t) + sqrt(beta_t) z, -1, 1)`` (noise variance
beta_t, the sample clipped after every step, no noise at the last) and the candidate with the lowest
``max_i Qbar_h,i(s, a)`` is taken.
"""

import copy
from typing import Optional

import torch
from einops import rearrange, repeat
from torch import nn

from policies.base import Policy
from policies.critics import (
    EnsembleQ,
    StateValue,
    expectile_loss,
    hj_target,
    polyak_update,
    reversed_expectile_loss,
    td_target,
)
from policies.diffusion.denoisers.mlp import ResidualMLPConfig, ResidualMLPDenoiser
from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from policies.fisor.config import FISORConfig
from policies.normalizer import Normalizer

Batch = dict[str, torch.Tensor]
CRITIC_KEYS = ("observations", "actions", "next_observations", "rewards", "h", "masks")


def fisor_weights(
    q_r: torch.Tensor, v_r: torch.Tensor, q_h: torch.Tensor, v_h: torch.Tensor, config: FISORConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """FISOR's per-sample actor weights and regions (module docstring), all ``(B,)``.

    Returns ``(weights, region)`` with region 0 = infeasible state, 1 = feasible state and safe action,
    2 = feasible state and unsafe action (weight 0).
    """
    infeasible = v_h > 0
    feasible_safe = (~infeasible) & (q_h <= 0)
    w_infeasible = torch.exp(config.infeasible_temperature * (v_h - q_h)).clamp(
        config.infeasible_weight_min, config.infeasible_weight_max
    )
    w_feasible = torch.exp(config.feasible_temperature * (q_r - v_r)).clamp(0.0, config.feasible_weight_max)
    weights = torch.where(infeasible, w_infeasible, torch.where(feasible_safe, w_feasible, torch.zeros_like(v_h)))
    region = torch.where(infeasible, 0, torch.where(feasible_safe, 1, 2))
    return weights, region


class FISOR(Policy):
    """Critics, weighted diffusion actor and its EMA copy. Shapes: obs ``(B, S)``, actions ``(B, A)`` in [-1, 1].

    Batches are dicts of tensors: ``observations (B, S)``, ``actions (B, A)``, ``next_observations (B, S)``,
    ``rewards (B,)`` (rescaled), ``h (B,)`` (25 / -1) and ``masks (B,)`` (0 at episode ends), as made by
    ``envs.safe_rl.fisor_transitions``.
    """

    def __init__(self, obs_dim: int, act_dim: int, config: Optional[FISORConfig] = None) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"FISOR: expected obs_dim >= 1 and act_dim >= 1, got {obs_dim}, {act_dim}")
        self.config = config = config if config is not None else FISORConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.obs_normalizer = Normalizer(obs_dim)  # identity unless the trainer fits it (the reference does not)
        hidden, heads = config.critic_hidden, config.num_critic_heads
        self.q_r = EnsembleQ(obs_dim, act_dim, hidden, heads)
        self.v_r = StateValue(obs_dim, hidden)
        self.q_h = EnsembleQ(obs_dim, act_dim, hidden, heads)
        self.v_h = StateValue(obs_dim, hidden)
        self.q_r_target = copy.deepcopy(self.q_r).requires_grad_(False)
        self.q_h_target = copy.deepcopy(self.q_h).requires_grad_(False)
        T = config.diffusion_steps
        denoiser = ResidualMLPDenoiser(
            ResidualMLPConfig(
                x_dim=act_dim,
                horizon=1,
                cond_dim=obs_dim,
                num_train_steps=T,
                time_features=config.time_features,
                time_hidden=config.time_hidden,
                width=config.actor_width,
                num_blocks=config.actor_blocks,
                expansion=config.actor_expansion,
                dropout=config.actor_dropout,
            )
        )
        diffusion_config = DiffusionConfig(
            schedule=ScheduleConfig(
                kind="vp", num_train_steps=T, vp_beta_min=config.vp_beta_min, vp_beta_max=config.vp_beta_max
            ),
            prediction_type="epsilon",
            sampler=SamplerConfig(kind="ddpm", num_steps=T, clip_sample=config.clip_sample, ddpm_variance="beta"),
        )
        self.actor = Diffusion(diffusion_config, denoiser)
        self.actor_ema = copy.deepcopy(self.actor).requires_grad_(False).eval()

    # ------------------------------------------------------------------------------------------- parameters
    def train(self, mode: bool = True) -> "FISOR":
        """Train mode for the online networks; the EMA actor stays in eval mode (no dropout at inference)."""
        super().train(mode)
        self.actor_ema.eval()
        return self

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters of the online actor (cosine-decayed Adam in the reference)."""
        return list(self.actor.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters of the four online critics (Q_r, V_r, Q_h, V_h)."""
        return [p for net in (self.q_r, self.v_r, self.q_h, self.v_h) for p in net.parameters()]

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations as the networks see them."""
        return self.obs_normalizer.normalize(obs)

    # ---------------------------------------------------------------------------------------------- critics
    def value_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Expectile losses of ``V_r`` (IQL) and ``V_h`` (reversed) against the target Q heads."""
        obs, act = self.normalize(batch["observations"]), batch["actions"]
        with torch.no_grad():
            q_r = self.q_r_target(obs, act).min(dim=0).values  # (B,)
            q_h = self.q_h_target(obs, act).max(dim=0).values  # (B,)
        v_r, v_h = self.v_r(obs), self.v_h(obs)  # (B,), (B,)
        loss_v_r = expectile_loss(q_r - v_r, self.config.reward_expectile).mean()
        loss_v_h = reversed_expectile_loss(q_h - v_h, self.config.feasibility_expectile).mean()
        metrics = {
            "value_r_loss": _scalar(loss_v_r),
            "value_h_loss": _scalar(loss_v_h),
            "v_r": _scalar(v_r.mean()),
            "v_h": _scalar(v_h.mean()),
            "feasible_fraction": _scalar((v_h <= 0).float().mean()),
        }
        return loss_v_r + loss_v_h, metrics

    def q_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """TD loss of the ``Q_r`` heads and HJ-backup loss of the ``Q_h`` heads (targets from the value nets)."""
        _check_keys(batch, CRITIC_KEYS)
        obs, act = self.normalize(batch["observations"]), batch["actions"]
        next_obs = self.normalize(batch["next_observations"])
        cfg = self.config
        with torch.no_grad():
            target_r = td_target(batch["rewards"], self.v_r(next_obs), batch["masks"], cfg.discount)  # (B,)
            target_h = hj_target(batch["h"], self.v_h(next_obs), batch["masks"], cfg.discount)  # (B,)
        q_r, q_h = self.q_r(obs, act), self.q_h(obs, act)  # (E, B), (E, B)
        loss_q_r = (q_r - target_r).pow(2).mean()
        loss_q_h = (q_h - target_h).pow(2).mean()
        metrics = {
            "q_r_loss": _scalar(loss_q_r),
            "q_h_loss": _scalar(loss_q_h),
            "q_r": _scalar(q_r.mean()),
            "q_h": _scalar(q_h.mean()),
        }
        return loss_q_r + loss_q_h, metrics

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """``value_loss + q_loss`` for one optimiser step over all critic parameters.

        The parameter sets are disjoint, so this equals separate steps except that the Q targets use the value
        nets from before this step (the reference updates V first); call the two pieces to match it exactly.
        """
        loss_v, metrics_v = self.value_loss(batch)
        loss_q, metrics_q = self.q_loss(batch)
        return loss_v + loss_q, {**metrics_v, **metrics_q}

    @torch.no_grad()
    def update_critic_targets(self) -> None:
        """Polyak step of the target Q heads (rate ``polyak``)."""
        polyak_update(self.q_r_target, self.q_r, self.config.polyak)
        polyak_update(self.q_h_target, self.q_h, self.config.polyak)

    # ------------------------------------------------------------------------------------------------ actor
    @torch.no_grad()
    def actor_weights(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights (B,), region (B,))`` of a batch from the target Q heads and the online value nets."""
        obs, act = self.normalize(batch["observations"]), batch["actions"]
        q_r = self.q_r_target(obs, act).min(dim=0).values  # (B,)
        q_h = self.q_h_target(obs, act).max(dim=0).values  # (B,)
        return fisor_weights(q_r, self.v_r(obs), q_h, self.v_h(obs), self.config)

    def actor_loss(
        self, batch: Batch, generator: Optional[torch.Generator] = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted noise-prediction loss ``mean_B(w * sum_A (eps_hat - eps)^2)`` (the reference sums over A).

        With ``actor_precision = "bf16"`` the noise network runs under bfloat16 autocast (fp32 weights, loss and
        weights); the default fp32 is the reference.
        """
        obs, act = self.normalize(batch["observations"]), batch["actions"]
        weights, region = self.actor_weights(batch)
        x0 = rearrange(act, "b a -> b 1 a")  # (B, 1, A)
        bf16 = self.config.actor_precision == "bf16"
        with torch.autocast(act.device.type, dtype=torch.bfloat16, enabled=bf16):  # weights above stay fp32
            per_sample = self.actor.loss(x0, cond=obs, generator=generator).float() * self.act_dim  # (B,)
        loss = (weights * per_sample).mean()
        metrics = {
            "actor_loss": _scalar(loss),
            "weight_mean": _scalar(weights.mean()),
            "weight_max": _scalar(weights.max()),
            "infeasible_fraction": _scalar((region == 0).float().mean()),
            "zero_weight_fraction": _scalar((region == 2).float().mean()),
        }
        return loss, metrics

    @torch.no_grad()
    def update_actor_ema(self) -> None:
        """EMA step of the inference actor (rate ``ema_rate``)."""
        polyak_update(self.actor_ema, self.actor, self.config.ema_rate)

    @torch.no_grad()
    def update_targets(self) -> None:
        """Both target updates, for a trainer that takes one step of :meth:`loss`."""
        self.update_critic_targets()
        self.update_actor_ema()

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Actor loss on the batch plus critic loss on its first ``critic_batch_size`` rows (one optimiser).

        Gradients do not cross between the parts (the actor weights are computed without gradient), so one
        step on this sum trains every network; the reference's schedule is the pieces above.
        """
        loss_a, metrics_a = self.actor_loss(batch)
        critic_batch = {key: value[: self.config.critic_batch_size] for key, value in batch.items()}
        loss_c, metrics_c = self.critic_loss(critic_batch)
        return loss_a + loss_c, {**metrics_a, **metrics_c}

    # -------------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def candidate_actions(
        self, obs: torch.Tensor, num: int, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """``(B, N, A)`` actions sampled from the EMA actor for states ``(B, S)``."""
        B = obs.shape[0]
        cond = repeat(self.normalize(obs), "b s -> (b n) s", n=num)  # (B N, S)
        K = self.actor_ema.num_sampler_steps
        x_init = torch.randn((B * num, 1, self.act_dim), generator=generator, device=obs.device)  # (B N, 1, A)
        noise = torch.randn((K, B * num, 1, self.act_dim), generator=generator, device=obs.device)  # (K, B N, 1, A)
        x0 = self.actor_ema.sample(x_init, cond=cond, step_noise=noise)  # (B N, 1, A)
        return rearrange(x0, "(b n) 1 a -> b n a", n=num).clamp(-1.0, 1.0)  # (B, N, A)

    @torch.no_grad()
    def select_lowest_qh(self, obs: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """The candidate ``(B, N, A) -> (B, A)`` with the lowest ``max_i Qbar_h,i(s, a)``."""
        B, N, _ = candidates.shape
        cond = repeat(self.normalize(obs), "b s -> (b n) s", n=N)  # (B N, S)
        q_h = self.q_h_target(cond, rearrange(candidates, "b n a -> (b n) a")).max(dim=0).values  # (B N,)
        best = rearrange(q_h, "(b n) -> b n", n=N).argmin(dim=1)  # (B,)
        return candidates[torch.arange(B, device=candidates.device), best]  # (B, A)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Actions in [-1, 1]: ``(S,) -> (A,)`` or ``(B, S) -> (B, A)``; randomness from ``generator``."""
        single = obs.dim() == 1
        batch_obs = obs.unsqueeze(0) if single else obs  # (B, S)
        if batch_obs.dim() != 2 or batch_obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"FISOR.act: expected obs of shape (S,) or (B, S) with S = {self.obs_dim}, got {list(obs.shape)}"
            )
        if not bool(torch.isfinite(batch_obs).all()):
            raise ValueError("FISOR.act: expected finite observations, got NaN or inf")
        candidates = self.candidate_actions(batch_obs, self.config.num_candidates, generator)  # (B, N, A)
        action = self.select_lowest_qh(batch_obs, candidates)  # (B, A)
        return action[0] if single else action


def _scalar(x: torch.Tensor) -> float:
    return float(x.detach())


def _check_keys(batch: Batch, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in batch]
    if missing:
        raise KeyError(f"FISOR batch: missing {missing}; expected keys {list(keys)}, got {sorted(batch)}")
