"""Baselines on tiny data: BC's loss, BC-All vs BC-Safe data, BCQ-Lagrangian's targets, multiplier and gradients."""

import math

import numpy as np
import pytest
import torch

from envs.safe_rl import filter_safe_episodes, validate_arrays
from policies.baselines import BC, BCConfig, BCQLag, BCQLagConfig
from policies.baselines.bcq_lag import cost_threshold

SMALL_BCQ = {"actor_hidden": (32,), "critic_hidden": (32,), "vae_hidden": 32, "num_samples": 4}


def _batch(n: int = 16, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(n, obs_dim, generator=g),
        "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
        "next_observations": torch.randn(n, obs_dim, generator=g),
        "rewards": torch.randn(n, generator=g),
        "costs": (torch.rand(n, generator=g) < 0.3).float(),
        "masks": (torch.rand(n, generator=g) > 0.2).float(),
    }


def _set_constant(head: torch.nn.Sequential, value: float) -> None:
    """Make an MLP output a constant: zero last-layer weights, bias = value."""
    with torch.no_grad():
        head[-1].weight.zero_()
        head[-1].bias.fill_(value)


def test_bc_loss_is_the_mse_to_the_data_actions() -> None:
    torch.manual_seed(0)
    model = BC(3, 2, BCConfig(hidden=(16,)))
    _set_constant(model.actor[0], math.atanh(0.5))  # pi(s) = 0.5 everywhere
    batch = _batch()
    loss, metrics = model.loss(batch)
    assert loss.item() == pytest.approx(float(((0.5 - batch["actions"]) ** 2).mean()), rel=1e-6)
    assert metrics["actor_loss"] == pytest.approx(loss.item())
    assert model.act(batch["observations"]).shape == (16, 2) and model.act(batch["observations"][0]).shape == (2,)
    with pytest.raises(ValueError, match="S = 3"):
        model.act(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="mode: expected one of"):
        BCConfig(mode="risky")


def _two_behaviour_dataset(episodes: int = 20, length: int = 10) -> object:
    """Two behaviours on the same states: safe episodes act +0.5 (cost 0), risky ones act -0.5 (cost 1 per step).

    Episodes come in pairs that visit identical states, one safe and one risky, so at every state in the data the
    two actions are equally likely. That makes BC-All's target exact: with ``p(s)`` the prediction, the MSE at a
    state is ``((p - 0.5)^2 + (p + 0.5)^2) / 2 = p^2 + 0.25``, minimised by ``p = 0`` (the average behaviour).
    With a fresh random state per episode the net could memorise each state's single label instead, and the mean
    prediction over a probe would be a random +-0.5 mixture (std 0.5 / sqrt(probe size)), not a property of BC.
    """
    rng = np.random.default_rng(0)
    n = episodes * length
    risky = np.repeat(np.arange(episodes) % 2 == 1, length)
    timeouts = np.zeros(n, np.float32)
    timeouts[length - 1 :: length] = 1
    pair_states = rng.normal(size=(episodes // 2, length, 3)).astype(np.float32)
    obs = np.repeat(pair_states, 2, axis=0).reshape(n, 3)  # episodes 2k and 2k+1 share their states
    return validate_arrays(
        {
            "observations": obs,
            "next_observations": obs,
            "actions": np.where(risky[:, None], -0.5, 0.5).repeat(2, axis=1).astype(np.float32),
            "rewards": np.where(risky, 1.0, 0.5).astype(np.float32),
            "costs": risky.astype(np.float32),
            "terminals": np.zeros(n, np.float32),
            "timeouts": timeouts,
        }
    )


def _fit_bc(data, steps: int = 300) -> BC:
    torch.manual_seed(0)
    model = BC(3, 2, BCConfig(hidden=(32, 32)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = {"observations": torch.from_numpy(data.observations), "actions": torch.from_numpy(data.actions)}
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_bc_safe_imitates_only_the_safe_episodes_and_bc_all_the_average() -> None:
    data = _two_behaviour_dataset()
    states = torch.from_numpy(data.observations)
    bc_all_model = _fit_bc(data)
    bc_all = bc_all_model.act(states)
    bc_safe = _fit_bc(filter_safe_episodes(data, cost_limit=5.0)).act(states)
    # The optimum at each data state is known (0 for BC-All, +0.5 for BC-Safe); imitating either single behaviour
    # instead would be 0.5 or 1.0 away. Measured after 300 steps: rms 0.0012 and mean error 0.0025. A bound of 0.05
    # is 10x below the nearest wrong answer and 20x above what the fit reaches.
    assert float(bc_all.pow(2).mean().sqrt()) < 0.05
    assert float((bc_safe - 0.5).abs().mean()) < 0.05
    # The decomposition behind the target: BC-All's loss is 0.25 + mean(p^2) over paired states.
    loss, _ = bc_all_model.loss({"observations": states, "actions": torch.from_numpy(data.actions)})
    assert loss.item() == pytest.approx(0.25 + float(bc_all.pow(2).mean()), rel=1e-4)


def test_bcq_cost_threshold_matches_the_hand_value() -> None:
    assert cost_threshold(10.0, 0.99, 300) == pytest.approx(10 * (1 - 0.99**300) / 0.01 / 300)
    assert BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ)).threshold == pytest.approx(cost_threshold(10.0, 0.99, 300))


@pytest.mark.parametrize("cost_target_mask", [False, True])
def test_bcq_critic_targets_use_the_soft_double_q_mix(cost_target_mask) -> None:
    torch.manual_seed(0)
    model = BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ, cost_target_mask=cost_target_mask))
    for target, low, high in ((model.q_r_target, 1.0, 3.0), (model.q_c_target, 0.0, 8.0)):
        _set_constant(target.heads[0], low)
        _set_constant(target.heads[1], high)
    for head in (*model.q_r.heads, *model.q_c.heads):
        _set_constant(head, 0.0)
    batch = _batch()
    loss, metrics = model.critic_loss(batch)
    # mix = 0.75 * min + 0.25 * max over heads; the online heads predict 0, so each head's loss is mean(y^2)
    y_r = batch["rewards"] + 0.99 * batch["masks"] * (0.75 * 1.0 + 0.25 * 3.0)
    # OSRL bootstraps the cost through episode ends (no mask) unless asked to stop like the reward critic
    cost_mask = batch["masks"] if cost_target_mask else torch.ones_like(batch["masks"])
    y_c = batch["costs"] + 0.99 * cost_mask * (0.75 * 0.0 + 0.25 * 8.0)
    assert metrics["q_r_loss"] == pytest.approx(2 * float((y_r**2).mean()), rel=1e-5)
    assert metrics["q_c_loss"] == pytest.approx(2 * float((y_c**2).mean()), rel=1e-5)
    assert loss.item() == pytest.approx(metrics["q_r_loss"] + metrics["q_c_loss"], rel=1e-6)
    with pytest.raises(KeyError, match=r"missing \['costs'\]"):
        model.critic_loss({k: v for k, v in batch.items() if k != "costs"})


@pytest.mark.parametrize(("cost_value", "direction"), [(50.0, 1.0), (0.0, -1.0)])
def test_bcq_gradient_multiplier_rises_when_the_cost_is_over_the_threshold(cost_value, direction) -> None:
    torch.manual_seed(0)
    model = BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ, multiplier_update="gradient"))
    for head in model.q_c.heads:
        _set_constant(head, cost_value)
    opt = torch.optim.SGD([model.multiplier_raw], lr=0.01)
    before = model.multiplier.item()
    assert before == pytest.approx(1.0)
    loss, _ = model.multiplier_loss(_batch())
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert direction * (model.multiplier.item() - before) > 0


def test_bcq_pid_multiplier_follows_the_hand_computed_controller() -> None:
    """OSRL's PID Lagrangian (Stooke et al. 2020) with e_t = mean Q_c - d: hand-computed over three batches."""
    torch.manual_seed(0)
    k_p, k_i, k_d = 0.1, 0.003, 0.001
    model = BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ, pid_gains=(k_p, k_i, k_d)))
    assert model.multiplier.item() == 0.0  # OSRL's controller starts at lambda = 0
    d = model.threshold
    integral, last, expected = 0.0, 0.0, []
    for q in (d + 5.0, d + 2.0, d - 10.0):  # over the threshold twice, then far under it
        e = q - d
        integral = max(0.0, integral + e)
        expected.append(max(0.0, k_p * max(0.0, e) + k_i * integral + k_d * max(0.0, e - last)))
        last = e
    seen = []
    for q, lam in zip((d + 5.0, d + 2.0, d - 10.0), expected, strict=True):
        for head in model.q_c.heads:
            _set_constant(head, q)
        _, metrics = model.actor_loss(_batch())
        seen.append(model.multiplier.item())
        # the penalty uses the lambda of this very batch, as OSRL computes it before the actor step
        assert metrics["qc_penalty"] == pytest.approx(lam * (q - d), rel=1e-4, abs=1e-6)
    assert seen == pytest.approx(expected, rel=1e-5)
    assert expected[0] > 0.5 and expected[2] == 0.0  # rises with the violation, drops to 0 when far under
    _, metrics = model.multiplier_loss(_batch())
    assert metrics["multiplier"] == pytest.approx(expected[-1], abs=1e-7)
    with pytest.raises(ValueError, match="multiplier_update"):
        BCQLagConfig(multiplier_update="adam")
    with pytest.raises(ValueError, match="pid_gains"):
        BCQLagConfig(pid_gains=(0.1, -1.0, 0.0))


@pytest.mark.parametrize("update", ["pid", "gradient"])
def test_bcq_gradients_stay_in_their_part(update) -> None:
    torch.manual_seed(0)
    model = BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ, multiplier_update=update))
    batch = _batch()
    loss, metrics = model.actor_loss(batch)
    loss.backward()
    assert all(p.grad is not None for p in model.actor.parameters())
    others = [*model.q_r.parameters(), *model.q_c.parameters(), *model.vae.parameters(), model.multiplier_raw]
    assert all(p.grad is None for p in others)
    assert all(p.requires_grad for p in model.q_r.parameters())  # restored after the actor loss
    model.zero_grad(set_to_none=True)
    total, metrics = model.loss(batch)
    total.backward()
    assert {"vae_loss", "q_r_loss", "q_c_loss", "actor_loss", "multiplier"} <= set(metrics)
    assert (model.multiplier_raw.grad is not None) == (update == "gradient")  # the PID takes no gradient
    assert all(p.grad is not None for p in model.vae.parameters())
    assert all(p.grad is None for p in model.q_r_target.parameters())
    action = model.act(batch["observations"], generator=torch.Generator().manual_seed(0))
    assert action.shape == (16, 2) and bool((action.abs() <= 1).all())
    before = model.q_r_target.heads[0][0].weight.clone()
    with torch.no_grad():
        model.q_r.heads[0][0].weight.add_(1.0)
    model.update_targets()
    torch.testing.assert_close(model.q_r_target.heads[0][0].weight, before + 0.005)


def test_bcq_vae_loss_with_a_unit_posterior_is_the_reconstruction_error() -> None:
    torch.manual_seed(0)
    model = BCQLag(3, 2, BCQLagConfig(**SMALL_BCQ))
    _set_constant(model.vae.encoder, 0.0)  # mean 0, log std 0: the KL term vanishes
    batch = _batch()
    loss, metrics = model.vae_loss(batch, generator=torch.Generator().manual_seed(5))
    z = torch.randn((16, 4), generator=torch.Generator().manual_seed(5))
    recon = ((model.vae.decode(batch["observations"], z) - batch["actions"]) ** 2).mean()
    assert metrics["vae_kl"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(recon.item(), rel=1e-6)
