"""FISOR (Zheng et al., ICLR 2024): HJ feasibility critics, IQL reward critics, weighted diffusion actor."""

from policies.fisor.config import FISORConfig
from policies.fisor.model import FISOR, fisor_weights

__all__ = ["FISOR", "FISORConfig", "fisor_weights"]
