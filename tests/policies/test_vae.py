"""Shapes, scripting, gradients, loss reproducibility and learning of the latent autoencoder."""

import math

import pytest
import torch

from policies.diffusion.vae import LatentAutoencoder, VAEConfig

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

CONFIGS = {
    "single_action_cond": VAEConfig(input_dim=29, window=1, cond_dim=12, latent_dim=8, hidden=64),
    "chunk_uncond": VAEConfig(input_dim=3, window=5, latent_dim=4, hidden=32, num_layers=3),
}


def make_batch(config: VAEConfig, batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.window, config.input_dim, generator=g)
    cond = torch.randn(batch, config.cond_dim, generator=g) if config.cond_dim else None
    return x, cond


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shapes_and_script_parity(name: str) -> None:
    config = CONFIGS[name]
    torch.manual_seed(0)
    vae = LatentAutoencoder(config).eval()
    scripted = torch.jit.script(vae)
    x, cond = make_batch(config)
    mu, logvar = vae.encode(x, cond)
    assert mu.shape == logvar.shape == (6, config.latent_dim)
    assert vae.decode(mu, cond).shape == x.shape
    assert vae(x, cond).shape == x.shape
    for got, want in zip(scripted.encode(x, cond), (mu, logvar), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(scripted.decode(mu, cond), vae.decode(mu, cond), atol=1e-6, rtol=0)
    torch.testing.assert_close(scripted(x, cond), vae(x, cond), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_decode_gradient_reaches_z(name: str) -> None:
    config = CONFIGS[name]
    torch.manual_seed(0)
    vae = torch.jit.script(LatentAutoencoder(config).eval())
    _, cond = make_batch(config)
    z = torch.randn(6, config.latent_dim, requires_grad=True)
    (grad,) = torch.autograd.grad(vae.decode(z, cond).square().sum(), z)
    assert torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=0) > 0).all()  # every latent dimension moves the decoded window


def test_loss_randomness_is_explicit() -> None:
    config = CONFIGS["single_action_cond"]
    torch.manual_seed(0)
    vae = LatentAutoencoder(config)
    x, cond = make_batch(config)
    noise = torch.randn(6, config.latent_dim)
    loss_a, metrics = vae.loss(x, cond, noise=noise)
    loss_b, _ = vae.loss(x, cond, noise=noise)
    assert torch.equal(loss_a, loss_b)
    assert set(metrics) == {"loss", "recon", "kl"} and all(isinstance(v, float) for v in metrics.values())
    assert math.isclose(metrics["loss"], metrics["recon"] + config.kl_weight * metrics["kl"], rel_tol=1e-5)
    loss_c, _ = vae.loss(x, cond, generator=torch.Generator().manual_seed(3))
    loss_d, _ = vae.loss(x, cond, generator=torch.Generator().manual_seed(3))
    assert torch.equal(loss_c, loss_d) and not torch.equal(loss_a, loss_c)
    with pytest.raises(ValueError, match=r"noise: expected shape \(6, 8\), got \(6, 7\)"):
        vae.loss(x, cond, noise=torch.randn(6, 7))


def test_kl_term_matches_closed_form_at_known_posterior() -> None:
    config = VAEConfig(input_dim=2, window=1, latent_dim=3, kl_weight=0.5)
    vae = LatentAutoencoder(config)
    last = vae.encoder[-1]
    with torch.no_grad():  # constant posterior mu = 1, logvar = 0: KL = 1/2 * 3 * 1^2
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    _, metrics = vae.loss(torch.zeros(4, 1, 2), noise=torch.zeros(4, 3))
    assert math.isclose(metrics["kl"], 1.5, rel_tol=1e-6)


def test_bad_inputs_raise_value_error() -> None:
    config = CONFIGS["single_action_cond"]
    vae = LatentAutoencoder(config)
    x, cond = make_batch(config)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 1, 29\), got \[6, 2, 29\]"):
        vae.encode(torch.zeros(6, 2, 29), cond)
    with pytest.raises(ValueError, match=r"encode: cond expected shape \(6, 12\), got None"):
        vae.encode(x)
    with pytest.raises(ValueError, match=r"decode: cond expected shape \(6, 12\), got \[6, 11\]"):
        vae.decode(torch.zeros(6, 8), cond[:, :-1])
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 8\), got \[6, 9\]"):
        vae.decode(torch.zeros(6, 9), cond)
    with pytest.raises(ValueError, match=r"kl_weight: expected a number >= 0, got -0.1"):
        VAEConfig(input_dim=2, kl_weight=-0.1)
    with pytest.raises(ValueError, match=r"window: expected an integer >= 1, got 0"):
        VAEConfig(input_dim=2, window=0)


def train(vae: LatentAutoencoder, x: torch.Tensor, cond: torch.Tensor | None, steps: int) -> None:
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(steps):
        loss, _ = vae.loss(x, cond, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_conditional_vae_learns_smooth_actions() -> None:
    """2-D action chunks (W = 4) that are a smooth function of a 4-D condition plus noise of std 0.01."""
    g = torch.Generator().manual_seed(0)

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.randn(n, 4, generator=g)
        w = torch.arange(4.0)[None, :]  # (1, W)
        a0 = torch.sin(c[:, :1] + 0.5 * c[:, 1:2] + 0.3 * w)
        a1 = torch.tanh(c[:, 2:3] - c[:, 3:4]) * torch.cos(0.3 * w)
        x = torch.stack([a0, a1], dim=-1) + 0.01 * torch.randn(n, 4, 2, generator=g)  # (n, W, 2)
        return x, c

    x, c = data(512)
    x_test, c_test = data(256)
    torch.manual_seed(0)
    vae = LatentAutoencoder(VAEConfig(input_dim=2, window=4, cond_dim=4, latent_dim=4, hidden=64))
    with torch.no_grad():
        before = (vae(x_test, c_test) - x_test).square().mean()
    train(vae, x, c, steps=300)
    with torch.no_grad():
        after = (vae(x_test, c_test) - x_test).square().mean()
    variance = x_test.var(dim=0).mean()
    assert before > 0.5 * variance and after < 0.01 * variance, (before, after, variance)


def test_unconditional_vae_carries_information_in_the_latent() -> None:
    """Without a condition the decoder can only reconstruct through z: windows driven by 2 hidden factors."""
    g = torch.Generator().manual_seed(0)

    def data(n: int) -> torch.Tensor:
        u = torch.rand(n, 2, generator=g) * 2.0 - 1.0
        w = torch.arange(4.0)[None, :]  # (1, W)
        return torch.stack([torch.sin(2.0 * u[:, :1] + 0.3 * w), u[:, 1:] * torch.cos(0.5 * w)], dim=-1)

    x, x_test = data(512), data(256)
    torch.manual_seed(0)
    vae = LatentAutoencoder(VAEConfig(input_dim=2, window=4, latent_dim=4, hidden=64))
    train(vae, x, None, steps=300)
    with torch.no_grad():
        mse = (vae(x_test) - x_test).square().mean()
        mu, _ = vae.encode(x_test)
    assert mse < 0.01 * x_test.var(dim=0).mean()
    assert mu.std(dim=0).max() > 0.3  # the posterior mean moves with the data: the latent is in use
