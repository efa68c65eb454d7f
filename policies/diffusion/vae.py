"""Latent autoencoder: a conditional beta-VAE over a window of per-step features.

Latent diffusion (BeyondMimic v4, Liao et al. 2025) diffuses a compact action latent instead of joint
targets; this module learns that latent. A window ``x`` (B, W, F) — an action chunk (W > 1), a state-action
window, or a single action (W = 1) — and an optional condition ``c`` (B, cond_dim), e.g. proprioception,
are encoded to a diagonal Gaussian ``q(z | x, c) = N(mu, diag(exp(logvar)))`` and decoded by an MLP
``x_hat = g(z, c)``. Training minimises the beta-weighted negative ELBO (Kingma & Welling 2014; Higgins et
al. 2017, beta-VAE):

    z    = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)                          (reparameterisation)
    loss = mean_{b, w, f} (x_hat - x)^2 + beta * mean_b KL(q(z | x, c) || N(0, I))
    KL   = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)

The reconstruction is a per-element mean (so ``beta`` does not depend on W F) while the KL is summed over the
latent dimensions. ``decode`` is differentiable, so a guidance cost on decoded actions reaches the latent.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from einops.layers.torch import Rearrange
from torch import nn


@dataclass
class VAEConfig:
    """Sizes and loss weight of the latent autoencoder."""

    input_dim: int
    """features F per step of the window"""
    window: int = 1
    """steps W per window (1 = a single action)"""
    cond_dim: int = 0
    """size of the condition vector given to encoder and decoder (0 = unconditional)"""
    latent_dim: int = 32
    """size of the latent z"""
    hidden: int = 256
    """width of the encoder and decoder MLPs"""
    num_layers: int = 2
    """hidden layers of each MLP"""
    kl_weight: float = 1e-3
    """beta: weight of the KL term against the per-element reconstruction error"""

    def __post_init__(self) -> None:
        for name in ("input_dim", "window", "latent_dim", "hidden", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.cond_dim, int) or self.cond_dim < 0:
            raise ValueError(f"cond_dim: expected an integer >= 0 (0 = unconditional), got {self.cond_dim!r}")
        if not self.kl_weight >= 0.0:
            raise ValueError(f"kl_weight: expected a number >= 0, got {self.kl_weight!r}")


def _mlp(in_dim: int, hidden: int, num_layers: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(num_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.Mish()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)


class LatentAutoencoder(nn.Module):
    """Conditional beta-VAE with MLP encoder and decoder over ``(B, W, F)`` windows.

    ``encode(x, cond) -> (mu, logvar)`` each (B, latent_dim); ``decode(z, cond) -> (B, W, F)``;
    ``forward(x, cond)`` reconstructs through the mean ``decode(mu)``. ``encode``, ``decode`` and ``forward``
    script; ``loss`` is eager-only.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.input_dim = config.input_dim
        self.window = config.window
        self.cond_dim = config.cond_dim
        self.latent_dim = config.latent_dim
        flat = config.window * config.input_dim
        self.encoder = _mlp(flat + config.cond_dim, config.hidden, config.num_layers, 2 * config.latent_dim)
        self.decoder = _mlp(config.latent_dim + config.cond_dim, config.hidden, config.num_layers, flat)
        self.flatten = Rearrange("b w f -> b (w f)")
        self.unflatten = Rearrange("b (w f) -> b w f", w=config.window)

    def _with_cond(self, h: torch.Tensor, cond: Optional[torch.Tensor], name: str) -> torch.Tensor:
        """Append ``cond`` (B, cond_dim) to ``h`` (B, K) after checking it against the configuration."""
        batch = h.shape[0]
        if self.cond_dim == 0:
            if cond is not None:
                raise ValueError(f"{name}: cond expected None for an unconditional autoencoder, got {list(cond.shape)}")
            return h
        if cond is None:
            raise ValueError(f"{name}: cond expected shape ({batch}, {self.cond_dim}), got None")
        if cond.dim() != 2 or cond.shape[0] != batch or cond.shape[1] != self.cond_dim:
            raise ValueError(f"{name}: cond expected shape ({batch}, {self.cond_dim}), got {list(cond.shape)}")
        return torch.cat([h, cond], dim=-1)  # (B, K + cond_dim)

    @torch.jit.export
    def encode(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, each (B, latent_dim), of a window ``x`` (B, W, F)."""
        if x.dim() != 3 or x.shape[1] != self.window or x.shape[2] != self.input_dim:
            raise ValueError(f"x: expected shape (B, {self.window}, {self.input_dim}), got {list(x.shape)}")
        h = self._with_cond(self.flatten(x), cond, "encode")  # (B, W F + cond_dim)
        stats = self.encoder(h)  # (B, 2 Z)
        mu = stats[:, : self.latent_dim]  # (B, Z)
        # exp(logvar) stays finite and positive in float32 here (the range of Rombach et al. 2022's Gaussian).
        logvar = stats[:, self.latent_dim :].clamp(-30.0, 20.0)  # (B, Z)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Window (B, W, F) decoded from a latent ``z`` (B, latent_dim); differentiable in ``z``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (B, {self.latent_dim}), got {list(z.shape)}")
        h = self._with_cond(z, cond, "decode")  # (B, Z + cond_dim)
        return self.unflatten(self.decoder(h))  # (B, W, F)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Deterministic reconstruction ``decode(mu(x, cond), cond)``: (B, W, F) -> (B, W, F)."""
        mu, _ = self.encode(x, cond)
        return self.decode(mu, cond)

    @torch.jit.unused
    def loss(
        self,
        x: torch.Tensor,
        cond: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Beta-VAE loss (module docstring) of a batch ``x`` (B, W, F) and its metrics.

        Args:
            x: (B, W, F) windows.
            cond: (B, cond_dim) condition, or ``None`` for an unconditional autoencoder.
            noise: (B, latent_dim) standard normal ``eps`` of the reparameterisation; drawn with ``generator``
                when ``None`` (pass one of the two for reproducible training).
            generator: random generator for ``eps`` when ``noise`` is ``None``.

        Returns:
            ``(loss, {"loss", "recon", "kl"})``: the scalar loss to differentiate and float metrics (``kl`` is
            the unweighted per-sample KL in nats).
        """
        mu, logvar = self.encode(x, cond)  # (B, Z), (B, Z)
        if noise is None:
            noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        elif noise.shape != mu.shape:
            raise ValueError(f"noise: expected shape {tuple(mu.shape)}, got {tuple(noise.shape)}")
        z = mu + torch.exp(0.5 * logvar) * noise  # (B, Z)
        recon = (self.decode(z, cond) - x).square().mean()
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1).mean()
        loss = recon + self.config.kl_weight * kl
        return loss, {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}
