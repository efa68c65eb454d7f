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
