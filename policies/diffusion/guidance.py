"""Guidance: steering a trained denoiser with differentiable costs at sampling time, with no retraining.

A *cost* is an ``nn.Module`` with ``forward(x, params) -> (B,)`` on a trajectory ``x (B, H, F)`` in the space the
cost is written in (physical units: the planner decodes and un-normalises before the cost sees it) and
``params (B, P)``; it exposes ``param_dim: int`` and ``param_names: List[str]`` so that a parameter vector can
be laid out, documented and exported. Lower is better: guidance samples from ``p(x) exp(-G(x))``.

Three guidance modes act on one sampler step at step t (``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``):

- ``classifier`` (gradient through the denoiser; Dhariwal & Nichol 2021 classifier guidance with the
  reconstruction-guidance / DPS approximation log p(y | x_t) ~ -G(x0_hat(x_t)), Chung et al. 2023,
  Janner et al. 2022): ``eps' = eps + lambda_t s grad_{x_t} G(x0_hat(x_t))``, one backward pass through the
  network per step.
- ``x0`` (cheap x0-space guidance; the BeyondMimic / manifold-preserving style, He et al. 2024):
  ``x0' = x0_hat - lambda_t grad_{x0} G(x0_hat)``, then the step continues from x0' with the consistent noise
  ``eps' = (x_t - a x0') / s``. One network evaluation per step; the gradient only goes through the cost.
- classifier-free (Ho & Salimans 2022) for conditional denoisers trained with condition dropout:
  ``pred = pred_uncond + w (pred_cond - pred_uncond)``; w = 1 is plain conditional sampling.

Per-step scales ``lambda_t = scale * schedule(t)`` and a per-sample gradient-norm clip (``max_grad_norm``)
keep early, very noisy steps from being thrown off the data manifold.
"""

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

GuidanceMode = Literal["none", "x0", "classifier"]
ScaleSchedule = Literal["constant", "linear_up", "linear_down", "sigma"]
GUIDANCE_MODES: tuple[str, ...] = get_args(GuidanceMode)
SCALE_SCHEDULES: tuple[str, ...] = get_args(ScaleSchedule)


@dataclass
class GuidanceConfig:
    """How costs steer the sampler."""

    mode: GuidanceMode = "x0"
    """none, x0 (cheap x0-space correction) or classifier (gradient through the denoiser)"""
    scale: float = 1.0
    """base guidance scale lambda (0 reproduces unguided sampling bit for bit)"""
    schedule: ScaleSchedule = "constant"
    """per-step scale: constant, linear_up (weak early, full at the end), linear_down, or sigma (x sqrt(1-abar))"""
    max_grad_norm: float = 0.0
    """clip each sample's cost gradient to this L2 norm (0 disables)"""
    cfg_weight: float = 1.0
    """classifier-free guidance weight w (1 = conditional only, 0 = unconditional)"""

    def __post_init__(self) -> None:
        if self.mode not in GUIDANCE_MODES:
            raise ValueError(f"guidance mode: expected one of {GUIDANCE_MODES}, got {self.mode!r}")
        if self.schedule not in SCALE_SCHEDULES:
            raise ValueError(f"guidance schedule: expected one of {SCALE_SCHEDULES}, got {self.schedule!r}")
        if self.scale < 0.0:
            raise ValueError(f"guidance scale: expected >= 0, got {self.scale}")
        if self.max_grad_norm < 0.0:
            raise ValueError(f"max_grad_norm: expected >= 0 (0 disables), got {self.max_grad_norm}")


def scale_schedule(config: GuidanceConfig, abar_steps: torch.Tensor) -> torch.Tensor:
    """Per-step guidance scales ``(K,)`` for the K sampler steps whose current ``abar`` is ``abar_steps``."""
    K = abar_steps.shape[0]
    i = torch.arange(K, dtype=torch.float32)
    if config.schedule == "constant":
        w = torch.ones(K)
    elif config.schedule == "linear_up":
        w = (i + 1.0) / K
    elif config.schedule == "linear_down":
        w = (K - i) / K
    else:
        w = (1.0 - abar_steps.float()).sqrt()
    return config.scale * w


def clip_grad_norm(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each sample's gradient ``(B, ...)`` down to at most ``max_norm`` in L2 (0 disables)."""
    if max_norm <= 0.0:
        return grad
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1).clamp_min(1e-12)  # (B,)
    factor = (max_norm / norm).clamp(max=1.0)
    return grad * factor.view([-1] + [1] * (grad.dim() - 1))


class CostSum(nn.Module):
    """A weighted sum of cost terms, each reading its own slice of one parameter vector.

    ``G(x, p) = sum_i w_i G_i(x, p[:, o_i : o_i + P_i])`` with offsets ``o_i`` in term order. The layout
    (``param_names``) is what the export metadata records.
    """

    param_dim: int
    offsets: list[int]
    sizes: list[int]

    def __init__(self, terms: list[nn.Module], weights: list[float]) -> None:
        super().__init__()
        if len(terms) != len(weights):
            raise ValueError(f"CostSum: expected one weight per term ({len(terms)}), got {len(weights)}")
        for term in terms:
            if not hasattr(term, "param_dim") or not hasattr(term, "param_names"):
                raise TypeError(f"cost {type(term).__name__}: expected attributes param_dim and param_names")
        self.terms = nn.ModuleList(terms)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32).reshape(len(weights)))
        self.sizes = [int(term.param_dim) for term in terms]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(terms))]
        self.param_dim = sum(self.sizes)
        self.term_names = [type(term).__name__ for term in terms]

    @torch.jit.unused
    def param_layout(self) -> list[dict[str, object]]:
        """Per term: name, weight, offset and parameter names (for metadata and docs)."""
        return [
            {
                "term": name,
                "weight": float(self.weights[i]),
                "offset": self.offsets[i],
                "params": list(term.param_names),
            }
            for i, (name, term) in enumerate(zip(self.term_names, self.terms, strict=True))
        ]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Total cost ``(B,)`` of trajectories ``x (B, H, F)`` under ``params (B, P)``."""
        if params.dim() != 2 or params.shape[1] != self.param_dim:
            raise ValueError(
                "cost params: expected shape (B, " + str(self.param_dim) + "), got " + str(list(params.shape))
            )
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i, term in enumerate(self.terms):
            p = params[:, self.offsets[i] : self.offsets[i] + self.sizes[i]]
            total = total + self.weights[i] * term(x, p)
        return total


class Gated(nn.Module):
    """A cost switched per sample by its first parameter: ``G(x, [g, p]) = g * G_inner(x, p)``.

    One exported planner can then carry every task's cost and the runtime turns terms on (g = 1), off (g = 0)
    or scales them per call, without re-exporting.
    """

    param_dim: int
    param_names: list[str]

    def __init__(self, inner: nn.Module, name: str) -> None:
        super().__init__()
        if not hasattr(inner, "param_dim") or not hasattr(inner, "param_names"):
            raise TypeError(f"cost {type(inner).__name__}: expected attributes param_dim and param_names")
        self.inner = inner
        self.param_dim = int(inner.param_dim) + 1
        self.param_names = [f"{name}_gate", *inner.param_names]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``(B,)``: the inner cost times the gate ``params[:, 0]``; not evaluated at all when every gate is 0
        (its gradient would be zero, and guidance takes it at every sampler step)."""
        gate = params[:, 0]
        if not bool((gate != 0.0).any()):
            return 0.0 * x[:, 0, 0]  # (B,) zeros that still belong to x's graph (autograd.grad needs a path)
        return gate * self.inner(x, params[:, 1:])


class QuadraticCost(nn.Module):
    """``G(x) = lambda / 2 * sum_h ||x[:, h, f] - g||^2`` over chosen tokens and features.

    The simplest guidance target (a goal or velocity to reach); params ``(B, F_sel)`` hold ``g``.
    ``tokens`` selects horizon indices (empty = all), ``features`` the feature columns.
    """

    param_dim: int
    features: list[int]
    tokens: list[int]

    def __init__(self, features: list[int], tokens: list[int], weight: float = 1.0) -> None:
        super().__init__()
        if len(features) == 0:
            raise ValueError("QuadraticCost: expected at least one feature index, got none")
        self.features = list(features)
        self.tokens = list(tokens)
        self.weight = float(weight)
        self.param_dim = len(features)
        self.param_names = [f"goal_{f}" for f in features]

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Cost ``(B,)`` of ``x (B, H, F)`` against goals ``params (B, F_sel)``."""
        sel = x[:, :, self.features]  # (B, H, F_sel)
        if len(self.tokens) > 0:
            sel = sel[:, self.tokens]
        diff = sel - params.unsqueeze(1)
        return 0.5 * self.weight * diff.pow(2).sum(dim=(1, 2))
