"""Offline safe-RL baselines shown beside FISOR: BC-All, BC-Safe (one BC policy, two data sets) and BCQ-Lagrangian."""

from policies.baselines.bc import BC, BCConfig
from policies.baselines.bcq_lag import BCQLag, BCQLagConfig

__all__ = ["BC", "BCConfig", "BCQLag", "BCQLagConfig"]
