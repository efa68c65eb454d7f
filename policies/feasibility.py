"""A Hamilton-Jacobi feasibility critic on a planner's states: FISOR's safety value for guidance at sampling time.

FISOR (Zheng et al., ICLR 2024) learns, from offline transitions ``(s, a, h, s')`` with a constraint signal
``h`` (> 0 violated), the discounted reachability value of Fisac et al. (2019) with a reversed expectile, so that it
approaches the *best* the data's actions can do from a state::

    Q_h(s, a) <- (1 - g) h(s) + g max(h(s), V_h(s'))          (FISOR eq. 6; V_h(s') = h_end where s' violated
                                                              and ended the episode)
    V_h(s)    <- reversed tau-expectile over a of max_i Qbar_h,i(s, a)   (eq. 8; tau -> 1: min over actions)

A state is feasible when ``V_h(s) <= 0``: from it some recorded behaviour keeps every constraint. FISOR uses the
value to weight a diffusion actor; here the value of the *predicted* states guides a diffusion planner instead
(``envs.planner.feasibility.FeasibilityCost``), so only ``V_h`` (states in, value out, smooth activations for a
useful input gradient) is exported; ``Q_h`` and its target serve training.
"""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from policies.critics import hj_target, polyak_update, reversed_expectile_loss
from policies.critics.networks import mlp
from policies.model_file import read_model_payload
from policies.normalizer import Normalizer

CRITIC_FORMAT = "steer.feasibility_critic"
CRITIC_VERSION = 1
"""``critic.pt``: plain data (``torch.load(weights_only=True)``) with ``format``, ``version``, ``state_dim``,
``hidden``, the training settings and ``weights`` (the :class:`StateFeasibility` state dict)."""


@dataclass
class FeasibilityCriticConfig:
    """Networks and losses of :class:`FeasibilityCritic`."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of ``Q_h`` and ``V_h``."""
    num_q_heads: int = 2
    """``Q_h`` ensemble size (the target takes their maximum, FISOR's pessimism for a cost)."""
    discount: float = 0.98
    """``g``: per control step (0.98 at 50 Hz: a violation 0.7 s ahead still makes a state infeasible)."""
    expectile: float = 0.9
    """Reversed-expectile ``tau`` of ``V_h`` (FISOR: 0.9)."""
    polyak: float = 0.005
    """Target network rate."""
    h_end: float = 1.0
    """``V_h`` of the state a fall ended in (not recorded: the episode resets there)."""
    action_chunk: int = 1
    """K: ``Q_h`` scores the next K actions as one chunk, ``Q_h(s_t, a_t..a_{t+K-1})``, backed up over K steps
    (``h`` the chunk's largest, discount ``g^K``, ``V_h(s_{t+K})``). At 50 Hz one action hardly moves the next
    state, so a one-step ``Q_h`` barely depends on it; a chunk spans a reaction."""

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0 or not 0.5 <= self.expectile < 1.0:
            raise ValueError(
                f"expected 0 < discount < 1 and 0.5 <= expectile < 1, got {self.discount}, {self.expectile}"
            )
        if self.action_chunk < 1:
            raise ValueError(f"action_chunk: expected >= 1, got {self.action_chunk}")
        if not self.hidden or min(self.hidden) < 1 or self.num_q_heads < 1:
            raise ValueError(f"hidden and num_q_heads must be positive, got {self.hidden}, {self.num_q_heads}")


class StateFeasibility(nn.Module):
    """``V_h``: planner states ``(..., S)`` in physical units -> ``(...)``, normaliser included (what the export
    carries)."""

    state_dim: int

    def __init__(self, state_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.state_dim = int(state_dim)
        self.normalizer = Normalizer(state_dim)
        self.net = mlp(state_dim, list(hidden), 1, activation=nn.SiLU)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if states.shape[-1] != self.state_dim:
            raise ValueError("V_h: expected states (..., " + str(self.state_dim) + "), got " + str(list(states.shape)))
        return self.net(self.normalizer.normalize(states)).squeeze(-1)


class StateActionFeasibility(nn.Module):
    """``Q_h`` heads on normalised states and chunks of K actions: ``(B, S), (B, K * A) -> (E, B)`` (K =
    ``action_chunk``, the steps flattened in time order)."""

    state_dim: int
    action_dim: int
    action_chunk: int

    def __init__(self, normalizer: Normalizer, action_dim: int, cfg: FeasibilityCriticConfig) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.state_dim = int(normalizer.offset.shape[-1])
        self.action_dim = int(action_dim)
        self.action_chunk = int(cfg.action_chunk)
        width = self.state_dim + self.action_dim * self.action_chunk
        self.heads = nn.ModuleList(
            [mlp(width, list(cfg.hidden), 1, activation=nn.SiLU) for _ in range(cfg.num_q_heads)]
        )

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.normalizer.normalize(states), actions], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


class FeasibilityCritic(nn.Module):
    """``V_h`` and ``Q_h`` (plus its target) with FISOR's losses (module docstring).

    Batches: ``states (B, S)``, ``actions (B, K * A)``, ``h (B,)``, ``next_states (B, S)`` and ``ended (B,)`` (1
    where the transition ended in a violation: ``s'`` was not recorded and its value is ``h_end``). With a chunk of
    K > 1 actions a transition spans K steps: ``h`` is the largest signal over them, ``next_states`` the state K
    steps on, and the backup discounts by ``g^K``.
    """

    def __init__(self, state_dim: int, action_dim: int, cfg: FeasibilityCriticConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FeasibilityCriticConfig()
        self.value = StateFeasibility(state_dim, self.cfg.hidden)
        self.q = StateActionFeasibility(self.value.normalizer, action_dim, self.cfg)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    def fit_normalizer(self, states: torch.Tensor) -> None:
        """Gaussian statistics of the states (shared by ``V_h`` and ``Q_h``), before training."""
        self.value.normalizer.fit(states)
        self.q_target.normalizer.load_state_dict(self.value.normalizer.state_dict())

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """``L(V_h) + L(Q_h)``; ``V_h`` regresses on the target heads, ``Q_h`` on the HJ backup of ``V_h(s')``."""
        s, a, h = batch["states"], batch["actions"], batch["h"]
        with torch.no_grad():
            q_bar = self.q_target(s, a).max(dim=0).values  # (B,)
            v_next = self.value(batch["next_states"])
            v_next = torch.where(batch["ended"] > 0.5, torch.full_like(v_next, self.cfg.h_end), v_next)
            target = hj_target(h, v_next, torch.ones_like(h), self.cfg.discount**self.cfg.action_chunk)
        v = self.value(s)
        loss_v = reversed_expectile_loss(q_bar - v, self.cfg.expectile).mean()
        q = self.q(s, a)  # (E, B)
        loss_q = ((q - target) ** 2).mean()
        return loss_v + loss_q, {
            "loss_v": float(loss_v.detach()),
            "loss_q": float(loss_q.detach()),
            "v_mean": float(v.detach().mean()),
        }

    def update_target(self) -> None:
        """Polyak step of the ``Q_h`` target."""
        polyak_update(self.q_target, self.q, self.cfg.polyak)


def _read_critic_file(path: Path) -> dict[str, Any]:
    """The critic file at ``path`` (``critic.safetensors`` with its ``.json``, or a ``critic.pt`` of the earlier
    layout), format checked; a missing, unreadable or foreign file is one clear
    error naming it."""
    path = Path(path)
    obj = read_model_payload(path, "feasibility critic", "train one with python -m training.planner.feasibility")
    if obj.get("format") != CRITIC_FORMAT or obj.get("version") != CRITIC_VERSION:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: expected a {CRITIC_FORMAT!r} v{CRITIC_VERSION} file, found {found!r}")
    return obj


def _frozen(module: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``weights`` into ``module`` (a mismatch names the file) and freeze it in eval mode."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the file's own network ({str(exc).splitlines()[0]})") from exc
    module.eval().requires_grad_(False)


def load_feasibility_critic(path: Path) -> tuple[StateFeasibility, dict[str, Any]]:
    """``V_h`` of a ``critic.pt`` (``python -m training.planner.feasibility``), in eval mode with frozen weights,
    and the file's other entries; a missing, unreadable or foreign file is one clear error naming it."""
    obj = _read_critic_file(path)
    value = StateFeasibility(int(obj["state_dim"]), tuple(int(w) for w in obj["hidden"]))
    _frozen(value, obj["weights"], path)
    return value, {k: v for k, v in obj.items() if k not in ("weights", "q_weights")}


def load_feasibility_q(path: Path) -> StateActionFeasibility:
    """``Q_h`` of a ``critic.pt`` that carries it (``q_weights``), frozen, in eval mode; one clear error otherwise."""
    obj = _read_critic_file(path)
    if "q_weights" not in obj:
        raise ValueError(f"{path}: holds V_h only; retrain, or resume the run once to rewrite it with Q_h")
    chunk = int(obj.get("critic", {}).get("action_chunk", 1))  # files written before chunks score one action
    cfg = FeasibilityCriticConfig(
        hidden=tuple(int(w) for w in obj["hidden"]), num_q_heads=int(obj["num_q_heads"]), action_chunk=chunk
    )
    q = StateActionFeasibility(Normalizer(int(obj["state_dim"])), int(obj["action_dim"]), cfg)
    _frozen(q, obj["q_weights"], path)
    return q
