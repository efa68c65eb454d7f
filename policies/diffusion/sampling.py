"""Sampler steps (DDPM ancestral, DDIM with eta) over strided step subsequences, per token.

Every function here works per element: the current and next step ``t_cur``, ``t_next`` are ``(B, H)`` so that
each token can sit at its own noise level (inpainted tokens stay at the clean level -1; a warm-started plan
holds its body while a fresh tail catches up). A token whose ``t_next == t_cur`` is returned bit for bit.

DDIM (Song et al. 2021, eq. 12), from abar_c = abar(t_cur) to abar_n = abar(t_next):

    sigma  = eta * sqrt((1 - abar_n) / (1 - abar_c)) * sqrt(1 - abar_c / abar_n)
    x_next = sqrt(abar_n) x0_hat + sqrt(1 - abar_n - sigma^2) eps_hat + sigma z

DDPM ancestral step (Ho et al. 2020) with the strided posterior q(x_n | x_c, x0) (as diffusers' DDPMScheduler
does for a subsequence): beta' = 1 - abar_c / abar_n,

    mean = sqrt(abar_n) beta' / (1 - abar_c) x0_hat + sqrt(1 - beta') (1 - abar_n) / (1 - abar_c) x_c
    var  = (1 - abar_n) / (1 - abar_c) beta'        (``ddpm_variance="posterior"``, "fixed_small")
    var  = beta'                                      (``ddpm_variance="beta"``, "fixed_large", Ho et al.'s other
                                                       choice and FISOR's reference sampler)

With an unclipped ``x0_hat`` the mean is Ho et al.'s ``(x_c - beta' / sqrt(1 - abar_c) eps_hat) / sqrt(1 - beta')``.
``clip_sample`` clamps every new sample ``x_next`` (FISOR's reference clips its samples, not ``x0_hat``).

``x0_hat`` and ``eps_hat`` must be consistent with ``x_c`` (see ``schedules.eps_from_x0``) once guidance or
clipping has moved ``x0_hat``.
"""

from dataclasses import dataclass
from typing import Literal, get_args

import torch

SamplerKind = Literal["ddim", "ddpm"]
DdpmVariance = Literal["posterior", "beta"]
Spacing = Literal["trailing", "leading"]
SAMPLER_KINDS: tuple[str, ...] = get_args(SamplerKind)
DDPM_VARIANCES: tuple[str, ...] = get_args(DdpmVariance)
SPACINGS: tuple[str, ...] = get_args(Spacing)


@dataclass
class SamplerConfig:
    """How to sample: which update, how many steps, how the steps are spaced."""

    kind: SamplerKind = "ddim"
    """ddim (eta-controlled) or ddpm (ancestral)"""
    num_steps: int = 10
    """number of sampler steps K, a strided subsequence of the T training steps (K <= T)"""
    eta: float = 0.0
    """ddim stochasticity in [0, 1]: 0 is deterministic, 1 matches the ancestral variance"""
    clip_x0: float = 0.0
    """clamp the predicted x0 to [-clip_x0, clip_x0] at every step (0 disables)"""
    clip_sample: float = 0.0
    """clamp every new sample x_next to [-clip_sample, clip_sample] (0 disables; FISOR's reference uses 1)"""
    ddpm_variance: DdpmVariance = "posterior"
    """ddpm noise variance: posterior (fixed_small) or beta (fixed_large, FISOR's reference)"""
    spacing: Spacing = "trailing"
    """trailing starts at step T-1 (better for few steps, Lin et al. 2024); leading is diffusers' default"""

    def __post_init__(self) -> None:
        if self.kind not in SAMPLER_KINDS:
            raise ValueError(f"sampler kind: expected one of {SAMPLER_KINDS}, got {self.kind!r}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps: expected an integer >= 1, got {self.num_steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta: expected a value in [0, 1], got {self.eta}")
        if self.clip_x0 < 0.0:
            raise ValueError(f"clip_x0: expected >= 0 (0 disables), got {self.clip_x0}")
        if self.clip_sample < 0.0:
            raise ValueError(f"clip_sample: expected >= 0 (0 disables), got {self.clip_sample}")
        if self.ddpm_variance not in DDPM_VARIANCES:
            raise ValueError(f"ddpm_variance: expected one of {DDPM_VARIANCES}, got {self.ddpm_variance!r}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing: expected one of {SPACINGS}, got {self.spacing!r}")


def step_sequence(num_train_steps: int, num_steps: int, spacing: str = "trailing") -> list[int]:
    """Descending training steps visited by a K-step sampler, followed by the clean level -1.

    ``trailing``: ``round(T - i T / K) - 1`` for i = 0..K-1 (starts at T-1); ``leading``: ``i * (T // K)``
    reversed (diffusers' DDIM/DDPM default). Returns K + 1 integers.
    """
    if num_steps > num_train_steps:
        raise ValueError(f"num_steps: expected at most the {num_train_steps} training steps, got {num_steps}")
    if num_steps < 1:
        raise ValueError(f"num_steps: expected an integer >= 1, got {num_steps}")
    if spacing == "trailing":
        ratio = num_train_steps / num_steps
        seq = [round(num_train_steps - i * ratio) - 1 for i in range(num_steps)]
    elif spacing == "leading":
        ratio = num_train_steps // num_steps
        seq = [i * ratio for i in range(num_steps)][::-1]
    else:
        raise ValueError(f"spacing: expected one of {SPACINGS}, got {spacing!r}")
    return [*seq, -1]


def ddim_step(
    x_t: torch.Tensor,
    x0_hat: torch.Tensor,
    eps_hat: torch.Tensor,
    abar_c: torch.Tensor,
    abar_n: torch.Tensor,
    eta: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """One DDIM update (shapes broadcast: x ``(B, H, D)``, abar ``(B, H, 1)``); see the module docstring."""
    var_ratio = torch.where(abar_c < 1.0, (1.0 - abar_n) / (1.0 - abar_c).clamp_min(1e-12), torch.zeros_like(abar_c))
    sigma = eta * (var_ratio * (1.0 - abar_c / abar_n)).clamp_min(0.0).sqrt()
    direction = (1.0 - abar_n - sigma**2).clamp_min(0.0).sqrt()
    return abar_n.sqrt() * x0_hat + direction * eps_hat + sigma * noise


def ddpm_step(
    x_t: torch.Tensor,
    x0_hat: torch.Tensor,
    abar_c: torch.Tensor,
    abar_n: torch.Tensor,
    noise: torch.Tensor,
    beta_variance: bool = False,
) -> torch.Tensor:
    """One ancestral DDPM update with the strided posterior mean; variance ``beta'`` when ``beta_variance``, else
    the posterior variance (module docstring)."""
    one_minus_c = (1.0 - abar_c).clamp_min(1e-12)
    beta = 1.0 - abar_c / abar_n
    coef_x0 = abar_n.sqrt() * beta / one_minus_c
    coef_xt = (1.0 - beta).sqrt() * (1.0 - abar_n) / one_minus_c
    var = (beta if beta_variance else (1.0 - abar_n) / one_minus_c * beta).clamp_min(1e-20)
    std = torch.where(abar_n < 1.0, var.sqrt(), torch.zeros_like(var))
    return coef_x0 * x0_hat + coef_xt * x_t + std * noise
