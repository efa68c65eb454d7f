"""FISOR as a module: critics learn the feasible set of a hand-made MDP, action selection, EMA and gradients."""

import pytest
import torch
from torch import nn

from policies.fisor import FISOR, FISORConfig
from tests.policies.test_fisor_losses import chain_step

SMALL = {"critic_hidden": (32, 32), "actor_width": 32, "actor_blocks": 1, "time_features": 8, "time_hidden": 16}


def chain_batch() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every transition of the 7-state chain, one-hot states; states 0-3 take the safe action 9 times in 10."""
    rows = []
    for s in range(7):
        counts = {-1: 9, 1: 1} if s <= 3 else {-1: 5, 1: 5}
        rows += [(s, a, chain_step(s, a)) for a, count in counts.items() for _ in range(count)]
    s, a, s2 = (torch.tensor(col) for col in zip(*rows, strict=True))
    eye = torch.eye(7)
    batch = {
        "observations": eye[s],
        "actions": a.float().unsqueeze(1),
        "next_observations": eye[s2],
        "rewards": torch.zeros(len(rows)),
        "h": torch.where(s == 6, 25.0, -1.0),
        "masks": torch.ones(len(rows)),
    }
    return batch, s


def tabular_expectile_fixed_point(discount: float, tau: float) -> torch.Tensor:
    """V_h of the chain under the data's action frequencies: V = reversed tau-expectile of Q_h, Q_h = HJ backup."""
    batch, s = chain_batch()
    assert bool((s.reshape(7, 10) == torch.arange(7).unsqueeze(1)).all())  # 10 rows per state, in order
    h = batch["h"].double().reshape(7, 10)
    nxt = batch["next_observations"].argmax(dim=1).reshape(7, 10)
    v = torch.zeros(7, dtype=torch.float64)
    for _ in range(400):  # discount ** 400 is negligible
        q = (1 - discount) * h + discount * torch.maximum(h, v[nxt])  # (7, 10)
        value = q.mean(dim=1, keepdim=True)  # (7, 1)
        for _ in range(30):  # expectile by fixed-point reweighting
            w = torch.where(q < value, tau, 1 - tau)
            value = (w * q).sum(dim=1, keepdim=True) / w.sum(dim=1, keepdim=True)
        v = value.squeeze(1)
    return v.float()


def test_feasibility_critics_learn_the_feasible_set_of_a_small_mdp() -> None:
    torch.manual_seed(0)
    # g = 0.9 and a fast target make the backup converge in a few hundred steps; the backup is the same as g = 0.99
    cfg = FISORConfig(discount=0.9, polyak=0.2, **SMALL)
    model = FISOR(7, 1, cfg)
    batch, _ = chain_batch()
    opt = torch.optim.Adam(model.critic_parameters(), lr=3e-3)
    for _ in range(600):
        for piece in (model.value_loss, model.q_loss):  # the reference's order: V first, then Q
            loss, _ = piece(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.update_critic_targets()
    with torch.no_grad():
        v_h = model.v_h(torch.eye(7))
    expected = tabular_expectile_fixed_point(0.9, 0.9)
    assert (expected <= 0).tolist() == [True, True, True, True, False, False, False]
    assert (v_h <= 0).tolist() == [True, True, True, True, False, False, False], v_h
    torch.testing.assert_close(v_h, expected, atol=0.15, rtol=0.02)


class QuadraticQh(nn.Module):
    """A stand-in Q_h ensemble: ``Q_h(s, a) = (a_0 - 0.3)^2`` on one head and 0 on the other."""

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.stack([(act[:, 0] - 0.3) ** 2, torch.zeros_like(act[:, 0])])  # (2, B)


def test_act_returns_bounded_actions_and_picks_the_lowest_qh_candidate() -> None:
    torch.manual_seed(0)
    model = FISOR(5, 3, FISORConfig(**SMALL))
    obs = torch.randn(4, 5)
    actions = model.act(obs, generator=torch.Generator().manual_seed(1))
    assert actions.shape == (4, 3) and bool((actions.abs() <= 1).all())
    assert model.act(obs[0]).shape == (3,)
    # same generator -> same candidates; the chosen one has the lowest max-over-heads Q_h
    candidates = model.candidate_actions(obs, 16, torch.Generator().manual_seed(1))  # (4, 16, 3)
    assert candidates.shape == (4, 16, 3) and bool((candidates.abs() <= 1).all())
    q_h = model.q_h_target(obs.repeat_interleave(16, 0), candidates.reshape(-1, 3)).max(dim=0).values.reshape(4, 16)
    torch.testing.assert_close(actions, candidates[torch.arange(4), q_h.argmin(dim=1)])
    model.q_h_target = QuadraticQh()
    chosen = model.act(obs, generator=torch.Generator().manual_seed(1))
    closest = candidates[torch.arange(4), (candidates[..., 0] - 0.3).abs().argmin(dim=1)]
    torch.testing.assert_close(chosen, closest)
    with pytest.raises(ValueError, match=r"expected obs of shape \(S,\) or \(B, S\) with S = 5, got \[4, 6\]"):
        model.act(torch.randn(4, 6))
    with pytest.raises(ValueError, match="NaN"):
        model.act(torch.full((5,), float("nan")))


def _batch(n: int = 32, obs_dim: int = 5, act_dim: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(n, obs_dim, generator=g),
        "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
        "next_observations": torch.randn(n, obs_dim, generator=g),
        "rewards": torch.randn(n, generator=g),
        "h": torch.where(torch.rand(n, generator=g) < 0.3, 25.0, -1.0),
        "masks": (torch.rand(n, generator=g) > 0.1).float(),
    }


def test_gradients_stay_in_their_part_and_zero_weights_give_zero_actor_loss() -> None:
    torch.manual_seed(0)
    model = FISOR(5, 3, FISORConfig(**SMALL))
    batch = _batch()
    loss, metrics = model.actor_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None for p in model.critic_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.actor_parameters()) or loss == 0
    model.zero_grad(set_to_none=True)
    loss, metrics = model.critic_loss(batch)
    loss.backward()
    assert all(p.grad is None for p in model.actor_parameters())
    assert all(p.grad is not None for p in model.critic_parameters())
    assert {"q_h_loss", "value_h_loss", "feasible_fraction"} <= set(metrics)
    # make every state feasible and every action unsafe: all weights 0, so the actor loss is exactly 0
    with torch.no_grad():
        model.v_h.net[-1].bias.fill_(-1e3)
        model.q_h_target.heads[0][-1].bias.fill_(1e3)
    weights, region = model.actor_weights(batch)
    assert bool((weights == 0).all()) and bool((region == 2).all())
    assert model.actor_loss(batch)[0].item() == 0.0
    total, metrics = model.loss(batch)
    assert torch.isfinite(total) and "actor_loss" in metrics and "q_r_loss" in metrics
    with pytest.raises(KeyError, match=r"missing \['h'\]"):
        model.q_loss({k: v for k, v in batch.items() if k != "h"})


def test_ema_and_target_updates_and_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    model = FISOR(5, 3, FISORConfig(**SMALL))
    online = model.actor.denoiser.output.weight
    ema = model.actor_ema.denoiser.output.weight
    with torch.no_grad():
        online.add_(1.0)
    before = ema.clone()
    model.update_actor_ema()
    torch.testing.assert_close(ema, before + 0.001 * (online - before))
    q_before = model.q_r_target.heads[0][0].weight.clone()
    with torch.no_grad():
        model.q_r.heads[0][0].weight.add_(1.0)
    model.update_targets()
    torch.testing.assert_close(model.q_r_target.heads[0][0].weight, q_before + 0.005)
    model.train()
    assert model.actor.training and not model.actor_ema.training
    assert not any(p.requires_grad for p in model.actor_ema.parameters())
    clone = FISOR(5, 3, FISORConfig(**SMALL))
    clone.load_state_dict(model.state_dict())
    obs = torch.randn(2, 5)
    torch.testing.assert_close(
        clone.act(obs, generator=torch.Generator().manual_seed(3)),
        model.act(obs, generator=torch.Generator().manual_seed(3)),
    )


def test_bf16_actor_precision_changes_only_the_noise_network_pass() -> None:
    torch.manual_seed(0)
    fp32 = FISOR(5, 3, FISORConfig(**SMALL))
    bf16 = FISOR(5, 3, FISORConfig(**SMALL, actor_precision="bf16"))
    bf16.load_state_dict(fp32.state_dict())
    batch = _batch()
    seen: list[torch.dtype] = []
    bf16.actor.denoiser.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    loss32, m32 = fp32.actor_loss(batch, generator=torch.Generator().manual_seed(3))
    loss16, m16 = bf16.actor_loss(batch, generator=torch.Generator().manual_seed(3))
    assert seen == [torch.bfloat16] and loss16.dtype == torch.float32
    assert m16["weight_mean"] == m32["weight_mean"]  # the critics' weights are computed in fp32 either way
    assert abs(loss16.item() - loss32.item()) <= 0.05 * abs(loss32.item()) + 1e-3
    loss16.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in bf16.actor_parameters())
    with pytest.raises(ValueError, match="actor_precision"):
        FISORConfig(actor_precision="fp16")


def test_candidates_follow_the_reference_ddpm_sampler() -> None:
    """FISOR's jaxrl5 ddpm_sampler, written out: eps-form mean, noise of variance beta_t, the sample clipped."""
    torch.manual_seed(0)
    model = FISOR(5, 2, FISORConfig(**SMALL))
    T = model.config.diffusion_steps
    abar = model.actor_ema.schedule.abar(torch.arange(T))  # (T,)
    alpha = abar / torch.cat([torch.ones(1), abar[:-1]])
    beta = 1 - alpha
    # FISOR's reference: the VP schedule of b_min 0.1, b_max 10 with T = 5
    torch.testing.assert_close(beta, torch.tensor([0.196, 0.459, 0.636, 0.755, 0.835]), atol=1e-3, rtol=0)
    obs = torch.randn(3, 5)
    N = 16
    gen = torch.Generator().manual_seed(7)
    x = torch.randn((3 * N, 1, 2), generator=gen)
    noise = torch.randn((T, 3 * N, 1, 2), generator=gen)
    cond = obs.repeat_interleave(N, 0)
    with torch.no_grad():
        for i, t in enumerate(range(T - 1, -1, -1)):
            eps = model.actor_ema.denoiser(x, torch.full((3 * N, 1), t), cond, None)
            x = (x - beta[t] / (1 - abar[t]).sqrt() * eps) / alpha[t].sqrt()
            x = (x + (t > 0) * beta[t].sqrt() * noise[i]).clamp(-1, 1)
    expected = x.reshape(3, N, 2)
    got = model.candidate_actions(obs, N, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not bool(((got.abs() - 1).abs() < 1e-7).all())  # not every candidate sits on the clip
