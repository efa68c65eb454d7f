"""The one interface the control loop drives, and the feed-forward network behind the TorchScript and ONNX backends.

Each tick in POLICY mode the loop (:mod:`deploy.loop`) calls, in this order::

    policy.observe_state(state, command)   # the raw robot state and the clipped operator command
    action = policy.act(obs)               # (J,) float64 from the observation vector (obs_dim,)

``reset()`` when it leaves POLICY and ``warmup()`` once before the first tick. A feed-forward network reads only
``obs``; a planner reads only what ``observe_state`` gave it (its body state and the command). A non-finite
action is passed through: the loop's safety state machine, not the policy, decides what NaN means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from deploy.policies.metadata import PolicyMetadata
from robot.messages import RobotState


class RuntimePolicy(ABC):
    """A loaded policy as the control loop sees it: ``observe_state(state, command)`` then ``act(obs) -> (J,)``."""

    def __init__(self, metadata: PolicyMetadata, path: Path | None = None) -> None:
        self.metadata = metadata
        self.path = path
        self._clip = metadata.action_clip

    def observe_state(self, state: RobotState, command: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Called by the loop each tick before :meth:`act` with the raw robot state and the clipped command; a
        policy that needs more than the observation vector (a planner's body state) takes it from here."""

    @abstractmethod
    def act(self, obs: np.ndarray) -> np.ndarray:
        """This tick's action ``(J,)`` float64, clipped to ``+-action_clip``; NaN when the policy cannot act."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget internal state when the loop leaves POLICY (a feed-forward network has none)."""

    def warmup(self, calls: int = 5) -> None:  # noqa: B027 - optional hook
        """Do the slow first calls before the loop starts, not in its first ticks (nothing by default)."""


class NetworkPolicy(RuntimePolicy):
    """An exported feed-forward network ``(B, obs_dim) -> (B, J)``: ``act`` is one row of :meth:`forward`, clipped."""

    @abstractmethod
    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network on a batch ``(B, O)`` float32 -> ``(B, J)`` (no clipping)."""

    def warmup(self, calls: int = 5) -> None:
        """Run the network on zeros: TorchScript's profiling executor optimises the graph during the first calls,
        which take milliseconds; do that before the loop starts, not in its first ticks."""
        zeros = np.zeros(self.metadata.obs_dim, dtype=np.float32)
        for _ in range(calls):
            self.act(zeros)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One action; non-finite outputs are passed through (the safety state machine decides what to do)."""
        y = self.forward(np.ascontiguousarray(obs, dtype=np.float32)[None])  # (1, J)
        a = y[0].astype(np.float64)
        if a.shape != (self.metadata.num_joints,):
            raise RuntimeError(f"policy output: expected shape ({self.metadata.num_joints},), got {a.shape}")
        return np.clip(a, -self._clip, self._clip)  # NaN stays NaN through clip
