"""The contract every denoiser network satisfies.

A denoiser maps a noisy trajectory and per-token diffusion steps to a prediction (epsilon, x0 or v: the
network does not care which; the sampler converts):

    x_t  (B, H, D)  noisy tokens (H = horizon tokens, D = features per token)
    t    (B, H)     long, diffusion step of every token in [-1, T - 1]; -1 marks a clean (known) token
    cond (B, ...)   optional condition (observation history, goal); None for unconditional models
    drop_cond (B,)  optional bool: True replaces that sample's condition by the learned null condition
                    (classifier-free guidance; Ho & Salimans 2022)
    ->   (B, H, D)  prediction

Every denoiser must script with ``torch.jit.script`` and be differentiable w.r.t. ``x_t`` (guidance through
the network needs d prediction / d x_t).
"""

from typing import Optional

import torch
from torch import nn


class Denoiser(nn.Module):
    """Base class: subclasses implement :meth:`forward` with the signature below."""

    #: number of training diffusion steps T the network embeds (t ranges over [-1, T - 1])
    num_train_steps: int

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        drop_cond: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    def num_parameters(self) -> int:
        """Number of trainable parameters (not compiled into a scripted module)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def dtype_name(dtype: torch.dtype) -> str:
    """``"torch.float32"`` etc. also inside TorchScript, where ``str(dtype)`` prints an enum number."""
    names = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]
    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32]
    dtypes += [torch.int16, torch.int8, torch.uint8, torch.bool]
    for i in range(len(dtypes)):  # TorchScript has no zip(strict=...)
        if dtype == dtypes[i]:
            return "torch." + names[i]
    return "another dtype"


def check_denoiser_inputs(
    x_t: torch.Tensor,
    t: torch.Tensor,
    drop_cond: Optional[torch.Tensor],
    horizon: int,
    x_dim: int,
) -> None:
    """Raise ``ValueError`` (expected versus got) unless ``x_t`` is ``(B, H, D)``, ``t`` a long ``(B, H)`` and
    ``drop_cond`` ``None`` or a bool ``(B,)``. Scriptable; checks shapes and dtypes only, never values, so it
    costs no device synchronisation (the range of ``t`` is the schedule's concern)."""
    if x_t.dim() != 3 or x_t.shape[1] != horizon or x_t.shape[2] != x_dim:
        raise ValueError(f"x_t: expected shape (B, {horizon}, {x_dim}), got {list(x_t.shape)}")
    batch = x_t.shape[0]
    if t.dim() != 2 or t.shape[0] != batch or t.shape[1] != horizon:
        raise ValueError(f"t: expected shape (B, H) = ({batch}, {horizon}) (one step per token), got {list(t.shape)}")
    if t.dtype != torch.long:
        raise ValueError(f"t: expected dtype torch.int64 (step indices), got {dtype_name(t.dtype)}")
    if drop_cond is not None:
        if drop_cond.dim() != 1 or drop_cond.shape[0] != batch:
            raise ValueError(f"drop_cond: expected shape ({batch},), got {list(drop_cond.shape)}")
        if drop_cond.dtype != torch.bool:
            raise ValueError(f"drop_cond: expected dtype torch.bool, got {dtype_name(drop_cond.dtype)}")
