"""DiffusionPlanner: shapes, history inpainting, guidance through the decoder, rolling, errors."""

import pytest
import torch

from policies.diffusion.guidance import CostSum, GuidanceConfig, QuadraticCost
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import DiffusionPlanner, MLPDenoiserConfig, PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig

S, A = 4, 2


def make_planner(latent_dim: int = 0, denoiser: str = "transformer", mode: str = "x0", scale: float = 1.0, **kw):
    cfg = PlannerConfig(
        state_dim=S,
        action_dim=A,
        history=4,
        horizon=8,
        latent_dim=latent_dim,
        denoiser=(
            TransformerDenoiserConfig(num_layers=2, num_heads=4, width=64)
            if denoiser == "transformer"
            else MLPDenoiserConfig(width=64)
        ),
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(num_train_steps=20),
            sampler=SamplerConfig(num_steps=10),
            guidance=GuidanceConfig(mode=mode, scale=scale),
        ),
        **kw,
    )
    # goal on the planar position (features 0, 1) of the last planned step (token 11 of 12)
    planner = DiffusionPlanner(cfg, CostSum([QuadraticCost([0, 1], [11])], [1.0]))
    gen = torch.Generator().manual_seed(0)
    states, actions = torch.randn(64, 12, S, generator=gen), torch.randn(64, 12, A, generator=gen)
    planner.fit_normalizers(states, actions)
    if latent_dim:
        planner.fit_latent_normalizer(states, actions)
    return planner.eval(), states, actions


@pytest.mark.parametrize(("latent_dim", "denoiser"), [(0, "transformer"), (3, "transformer"), (0, "mlp"), (3, "mlp")])
def test_act_shapes_and_history_is_inpainted_exactly(latent_dim: int, denoiser: str) -> None:
    planner, states, actions = make_planner(latent_dim, denoiser)
    out = planner.act(states[:3, :4], torch.zeros(3, 2), action_history=actions[:3, :4])
    assert out["plan_states"].shape == (3, 8, S)
    assert out["plan_actions"].shape == (3, 8, A)
    assert torch.equal(out["action_chunk"], out["plan_actions"][:, :1])
    history = planner._to_tokens(states[:3, :4], actions[:3, :4])
    assert torch.equal(planner._prev_tokens[:, :4], history)


@pytest.mark.parametrize("latent_dim", [0, 3])
def test_x0_guidance_reaches_the_goal_through_decoder(latent_dim: int) -> None:
    planner, states, actions = make_planner(latent_dim, mode="x0", scale=0.5)
    goal = torch.tensor([[3.0, -2.0]]).expand(16, 2)
    noise = torch.randn(16, 12, planner.config.token_dim, generator=torch.Generator().manual_seed(1))
    obs, act = states[:16, :4], actions[:16, :4]
    guided, _ = planner(obs, act, goal, noise)
    unguided, _ = planner(obs, act, None, noise)
    dist = lambda plan: (plan[:, -1, :2] - goal).norm(dim=1).mean()  # noqa: E731
    assert dist(guided) < 0.5 * dist(unguided)


@pytest.mark.parametrize("latent_dim", [0, 3])
def test_classifier_guidance_is_wired_through_network_and_decoder(latent_dim: int) -> None:
    """Through an untrained network the x_t-gradient is arbitrary, so only the wiring is checked here;
    tests/policies/test_guidance_inpainting.py checks what classifier guidance does with a real denoiser."""
    planner, states, actions = make_planner(latent_dim, mode="classifier", scale=0.01)
    goal = torch.tensor([[3.0, -2.0]]).expand(4, 2)
    noise = torch.randn(4, 12, planner.config.token_dim, generator=torch.Generator().manual_seed(1))
    guided, _ = planner(states[:4, :4], actions[:4, :4], goal, noise)
    unguided, _ = planner(states[:4, :4], actions[:4, :4], None, noise)
    assert torch.isfinite(guided).all()
    assert not torch.equal(guided, unguided)


def test_loss_trains_the_denoiser_and_ignores_history_targets() -> None:
    planner, states, actions = make_planner(3)
    planner.train()
    vae_loss, metrics = planner.vae_loss({"states": states, "actions": actions})
    assert vae_loss.requires_grad and set(metrics) >= {"recon", "kl"}
    loss, _ = planner.loss({"states": states[:8], "actions": actions[:8], "seed": torch.tensor(3)})
    loss.backward()
    grads = [p.grad for p in planner.diffusion.denoiser.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    again, _ = planner.loss({"states": states[:8], "actions": actions[:8], "seed": torch.tensor(3)})
    assert torch.equal(loss.detach(), again.detach())  # the seed makes the loss reproducible


def test_rolling_warm_start_uses_previous_plan() -> None:
    planner, states, actions = make_planner(rolling_start=6)
    obs, act = states[:2, :4], actions[:2, :4]
    first = planner.act(obs, torch.zeros(2, 2), action_history=act, generator=torch.Generator().manual_seed(0))
    second = planner.act(obs, torch.zeros(2, 2), action_history=act, generator=torch.Generator().manual_seed(0))
    planner.reset()
    cold = planner.act(obs, torch.zeros(2, 2), action_history=act, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first["plan_states"], cold["plan_states"])  # reset really forgets
    assert not torch.equal(second["plan_states"], first["plan_states"])  # the warm start changed the plan


def test_bad_inputs() -> None:
    planner, states, actions = make_planner()
    with pytest.raises(ValueError, match=r"obs_history: expected \(B, 4, 4\), got \[2, 3, 4\]"):
        planner(states[:2, :3], actions[:2, :4])
    bad = states[:2, :4].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        planner(bad, actions[:2, :4])
    with pytest.raises(ValueError, match=r"expected windows of shape \(B, 12"):
        planner.loss({"states": states[:, :5], "actions": actions[:, :5]})
    with pytest.raises(ValueError, match="denoiser: expected a TransformerDenoiserConfig or an MLPDenoiserConfig"):
        PlannerConfig(denoiser="unet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rolling_start: expected 0\.\.9"):
        PlannerConfig(rolling_start=10)


def test_action_loss_weight_is_a_weighted_mean_of_state_and_action_errors() -> None:
    """L(w) = (E_s + w E_a) / (N_s + w N_a) per window: solve E_s, E_a from two weights, predict a third."""
    losses = {}
    for w in (1.0, 4.0, 10.0):
        planner, states, actions = make_planner(action_loss_weight=w)
        torch.manual_seed(0)  # same initial network for every weight
        planner = DiffusionPlanner(planner.config)
        planner.fit_normalizers(states, actions)
        loss, _ = planner.loss({"states": states[:8], "actions": actions[:8], "seed": torch.tensor(5)})
        losses[w] = float(loss)
    n_s, n_a = 8 * S, 8 * A  # future state features; action features on the first action_loss_steps (8) steps
    # (N_s + w N_a) L(w) = E_s + w E_a: two equations for E_s, E_a
    a = torch.tensor([[1.0, 1.0], [1.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([(n_s + n_a) * losses[1.0], (n_s + 4 * n_a) * losses[4.0]], dtype=torch.float64)
    e_s, e_a = torch.linalg.solve(a, b).tolist()
    assert losses[10.0] == pytest.approx((e_s + 10 * e_a) / (n_s + 10 * n_a), rel=1e-5)
    assert abs(losses[10.0] - losses[1.0]) > 1e-3 * losses[1.0]  # the weight does change the loss
    with pytest.raises(ValueError, match="action_loss_weight"):
        make_planner(action_loss_weight=0.0)


def test_action_head_executes_its_action_and_keeps_the_rest_of_the_plan() -> None:
    """With an action head the first planned action is the head's (from the history and the unheaded plan); the
    planned states and later actions are the diffusion model's, and the scripted module gives the same plan."""
    plain, states, actions = make_planner(0)
    headed, _, _ = make_planner(0, action_head_states=2, action_head_width=32)
    headed.load_weights(plain.weights(), without_action_head=True)
    obs, act = states[:5, :4], actions[:5, :4]
    noise = torch.randn(5, 12, plain.config.token_dim, generator=torch.Generator().manual_seed(3))
    goal = torch.zeros(5, 2)
    base, _ = plain(obs, act, goal, noise)
    plan, _ = headed(obs, act, goal, noise)
    expected = headed._head_action(obs, act, base)
    assert not torch.allclose(expected, base[:, 0, S:])  # the head changes what is executed
    torch.testing.assert_close(plan[:, 0, S:], expected)
    torch.testing.assert_close(plan[:, :, :S], base[:, :, :S])
    torch.testing.assert_close(plan[:, 1:], base[:, 1:])
    scripted, _ = torch.jit.script(headed)(obs, act, goal, noise, None)
    torch.testing.assert_close(scripted, plan)


def test_action_head_fits_a_function_of_history_and_plan() -> None:
    """The head's loss trains only the head and learns a target that depends on the history and the plan."""
    planner, _, _ = make_planner(0, action_head_states=2, action_head_width=64)
    gen = torch.Generator().manual_seed(0)
    hs, ha = torch.randn(256, 4, S, generator=gen), torch.randn(256, 4, A, generator=gen)
    plan = torch.randn(256, 8, S + A, generator=gen)
    target = torch.stack([hs[:, -1, 0] - plan[:, 1, 2], 0.5 * ha[:, -1, 1] + plan[:, 0, S]], dim=1)
    batch = {"states": hs, "actions": ha, "plan": plan, "target": target}
    before = {k: v.clone() for k, v in planner.state_dict().items() if not k.startswith("action_head.")}
    opt = torch.optim.Adam(planner.action_head.parameters(), lr=3e-3)
    first, _ = planner.action_head_loss(batch)
    for _ in range(300):
        loss, _ = planner.action_head_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05 * float(first.detach())
    after = planner.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_action_head_config_and_weights_errors() -> None:
    with pytest.raises(ValueError, match="execute_steps = 1"):
        PlannerConfig(horizon=8, action_head_states=2, execute_steps=2)
    with pytest.raises(ValueError, match="action_head_states"):
        PlannerConfig(horizon=8, action_head_states=9)
    plain, _, _ = make_planner(0)
    headed, _, _ = make_planner(0, action_head_states=2)
    with pytest.raises(ValueError, match="missing"):
        headed.load_weights(plain.weights())  # the head's weights are missing
    with pytest.raises(ValueError, match="unexpected"):
        plain.load_weights(headed.weights())
    with pytest.raises(RuntimeError, match="no action head"):
        plain.action_head_loss({})


STATE_MIRROR = (torch.tensor([0, 1, 3, 2]), torch.tensor([1.0, -1.0, 1.0, 1.0]))  # y flips, features 2 and 3 swap
ACTION_MIRROR = (torch.tensor([1, 0]), torch.tensor([1.0, 1.0]))  # the two actions swap


def test_mirrored_action_head_is_equivariant_and_scripts() -> None:
    """With ``action_head_mirror`` the head's action of the mirrored input is the mirror image of its action,
    exactly; without it, a trained-from-scratch head is not; the scripted planner gives the eager plan."""
    plain, states, actions = make_planner(0)
    mirrored, _, _ = make_planner(0, action_head_states=2, action_head_width=32, action_head_mirror=True)
    mirrored.load_weights(plain.weights(), without_action_head=True)
    mirrored.set_mirror_maps(*STATE_MIRROR, *ACTION_MIRROR)
    unmirrored, _, _ = make_planner(0, action_head_states=2, action_head_width=32)
    unmirrored.load_state_dict({k: v for k, v in mirrored.state_dict().items() if not k.startswith("mirror.")})
    gen = torch.Generator().manual_seed(4)
    hs, ha, plan = torch.randn(16, 4, S, generator=gen), torch.randn(16, 4, A, generator=gen), torch.randn(16, 8, S + A)

    def ms(x: torch.Tensor) -> torch.Tensor:
        return x[..., STATE_MIRROR[0]] * STATE_MIRROR[1]

    def ma(x: torch.Tensor) -> torch.Tensor:
        return x[..., ACTION_MIRROR[0]] * ACTION_MIRROR[1]

    def mp(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([ms(x[..., :S]), ma(x[..., S:])], dim=-1)

    for planner, equivariant in ((mirrored, True), (unmirrored, False)):
        with torch.no_grad():
            a, a_m = planner._head_action(hs, ha, plan), planner._head_action(ms(hs), ma(ha), mp(plan))
        assert torch.allclose(a_m, ma(a), atol=1e-6) == equivariant
    with torch.no_grad():  # the mirrored head is the mean of the plain head and its mirror image
        expected = 0.5 * (unmirrored._head_action(hs, ha, plan) + ma(unmirrored._head_action(ms(hs), ma(ha), mp(plan))))
        torch.testing.assert_close(mirrored._head_action(hs, ha, plan), expected)
    noise = torch.randn(5, 12, plain.config.token_dim, generator=gen)
    obs, act, goal = states[:5, :4], actions[:5, :4], torch.zeros(5, 2)
    eager, _ = mirrored(obs, act, goal, noise)
    scripted, _ = torch.jit.script(mirrored)(obs, act, goal, noise, None)
    torch.testing.assert_close(scripted, eager)
    reloaded, _, _ = make_planner(0, action_head_states=2, action_head_width=32, action_head_mirror=True)
    reloaded.load_weights(mirrored.weights())  # the maps travel with the weights
    assert torch.equal(reloaded.mirror.state_perm, STATE_MIRROR[0])


def test_mirror_maps_must_be_reflections() -> None:
    with pytest.raises(ValueError, match="action_head_mirror"):
        PlannerConfig(horizon=8, action_head_mirror=True)
    plain, _, _ = make_planner(0)
    with pytest.raises(RuntimeError, match="not mirrored"):
        plain.set_mirror_maps(*STATE_MIRROR, *ACTION_MIRROR)
    planner, _, _ = make_planner(0, action_head_states=2, action_head_mirror=True)
    with pytest.raises(ValueError, match="not a permutation"):
        planner.set_mirror_maps(torch.tensor([0, 0, 1, 2]), STATE_MIRROR[1], *ACTION_MIRROR)
    with pytest.raises(ValueError, match="must be \\+1 or -1"):
        planner.set_mirror_maps(STATE_MIRROR[0], torch.tensor([1.0, 0.5, 1.0, 1.0]), *ACTION_MIRROR)
    with pytest.raises(ValueError, match="mirroring twice"):  # a 3-cycle is a permutation but no reflection
        planner.set_mirror_maps(torch.tensor([1, 2, 0, 3]), torch.ones(4), *ACTION_MIRROR)
    with pytest.raises(ValueError, match="length 2"):
        planner.set_mirror_maps(*STATE_MIRROR, torch.tensor([0]), torch.tensor([1.0]))


def test_planner_config_reads_the_flat_denoiser_layout_of_older_files_and_round_trips_tagged() -> None:
    from robot.configio import from_jsonable, to_jsonable

    flat_tf = {"latent_dim": 0, "denoiser": "transformer", "num_layers": 3, "num_heads": 2, "width": 64}
    cfg = from_jsonable(PlannerConfig, flat_tf)
    assert cfg.denoiser == TransformerDenoiserConfig(num_layers=3, num_heads=2, width=64, attention="full")
    flat_mlp = {"denoiser": "mlp", "width": 96, "mlp_blocks": 5, "num_layers": 2, "num_heads": 4, "attention": "full"}
    assert from_jsonable(PlannerConfig, flat_mlp).denoiser == MLPDenoiserConfig(width=96, blocks=5)
    assert from_jsonable(PlannerConfig, {"width": 32}).denoiser == TransformerDenoiserConfig(width=32)
    for denoiser in (TransformerDenoiserConfig(num_layers=1, width=32, num_heads=2), MLPDenoiserConfig(blocks=2)):
        written = to_jsonable(PlannerConfig(denoiser=denoiser))
        assert written["denoiser"]["_type"] == type(denoiser).__name__
        assert from_jsonable(PlannerConfig, written) == PlannerConfig(denoiser=denoiser)
    with pytest.raises(ValueError, match="denoiser expected 'transformer' or 'mlp', got 'unet'"):
        from_jsonable(PlannerConfig, {"denoiser": "unet", "width": 8})
    with pytest.raises(ValueError, match="width and blocks: expected >= 1"):
        MLPDenoiserConfig(blocks=0)
