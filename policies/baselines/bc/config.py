"""Behaviour-cloning hyperparameters (defaults of OSRL's ``examples/configs/bc_configs.py``)."""

from dataclasses import dataclass

BC_MODES = ("all", "safe")


@dataclass
class BCConfig:
    """BC-All / BC-Safe: the same deterministic MLP actor, trained on all data or on the safe episodes."""

    mode: str = "all"
    """all (BC-All) or safe (BC-Safe: the trainer keeps episodes with cost <= cost_limit, envs.safe_rl)"""
    cost_limit: float = 10.0
    """episode cost limit of BC-Safe's data filter (undiscounted episode cost)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden widths of the actor MLP (ReLU, tanh output)"""
    learning_rate: float = 1e-3
    """Adam learning rate (read by the trainer)"""
    batch_size: int = 512
    """transitions per step (read by the trainer)"""
    num_steps: int = 300_000
    """gradient steps (read by the trainer)"""

    def __post_init__(self) -> None:
        if self.mode not in BC_MODES:
            raise ValueError(f"mode: expected one of {BC_MODES}, got {self.mode!r}")
        if self.cost_limit < 0:
            raise ValueError(f"cost_limit: expected >= 0, got {self.cost_limit}")
        if len(self.hidden) == 0 or any(int(w) < 1 for w in self.hidden):
            raise ValueError(f"hidden: expected one or more positive widths, got {self.hidden}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate}")
        for name in ("batch_size", "num_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
