"""The one abstract base every Steer policy derives from.

A policy is an ``nn.Module`` with tensor-in / tensor-out methods (house rule 1): it owns no optimiser, does
no file I/O and never sees an environment object.
"""

from __future__ import annotations

import abc

import torch
from torch import nn


class Policy(nn.Module, abc.ABC):
    """Base class of all policies.

    Subclasses implement :meth:`loss` for training and :meth:`act` for inference. Normalisation statistics are
    buffers of the module so that they travel with the weights.
    """

    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of one batch and scalar metrics for logging."""

    @abc.abstractmethod
    def act(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Inference: tensors in, tensors out."""

    def reset(self) -> None:
        """Forget any state kept between calls (warm starts, action queues)."""
