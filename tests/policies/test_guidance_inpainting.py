"""Guidance on Gaussian data with a quadratic cost, inpainting, rolling starts and input errors."""

import itertools

import pytest
import torch

from policies.diffusion.guidance import CostSum, Gated, GuidanceConfig, QuadraticCost, clip_grad_norm
from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import NoiseSchedule, ScheduleConfig
from tests.policies.gaussian import GaussianDenoiser

MU = torch.tensor([1.0, -0.5])
_L = torch.tensor([[0.6, 0.0], [0.3, 0.4]])
SIGMA = _L @ _L.T
GOAL = torch.tensor([-1.0, 1.0])
LAM = 1.0


def _model(mode: str = "x0", scale: float = 0.0, steps: int = 10, H: int = 1, **sampler) -> Diffusion:
    cfg = DiffusionConfig(
        schedule=ScheduleConfig(kind="cosine", num_train_steps=100),
        prediction_type="x0",
        sampler=SamplerConfig(num_steps=steps, **sampler),
        guidance=GuidanceConfig(mode=mode, scale=scale),
    )
    costs = CostSum([QuadraticCost([0, 1], [], weight=LAM)], [1.0])
    return Diffusion(cfg, GaussianDenoiser(MU, SIGMA, NoiseSchedule(cfg.schedule), "x0"), costs=costs)


def _guided(mode: str, scale: float, N: int = 4000) -> torch.Tensor:
    x_init = torch.randn(N, 1, 2, generator=torch.Generator().manual_seed(0))
    return _model(mode, scale).sample(x_init, cost_params=GOAL.expand(N, 2))[:, 0]


def _mean_cost(x: torch.Tensor) -> float:
    return float(0.5 * LAM * (x - GOAL).pow(2).sum(1).mean())


def _tilted_mean(scale: float) -> torch.Tensor:
    """Mean of N(MU, SIGMA) tilted by exp(-scale G): precision SIGMA^-1 + scale LAM I."""
    prec = torch.linalg.inv(SIGMA) + scale * LAM * torch.eye(2)
    return torch.linalg.solve(prec, torch.linalg.inv(SIGMA) @ MU + scale * LAM * GOAL)


@pytest.mark.parametrize(
    ("mode", "scales"),
    # x0 guidance is one gradient step on G per sampler step: it overshoots the goal once scale * LAM > 1,
    # so its monotone range is [0, 1 / LAM]; classifier guidance is monotone over a wider range.
    [("x0", [0.0, 0.1, 0.25, 0.5, 1.0]), ("classifier", [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])],
)
def test_mean_cost_falls_monotonically_with_scale(mode: str, scales: list[float]) -> None:
    costs = [_mean_cost(_guided(mode, s)) for s in scales]
    assert all(b < a for a, b in itertools.pairwise(costs)), costs


@pytest.mark.parametrize("mode", ["x0", "classifier"])
def test_scale_zero_is_unguided_bit_for_bit(mode: str) -> None:
    x_init = torch.randn(64, 1, 2, generator=torch.Generator().manual_seed(3))
    model = _model(mode, 0.0)
    assert torch.equal(model.sample(x_init, cost_params=GOAL.expand(64, 2)), model.sample(x_init))


@pytest.mark.parametrize("scale", [0.25, 0.5])
def test_classifier_guidance_approaches_tilted_gaussian_mean(scale: float) -> None:
    """DPS-style guidance ignores Var(x0 | x_t), so it over-steers by a factor up to 1 + scale LAM ||SIGMA||.

    For scale LAM ||SIGMA|| <= 0.25 (largest eigenvalue of SIGMA ~ 0.5) we expect the sample mean within 25 % of
    the tilted displacement |mu - m_tilt| of the analytic tilted mean, plus 5 standard errors of the mean.
    """
    N = 4000
    m = _guided("classifier", scale, N).mean(0)
    target = _tilted_mean(scale)
    displacement = float((MU - target).norm())
    se = 5 * float(SIGMA.diag().max().sqrt()) / N**0.5
    assert float((m - target).norm()) < 0.25 * displacement + se
    moved = m - MU
    cos = float(moved @ (target - MU) / (moved.norm() * (target - MU).norm()))
    assert cos > 0.95  # it moves toward the tilted mean, not just anywhere


@pytest.mark.parametrize("mode", ["none", "x0", "classifier"])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainted_elements_come_out_exactly(mode: str, sampler: str) -> None:
    B, H = 8, 6
    model = _model(mode, 0.5, H=H, kind=sampler)
    gen = torch.Generator().manual_seed(5)
    known = torch.zeros(B, H, 2, dtype=torch.bool)
    known[:, :2] = True  # history tokens, fully known
    known[:, -1, 0] = True  # a goal keyframe: one feature of the last token
    values = torch.randn(B, H, 2, generator=gen) * 3.0
    start = torch.where(known.all(-1), 10, 0)  # fully known tokens sit at the clean level
    x = model.sample(
        torch.randn(B, H, 2, generator=gen),
        cost_params=GOAL.expand(B, 2),
        known_mask=known,
        known_values=values,
        start_index=start,
        step_noise=torch.randn(10, B, H, 2, generator=gen),
    )
    assert torch.equal(x[known], values[known])
    assert not torch.equal(x[~known], values[~known])


class _Counting(GaussianDenoiser):
    calls = 0

    def forward(self, x_t, t, cond=None, drop_cond=None):
        type(self).calls += 1
        return super().forward(x_t, t, cond, drop_cond)


def test_rolling_start_runs_only_the_remaining_steps_and_holds_clean_tokens() -> None:
    model = _model("none", 0.0, steps=10)
    model.denoiser = _Counting(MU, SIGMA, model.schedule, "x0")
    gen = torch.Generator().manual_seed(2)
    plan = model.sample(torch.randn(4, 5, 2, generator=gen))
    shifted = torch.cat([plan[:, 1:], plan[:, -1:]], dim=1)  # shift by one tick, repeat the last token
    start = torch.full((4, 5), 7, dtype=torch.long)
    start[:, -1] = 0  # the new tail starts fresh...
    start[:, 0] = 10  # ...and the first token is held clean
    x_init = model.renoise(shifted, start, torch.randn(4, 5, 2, generator=gen))
    _Counting.calls = 0
    out = model.sample(
        torch.where(start.unsqueeze(-1) == 0, torch.randn(4, 5, 2, generator=gen), x_init), start_index=start
    )
    assert _Counting.calls == 10  # the tail needs all 10 steps; the body joins for the last 3
    assert torch.equal(out[:, 0], shifted[:, 0])
    start[:] = 7
    start[:, 0] = 10
    _Counting.calls = 0
    model.sample(x_init, start_index=start)
    assert _Counting.calls == 3  # a uniform warm start at entry 7 of 10 costs 3 network passes


def test_gradient_norm_clipping() -> None:
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    clipped = clip_grad_norm(g, 1.0)
    assert torch.allclose(clipped.norm(dim=1), torch.tensor([1.0, 0.5]))
    assert torch.equal(clip_grad_norm(g, 0.0), g)


def test_bad_inputs_say_what_was_expected_and_given() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"expected \(B, H, D\), got shape \[4, 2\]"):
        model.sample(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="NaN or inf in the condition"):
        model.sample(torch.zeros(4, 1, 2), cond=torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match=r"start_index: expected shape \(B, H\)"):
        model.sample(torch.zeros(4, 1, 2), start_index=torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="cost params: expected shape"):
        model.costs(torch.zeros(4, 1, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"unknown schedule kind: expected one of .* got 'quadratic'"):
        ScheduleConfig(kind="quadratic")
    with pytest.raises(ValueError, match=r"expected at most schedule\.num_train_steps = 5, got 10"):
        DiffusionConfig(schedule=ScheduleConfig(kind="vp", num_train_steps=5), sampler=SamplerConfig(num_steps=10))
    with pytest.raises(ValueError, match="at most the 100 training steps, got 200"):
        model.set_sampler(SamplerConfig(num_steps=200))
    with pytest.raises(ValueError, match="guidance mode: expected one of"):
        GuidanceConfig(mode="universal")
    with pytest.raises(RuntimeError, match="needs autograd"), torch.no_grad():
        _model("x0", 1.0).sample(torch.zeros(2, 1, 2), cost_params=GOAL.expand(2, 2))


def test_gated_terms_switch_per_sample_and_script() -> None:
    a, b = QuadraticCost([0], []), QuadraticCost([1], [])
    total = CostSum([Gated(a, "a"), Gated(b, "b")], [1.0, 2.0])
    assert total.param_dim == 4 and total.param_layout()[1]["params"] == ["b_gate", "goal_1"]
    x = torch.randn(3, 5, 2)
    params = torch.tensor([[1.0, 0.5, 0.0, 9.0], [0.0, 0.5, 1.0, -1.0], [0.5, 0.5, 0.5, -1.0]])
    expected = torch.stack(
        [
            a(x[0:1], params[0:1, 1:2])[0],
            2.0 * b(x[1:2], params[1:2, 3:4])[0],
            0.5 * a(x[2:3], params[2:3, 1:2])[0] + 2.0 * 0.5 * b(x[2:3], params[2:3, 3:4])[0],
        ]
    )
    torch.testing.assert_close(total(x, params), expected)
    torch.testing.assert_close(torch.jit.script(total)(x, params), expected)
    with pytest.raises(TypeError, match="param_dim"):
        Gated(torch.nn.Linear(2, 2), "bad")

    class Exploding(QuadraticCost):
        def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
            raise AssertionError("a closed gate must not evaluate its cost")

    closed = Gated(Exploding([0], []), "off")
    xg = x.clone().requires_grad_(True)
    out = closed(xg, torch.zeros(3, 2))
    (grad,) = torch.autograd.grad(out.sum(), xg)  # still differentiable, with a zero gradient
    assert not out.any() and not grad.any()
