"""Schedules and samplers against closed forms, the exact law of Gaussian data, and diffusers."""

import itertools
import math

import numpy as np
import pytest
import torch

from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.sampling import SamplerConfig, step_sequence
from policies.diffusion.schedules import (
    NoiseSchedule,
    ScheduleConfig,
    make_betas,
    to_eps,
    to_x0,
    training_target,
)
from tests.policies.gaussian import GaussianDenoiser

MU = torch.tensor([1.0, -0.5])
_L = torch.tensor([[0.6, 0.0], [0.3, 0.4]])
SIGMA = _L @ _L.T  # [[0.36, 0.18], [0.18, 0.25]]
SCHEDULES = [("linear", 100), ("cosine", 100), ("vp", 5), ("cosine", 7)]


@pytest.mark.parametrize(("kind", "T"), SCHEDULES)
def test_q_sample_moments_match_closed_form(kind: str, T: int) -> None:
    schedule = NoiseSchedule(ScheduleConfig(kind=kind, num_train_steps=T))
    gen = torch.Generator().manual_seed(0)
    N = 40_000
    x0 = torch.tensor([2.0, -1.0]).expand(N, 1, 2)
    for t in sorted({0, T // 2, T - 1}):
        tt = torch.full((N, 1), t, dtype=torch.long)
        x_t = schedule.q_sample(x0, tt, torch.randn(N, 1, 2, generator=gen))[:, 0]
        abar = float(np.prod(1.0 - make_betas(ScheduleConfig(kind=kind, num_train_steps=T)).numpy()[: t + 1]))
        var = 1.0 - abar
        mean_tol = 5 * math.sqrt(var / N)
        var_tol = 5 * var * math.sqrt(2 / N)
        assert torch.allclose(x_t.mean(0), math.sqrt(abar) * x0[0, 0], atol=mean_tol)
        assert torch.allclose(x_t.var(0), torch.full((2,), var), atol=var_tol)
    clean = schedule.q_sample(x0[:5], torch.full((5, 1), -1), torch.randn(5, 1, 2))
    assert torch.equal(clean, x0[:5])


def test_vp_schedule_is_fisors() -> None:
    betas = make_betas(ScheduleConfig(kind="vp", num_train_steps=5))
    assert torch.allclose(betas, torch.tensor([0.196, 0.459, 0.636, 0.755, 0.835], dtype=torch.float64), atol=1e-3)


def test_linear_and_cosine_match_diffusers_betas() -> None:
    from diffusers import DDPMScheduler

    lin = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    cos = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    ours_lin = make_betas(ScheduleConfig(kind="linear", num_train_steps=1000)).float()
    ours_cos = make_betas(ScheduleConfig(kind="cosine", num_train_steps=1000)).float()
    assert torch.allclose(ours_lin, lin.betas, atol=1e-7)
    assert torch.allclose(ours_cos, cos.betas, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "x0", "v"])
def test_prediction_targets_convert_exactly(prediction_type: str) -> None:
    gen = torch.Generator().manual_seed(1)
    x0, eps = (
        torch.randn(4, 3, 2, generator=gen, dtype=torch.float64),
        torch.randn(4, 3, 2, generator=gen, dtype=torch.float64),
    )
    abar = torch.rand(4, 3, 1, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    target = training_target(x0, eps, abar, prediction_type)
    assert torch.allclose(to_x0(target, x_t, abar, prediction_type), x0, atol=1e-12)
    assert torch.allclose(to_eps(target, x_t, abar, prediction_type), eps, atol=1e-12)


def _exact_law(
    kind: str, T: int, sampler: str, K: int, eta: float = 0.0, variance: str = "posterior"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a sampler's output on N(MU, SIGMA), written from the papers' formulas.

    With the exact posterior-mean denoiser every update is affine in x plus Gaussian noise, so the law of the
    output propagates exactly: m <- M m + c, C <- M C M^T + std^2 I, starting from N(0, I).
    """
    mu, S, eye = MU.double().numpy(), SIGMA.double().numpy(), np.eye(2)
    ab = np.cumprod(1 - make_betas(ScheduleConfig(kind=kind, num_train_steps=T)).numpy())
    seq = step_sequence(T, K)
    m, C = np.zeros(2), np.eye(2)
    for tc, tn in itertools.pairwise(seq):
        ac, an = ab[tc], (1.0 if tn < 0 else ab[tn])
        a, s = math.sqrt(ac), math.sqrt(1 - ac)
        G = a * S @ np.linalg.inv(ac * S + (1 - ac) * eye)  # E[x0|x] = G x + g0
        g0 = mu - a * G @ mu
        if sampler == "ddim":  # Song et al. 2021 eq. 12
            sig = eta * math.sqrt((1 - an) / (1 - ac) * (1 - ac / an))
            d = math.sqrt(max(1 - an - sig**2, 0.0))
            M, c, std = math.sqrt(an) * G + d * (eye - a * G) / s, math.sqrt(an) * g0 - d * a * g0 / s, sig
        else:  # Ho et al. 2020 posterior q(x_n | x_c, x0) with the strided beta
            beta = 1 - ac / an
            cx0, cxt = math.sqrt(an) * beta / (1 - ac), math.sqrt(1 - beta) * (1 - an) / (1 - ac)
            std = math.sqrt((1 - an) / (1 - ac) * beta if variance == "posterior" else (beta if tn >= 0 else 0.0))
            M, c = cx0 * G + cxt * eye, cx0 * g0
        m, C = M @ m + c, M @ C @ M.T + std**2 * eye
    return m, C


def _sample_gaussian(
    kind: str, T: int, sampler: str, K: int, eta: float, N: int, prediction_type: str = "x0", variance="posterior"
):
    cfg = DiffusionConfig(
        schedule=ScheduleConfig(kind=kind, num_train_steps=T),
        prediction_type=prediction_type,
        sampler=SamplerConfig(kind=sampler, num_steps=K, eta=eta, ddpm_variance=variance),
    )
    model = Diffusion(cfg, GaussianDenoiser(MU, SIGMA, NoiseSchedule(cfg.schedule), prediction_type))
    gen = torch.Generator().manual_seed(123)
    step_noise = torch.randn(K, N, 1, 2, generator=gen) if (sampler == "ddpm" or eta > 0) else None
    x = model.sample(torch.randn(N, 1, 2, generator=gen), step_noise=step_noise)[:, 0].double()
    return x.mean(0).numpy(), torch.cov(x.T).numpy()


def _moment_tolerances(C: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """5 standard errors of the sample mean and of each sample covariance entry (Gaussian data)."""
    var = np.diag(C)
    mean_tol = 5 * np.sqrt(var / N)
    cov_tol = 5 * np.sqrt((np.outer(var, var) + C**2) / N)
    return mean_tol, cov_tol


@pytest.mark.parametrize(
    ("kind", "T", "sampler", "K", "eta", "prediction_type"),
    [
        ("cosine", 100, "ddpm", 100, 0.0, "x0"),
        ("cosine", 100, "ddim", 100, 0.0, "epsilon"),
        ("linear", 100, "ddim", 5, 0.0, "v"),
        ("cosine", 100, "ddpm", 5, 0.0, "epsilon"),
        ("cosine", 100, "ddim", 5, 0.5, "x0"),
        ("vp", 5, "ddim", 5, 0.0, "epsilon"),
    ],
)
def test_samplers_reproduce_exact_law_of_their_discretisation(kind, T, sampler, K, eta, prediction_type) -> None:
    N = 20_000
    m_law, C_law = _exact_law(kind, T, sampler, K, eta)
    m, C = _sample_gaussian(kind, T, sampler, K, eta, N, prediction_type)
    mean_tol, cov_tol = _moment_tolerances(C_law, N)
    assert np.all(np.abs(m - m_law) < mean_tol), (m, m_law)
    assert np.all(np.abs(C - C_law) < cov_tol), (C, C_law)


@pytest.mark.parametrize(("kind", "T", "K"), [("vp", 5, 5), ("cosine", 100, 5), ("cosine", 100, 100)])
def test_ddpm_with_beta_variance_reproduces_its_exact_law(kind: str, T: int, K: int) -> None:
    """Ho et al.'s sigma_t^2 = beta_t choice (FISOR's reference sampler): same mean, more noise than the posterior."""
    N = 20_000
    m_law, C_law = _exact_law(kind, T, "ddpm", K, variance="beta")
    m, C = _sample_gaussian(kind, T, "ddpm", K, 0.0, N, "epsilon", variance="beta")
    mean_tol, cov_tol = _moment_tolerances(C_law, N)
    assert np.all(np.abs(m - m_law) < mean_tol), (m, m_law)
    assert np.all(np.abs(C - C_law) < cov_tol), (C, C_law)
    assert np.all(np.diag(C_law) > np.diag(_exact_law(kind, T, "ddpm", K)[1]))


def test_sampler_config_rejects_bad_clip_and_variance() -> None:
    with pytest.raises(ValueError, match="clip_sample"):
        SamplerConfig(clip_sample=-1.0)
    with pytest.raises(ValueError, match="ddpm_variance"):
        SamplerConfig(ddpm_variance="large")


@pytest.mark.parametrize(("sampler", "K"), [("ddpm", 1000), ("ddim", 1000), ("ddim", 5), ("ddpm", 5)])
def test_samplers_reproduce_gaussian_data(sampler: str, K: int) -> None:
    """Full samplers reproduce N(MU, SIGMA); 5-step samplers reproduce the mean and shrink the covariance.

    The shrinkage is a property of the discretisation, not of the code: with the exact denoiser the 5-step
    DDIM output covariance is 0.56x of the data's (largest entry, cosine T=1000; DDPM 0.46x), as the
    exact law of the discretised sampler says. The bound below is the law's bias plus 5 standard errors.
    """
    N = 20_000
    m_law, C_law = _exact_law("cosine", 1000, sampler, K)
    m, C = _sample_gaussian("cosine", 1000, sampler, K, 0.0, N)
    mean_tol, cov_tol = _moment_tolerances(SIGMA.numpy(), N)
    assert np.all(np.abs(m - MU.numpy()) < mean_tol + np.abs(m_law - MU.numpy()))
    bias = np.abs(C_law - SIGMA.numpy())
    assert np.all(np.abs(C - SIGMA.numpy()) < cov_tol + bias)
    if K == 1000:
        assert bias.max() < 0.01 * SIGMA.max()  # the full sampler's law is the data's within 1 %
    else:
        assert np.all(np.diag(C) < np.diag(SIGMA.numpy()))  # and the short one really shrinks


def test_step_sequences() -> None:
    assert step_sequence(100, 10, "trailing") == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9, -1]
    assert step_sequence(100, 10, "leading") == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0, -1]
    assert step_sequence(5, 5) == [4, 3, 2, 1, 0, -1]
    with pytest.raises(ValueError, match="at most the 5 training steps, got 6"):
        step_sequence(5, 6)
