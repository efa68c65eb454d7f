"""A real learning test: on a small safe-RL dataset whose high-reward actions are costly, FISOR ends with a lower
cost than BC-All (fixed seeds, a few seconds on a CPU).

Task (one-step episodes): state s ~ U[-1, 1], action a in [-1, 1], reward r = a, cost c = 1 when a > 0.5.
The behaviour data takes risky actions a ~ 0.85 +- 0.05 in 70 % of the rows and safe actions a ~ U[-1, 0.5]
otherwise, so behaviour cloning's mean action lands in the hazard (a ~ 0.5) while most states are infeasible for
the data's majority action: FISOR's infeasible-region weights favour the safe actions and its Q_h selection
discards risky candidates.
"""

import numpy as np
import pytest
import torch

from envs.safe_rl import fisor_transitions, transitions, validate_arrays
from policies.baselines import BC, BCConfig
from policies.fisor import FISOR, FISORConfig

HAZARD = 0.5


def make_dataset(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    risky = rng.uniform(size=n) < 0.7
    act = np.where(risky, rng.normal(0.85, 0.05, size=n).clip(-1, 1), rng.uniform(-1, HAZARD, size=n))
    act = act.astype(np.float32)[:, None]
    return validate_arrays(
        {
            "observations": obs,
            "next_observations": obs,
            "actions": act,
            "rewards": act[:, 0],
            "costs": (act[:, 0] > HAZARD).astype(np.float32),
            "terminals": np.ones(n, np.float32),
            "timeouts": np.zeros(n, np.float32),
        }
    )


def _tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value) for key, value in arrays.items()}


@pytest.mark.slow  # ~15 s alone on 2 cores
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fisor_ends_with_lower_cost_than_bc_all(precision: str) -> None:
    torch.manual_seed(0)
    data = make_dataset()
    # small networks and fast target / EMA rates so that a short run settles; the algorithm is unchanged
    cfg = FISORConfig(
        critic_hidden=(64, 64),
        actor_width=64,
        actor_blocks=1,
        time_features=16,
        time_hidden=32,
        actor_dropout=0.0,
        polyak=0.05,
        ema_rate=0.05,
        actor_precision=precision,
    )
    fisor = FISOR(1, 1, cfg)
    fisor_data = _tensors(fisor_transitions(data, reward_scale=1.0))
    actor_opt = torch.optim.Adam(fisor.actor_parameters(), lr=1e-3)
    critic_opt = torch.optim.Adam(fisor.critic_parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    n = data.num_transitions
    for _ in range(800):
        batch = {k: v[torch.randint(0, n, (256,), generator=gen)] for k, v in fisor_data.items()}
        loss, _ = fisor.actor_loss(batch, generator=gen)
        actor_opt.zero_grad()
        loss.backward()
        actor_opt.step()
        fisor.update_actor_ema()
        for piece in (fisor.value_loss, fisor.q_loss):
            loss, _ = piece(batch)
            critic_opt.zero_grad()
            loss.backward()
            critic_opt.step()
        fisor.update_critic_targets()

    bc = BC(1, 1, BCConfig(hidden=(64, 64)))
    bc_data = _tensors(transitions(data))
    bc_opt = torch.optim.Adam(bc.parameters(), lr=1e-3)
    for _ in range(400):
        idx = torch.randint(0, n, (256,), generator=gen)
        loss, _ = bc.loss({"observations": bc_data["observations"][idx], "actions": bc_data["actions"][idx]})
        bc_opt.zero_grad()
        loss.backward()
        bc_opt.step()

    probe = torch.linspace(-1, 1, 200).unsqueeze(1)  # (200, 1)
    fisor.eval()
    fisor_cost = float((fisor.act(probe, generator=torch.Generator().manual_seed(1)) > HAZARD).float().mean())
    bc_cost = float((bc.act(probe) > HAZARD).float().mean())
    fisor_reward = float(fisor.act(probe, generator=torch.Generator().manual_seed(1)).mean())
    assert bc_cost > 0.8, bc_cost
    assert fisor_cost < 0.1, fisor_cost
    assert fisor_reward > -0.15, fisor_reward  # above the safe behaviour's mean action -0.25: reward still counts
