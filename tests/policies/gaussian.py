"""The exact denoiser of Gaussian data N(mu, Sigma), for tests that need a known answer."""

import torch
from torch import nn

from policies.diffusion.schedules import NoiseSchedule


class GaussianDenoiser(nn.Module):
    """Predicts E[x0 | x_t] (or the matching epsilon / v) for tokens x0 ~ N(mu, Sigma) i.i.d. per token.

    E[x0 | x_t] = mu + a Sigma (a^2 Sigma + s^2 I)^{-1} (x_t - a mu).
    """

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor, schedule: NoiseSchedule, prediction_type: str):
        super().__init__()
        self.register_buffer("mu", mu.double())
        self.register_buffer("sigma", sigma.double())
        self.schedule = schedule
        self.num_train_steps = schedule.num_train_steps
        self.prediction_type = prediction_type

    def forward(self, x_t, t, cond=None, drop_cond=None):
        abar = self.schedule.abar(t).double()[..., None, None]  # (B, H, 1, 1)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        D = self.mu.shape[0]
        cov = a**2 * self.sigma + s**2 * torch.eye(D, dtype=torch.float64)  # (B, H, D, D)
        gain = a * self.sigma @ torch.linalg.inv(cov)  # (B, H, D, D)
        xd = x_t.double()
        x0 = self.mu + (gain @ (xd - a[..., 0] * self.mu).unsqueeze(-1)).squeeze(-1)
        a2, s2 = a[..., 0], s[..., 0]
        if self.prediction_type == "x0":
            out = x0
        elif self.prediction_type == "epsilon":
            out = torch.where(s2 > 0, (xd - a2 * x0) / s2.clamp_min(1e-12), torch.zeros_like(xd))
        else:
            eps = torch.where(s2 > 0, (xd - a2 * x0) / s2.clamp_min(1e-12), torch.zeros_like(xd))
            out = a2 * eps - s2 * x0
        return out.to(x_t.dtype)
