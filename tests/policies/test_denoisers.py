"""Contract, scripting, gradient and attention-mask tests of the denoiser networks."""

from collections.abc import Callable

import pytest
import torch

from policies.diffusion.denoisers import (
    ATTENTION_KINDS,
    Denoiser,
    ResidualMLPConfig,
    ResidualMLPDenoiser,
    TrajectoryTransformer,
    TrajectoryTransformerConfig,
    build_attention_mask,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

T = 10


def small_transformer(attention: str = "full", action_dim: int = 3, cond_dim: int = 0, **kw) -> Denoiser:
    config = TrajectoryTransformerConfig(
        state_dim=5,
        action_dim=action_dim,
        horizon=6,
        cond_dim=cond_dim,
        cond_tokens=2 if cond_dim else 0,
        num_train_steps=T,
        num_layers=2,
        num_heads=4,
        width=32,
        attention=attention,
        **kw,
    )
    return TrajectoryTransformer(config)


FACTORIES: dict[str, Callable[[], Denoiser]] = {
    "mlp_fisor": lambda: ResidualMLPDenoiser(ResidualMLPConfig(x_dim=2, horizon=1, cond_dim=8, num_train_steps=T)),
    "mlp_traj": lambda: ResidualMLPDenoiser(
        ResidualMLPConfig(x_dim=3, horizon=8, num_train_steps=T, width=64, time_hidden=32)
    ),
    "tf_states_full": lambda: small_transformer("full", action_dim=0),
    "tf_causal_cond": lambda: small_transformer("causal", cond_dim=4),
    "tf_cloc_cond": lambda: small_transformer("diffuse_cloc", cond_dim=4),
}


def make_inputs(model: Denoiser, batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    H, D = model.horizon, model.x_dim
    inputs = {
        "x_t": torch.randn(batch, H, D, generator=g),
        "t": torch.randint(-1, T, (batch, H), generator=g),
    }
    if model.cond_dim > 0:
        shape = (batch, model.cond_dim) if isinstance(model, ResidualMLPDenoiser) else (batch, 2, model.cond_dim)
        inputs["cond"] = torch.randn(shape, generator=g)
        inputs["drop_cond"] = torch.arange(batch) % 2 == 0
    return inputs


@pytest.fixture(params=sorted(FACTORIES))
def model(request: pytest.FixtureRequest) -> Denoiser:
    torch.manual_seed(0)
    return FACTORIES[request.param]().eval()


def test_output_shape_and_dependence_on_every_input(model: Denoiser) -> None:
    inputs = make_inputs(model)
    out = model(**inputs)
    assert out.shape == inputs["x_t"].shape
    assert torch.isfinite(out).all()
    # a different step for every token changes the prediction
    other = dict(inputs, t=(inputs["t"] + 3).clamp(max=T - 1))
    assert not torch.allclose(model(**other), out)


def test_script_matches_eager(model: Denoiser) -> None:
    scripted = torch.jit.script(model)
    inputs = make_inputs(model)
    torch.testing.assert_close(scripted(**inputs), model(**inputs), atol=1e-6, rtol=0)


def test_gradient_wrt_x_t_is_finite_and_nonzero(model: Denoiser) -> None:
    scripted = torch.jit.script(model)
    for net in (model, scripted):
        inputs = make_inputs(model)
        x_t = inputs["x_t"].requires_grad_(True)
        (grad,) = torch.autograd.grad(net(**inputs).square().sum(), x_t)
        assert torch.isfinite(grad).all()
        assert grad.abs().min() > 0.0  # every element of x_t reaches the output


@pytest.mark.parametrize("name", ["mlp_fisor", "tf_causal_cond", "tf_cloc_cond"])
def test_dropped_condition_ignores_cond(name: str) -> None:
    torch.manual_seed(0)
    net = FACTORIES[name]().eval()
    inputs = make_inputs(net, batch=4)
    other_cond = inputs["cond"] + 1.0
    drop = torch.ones(4, dtype=torch.bool)
    dropped = net(inputs["x_t"], inputs["t"], inputs["cond"], drop)
    torch.testing.assert_close(net(inputs["x_t"], inputs["t"], other_cond, drop), dropped, atol=0, rtol=0)
    kept = torch.zeros(4, dtype=torch.bool)
    assert not torch.allclose(net(inputs["x_t"], inputs["t"], inputs["cond"], kept), dropped)
    assert not torch.allclose(net(inputs["x_t"], inputs["t"], other_cond, kept), dropped)


def perturbation_effect(net: Denoiser, part: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step max change of the (state, action) outputs when the ``part`` input at ``step`` is perturbed."""
    inputs = make_inputs(net, batch=2)
    S = net.state_dim
    x_new = inputs["x_t"].clone()
    cols = slice(0, S) if part == "state" else slice(S, None)
    x_new[:, step, cols] += torch.randn_like(x_new[:, step, cols])
    delta = (net(**dict(inputs, x_t=x_new)) - net(**inputs)).abs()  # (B, H, D)
    return delta[..., :S].amax(dim=(0, 2)), delta[..., S:].amax(dim=(0, 2))  # (H,), (H,)


def test_diffuse_cloc_mask_blocks_actions_from_states_and_the_future() -> None:
    torch.manual_seed(0)
    net = small_transformer("diffuse_cloc", cond_dim=4).eval()
    k = 3
    state_delta, action_delta = perturbation_effect(net, "action", k)
    assert state_delta.max() < 1e-6  # no state output sees any action, even via condition tokens
    assert action_delta[:k].max() < 1e-6  # earlier actions do not see a later action
    assert (action_delta[k:] > 1e-4).all()
    state_delta, action_delta = perturbation_effect(net, "state", 5)
    assert (state_delta > 1e-4).all() and (action_delta > 1e-4).all()  # everything sees every state


def test_full_mask_lets_actions_reach_states() -> None:
    torch.manual_seed(0)
    net = small_transformer("full", cond_dim=4).eval()
    state_delta, action_delta = perturbation_effect(net, "action", 3)
    assert (state_delta > 1e-4).all() and (action_delta > 1e-4).all()


@pytest.mark.parametrize("part", ["state", "action"])
def test_causal_mask_hides_later_steps(part: str) -> None:
    torch.manual_seed(0)
    net = small_transformer("causal", cond_dim=4).eval()
    k = 2
    state_delta, action_delta = perturbation_effect(net, part, k)
    assert state_delta[:k].max() < 1e-6 and action_delta[:k].max() < 1e-6
    assert (state_delta[k:] > 1e-4).all() and (action_delta[k:] > 1e-4).all()


def test_causal_mask_hides_later_noise_levels() -> None:
    torch.manual_seed(0)
    net = small_transformer("causal").eval()
    inputs = make_inputs(net, batch=2)
    t_new = inputs["t"].clone()
    t_new[:, 4] = (t_new[:, 4] + 5) % T
    delta = (net(**dict(inputs, t=t_new)) - net(**inputs)).abs().amax(dim=(0, 2))  # (H,)
    assert delta[:4].max() < 1e-6 and (delta[4:] > 1e-4).all()


def test_attention_masks_match_hand_written_patterns() -> None:
    # layout [cond | s0 s1 | a0 a1]
    expected = {
        "full": torch.ones(5, 5),
        "causal": [[1, 0, 0, 0, 0], [1, 1, 0, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 1, 0], [1, 1, 1, 1, 1]],
        "diffuse_cloc": [[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]],
    }
    for kind in ATTENTION_KINDS:
        mask = build_attention_mask(kind, horizon=2, cond_tokens=1, with_actions=True)
        assert mask.dtype == torch.bool
        assert torch.equal(mask, torch.as_tensor(expected[kind]).bool()), kind


def test_bad_shapes_raise_value_error_with_expected_and_got() -> None:
    torch.manual_seed(0)
    mlp = FACTORIES["mlp_fisor"]().eval()
    tf = FACTORIES["tf_cloc_cond"]().eval()
    for net in (mlp, tf):
        good = make_inputs(net, batch=2)
        bad_cases = [
            dict(good, x_t=good["x_t"][:, :, :-1]),
            dict(good, x_t=torch.randn(2, net.horizon + 1, net.x_dim)),
            dict(good, x_t=good["x_t"][0]),
            dict(good, t=good["t"][:, :1].expand(2, 1 + net.horizon)),
            dict(good, t=good["t"].float()),
            dict(good, cond=good["cond"][:, :-1]),
            dict(good, cond=None),
            dict(good, drop_cond=torch.ones(3, dtype=torch.bool)),
            dict(good, drop_cond=torch.ones(2)),
        ]
        for kwargs in bad_cases:
            with pytest.raises(ValueError, match=r"expected .* got"):
                net(**kwargs)
    unconditional = FACTORIES["tf_states_full"]()
    inputs = make_inputs(unconditional, batch=2)
    with pytest.raises(ValueError, match=r"cond: expected None .* got \[2, 1, 4\]"):
        unconditional(inputs["x_t"], inputs["t"], torch.zeros(2, 1, 4))
    # scripted modules raise too (TorchScript wraps the ValueError and keeps its message)
    scripted = torch.jit.script(mlp)
    with pytest.raises(torch.jit.Error, match=r"ValueError: x_t: expected shape \(B, 1, 2\), got \[2, 1, 3\]"):
        scripted(torch.zeros(2, 1, 3), torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 8))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"attention": "sparse"}, r"unknown attention: expected one of .*'full'.* got 'sparse'"),
        ({"width": 30, "num_heads": 4}, r"width: expected an even multiple of num_heads 4, got 30"),
        ({"attention": "diffuse_cloc", "action_dim": 0}, r"expected action_dim >= 1, got 0"),
        ({"cond_dim": 4, "cond_tokens": 0}, r"cond_tokens: expected >= 1 .* got 0"),
        ({"cond_tokens": 2}, r"cond_tokens: expected 0 .* got 2"),
        ({"dropout": 1.5}, r"dropout: expected .* got 1.5"),
        ({"horizon": 0}, r"horizon: expected an integer >= 1, got 0"),
    ],
)
def test_transformer_config_validation(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        TrajectoryTransformerConfig(**{"state_dim": 4, "action_dim": 2, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"time_features": 63}, r"time_features: expected an even integer >= 2, got 63"),
        ({"cond_dim": -1}, r"cond_dim: expected an integer >= 0 .* got -1"),
        ({"num_blocks": 0}, r"num_blocks: expected an integer >= 1, got 0"),
        ({"dropout": -0.1}, r"dropout: expected .* got -0.1"),
    ],
)
def test_mlp_config_validation(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        ResidualMLPConfig(**{"x_dim": 2, **kwargs})


def test_mlp_for_one_action_has_fisor_size() -> None:
    A, S = 2, 8
    net = ResidualMLPDenoiser(ResidualMLPConfig(x_dim=A, horizon=1, cond_dim=S))
    time = 32 + (64 * 128 + 128) + (128 * 128 + 128)
    trunk = (A + S + 128) * 256 + 256 + 3 * (2 * 256 + 256 * 1024 + 1024 + 1024 * 256 + 256) + 256 * A + A
    assert net.num_parameters() == time + trunk + S  # + S: the null condition


@pytest.mark.parametrize(
    ("layers", "width", "heads", "low", "high"),
    [(2, 256, 4, 1.5e6, 2.0e6), (4, 256, 4, 3.0e6, 3.6e6), (6, 512, 8, 18e6, 21e6)],
)
def test_transformer_default_sizes(layers: int, width: int, heads: int, low: float, high: float) -> None:
    config = TrajectoryTransformerConfig(
        state_dim=64, action_dim=29, num_layers=layers, width=width, num_heads=heads, attention="diffuse_cloc"
    )
    net = TrajectoryTransformer(config).eval()
    assert low < net.num_parameters() < high  # ~12 width^2 per layer; the paper's 6 x 512 is ~20M
    x = torch.randn(1, config.horizon, 93)
    assert net(x, torch.zeros(1, config.horizon, dtype=torch.long)).shape == (1, 20, 93)
