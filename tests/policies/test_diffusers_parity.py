"""Our DDPM and DDIM loops agree with diffusers' schedulers for the same schedule, network and noise."""

import pytest
import torch
from torch import nn

from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig


class ToyNet(nn.Module):
    """A network stand-in: the exact denoiser of N(0.3, 0.5 I) data plus a fixed smooth perturbation.

    Realistic outputs keep samples O(1), so float32 round-off is what it would be with a trained model.
    """

    def __init__(self, D: int, schedule_abar, prediction_type: str, T: int) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.lin = nn.Linear(D, D)
        self.abar = schedule_abar
        self.prediction_type = prediction_type
        self.num_train_steps = T

    def forward(self, x_t, t, cond=None, drop_cond=None):
        abar = self.abar(t).unsqueeze(-1)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x0 = 0.3 + a * 0.5 / (abar * 0.5 + 1 - abar) * (x_t - a * 0.3) + 0.05 * torch.tanh(self.lin(x_t))
        eps = (x_t - a * x0) / s
        if self.prediction_type == "x0":
            return x0
        if self.prediction_type == "epsilon":
            return eps
        return a * eps - s * x0


def _ours(kind, T, K, sampler, eta, prediction_type, spacing, x_init, step_noise):
    cfg = DiffusionConfig(
        schedule=ScheduleConfig(kind=kind, num_train_steps=T),
        prediction_type=prediction_type,
        sampler=SamplerConfig(kind=sampler, num_steps=K, eta=eta, spacing=spacing),
    )
    model = Diffusion(cfg, nn.Identity())
    model.denoiser = ToyNet(x_init.shape[-1], model.schedule.abar, prediction_type, T)
    return model, model.sample(x_init, step_noise=step_noise)


OURS = {"epsilon": "epsilon", "sample": "x0", "v_prediction": "v"}  # diffusers' names -> ours
CASES = [
    ("cosine", 100, 100, "epsilon", "leading"),
    ("linear", 100, 10, "epsilon", "leading"),
    ("cosine", 100, 10, "v_prediction", "trailing"),
    ("vp", 5, 5, "epsilon", "leading"),
    ("cosine", 50, 5, "sample", "leading"),
]


@pytest.mark.parametrize(("kind", "T", "K", "ptype", "spacing"), CASES)
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(kind, T, K, ptype, spacing, eta) -> None:
    from diffusers import DDIMScheduler

    gen = torch.Generator().manual_seed(0)
    x_init = torch.randn(6, 4, 3, generator=gen)
    step_noise = torch.randn(K, 6, 4, 3, generator=gen)
    model, ours = _ours(kind, T, K, "ddim", eta, OURS[ptype], spacing, x_init, step_noise if eta > 0 else None)
    sched = DDIMScheduler(
        num_train_timesteps=T,
        trained_betas=model.schedule.betas.double().numpy(),
        clip_sample=False,
        set_alpha_to_one=True,
        prediction_type=ptype,
        timestep_spacing=spacing,
    )
    sched.set_timesteps(K)
    assert sched.timesteps.tolist() == model.steps[:-1].tolist()
    x = x_init.clone()
    for i, t in enumerate(sched.timesteps):
        out = model.denoiser(x, torch.full(x.shape[:2], int(t)))
        x = sched.step(out, int(t), x, eta=eta, variance_noise=step_noise[i]).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("kind", "T", "K", "ptype", "spacing"), CASES)
def test_ddpm_matches_diffusers(kind, T, K, ptype, spacing) -> None:
    from diffusers import DDPMScheduler

    gen = torch.Generator().manual_seed(1)
    x_init = torch.randn(6, 4, 3, generator=gen)
    model, _ = _ours(kind, T, K, "ddim", 0.0, OURS[ptype], spacing, x_init, None)
    sched = DDPMScheduler(
        num_train_timesteps=T,
        trained_betas=model.schedule.betas.double().numpy(),
        clip_sample=False,
        prediction_type=ptype,
        timestep_spacing=spacing,
    )
    sched.set_timesteps(K)
    noise_gen = torch.Generator().manual_seed(2)
    x = x_init.clone()
    step_noise = torch.zeros(K, 6, 4, 3)
    for i, t in enumerate(sched.timesteps):
        out = model.denoiser(x, torch.full(x.shape[:2], int(t)))
        state = noise_gen.get_state()
        x = sched.step(out, int(t), x, generator=noise_gen).prev_sample
        if int(t) > 0:  # diffusers draws the step's noise only when t > 0
            replay = torch.Generator().manual_seed(0)
            replay.set_state(state)
            step_noise[i] = torch.randn(6, 4, 3, generator=replay)
    model.set_sampler(SamplerConfig(kind="ddpm", num_steps=K, spacing=spacing))
    ours = model.sample(x_init, step_noise=step_noise)
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=0)
