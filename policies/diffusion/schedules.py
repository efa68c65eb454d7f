"""Discrete noise schedules and the prediction targets (epsilon, x0, v) with exact conversions.

Forward process (Ho et al. 2020, DDPM): for a training step ``t`` in ``[0, T - 1]``

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{i <= t} (1 - beta_i)

Steer also uses the step ``t = -1`` for a *clean* token (``abar = 1``): inpainted tokens are held there, and
samplers end there. :meth:`NoiseSchedule.abar` looks both up in one buffer of length ``T + 1``.

Schedules (``ScheduleConfig.kind``):

- ``linear``: betas linearly spaced in ``[beta_start, beta_end]`` (Ho et al. 2020; defaults scale 1e-4..2e-2 by
  1000 / T so that any T gives a comparable process).
- ``cosine``: ``abar(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)`` with ``s = 0.008``, betas clipped at 0.999
  (Nichol & Dhariwal 2021, improved DDPM).
- ``vp``: the discrete variance-preserving schedule of FISOR / IDQL,
  ``beta_t = 1 - exp(-b_min / T - (b_max - b_min) (2 t - 1) / (2 T^2))`` for ``t = 1..T``
  (with T = 5, b_min 0.1, b_max 10: beta ~ [0.196, 0.459, 0.636, 0.755, 0.835]).

Prediction targets (``v`` from Salimans & Ho 2022), with ``a = sqrt(abar)``, ``s = sqrt(1 - abar)``:

    x_t = a x0 + s eps,       v = a eps - s x0
    x0  = (x_t - s eps) / a = a x_t - s v
    eps = (x_t - a x0) / s  = s x_t + a v
"""

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

ScheduleKind = Literal["linear", "cosine", "vp"]
PredictionType = Literal["epsilon", "x0", "v"]
SCHEDULE_KINDS: tuple[str, ...] = get_args(ScheduleKind)
PREDICTION_TYPES: tuple[str, ...] = get_args(PredictionType)


@dataclass
class ScheduleConfig:
    """Which discrete noise schedule to build."""

    kind: ScheduleKind = "cosine"
    """schedule family: linear, cosine (improved DDPM) or vp (FISOR)"""
    num_train_steps: int = 100
    """number of training diffusion steps T"""
    beta_start: float = 1e-4
    """linear: first beta at T = 1000 (rescaled by 1000 / T)"""
    beta_end: float = 2e-2
    """linear: last beta at T = 1000 (rescaled by 1000 / T)"""
    cosine_offset: float = 0.008
    """cosine: the small offset s that keeps beta_0 from vanishing"""
    vp_beta_min: float = 0.1
    """vp: b_min of the continuous VP SDE"""
    vp_beta_max: float = 10.0
    """vp: b_max of the continuous VP SDE"""

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule kind: expected one of {SCHEDULE_KINDS}, got {self.kind!r}")
        if self.num_train_steps < 1:
            raise ValueError(f"num_train_steps: expected an integer >= 1, got {self.num_train_steps}")
        if not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise ValueError(
                f"linear betas: expected 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}"
            )
        if not 0.0 <= self.vp_beta_min < self.vp_beta_max:
            raise ValueError(f"vp betas: expected 0 <= b_min < b_max, got {self.vp_beta_min}, {self.vp_beta_max}")


def make_betas(config: ScheduleConfig) -> torch.Tensor:
    """The ``(T,)`` float64 betas of a schedule."""
    T = config.num_train_steps
    if config.kind == "linear":
        scale = 1000.0 / T
        start = min(config.beta_start * scale, 0.999)
        end = min(config.beta_end * scale, 0.999)
        return torch.linspace(start, end, T, dtype=torch.float64)
    if config.kind == "cosine":
        s = config.cosine_offset

        def abar(u: float) -> float:
            return math.cos((u + s) / (1.0 + s) * math.pi / 2.0) ** 2

        betas = [min(1.0 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)]
        return torch.tensor(betas, dtype=torch.float64)
    # vp
    t = torch.arange(1, T + 1, dtype=torch.float64)
    b_min, b_max = config.vp_beta_min, config.vp_beta_max
    alpha = torch.exp(-b_min / T - 0.5 * (b_max - b_min) * (2.0 * t - 1.0) / T**2)
    return 1.0 - alpha


class NoiseSchedule(nn.Module):
    """A discrete schedule held as buffers so it travels with the weights and the exported file.

    Buffers (float32): ``betas (T,)``, ``alphas_cumprod (T,)`` and ``abar_ext (T + 1,)`` with
    ``abar_ext[0] = 1`` (the clean level ``t = -1``) and ``abar_ext[t + 1] = alphas_cumprod[t]``.
    """

    num_train_steps: int

    def __init__(self, config: ScheduleConfig) -> None:
        super().__init__()
        betas = make_betas(config)
        abar = torch.cumprod(1.0 - betas, dim=0)
        self.num_train_steps = config.num_train_steps
        self.kind = config.kind
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas_cumprod", abar.float())
        self.register_buffer("abar_ext", torch.cat([torch.ones(1, dtype=torch.float64), abar]).float())

    def abar(self, t: torch.Tensor) -> torch.Tensor:
        """``abar`` at integer steps ``t`` in ``[-1, T - 1]`` (any shape; -1 gives exactly 1)."""
        return self.abar_ext[t + 1]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x0)`` with the given noise.

        Args:
            x0: ``(B, H, D)`` clean tokens.
            t: ``(B, H)`` per-token steps in ``[-1, T - 1]``.
            noise: ``(B, H, D)`` standard normal noise.
        """
        abar = self.abar(t).unsqueeze(-1)  # (B, H, 1)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def check_steps(self, t: torch.Tensor) -> None:
        """Raise if any step lies outside ``[-1, T - 1]``."""
        if t.numel() > 0 and (int(t.min()) < -1 or int(t.max()) > self.num_train_steps - 1):
            raise ValueError(
                "diffusion steps: expected integers in [-1, "
                + str(self.num_train_steps - 1)
                + "], got range ["
                + str(int(t.min()))
                + ", "
                + str(int(t.max()))
                + "]"
            )


def to_x0(prediction: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """Predicted clean sample from a network output of any prediction type (``abar`` broadcasts)."""
    a = abar.sqrt()
    s = (1.0 - abar).sqrt()
    if prediction_type == "epsilon":
        return (x_t - s * prediction) / a
    if prediction_type == "x0":
        return prediction
    if prediction_type == "v":
        return a * x_t - s * prediction
    raise ValueError("prediction_type: expected epsilon, x0 or v, got " + prediction_type)


def to_eps(prediction: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """Predicted noise from a network output; at the clean level (abar = 1) an x0 output gives 0."""
    a = abar.sqrt()
    s = (1.0 - abar).sqrt()
    if prediction_type == "epsilon":
        return prediction
    if prediction_type == "x0":
        return torch.where(s > 0, (x_t - a * prediction) / s.clamp_min(1e-12), torch.zeros_like(x_t))
    if prediction_type == "v":
        return s * x_t + a * prediction
    raise ValueError("prediction_type: expected epsilon, x0 or v, got " + prediction_type)


def eps_from_x0(x0: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The noise consistent with ``x_t`` and a (possibly corrected) ``x0``; 0 at the clean level."""
    s = (1.0 - abar).sqrt()
    return torch.where(s > 0, (x_t - abar.sqrt() * x0) / s.clamp_min(1e-12), torch.zeros_like(x_t))


def training_target(x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """What the network regresses for a prediction type: ``eps``, ``x0`` or ``v = a eps - s x0``."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "x0":
        return x0
    if prediction_type == "v":
        return abar.sqrt() * noise - (1.0 - abar).sqrt() * x0
    raise ValueError("prediction_type: expected epsilon, x0 or v, got " + prediction_type)


def check_prediction_type(prediction_type: str) -> None:
    """Raise on an unknown prediction type with the allowed names."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type: expected one of {PREDICTION_TYPES}, got {prediction_type!r}")
