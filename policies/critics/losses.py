"""Critic losses and Bellman targets (elementwise; shapes broadcast).

Expectile regression (IQL, Kostrikov et al. 2022): with the residual ``u = target - prediction``,

    L_tau(u) = |tau - 1(u < 0)| u^2         weight tau where u > 0, 1 - tau where u <= 0

so the minimiser is the tau-expectile of the target; tau -> 1 approaches the maximum over the data's actions.

Reversed expectile (FISOR, Zheng et al., ICLR 2024, eq. 8): the weights swap,

    L^rev_tau(u) = |tau - 1(u > 0)| u^2     weight tau where u < 0, 1 - tau where u >= 0

and the minimiser approaches the *minimum* over the data's actions as tau -> 1 (the best feasibility value).

Hamilton-Jacobi reachability backup (FISOR eq. 6, the discounted safety Bellman operator of Fisac et al. 2019):

    Q_h(s, a) <- mask * ((1 - g) h(s) + g max(h(s), V_h(s'))) + (1 - mask) h(s)

with the constraint signal h (> 0 on a violation), g the discount and mask = 0 at episode ends.
"""

import torch


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """IQL's asymmetric squared loss of ``diff = target - prediction`` (weight tau on positive residuals)."""
    weight = torch.where(diff > 0, torch.full_like(diff, tau), torch.full_like(diff, 1.0 - tau))
    return weight * diff.pow(2)


def reversed_expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """FISOR's reversed expectile of ``diff = target - prediction`` (weight tau on negative residuals)."""
    weight = torch.where(diff < 0, torch.full_like(diff, tau), torch.full_like(diff, 1.0 - tau))
    return weight * diff.pow(2)


def td_target(reward: torch.Tensor, next_value: torch.Tensor, mask: torch.Tensor, discount: float) -> torch.Tensor:
    """One-step TD target ``r + discount * mask * V(s')``."""
    return reward + discount * mask * next_value


def hj_target(h: torch.Tensor, next_value: torch.Tensor, mask: torch.Tensor, discount: float) -> torch.Tensor:
    """HJ reachability target ``mask ((1 - g) h + g max(h, V_h(s'))) + (1 - mask) h`` (module docstring)."""
    bootstrapped = (1.0 - discount) * h + discount * torch.maximum(h, next_value)
    return mask * bootstrapped + (1.0 - mask) * h
