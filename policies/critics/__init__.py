"""Value networks and losses shared by the offline RL policies (FISOR, BCQ-Lagrangian)."""

from policies.critics.losses import expectile_loss, hj_target, reversed_expectile_loss, td_target
from policies.critics.networks import EnsembleQ, StateValue, mlp, polyak_update

__all__ = [
    "EnsembleQ",
    "StateValue",
    "expectile_loss",
    "hj_target",
    "mlp",
    "polyak_update",
    "reversed_expectile_loss",
    "td_target",
]
