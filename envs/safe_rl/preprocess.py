"""Pure data-side transforms of DSRL datasets: episodes, BC-Safe filtering, training transitions for FISOR.

Nothing here changes its input: each function returns new arrays.

FISOR's data preparation (Zheng et al., ICLR 2024; reference ``jaxrl5/data/dsrl_datasets.py`` and
``train_offline.py``):

    done_t = terminal_t or timeout_t           (no bootstrap at a time limit either)
    mask_t = 1 - done_t
    h_t    = violation_h (25) if c_t > 0 else -1
    a_t    = clip(a_t, -(1 - eps), 1 - eps),  eps = 1e-5
    r_t    = r_t * T_max / (R_max - R_min)    (DSRL reference returns of the task, ``DSRLTask.reward_scale``)
"""

from __future__ import annotations

import numpy as np

from envs.safe_rl.dsrl_data import DSRLData


def episode_bounds(data: DSRLData) -> np.ndarray:
    """``(E, 2)`` int64 ``[start, end)`` rows of every episode; episodes end at ``terminals | timeouts``.

    Rows after the last end form a final (unfinished) episode.
    """
    done = (data.terminals > 0) | (data.timeouts > 0)
    ends = np.nonzero(done)[0] + 1
    if len(ends) == 0 or ends[-1] != data.num_transitions:
        ends = np.append(ends, data.num_transitions)
    starts = np.concatenate([[0], ends[:-1]])
    return np.stack([starts, ends], axis=1).astype(np.int64)


def episode_sums(data: DSRLData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undiscounted per-episode ``(returns (E,), costs (E,), lengths (E,))`` (float64, float64, int64)."""
    bounds = episode_bounds(data)
    starts = bounds[:, 0]
    returns = np.add.reduceat(data.rewards.astype(np.float64), starts)
    costs = np.add.reduceat(data.costs.astype(np.float64), starts)
    return returns, costs, bounds[:, 1] - bounds[:, 0]


def select_episodes(data: DSRLData, keep: np.ndarray) -> DSRLData:
    """The dataset restricted to the episodes flagged in ``keep (E,)`` bool (order preserved)."""
    bounds = episode_bounds(data)
    if keep.shape != (len(bounds),):
        raise ValueError(f"keep: expected one flag per episode, shape ({len(bounds)},), got {keep.shape}")
    rows = np.zeros(data.num_transitions, dtype=bool)
    for start, end in bounds[keep]:
        rows[start:end] = True
    return data.select(rows)


def filter_safe_episodes(data: DSRLData, cost_limit: float) -> DSRLData:
    """BC-Safe's training data: the episodes whose undiscounted cost is ``<= cost_limit`` (OSRL's ``bc_mode="safe"``).

    Raises:
        ValueError: no episode is under the limit (BC-Safe would have nothing to imitate).
    """
    _, costs, _ = episode_sums(data)
    keep = costs <= cost_limit
    if not keep.any():
        raise ValueError(
            f"{data.source}: no episode has cost <= {cost_limit} (lowest episode cost {costs.min():.3g}); "
            "BC-Safe has nothing to imitate at this limit"
        )
    return select_episodes(data, keep)


def transitions(data: DSRLData) -> dict[str, np.ndarray]:
    """Training transitions: the arrays plus ``masks = 1 - (terminal or timeout)`` (float32).

    Keys: observations (N, S), actions (N, A), next_observations (N, S), rewards (N,), costs (N,), masks (N,).
    """
    done = np.logical_or(data.terminals > 0, data.timeouts > 0)
    return {
        "observations": data.observations.copy(),
        "actions": data.actions.copy(),
        "next_observations": data.next_observations.copy(),
        "rewards": data.rewards.copy(),
        "costs": data.costs.copy(),
        "masks": (1.0 - done).astype(np.float32),
    }


def fisor_transitions(
    data: DSRLData,
    reward_scale: float,
    violation_h: float = 25.0,
    action_eps: float = 1e-5,
) -> dict[str, np.ndarray]:
    """FISOR's training transitions (module docstring): :func:`transitions` with scaled rewards, clipped actions
    and the constraint signal ``h (N,)``.

    Args:
        reward_scale: ``T_max / (R_max - R_min)`` of the task (``get_task(name).reward_scale``).
        violation_h: value of ``h`` on a step with cost > 0 (FISOR's ``cost_scale`` 25); -1 otherwise.
        action_eps: actions are clipped to ``±(1 - action_eps)``.
    """
    if not reward_scale > 0 or violation_h <= 0 or not 0 <= action_eps < 1:
        raise ValueError(
            f"expected reward_scale > 0, violation_h > 0, action_eps in [0, 1), got {reward_scale}, "
            f"{violation_h}, {action_eps}"
        )
    out = transitions(data)
    limit = 1.0 - action_eps
    out["actions"] = np.clip(out["actions"], -limit, limit).astype(np.float32)
    out["rewards"] = (out["rewards"] * reward_scale).astype(np.float32)
    out["h"] = np.where(out["costs"] > 0, violation_h, -1.0).astype(np.float32)
    return out
