"""FISOR's losses against hand-computed values: expectiles, the HJ backup, the three weight regions."""

import math

import numpy as np
import pytest
import torch

from policies.critics import expectile_loss, hj_target, reversed_expectile_loss, td_target
from policies.fisor import FISORConfig, fisor_weights


def test_expectile_losses_match_hand_values() -> None:
    diff = torch.tensor([2.0, -2.0, 0.5, 0.0, -0.1])
    # IQL: weight 0.9 on positive residuals (target above the prediction), 0.1 otherwise
    expected = torch.tensor([0.9 * 4, 0.1 * 4, 0.9 * 0.25, 0.0, 0.1 * 0.01])
    torch.testing.assert_close(expectile_loss(diff, 0.9), expected)
    # FISOR's reversed expectile: weight 0.9 on negative residuals
    expected_rev = torch.tensor([0.1 * 4, 0.9 * 4, 0.1 * 0.25, 0.0, 0.9 * 0.01])
    torch.testing.assert_close(reversed_expectile_loss(diff, 0.9), expected_rev)
    torch.testing.assert_close(expectile_loss(diff, 0.5), 0.5 * diff**2)


@pytest.mark.parametrize(("loss", "expected"), [(expectile_loss, 9.0), (reversed_expectile_loss, 1.0)])
def test_expectile_minimisers_lean_to_max_and_min(loss, expected) -> None:
    """Targets {0, 10}: the 0.9-expectile is 9 (towards the max), the reversed one 1 (towards the min)."""
    targets = torch.tensor([0.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.2)
    for _ in range(300):
        value = loss(targets - v, 0.9).mean()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert v.item() == pytest.approx(expected, abs=1e-4)


def test_hj_and_td_targets_match_hand_values() -> None:
    g = 0.99
    h = torch.tensor([-1.0, -1.0, 25.0, -1.0, 25.0])
    next_v = torch.tensor([-1.0, 10.0, -1.0, 10.0, 30.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0])
    expected = torch.tensor(
        [
            0.01 * -1 + 0.99 * -1,  # safe now, safe next: stays -1
            0.01 * -1 + 0.99 * 10,  # safe now, heading to a violation
            0.01 * 25 + 0.99 * 25,  # violating now: at least h
            -1.0,  # episode end: h only
            0.01 * 25 + 0.99 * 30,
        ]
    )
    torch.testing.assert_close(hj_target(h, next_v, mask, g), expected)
    torch.testing.assert_close(
        td_target(torch.tensor([1.0, 2.0]), torch.tensor([5.0, 5.0]), torch.tensor([1.0, 0.0]), 0.9),
        torch.tensor([1.0 + 4.5, 2.0]),
    )


def chain_step(s: int, a: int) -> int:
    """A 7-state chain: state 6 violates and absorbs, 4 and 5 slide right whatever the action."""
    if s == 6:
        return 6
    if s in (4, 5):
        return s + 1
    return min(max(s + a, 0), 6)


def test_tabular_hj_backup_converges_to_the_feasible_set() -> None:
    """Value iteration with V_h = min_a Q_h: feasible (V_h <= 0) exactly where some policy avoids state 6."""
    h = torch.tensor([-1.0] * 6 + [25.0], dtype=torch.float64).unsqueeze(1)  # (7, 1)
    nxt = torch.tensor([[chain_step(s, a) for a in (-1, 1)] for s in range(7)])  # (7, 2)
    v = torch.zeros(7, dtype=torch.float64)
    for _ in range(3000):
        v = hj_target(h, v[nxt], torch.ones(1, dtype=torch.float64), 0.99).min(dim=1).values  # (7,)
    v = v.numpy()
    np.testing.assert_array_equal(v <= 0, [True, True, True, True, False, False, False])
    np.testing.assert_allclose(v[:4], -1.0, atol=1e-6)  # safe forever: the value of h on safe steps
    assert v[6] == pytest.approx(25.0) and v[5] == pytest.approx(0.01 * -1 + 0.99 * 25.0)


def test_weights_follow_the_three_regions() -> None:
    cfg = FISORConfig()
    v_h = torch.tensor([0.5, 0.5, 0.5, -0.5, -0.5, -0.5, -0.5, 0.0])
    q_h = torch.tensor([0.3, 2.0, -10.0, -0.2, -0.2, -0.2, 0.3, 0.0])
    adv_r = torch.tensor([9.0, 9.0, 9.0, 0.5, 2.0, -1.0, 9.0, 0.0])  # Q_r - V_r
    v_r = torch.zeros(8)
    weights, region = fisor_weights(adv_r, v_r, q_h, v_h, cfg)
    expected = [
        math.exp(5 * 0.2),  # infeasible: exp(alpha_h (V_h - Q_h)), the reward is ignored
        math.exp(5 * -1.5),  # infeasible, worse than V_h: small but not clipped (lower clip 0)
        150.0,  # infeasible, clipped at 150
        math.exp(3 * 0.5),  # feasible and safe: exp(alpha_r (Q_r - V_r))
        100.0,  # clipped at 100
        math.exp(-3.0),
        0.0,  # feasible state, unsafe action
        1.0,  # boundary V_h = 0, Q_h = 0 counts as feasible and safe: exp(0)
    ]
    torch.testing.assert_close(weights, torch.tensor(expected))
    assert region.tolist() == [0, 0, 0, 1, 1, 1, 2, 1]
    floored = FISORConfig(infeasible_weight_min=1.0)  # a behaviour-cloning floor, as an option
    weights1, _ = fisor_weights(adv_r, v_r, q_h, v_h, floored)
    assert float(weights1[1]) == 1.0
    huge, _ = fisor_weights(torch.tensor([1e4]), torch.zeros(1), torch.tensor([-1.0]), torch.tensor([-1.0]), cfg)
    assert float(huge) == 100.0  # exp overflow is clipped, never inf or NaN


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reward_expectile", 1.0, r"reward_expectile: expected a value in \(0, 1\), got 1.0"),
        ("feasibility_expectile", 0.0, "feasibility_expectile"),
        ("discount", 1.0, "discount"),
        ("polyak", 0.0, "polyak"),
        ("ema_rate", 1.5, "ema_rate"),
        ("infeasible_weight_min", 200.0, "infeasible_weight_min <= infeasible_weight_max"),
        ("num_candidates", 0, "num_candidates: expected an integer >= 1, got 0"),
        ("critic_hidden", (), "critic_hidden"),
        ("batch_size", 1023, "multiple of actor_minibatches = 2"),
        ("critic_batch_size", 4096, "critic_batch_size: expected at most batch_size = 2048"),
        ("time_features", 63, "time_features"),
        ("actor_dropout", 1.0, "actor_dropout"),
    ],
)
def test_config_rejects_bad_values_with_expected_and_got(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        FISORConfig(**{field: value})


def test_config_defaults_are_the_reference_hyperparameters() -> None:
    cfg = FISORConfig()
    assert (cfg.reward_expectile, cfg.feasibility_expectile, cfg.discount, cfg.polyak) == (0.9, 0.9, 0.99, 0.005)
    assert (cfg.infeasible_temperature, cfg.infeasible_weight_max) == (5.0, 150.0)
    assert (cfg.feasible_temperature, cfg.feasible_weight_max) == (3.0, 100.0)
    assert (cfg.diffusion_steps, cfg.num_candidates, cfg.ema_rate, cfg.violation_h) == (5, 16, 0.001, 25.0)
    assert (cfg.batch_size, cfg.critic_batch_size, cfg.actor_minibatches, cfg.learning_rate) == (2048, 256, 2, 3e-4)
    assert (cfg.actor_width, cfg.actor_blocks, cfg.actor_expansion, cfg.actor_dropout) == (256, 3, 4, 0.1)
    assert cfg.critic_hidden == (256, 256) and cfg.num_critic_heads == 2
