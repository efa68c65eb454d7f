"""Left-right mirror maps of state and action vectors, as module buffers (they travel with the weights).

A bilaterally symmetric robot has a reflection ``M`` of its state and action spaces: a permutation that swaps left
and right entries and a sign per entry (lateral positions and velocities, roll and yaw angles flip). A policy
``pi`` is equivariant when ``pi(M s) = M pi(s)``; any ``f`` is made so by averaging it with its mirror image,
``pi(s) = (f(s) + M f(M s)) / 2``, exactly and by construction (Mittal et al., "Symmetry Considerations for
Learning Task Symmetric Robot Policies", ICRA 2024, compare data augmentation and a mirror loss, which make a policy
only approximately equivariant). The maps are robot facts: the caller sets them (:meth:`MirrorMaps.set`); this
module only checks that they are reflections.
"""

import torch
from torch import nn


class MirrorMaps(nn.Module):
    """``x[..., perm] * sign`` for states ``(..., S)`` and actions ``(..., A)``; identity until :meth:`set`."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        self.register_buffer("state_perm", torch.arange(state_dim))
        self.register_buffer("state_sign", torch.ones(state_dim))
        self.register_buffer("action_perm", torch.arange(action_dim))
        self.register_buffer("action_sign", torch.ones(action_dim))

    @torch.jit.unused
    def set(
        self, state_perm: torch.Tensor, state_sign: torch.Tensor, action_perm: torch.Tensor, action_sign: torch.Tensor
    ) -> None:
        """Install the maps; each must be a reflection (a permutation with signs +-1 that is its own inverse)."""
        for name, perm, sign, own in (
            ("state", state_perm, state_sign, self.state_perm),
            ("action", action_perm, action_sign, self.action_perm),
        ):
            perm, sign = torch.as_tensor(perm, dtype=torch.long), torch.as_tensor(sign, dtype=torch.float32)
            n = own.numel()
            if perm.shape != (n,) or sign.shape != (n,):
                raise ValueError(
                    f"{name} mirror map: expected perm and sign of length {n}, got {perm.shape}, {sign.shape}"
                )
            if not torch.equal(torch.sort(perm).values, torch.arange(n)):
                raise ValueError(f"{name} mirror map: perm is not a permutation of 0..{n - 1}")
            if not bool(((sign == 1.0) | (sign == -1.0)).all()):
                raise ValueError(f"{name} mirror map: signs must be +1 or -1")
            x = torch.randn(n)
            if not torch.allclose((x[perm] * sign)[perm] * sign, x):
                raise ValueError(f"{name} mirror map: mirroring twice must give the input back")
            getattr(self, f"{name}_perm").copy_(perm)
            getattr(self, f"{name}_sign").copy_(sign)

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror image of states ``(..., S)``."""
        return x.index_select(-1, self.state_perm) * self.state_sign

    def actions(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror image of actions ``(..., A)``."""
        return x.index_select(-1, self.action_perm) * self.action_sign
