"""Data-side transforms: episode boundaries and sums, BC-Safe filtering, FISOR's transitions."""

import numpy as np
import pytest

from envs.safe_rl import (
    episode_bounds,
    episode_sums,
    filter_safe_episodes,
    fisor_transitions,
    get_task,
    select_episodes,
    transitions,
    validate_arrays,
)


def _data(costs_per_episode=(0.0, 3.0, 12.0), length: int = 4, unfinished_tail: int = 0):
    rows = [(np.full(length, float(i)), np.full(length, total / length)) for i, total in enumerate(costs_per_episode)]
    n = len(costs_per_episode) * length + unfinished_tail
    obs = np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1)
    costs = np.concatenate([c for _, c in rows] + [np.zeros(unfinished_tail)]).astype(np.float32)
    rewards = np.concatenate([r for r, _ in rows] + [np.full(unfinished_tail, 9.0)]).astype(np.float32)
    timeouts = np.zeros(n, np.float32)
    terminals = np.zeros(n, np.float32)
    timeouts[length - 1 : len(costs_per_episode) * length : length] = 1.0
    terminals[length - 1] = 1.0  # the first episode ends in a terminal state (and a timeout)
    actions = np.linspace(-1.2, 1.2, 2 * n, dtype=np.float32).reshape(n, 2)
    return validate_arrays(
        {
            "observations": obs,
            "next_observations": obs + 1,
            "actions": actions,
            "rewards": rewards,
            "costs": costs,
            "terminals": terminals,
            "timeouts": timeouts,
        }
    )


def test_episode_bounds_and_sums() -> None:
    data = _data(unfinished_tail=2)
    np.testing.assert_array_equal(episode_bounds(data), [[0, 4], [4, 8], [8, 12], [12, 14]])
    returns, costs, lengths = episode_sums(data)
    np.testing.assert_allclose(returns, [0.0, 4.0, 8.0, 18.0])
    np.testing.assert_allclose(costs, [0.0, 3.0, 12.0, 0.0])
    np.testing.assert_array_equal(lengths, [4, 4, 4, 2])


def test_bc_safe_keeps_only_episodes_under_the_limit() -> None:
    data = _data()
    safe = filter_safe_episodes(data, cost_limit=3.0)
    assert safe.num_transitions == 8
    np.testing.assert_allclose(episode_sums(safe)[1], [0.0, 3.0])
    np.testing.assert_array_equal(safe.observations[:, 0], np.arange(8))
    assert filter_safe_episodes(data, 2.9).num_transitions == 4
    with pytest.raises(ValueError, match="no episode has cost <= -1"):
        filter_safe_episodes(data, -1.0)
    with pytest.raises(ValueError, match="one flag per episode"):
        select_episodes(data, np.ones(2, dtype=bool))
    assert data.num_transitions == 12  # the input is unchanged


def test_fisor_transitions() -> None:
    data = _data()
    before = data.actions.copy()
    scale = get_task("BallRun").reward_scale
    out = fisor_transitions(data, reward_scale=scale)
    lim = 1 - 1e-5
    assert out["actions"].max() == pytest.approx(lim) and out["actions"].min() == pytest.approx(-lim)
    np.testing.assert_array_equal(data.actions, before)
    np.testing.assert_allclose(out["rewards"], data.rewards * scale, rtol=1e-6)
    np.testing.assert_array_equal(out["h"], np.where(data.costs > 0, 25.0, -1.0))
    expected_masks = np.ones(12)
    expected_masks[[3, 7, 11]] = 0.0  # terminal or timeout: no bootstrap
    np.testing.assert_array_equal(out["masks"], expected_masks)
    assert all(v.dtype == np.float32 and v.shape[0] == 12 for v in out.values())
    plain = transitions(data)
    assert set(plain) == {"observations", "actions", "next_observations", "rewards", "costs", "masks"}
    with pytest.raises(ValueError, match="reward_scale > 0"):
        fisor_transitions(data, reward_scale=0.0)
