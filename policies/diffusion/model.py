"""``Diffusion``: a denoiser, its noise schedule and a guided sampler, as one scriptable module.

Training (``loss``) draws one diffusion step per sample, or one per token (Diffuse-CLoC's independent noise
levels), noises the clean data with ``q(x_t | x_0)`` and regresses the prediction target. Sampling (``sample``)
runs a K-step DDIM/DDPM loop in which every token has its own start point in the step sequence:

- known elements (``known_mask``) are replaced by their given values after every step, so inpainted tokens come
  out exactly equal to them (observation history, goals, keyframes; Janner et al. 2022 replacement inpainting);
  tokens that are fully known sit at the clean level -1 so the network sees them as clean;
- ``start_index (B, H)`` says at which entry of the step sequence each token starts: 0 for a fresh token,
  ``w`` for a warm-started token that was re-noised to the w-th level (rolling denoising), K for clean.
  The loop runs from the smallest start; a token stays unchanged until the loop reaches its start.

Guidance (``guidance.py``) is applied per step with the costs evaluated on ``decoder(x0_hat)``, the map from
sampler space to the cost's space (un-normalisation and latent decoding for a planner; identity otherwise).
"""

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from policies.diffusion.guidance import CostSum, GuidanceConfig, clip_grad_norm, scale_schedule
from policies.diffusion.sampling import SamplerConfig, ddim_step, ddpm_step, step_sequence
from policies.diffusion.schedules import (
    NoiseSchedule,
    PredictionType,
    ScheduleConfig,
    check_prediction_type,
    eps_from_x0,
    to_eps,
    to_x0,
    training_target,
)


@dataclass
class DiffusionConfig:
    """Schedule, prediction target, training noise and the default sampler and guidance."""

    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """the training noise schedule"""
    prediction_type: PredictionType = "v"
    """what the network predicts: epsilon, x0 or v (v is stable at every noise level; Salimans & Ho 2022)"""
    per_token_noise: bool = False
    """training: draw an independent diffusion step for every token (Diffuse-CLoC) instead of one per sample"""
    cond_drop_prob: float = 0.0
    """training: probability of replacing the condition by the null condition (for classifier-free guidance)"""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """default sampler"""
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    """default guidance"""

    def __post_init__(self) -> None:
        check_prediction_type(self.prediction_type)
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob: expected a probability in [0, 1), got {self.cond_drop_prob}")
        if self.sampler.num_steps > self.schedule.num_train_steps:
            raise ValueError(
                f"sampler.num_steps: expected at most schedule.num_train_steps = "
                f"{self.schedule.num_train_steps}, got {self.sampler.num_steps}"
            )


class Diffusion(nn.Module):
    """Denoiser + schedule + guided sampler. See the module docstring for the sampling contract."""

    __jit_unused_properties__ = ["num_sampler_steps"]  # noqa: RUF012 - TorchScript reads this exact name

    prediction_type: str
    sampler_kind: str
    eta: float
    clip_x0: float
    clip_sample: float
    beta_variance: bool
    guidance_mode: str
    max_grad_norm: float
    cfg_weight: float

    def __init__(
        self,
        config: DiffusionConfig,
        denoiser: nn.Module,
        costs: Optional[CostSum] = None,
        decoder: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        if getattr(denoiser, "num_train_steps", config.schedule.num_train_steps) != (config.schedule.num_train_steps):
            raise ValueError(
                f"denoiser embeds {denoiser.num_train_steps} training steps, "
                f"expected the schedule's {config.schedule.num_train_steps}"
            )
        self.config = config
        self.schedule = NoiseSchedule(config.schedule)
        self.denoiser = denoiser
        self.costs = costs if costs is not None else CostSum([], [])
        self.decoder = decoder if decoder is not None else nn.Identity()
        self.prediction_type = config.prediction_type
        self.register_buffer("steps", torch.zeros(2, dtype=torch.long))
        self.register_buffer("guide_scales", torch.zeros(1))
        self.set_sampler(config.sampler, config.guidance)

    # ----------------------------------------------------------------------------------------- configuration
    @torch.jit.unused
    def set_sampler(self, sampler: SamplerConfig, guidance: Optional[GuidanceConfig] = None) -> None:
        """Switch sampler (and guidance) settings; recomputes the step sequence and per-step scales."""
        guidance = guidance if guidance is not None else self.config.guidance
        seq = step_sequence(self.schedule.num_train_steps, sampler.num_steps, sampler.spacing)
        self.steps = torch.tensor(seq, dtype=torch.long, device=self.schedule.betas.device)
        self.guide_scales = scale_schedule(guidance, self.schedule.abar(self.steps[:-1])).to(self.steps.device)
        self.sampler_kind = sampler.kind
        self.eta = float(sampler.eta)
        self.clip_x0 = float(sampler.clip_x0)
        self.clip_sample = float(sampler.clip_sample)
        self.beta_variance = sampler.ddpm_variance == "beta"
        self.guidance_mode = guidance.mode
        self.max_grad_norm = float(guidance.max_grad_norm)
        self.cfg_weight = float(guidance.cfg_weight)
        self.sampler_config = sampler
        self.guidance_config = guidance

    @property
    @torch.jit.unused
    def num_sampler_steps(self) -> int:
        """K, the number of network steps of a full (cold) sample."""
        return int(self.steps.shape[0]) - 1

    # ---------------------------------------------------------------------------------------------- training
    @torch.jit.unused
    def loss(
        self,
        x0: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        element_weight: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        clean_tokens: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Per-sample denoising loss ``(B,)``: ``mean_{h,d} w_{h,d} ||f(x_t, t, c) - target||^2``.

        Args:
            x0: ``(B, H, D)`` clean training tokens (normalised).
            cond: optional condition, dropped with ``cond_drop_prob`` (classifier-free guidance training).
            element_weight: optional ``(B, H, D)`` or broadcastable weights (e.g. action loss on the first
                steps only); the mean divides by the weights' total.
            generator: the source of all randomness here (steps, noise, condition dropout).
            clean_tokens: optional ``(B, H)`` bool, tokens given clean as context (step -1, e.g. inpainted
                history); give them zero ``element_weight`` so they do not count in the loss.
        """
        B, H, _ = x0.shape
        T = self.schedule.num_train_steps
        if self.config.per_token_noise:
            t = torch.randint(0, T, (B, H), generator=generator, device=x0.device)  # (B, H)
        else:
            t = torch.randint(0, T, (B, 1), generator=generator, device=x0.device).expand(B, H)  # (B, H)
        if clean_tokens is not None:
            t = torch.where(clean_tokens, torch.full_like(t, -1), t)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.schedule.q_sample(x0, t, noise)
        drop: Optional[torch.Tensor] = None
        if cond is not None and self.config.cond_drop_prob > 0.0:
            drop = torch.rand(B, generator=generator, device=x0.device) < self.config.cond_drop_prob
        prediction = self.denoiser(x_t, t, cond, drop)
        target = training_target(x0, noise, self.schedule.abar(t).unsqueeze(-1), self.prediction_type)
        err = (prediction - target).pow(2)  # (B, H, D)
        if element_weight is None:
            return err.mean(dim=(1, 2))
        w = element_weight.expand_as(err)
        return (w * err).sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp_min(1e-12)

    # ---------------------------------------------------------------------------------------------- sampling
    def predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
        """Network output, with classifier-free guidance ``u + w (c - u)`` when ``cfg_weight != 1``."""
        if cond is None or self.cfg_weight == 1.0:
            return self.denoiser(x_t, t, cond, None)
        B = x_t.shape[0]
        drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(x_t.device)
        out = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, cond]), drop)
        out_c, out_u = out[:B], out[B:]
        return out_u + self.cfg_weight * (out_c - out_u)

    def _predict_no_grad(self, x_t: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            out = self.predict(x_t, t, cond)
        return out

    def cost(self, x0: torch.Tensor, cost_params: torch.Tensor) -> torch.Tensor:
        """Guidance cost ``(B,)`` of sampler-space trajectories (decoded to the costs' space first)."""
        return self.costs(self.decoder(x0), cost_params)

    def _cost_grad(self, x: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        grad = torch.autograd.grad([total], [x])[0]
        assert grad is not None  # x took part in the cost by construction
        return clip_grad_norm(grad, self.max_grad_norm)

    def _denoise(
        self,
        x: torch.Tensor,
        t_cur: torch.Tensor,
        abar_c: torch.Tensor,
        scale: float,
        cond: Optional[torch.Tensor],
        cost_params: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Guided ``(x0_hat, eps_hat)`` at the current step, consistent with ``x``."""
        guided = cost_params is not None and scale > 0.0 and len(self.costs.terms) > 0
        if guided and not torch.is_grad_enabled():
            raise RuntimeError(
                "guided sampling needs autograd: call sample() with gradients enabled (not under torch.no_grad)"
            )
        if guided and self.guidance_mode == "classifier" and cost_params is not None:
            x_in = x.detach().requires_grad_(True)
            x0 = to_x0(self.predict(x_in, t_cur, cond), x_in, abar_c, self.prediction_type)
            if self.clip_x0 > 0.0:
                x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            grad = self._cost_grad(x_in, self.cost(x0, cost_params).sum())
            eps = eps_from_x0(x0.detach(), x, abar_c) + scale * (1.0 - abar_c).sqrt() * grad
            x0 = (x - (1.0 - abar_c).sqrt() * eps) / abar_c.sqrt()
            return x0, eps
        prediction = self._predict_no_grad(x, t_cur, cond)
        x0 = to_x0(prediction, x, abar_c, self.prediction_type)
        touched = False
        if self.clip_x0 > 0.0:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            touched = True
        if guided and self.guidance_mode == "x0" and cost_params is not None:
            x0_in = x0.detach().requires_grad_(True)
            grad = self._cost_grad(x0_in, self.cost(x0_in, cost_params).sum())
            x0 = x0.detach() - scale * grad
            touched = True
        if touched:
            return x0, eps_from_x0(x0, x, abar_c)
        return x0, to_eps(prediction, x, abar_c, self.prediction_type)

    def sample(
        self,
        x_init: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        cost_params: Optional[torch.Tensor] = None,
        known_mask: Optional[torch.Tensor] = None,
        known_values: Optional[torch.Tensor] = None,
        start_index: Optional[torch.Tensor] = None,
        step_noise: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Run the guided sampler and return clean tokens ``(B, H, D)`` in sampler space.

        Args:
            x_init: ``(B, H, D)`` starting tokens: standard normal noise for a cold start, or a re-noised
                warm start (see :meth:`renoise`).
            cond: condition passed to the denoiser (shape set by the denoiser).
            cost_params: ``(B, P)`` guidance parameters; None samples unguided.
            known_mask: ``(B, H, D)`` bool, elements to hold at ``known_values`` (inpainting).
            known_values: ``(B, H, D)`` values of the known elements (others ignored).
            start_index: ``(B, H)`` long in ``[0, K]``, each token's entry point in the step sequence.
            step_noise: ``(K, B, H, D)`` noise of the stochastic updates (DDPM, DDIM eta > 0); drawn with
                ``torch.randn`` when None.
        """
        if x_init.dim() != 3:
            raise ValueError("x_init: expected (B, H, D), got shape " + str(list(x_init.shape)))
        if not bool(torch.isfinite(x_init).all()):
            raise ValueError("x_init: expected finite values, got NaN or inf")
        if cond is not None and not bool(torch.isfinite(cond).all()):
            raise ValueError("cond: expected finite values, got NaN or inf in the condition")
        if cost_params is not None and not bool(torch.isfinite(cost_params).all()):
            raise ValueError("cost_params: expected finite values, got NaN or inf")
        B, H, D = x_init.shape[0], x_init.shape[1], x_init.shape[2]
        K = self.steps.shape[0] - 1
        start = start_index if start_index is not None else torch.zeros(B, H, dtype=torch.long)
        start = start.to(x_init.device)
        if start.shape != (B, H) or int(start.min()) < 0 or int(start.max()) > K:
            raise ValueError(
                "start_index: expected shape (B, H) = "
                + str([B, H])
                + " with values in [0, "
                + str(K)
                + "], got shape "
                + str(list(start.shape))
            )
        if step_noise is not None and list(step_noise.shape) != [K, B, H, D]:
            raise ValueError("step_noise: expected shape " + str([K, B, H, D]) + ", got " + str(list(step_noise.shape)))
        x = x_init
        if known_mask is not None and known_values is not None:
            x = torch.where(known_mask, known_values, x)
        for i in range(int(start.min()), K):
            t_cur = self.steps[start.clamp(min=i)]  # (B, H)
            t_next = self.steps[start.clamp(min=i + 1)]  # (B, H)
            abar_c = self.schedule.abar(t_cur).unsqueeze(-1)  # (B, H, 1)
            abar_n = self.schedule.abar(t_next).unsqueeze(-1)  # (B, H, 1)
            x0, eps = self._denoise(x, t_cur, abar_c, float(self.guide_scales[i]), cond, cost_params)
            if self.sampler_kind == "ddpm" or self.eta > 0.0:
                z = step_noise[i] if step_noise is not None else torch.randn_like(x)
            else:
                z = torch.zeros_like(x)
            if self.sampler_kind == "ddpm":
                x_new = ddpm_step(x, x0, abar_c, abar_n, z, self.beta_variance)
            else:
                x_new = ddim_step(x, x0, eps, abar_c, abar_n, self.eta, z)
            if self.clip_sample > 0.0:
                x_new = x_new.clamp(-self.clip_sample, self.clip_sample)
            x = torch.where((t_next != t_cur).unsqueeze(-1), x_new.detach(), x)
            if known_mask is not None and known_values is not None:
                x = torch.where(known_mask, known_values, x)
        return x

    def renoise(self, x0: torch.Tensor, start_index: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noise clean tokens ``(B, H, D)`` to the level of their ``start_index (B, H)`` entry: ``q(x_t | x0)``."""
        return self.schedule.q_sample(x0, self.steps[start_index], noise)
