"""Behaviour cloning: BC-All on every trajectory, BC-Safe on those under the cost limit (OSRL's BC)."""

from policies.baselines.bc.config import BCConfig
from policies.baselines.bc.model import BC

__all__ = ["BC", "BCConfig"]
