"""Trajectory transformer denoiser with state / action tokens and structured attention masks.

The planner network of Diffuse-CLoC (Huang et al. 2025) and BeyondMimic (Liao et al. 2025): a noisy
state-action trajectory ``x_t`` (B, H, S + A) becomes ``H`` state tokens and (when ``A > 0``) ``H`` action
tokens. Every token is

    token = Linear_kind(x_t[b, h]) + pos[h] + type_kind + StepMLP(sinusoid(t[b, h] + 1)),  kind in {state, action}

so each time step carries its own diffusion step (independent noise level per token; ``t = -1``, a clean
inpainted token, embeds as step 0). ``cond_tokens`` condition tokens (observation history, goal),
``Linear(cond) + cond_pos``, are prepended. Pre-LayerNorm blocks (Vaswani et al. 2017; Xiong et al. 2020)

    x = x + Attention(LN(x), mask);   x = x + MLP(LN(x))

use ``scaled_dot_product_attention`` with a fixed boolean mask (True = may attend), built once.

Sequence layout ``[cond (C) | state (H) | action (H)]``, masks (query row sees key column when):

- ``full``: always.
- ``causal``: condition queries see condition keys only; a state or action query at step ``h`` sees the
  condition and every state and action token at steps ``<= h``.
- ``diffuse_cloc`` (Diffuse-CLoC): condition queries see condition keys only; state queries see the condition
  and all state tokens, never an action token; an action query at ``h`` sees the condition, all state tokens
  and the action tokens at steps ``<= h``. States are thus planned without actions, and each action is a
  causal function of the planned states and the earlier actions.

Condition queries are kept to condition keys under the structured masks because in a multi-layer network a
condition token that attended to, say, an action token would carry that action into every state token.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Optional, get_args

import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from torch import nn

from policies.diffusion.denoisers.base import Denoiser, check_denoiser_inputs

AttentionKind = Literal["full", "causal", "diffuse_cloc"]
ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)

COND, STATE, ACTION = 0, 1, 2  # token types in the mask rules


@dataclass
class TrajectoryTransformerConfig:
    """Sizes and attention pattern of the trajectory transformer (defaults: the 2 x 256 early BeyondMimic
    code; the paper's network is num_layers 6, num_heads 8, width 512)."""

    state_dim: int
    """features S of the state part of a time step"""
    action_dim: int = 0
    """features A of the action part of a time step (0 = one token type, a plain trajectory)"""
    horizon: int = 20
    """time steps H (Diffuse-CLoC: 4 history + 16 future)"""
    cond_dim: int = 0
    """features of one condition token (0 = unconditional)"""
    cond_tokens: int = 0
    """number of condition tokens; cond is (B, cond_tokens, cond_dim); must be 0 when cond_dim is 0"""
    num_train_steps: int = 20
    """training diffusion steps T"""
    num_layers: int = 2
    """transformer blocks"""
    num_heads: int = 4
    """attention heads (must divide width)"""
    width: int = 256
    """token width"""
    mlp_ratio: int = 4
    """hidden width of the block MLP = mlp_ratio * width"""
    dropout: float = 0.0
    """dropout on attention weights and on the residual branches"""
    attention: AttentionKind = "full"
    """attention mask: full, causal or diffuse_cloc"""

    def __post_init__(self) -> None:
        for name in (
            "state_dim",
            "horizon",
            "num_train_steps",
            "num_layers",
            "num_heads",
            "width",
            "mlp_ratio",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("action_dim", "cond_dim", "cond_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
        if self.cond_dim > 0 and self.cond_tokens < 1:
            raise ValueError(f"cond_tokens: expected >= 1 when cond_dim > 0, got {self.cond_tokens}")
        if self.cond_dim == 0 and self.cond_tokens != 0:
            raise ValueError(f"cond_tokens: expected 0 when cond_dim is 0 (unconditional), got {self.cond_tokens}")
        if self.width % self.num_heads or self.width % 2:
            raise ValueError(f"width: expected an even multiple of num_heads {self.num_heads}, got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention: expected one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.attention == "diffuse_cloc" and self.action_dim == 0:
            raise ValueError(
                "attention 'diffuse_cloc' separates state and action tokens: expected action_dim >= 1, got 0 "
                "(use 'full' or 'causal' for a state-only trajectory)"
            )


def _full(q_type: int, q_step: int, k_type: int, k_step: int) -> bool:
    return True


def _causal(q_type: int, q_step: int, k_type: int, k_step: int) -> bool:
    if q_type == COND:
        return k_type == COND
    return k_type == COND or k_step <= q_step


def _diffuse_cloc(q_type: int, q_step: int, k_type: int, k_step: int) -> bool:
    if q_type == COND:
        return k_type == COND
    if q_type == STATE:
        return k_type in (COND, STATE)
    return k_type in (COND, STATE) or k_step <= q_step


_MASK_RULES: dict[str, Callable[[int, int, int, int], bool]] = {
    "full": _full,
    "causal": _causal,
    "diffuse_cloc": _diffuse_cloc,
}


def build_attention_mask(attention: str, horizon: int, cond_tokens: int, with_actions: bool) -> torch.Tensor:
    """The ``(L, L)`` boolean mask (True = query row may attend to key column) for the layout
    ``[cond (C) | state (H) | action (H, if with_actions)]``, ``L = C + H (1 + with_actions)``."""
    if attention not in _MASK_RULES:
        raise ValueError(f"unknown attention: expected one of {ATTENTION_KINDS}, got {attention!r}")
    rule = _MASK_RULES[attention]
    tokens = [(COND, -1)] * cond_tokens + [(STATE, h) for h in range(horizon)]
    if with_actions:
        tokens += [(ACTION, h) for h in range(horizon)]
    allowed = [[rule(qt, qs, kt, ks) for (kt, ks) in tokens] for (qt, qs) in tokens]
    return torch.tensor(allowed, dtype=torch.bool)  # (L, L)


def sinusoidal_embedding(steps: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """``[cos(s w_i), sin(s w_i)]`` with ``w_i = 10000^(-i / (W/2))`` (Vaswani et al. 2017; Ho et al. 2020):
    ``(...)`` float steps -> ``(..., W)``."""
    angles = steps.unsqueeze(-1) * frequencies  # (..., W / 2)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (..., W)


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention ``softmax(Q K^T / sqrt(d) + log mask) V``.

    Written on ``scaled_dot_product_attention`` rather than ``nn.MultiheadAttention``, whose fast path breaks
    scripting and input gradients.
    """

    def __init__(self, width: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout
        self.split_heads = Rearrange("b l (k n d) -> k b n l d", k=3, n=num_heads)
        self.merge_heads = Rearrange("b n l d -> b l (n d)")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        qkv = self.split_heads(self.qkv(x))  # (3, B, N, L, W / N)
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, dropout_p=dropout_p)
        return self.proj(self.merge_heads(y))  # (B, L, W)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` with a GELU MLP."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(width)
        self.attn = MaskedSelfAttention(width, num_heads, dropout)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm_attn(x), mask))  # (B, L, W)
        return x + self.dropout(self.mlp(self.norm_mlp(x)))  # (B, L, W)


class TrajectoryTransformer(Denoiser):
    """Transformer denoiser over state / action tokens with a full, causal or Diffuse-CLoC mask.

    Shapes: ``x_t`` (B, H, S + A), ``t`` (B, H) long in ``[-1, T - 1]`` (shared by the state and action token
    of a time step), ``cond`` (B, C, cond_dim) or ``None`` when ``cond_dim == 0``, ``drop_cond`` (B,) bool or
    ``None`` (True: the learned null condition replaces that sample's cond; ignored when ``cond_dim == 0``);
    returns (B, H, S + A). Wrong shapes raise ``ValueError`` naming the expected and the received shape.
    """

    def __init__(self, config: TrajectoryTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon = config.horizon
        self.state_dim = config.state_dim
        self.action_dim = config.action_dim
        self.x_dim = config.state_dim + config.action_dim
        self.cond_dim = config.cond_dim
        self.cond_tokens = config.cond_tokens
        self.num_train_steps = config.num_train_steps
        W = config.width
        self.state_in = nn.Linear(config.state_dim, W)
        self.state_out = nn.Linear(W, config.state_dim)
        # Identity placeholders keep one scripted code path when there are no actions or no condition.
        self.action_in = nn.Linear(config.action_dim, W) if config.action_dim > 0 else nn.Identity()
        self.action_out = nn.Linear(W, config.action_dim) if config.action_dim > 0 else nn.Identity()
        self.cond_in = nn.Linear(config.cond_dim, W) if config.cond_dim > 0 else nn.Identity()
        self.null_cond = nn.Parameter(torch.zeros(config.cond_tokens, config.cond_dim))
        self.cond_pos = nn.Parameter(torch.randn(config.cond_tokens, W) * 0.02)
        self.pos = nn.Parameter(torch.randn(config.horizon, W) * 0.02)
        self.state_type = nn.Parameter(torch.randn(W) * 0.02)
        self.action_type = nn.Parameter(torch.randn(W) * 0.02)
        self.cond_type = nn.Parameter(torch.randn(W) * 0.02)
        half = W // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("step_frequencies", frequencies)  # (W / 2,)
        self.step_mlp = nn.Sequential(nn.Linear(W, W), nn.SiLU(), nn.Linear(W, W))
        self.blocks = nn.ModuleList(
            [TransformerBlock(W, config.num_heads, config.mlp_ratio, config.dropout) for _ in range(config.num_layers)]
        )
        self.norm_out = nn.LayerNorm(W)
        mask = build_attention_mask(config.attention, config.horizon, config.cond_tokens, config.action_dim > 0)
        self.register_buffer("attn_mask", mask)  # (L, L)

    def _condition_tokens(
        self, cond: Optional[torch.Tensor], drop_cond: Optional[torch.Tensor], batch: int
    ) -> torch.Tensor:
        """Embed ``cond`` (B, C, cond_dim) as (B, C, W) tokens, the null condition where ``drop_cond``."""
        expected = f"({batch}, {self.cond_tokens}, {self.cond_dim})"
        if cond is None:
            raise ValueError(
                f"cond: expected shape {expected} for this conditional model, got None "
                "(pass drop_cond=True for an unconditional prediction)"
            )
        if (
            cond.dim() != 3
            or cond.shape[0] != batch
            or cond.shape[1] != self.cond_tokens
            or cond.shape[2] != self.cond_dim
        ):
            raise ValueError(f"cond: expected shape {expected}, got {list(cond.shape)}")
        if drop_cond is not None:
            null = self.null_cond.to(cond.dtype).expand(batch, self.cond_tokens, self.cond_dim)  # (B, C, Dc)
            cond = torch.where(drop_cond[:, None, None], null, cond)  # (B, C, Dc)
        return self.cond_in(cond) + self.cond_pos + self.cond_type  # (B, C, W)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        drop_cond: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Predict (epsilon, x0 or v) for ``x_t`` (B, H, S + A) at per-token steps ``t`` (B, H)."""
        check_denoiser_inputs(x_t, t, drop_cond, self.horizon, self.x_dim)
        batch = x_t.shape[0]
        H = self.horizon
        steps = (t + 1).to(x_t.dtype)  # (B, H), clean token -> 0
        step_emb = sinusoidal_embedding(steps, self.step_frequencies.to(x_t.dtype))  # (B, H, W)
        shared = self.step_mlp(step_emb) + self.pos  # (B, H, W)
        states = self.state_in(x_t[:, :, : self.state_dim])  # (B, H, W)
        tokens = [states + shared + self.state_type]
        if self.action_dim > 0:
            actions = self.action_in(x_t[:, :, self.state_dim :])  # (B, H, W)
            tokens.append(actions + shared + self.action_type)
        if self.cond_dim > 0:
            tokens.insert(0, self._condition_tokens(cond, drop_cond, batch))  # (B, C, W)
        elif cond is not None:
            raise ValueError(f"cond: expected None for an unconditional model (cond_dim 0), got {list(cond.shape)}")
        h = torch.cat(tokens, dim=1)  # (B, L, W)
        for block in self.blocks:
            h = block(h, self.attn_mask)  # (B, L, W)
        h = self.norm_out(h)  # (B, L, W)
        first = self.cond_tokens
        out = [self.state_out(h[:, first : first + H])]  # (B, H, S)
        if self.action_dim > 0:
            out.append(self.action_out(h[:, first + H : first + 2 * H]))  # (B, H, A)
        return torch.cat(out, dim=-1)  # (B, H, S + A)
