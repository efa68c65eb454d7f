"""Classifier-free guidance: condition dropout at training, ``u + w (c - u)`` at sampling."""

import torch
from torch import nn

from policies.diffusion.guidance import GuidanceConfig
from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig


class CondMean(nn.Module):
    """x0-predictor of N(cond, small) data; the null condition predicts the unconditional mean 0."""

    num_train_steps = 10

    def __init__(self) -> None:
        super().__init__()
        self.seen_drop: list[torch.Tensor] = []

    def forward(self, x_t, t, cond=None, drop_cond=None):
        if drop_cond is not None:
            self.seen_drop.append(drop_cond.clone())
        mean = torch.zeros_like(x_t) if cond is None else cond[:, None, :].expand_as(x_t)
        if drop_cond is not None:
            mean = torch.where(drop_cond[:, None, None], torch.zeros_like(mean), mean)
        return mean


def _model(weight: float, drop: float = 0.0) -> Diffusion:
    cfg = DiffusionConfig(
        schedule=ScheduleConfig(num_train_steps=10),
        prediction_type="x0",
        cond_drop_prob=drop,
        sampler=SamplerConfig(num_steps=5),
        guidance=GuidanceConfig(mode="none", cfg_weight=weight),
    )
    return Diffusion(cfg, CondMean())


def test_guidance_weight_interpolates_and_extrapolates() -> None:
    cond = torch.tensor([[1.0, -2.0]]).expand(4, 2)
    x_t, t = torch.randn(4, 3, 2), torch.full((4, 3), 5)
    for w in (0.0, 1.0, 2.5):
        out = _model(w).predict(x_t, t, cond)
        torch.testing.assert_close(out, (w * cond)[:, None, :].expand_as(x_t))  # u = 0, c = cond
    # a deterministic sampler ends at the guided prediction
    x = _model(2.0).sample(torch.randn(4, 3, 2), cond=cond)
    torch.testing.assert_close(x, (2.0 * cond)[:, None, :].expand_as(x))


def test_condition_dropout_rate_in_training() -> None:
    model = _model(1.0, drop=0.3)
    gen = torch.Generator().manual_seed(0)
    model.loss(torch.randn(20_000, 1, 2), cond=torch.randn(20_000, 2), generator=gen)
    rate = float(model.denoiser.seen_drop[-1].float().mean())
    assert abs(rate - 0.3) < 5 * (0.3 * 0.7 / 20_000) ** 0.5
