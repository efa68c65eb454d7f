"""BCQ-Lagrangian: batch-constrained Q-learning with a cost critic and a learned Lagrange multiplier."""

from policies.baselines.bcq_lag.config import BCQLagConfig
from policies.baselines.bcq_lag.model import BCQLag, cost_threshold

__all__ = ["BCQLag", "BCQLagConfig", "cost_threshold"]
