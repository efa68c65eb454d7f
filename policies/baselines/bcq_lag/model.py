"""BCQ-Lagrangian (OSRL's BCQ-L): BCQ (Fujimoto et al., ICML 2019) with a cost critic and a Lagrange multiplier.

Parts: a conditional VAE of the data's actions G(a | s), a perturbation actor
``xi(s, a) = clip(a + phi * tanh(MLP(s, a)), -1, 1)``, reward and cost critics with 2 heads each, their targets
and a target actor. With ``a' ~ xi_targ(s', G(s'))`` sampled ``n = 10`` times per next state::

    mix(Q)   = lmbda * min_i Q_i + (1 - lmbda) * max_i Q_i                       (soft clipped double Q)
    y_r      = r + gamma * mask * max_{a'} mix(Qbar_r(s', a'))
    y_c      = c + gamma * max_{a'} mix(Qbar_c(s', a'))      (the costliest sampled action; OSRL bootstraps
                                                             the cost through episode ends: ``cost_target_mask``)
    L(Q)     = sum_i E[(Q_i(s, a) - y)^2]
    L(VAE)   = E[||G(s, z(s, a)) - a||^2] + beta * KL(q(z | s, a) || N(0, I))
    L(actor) = E[ -min_i Q_r,i(s, a_pi) + lambda * (min_i Q_c,i(s, a_pi) - d) ],  a_pi = xi(s, G(s))

with the per-step threshold ``d = limit * (1 - gamma^L) / (1 - gamma) / L`` (L the episode length). The multiplier
follows the constraint violation ``e_t = E[min_i Q_c,i(s, a_pi)] - d`` of each actor batch, by one of:

- ``pid`` (OSRL's BCQ-L; the PID Lagrangian of Stooke, Achiam and Abbeel, ICML 2020), from ``lambda = 0``::

    I_t = max(0, I_{t-1} + e_t),  D_t = max(0, e_t - e_{t-1}),
    lambda_t = max(0, K_P max(0, e_t) + K_I I_t + K_D D_t)          (computed before the actor step, as OSRL)

- ``gradient``: ``L(lambda) = -lambda * e_t`` with ``lambda = softplus(rho)``, one Adam step a batch. Adam moves
  ``rho`` by about its learning rate per step whatever the size of the violation, so lambda rises slowly (5k steps
  at 1e-3: lambda <= ~6), where the PID's integral term reaches ~K_I * sum(e_t) (tens for a violation of a few
  units).

Each loss only reaches its own parameters, so one optimiser step on their sum
(:meth:`BCQLag.loss`) equals OSRL's separate steps up to the order of updates.
"""

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from policies.base import Policy
from policies.baselines.bcq_lag.config import BCQLagConfig
from policies.critics import EnsembleQ, mlp, polyak_update
from policies.normalizer import Normalizer

Batch = dict[str, torch.Tensor]
KEYS = ("observations", "actions", "next_observations", "rewards", "costs", "masks")


def cost_threshold(cost_limit: float, discount: float, episode_len: int) -> float:
    """Per-step discounted cost threshold ``limit * (1 - gamma^L) / (1 - gamma) / L`` (OSRL's ``qc_thres``)."""
    return cost_limit * (1.0 - discount**episode_len) / (1.0 - discount) / episode_len


class ActionVAE(nn.Module):
    """Conditional VAE of actions: encoder ``(s, a) -> N(mu, sigma)``, decoder ``(s, z) -> tanh(...)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.latent_dim = 2 * act_dim
        self.encoder = mlp(obs_dim + act_dim, (hidden, hidden), 2 * self.latent_dim)
        self.decoder = nn.Sequential(mlp(obs_dim + self.latent_dim, (hidden, hidden), act_dim), nn.Tanh())

    def encode(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``(B, Z)``; log std clamped to [-4, 15] for stability."""
        mean, log_std = self.encoder(torch.cat([obs, act], dim=-1)).chunk(2, dim=-1)  # (B, Z), (B, Z)
        return mean, log_std.clamp(-4.0, 15.0).exp()

    def decode(
        self, obs: torch.Tensor, z: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """Actions ``(B, A)``; without ``z`` a latent ``N(0, I)`` clipped to [-0.5, 0.5] is drawn."""
        if z is None:
            z = torch.randn((obs.shape[0], self.latent_dim), generator=generator, device=obs.device).clamp(-0.5, 0.5)
        return self.decoder(torch.cat([obs, z], dim=-1))


class PerturbationActor(nn.Module):
    """``xi(s, a) = clip(a + phi * tanh(MLP(s, a)), -1, 1)``: ``(B, S), (B, A) -> (B, A)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], phi: float) -> None:
        super().__init__()
        self.phi = phi
        self.net = nn.Sequential(mlp(obs_dim + act_dim, hidden, act_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return (act + self.phi * self.net(torch.cat([obs, act], dim=-1))).clamp(-1.0, 1.0)


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` take no gradient inside the block (the actor loss differentiates through them)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class BCQLag(Policy):
    """BCQ-Lagrangian (module docstring). Batches: the keys of ``envs.safe_rl.transitions``."""

    def __init__(self, obs_dim: int, act_dim: int, config: Optional[BCQLagConfig] = None) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"BCQLag: expected obs_dim >= 1 and act_dim >= 1, got {obs_dim}, {act_dim}")
        self.config = cfg = config if config is not None else BCQLagConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.threshold = cost_threshold(cfg.cost_limit, cfg.discount, cfg.episode_len)
        self.obs_normalizer = Normalizer(obs_dim)  # identity unless the trainer fits it
        self.vae = ActionVAE(obs_dim, act_dim, cfg.vae_hidden)
        self.actor = PerturbationActor(obs_dim, act_dim, cfg.actor_hidden, cfg.phi)
        self.q_r = EnsembleQ(obs_dim, act_dim, cfg.critic_hidden, cfg.num_critic_heads)
        self.q_c = EnsembleQ(obs_dim, act_dim, cfg.critic_hidden, cfg.num_critic_heads)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.q_r_target = copy.deepcopy(self.q_r).requires_grad_(False)
        self.q_c_target = copy.deepcopy(self.q_c).requires_grad_(False)
        # lambda = softplus(rho); rho starts at softplus^-1(multiplier_init)
        init = max(cfg.multiplier_init, 1e-6)
        self.multiplier_raw = nn.Parameter(torch.tensor(init + math.log(-math.expm1(-init))))
        # PID Lagrangian state (a buffer, so a resumed run continues the controller): lambda, integral, last error
        self.register_buffer("pid_state", torch.zeros(3))

    @property
    def multiplier(self) -> torch.Tensor:
        """The Lagrange multiplier ``lambda >= 0`` (a scalar tensor): the PID's output or ``softplus(rho)``."""
        if self.config.multiplier_update == "pid":
            return self.pid_state[0]
        return F.softplus(self.multiplier_raw)

    @torch.no_grad()
    def _pid_step(self, violation: torch.Tensor) -> torch.Tensor:
        """Advance the PID Lagrangian by one batch's violation ``e_t`` (a scalar); returns the new lambda."""
        k_p, k_i, k_d = self.config.pid_gains
        integral = (self.pid_state[1] + violation).clamp_min(0.0)
        derivative = (violation - self.pid_state[2]).clamp_min(0.0)
        multiplier = (k_p * violation.clamp_min(0.0) + k_i * integral + k_d * derivative).clamp_min(0.0)
        self.pid_state.copy_(torch.stack([multiplier, integral, violation]))
        return multiplier

    def _policy_action(
        self, obs: torch.Tensor, actor: nn.Module, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        with torch.no_grad():
            base = self.vae.decode(obs, generator=generator)  # (B, A)
        return actor(obs, base)  # (B, A)

    def _soft_double_q(self, q: torch.Tensor) -> torch.Tensor:
        """``lmbda * min + (1 - lmbda) * max`` over the heads of ``(E, B)`` -> ``(B,)``."""
        lam = self.config.lmbda
        return lam * q.min(dim=0).values + (1.0 - lam) * q.max(dim=0).values

    # ------------------------------------------------------------------------------------------------ losses
    def vae_loss(self, batch: Batch, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """Reconstruction MSE plus ``beta`` times the KL to the unit Gaussian."""
        obs, act = self.obs_normalizer.normalize(batch["observations"]), batch["actions"]
        mean, std = self.vae.encode(obs, act)  # (B, Z), (B, Z)
        z = mean + std * torch.randn(mean.shape, generator=generator, device=mean.device)  # (B, Z)
        recon = F.mse_loss(self.vae.decode(obs, z), act)
        kl = -0.5 * (1.0 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        loss = recon + self.config.beta * kl
        return loss, {"vae_loss": float(loss.detach()), "vae_kl": float(kl.detach())}

    def critic_loss(self, batch: Batch, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """Reward and cost critic losses against the BCQ targets (module docstring)."""
        missing = [key for key in KEYS if key not in batch]
        if missing:
            raise KeyError(f"BCQLag batch: missing {missing}; expected keys {list(KEYS)}, got {sorted(batch)}")
        obs, act = self.obs_normalizer.normalize(batch["observations"]), batch["actions"]
        next_obs = self.obs_normalizer.normalize(batch["next_observations"])
        n, gamma = self.config.num_samples, self.config.discount
        with torch.no_grad():
            next_rep = repeat(next_obs, "b s -> (b n) s", n=n)  # (B n, S)
            next_act = self.actor_target(next_rep, self.vae.decode(next_rep, generator=generator))  # (B n, A)
            best_r = rearrange(self._soft_double_q(self.q_r_target(next_rep, next_act)), "(b n) -> b n", n=n)
            best_c = rearrange(self._soft_double_q(self.q_c_target(next_rep, next_act)), "(b n) -> b n", n=n)
            target_r = batch["rewards"] + gamma * batch["masks"] * best_r.max(dim=1).values  # (B,)
            cost_mask = batch["masks"] if self.config.cost_target_mask else torch.ones_like(batch["masks"])
            target_c = batch["costs"] + gamma * cost_mask * best_c.max(dim=1).values  # (B,)
        q_r, q_c = self.q_r(obs, act), self.q_c(obs, act)  # (E, B), (E, B)
        loss_r = (q_r - target_r).pow(2).mean(dim=1).sum()
        loss_c = (q_c - target_c).pow(2).mean(dim=1).sum()
        metrics = {
            "q_r_loss": float(loss_r.detach()),
            "q_c_loss": float(loss_c.detach()),
            "q_r": float(q_r.detach().mean()),
            "q_c": float(q_c.detach().mean()),
        }
        return loss_r + loss_c, metrics

    def actor_loss(self, batch: Batch, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """``-Q_r + lambda (Q_c - d)`` at the policy's actions; only the actor receives gradients."""
        obs = self.obs_normalizer.normalize(batch["observations"])
        with _frozen(self.q_r, self.q_c):
            act = self._policy_action(obs, self.actor, generator)  # (B, A)
            q_r = self.q_r(obs, act).min(dim=0).values  # (B,)
            q_c = self.q_c(obs, act).min(dim=0).values  # (B,)
            if self.config.multiplier_update == "pid":
                self._pid_step(q_c.detach().mean() - self.threshold)
            penalty = (self.multiplier.detach() * (q_c - self.threshold)).mean()
            loss = -q_r.mean() + penalty
        return loss, {"actor_loss": float(loss.detach()), "qc_penalty": float(penalty.detach())}

    def multiplier_loss(self, batch: Batch, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """``-lambda * mean(Q_c(s, a_pi) - d)``: descending it raises lambda while the cost exceeds ``d``.

        With the ``pid`` update the controller moved in :meth:`actor_loss`; this returns a zero loss and its state.
        """
        if self.config.multiplier_update == "pid":
            state = {"multiplier": float(self.pid_state[0]), "cost_violation": float(self.pid_state[2])}
            return torch.zeros((), device=self.pid_state.device), state
        obs = self.obs_normalizer.normalize(batch["observations"])
        with torch.no_grad():
            act = self._policy_action(obs, self.actor, generator)  # (B, A)
            violation = self.q_c(obs, act).min(dim=0).values.mean() - self.threshold
        loss = -self.multiplier * violation
        return loss, {"multiplier": float(self.multiplier.detach()), "cost_violation": float(violation)}

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of the four losses; each reaches only its own parameters (module docstring)."""
        total = torch.zeros(())
        metrics: dict[str, float] = {}
        for piece in (self.vae_loss, self.critic_loss, self.actor_loss, self.multiplier_loss):
            value, info = piece(batch)
            total = total + value
            metrics.update(info)
        return total, metrics

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak step of the target critics and the target actor."""
        polyak_update(self.q_r_target, self.q_r, self.config.polyak)
        polyak_update(self.q_c_target, self.q_c, self.config.polyak)
        polyak_update(self.actor_target, self.actor, self.config.polyak)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``xi(s, G(s))`` in [-1, 1]: ``(S,) -> (A,)`` or ``(B, S) -> (B, A)`` (OSRL's single-sample action)."""
        if obs.shape[-1] != self.obs_dim or obs.dim() not in (1, 2):
            raise ValueError(
                f"BCQLag.act: expected obs of shape (S,) or (B, S) with S = {self.obs_dim}, got {list(obs.shape)}"
            )
        batch_obs = self.obs_normalizer.normalize(obs.unsqueeze(0) if obs.dim() == 1 else obs)  # (B, S)
        action = self._policy_action(batch_obs, self.actor, generator)  # (B, A)
        return action[0] if obs.dim() == 1 else action
