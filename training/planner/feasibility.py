"""Train FISOR's Hamilton-Jacobi feasibility critic on the G1 planner's states, for guidance at sampling time.

    python -m training.planner.collect --policy assets/g1_walk/actor.pt --out data/planner/g1_walk_falls.h5 \\
        --episodes 400 --num-envs 100 --num-threads 1 --randomize --keep-falls --push-velocity-m-per-s 1.0 \\
        --push-interval-s 2.5 --noise.sigma 0.2 --seed 11
    python -m training.planner.feasibility --preset g1-feasibility     # + data/planner/g1_walk_dr.h5

Data: planner datasets (:mod:`envs.planner.dataset`), at least one collected with ``--keep-falls`` so that the
critic sees both sides of the fall line: episodes that end in a fall (``fell_at``) and episodes that stand.
Transitions ``(s_t, a_t, h(s_t), s_{t+1})`` run up to each episode's last recorded state; the transition whose
action led to a fall ends there with ``V_h(s') = h_end`` (the fallen state is not recorded, the world reset).
``h`` is :func:`envs.planner.feasibility.constraint_signal` (fall line, joint limits), ``a`` the executed action.
The losses are :class:`policies.feasibility.FeasibilityCritic`'s (FISOR eq. 6-8); validation episodes are held
out by episode.

Run folder (:mod:`training.run_dir`): ``config.json``, ``metrics.csv`` (step, losses, validation classification),
``checkpoints/last.pt`` (full state, atomic, every ``save_every`` steps, on SIGINT / SIGTERM and at the end;
``--resume`` continues it), ``model/critic.safetensors`` (``V_h`` and ``Q_h`` without the training state: what
``python -m deploy.export_planner --feasibility-critic`` puts into the planner) and ``report.json``: the critic's
own numbers on held-out episodes, the share of states it classes feasible (``V_h <= 0``) against what then
happened, and its mean value by time left before a fall.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from envs.g1.observations import yaw_from_quat
from envs.planner.dataset import PlannerDatasetError, load_planner_dataset
from envs.planner.feasibility import REGION_DIM, ConstraintConfig, constraint_signal, region_offset
from envs.planner.state import PLANNER_STATE_DIM
from policies.feasibility import (
    CRITIC_FORMAT,
    CRITIC_VERSION,
    FeasibilityCritic,
    StateFeasibility,
)
from policies.model_file import save_model_file
from robot.configio import to_jsonable
from robot.files import atomic_write_text
from robot.g1 import constants as C
from training.checkpoint import load_checkpoint, save_checkpoint, truncate_log_rows
from training.planner.config import (
    FEASIBILITY_PRESETS,
    FEASIBILITY_RESUME_MAY_CHANGE,
    FeasibilityTrainConfig,
    read_feasibility_run_config,
)
from training.run_config import check_resume, trainer_cli
from training.run_dir import RunDir
from training.stop import graceful_stop

METRIC_FIELDS = (
    "step",
    "loss_v",
    "loss_q",
    "v_mean",
    "val_feasible_stood",
    "val_infeasible_before_fall",
    "steps_per_s",
)
TIME_TO_FALL_BINS_S = (0.0, 0.2, 0.5, 1.0, 2.0)
"""Edges of the report's time-before-a-fall bins (the last bin is open)."""


@dataclass
class Transitions:
    """Flat transitions of a set of episodes (tensors on the CPU)."""

    states: torch.Tensor  # (N, S)
    actions: torch.Tensor  # (N, A)
    h: torch.Tensor  # (N,)
    next_states: torch.Tensor  # (N, S)
    ended: torch.Tensor  # (N,) 1: the action led to a fall
    steps_to_fall: torch.Tensor  # (N,) control steps from s to the fall or keep-out entry (-1: none came)

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The critic's batch of rows ``idx``."""
        return {
            "states": self.states[idx],
            "actions": self.actions[idx],
            "h": self.h[idx],
            "next_states": self.next_states[idx],
            "ended": self.ended[idx],
        }


@dataclass(frozen=True)
class RegionSampling:
    """How a keep-out critic's regions are drawn in hindsight, one per transition: the centre lies within
    ``spread_m`` of where the pelvis was ``k`` steps later, ``k`` uniform in ``0..lookahead_steps`` (clipped to the
    episode), so some recorded paths run into their region and others pass by or turn away."""

    lookahead_steps: int
    spread_m: float
    seed: int
    far_fraction: float = 0.0
    """Share of regions drawn anywhere within ``far_m`` of the pelvis instead, so that the critic also learns that
    a distant region is no danger (without them its value climbs again beyond the distances it saw)."""
    far_m: float = 6.0
    entry_window_steps: int = 100
    """How far ahead the report looks for the pelvis entering the region (``steps_to_fall`` counts to the first
    violation, a fall or an entry)."""


def transitions(
    arrays: dict[str, np.ndarray],
    episodes: np.ndarray,
    cfg: ConstraintConfig,
    chunk: int = 1,
    regions: RegionSampling | None = None,
) -> Transitions:
    """The transitions of ``episodes`` (module docstring), each spanning ``chunk`` control steps: the actions
    ``a_t..a_{t+K-1}`` (flattened), the largest ``h`` over ``s_t..s_{t+K-1}`` and the state ``s_{t+K}``. A chunk
    that holds the action that fell ends there (its steps past the fall repeat that action, its next state is never
    read); an episode that stood gives the chunks that end on a recorded state. ``arrays`` as in
    :mod:`envs.planner.dataset`, with ``fell_at`` (T where absent: every episode stood).

    With a keep-out constraint (``cfg.keepout_radius_m > 0``) every transition gets its own region, drawn by
    ``regions`` in the world: its states carry the region's offset (:func:`envs.planner.feasibility.region_offset`)
    after the planner state, the current and the next state relative to the same centre, and ``h`` counts the
    keep-out signal."""
    if chunk < 1:
        raise ValueError(f"chunk: expected >= 1, got {chunk}")
    if cfg.keepout and regions is None:
        raise ValueError("transitions: a keep-out constraint needs a RegionSampling")
    state, joint_pos, action = arrays["state"], arrays["joint_pos"], arrays["action"]
    e_all, t_all = state.shape[:2]
    fell_at = arrays.get("fell_at", np.full(e_all, t_all, dtype=np.int32)).astype(np.int64)
    rows_e, rows_t, ended, to_fall = [], [], [], []
    for e in episodes:
        f = int(fell_at[e])
        # transitions t -> t + K with t + K recorded before the fall, plus (episodes that fell) every chunk from a
        # recorded state that reaches the action that fell
        n = f + 1 if f < t_all else max(t_all - chunk, 0)
        t = np.arange(n)
        rows_e.append(np.full(len(t), e))
        rows_t.append(t)
        ended.append(t + chunk - 1 >= f)
        to_fall.append(f - t if f < t_all else np.full(len(t), -1))
    e_idx, t_idx = np.concatenate(rows_e), np.concatenate(rows_t)
    end = np.concatenate(ended)
    last = np.minimum(fell_at[e_idx], t_all - 1)  # the episode's last recorded step
    steps = np.minimum(t_idx[:, None] + np.arange(chunk)[None, :], last[:, None])  # (N, K), past the fall: its step
    nxt = np.where(end, t_idx, t_idx + chunk)  # an ended row's next state is never read (its value is h_end)
    states, next_states = state[e_idx, t_idx], state[e_idx, nxt]
    steps_to_fall = np.concatenate(to_fall).astype(np.int64)
    region = None
    if cfg.keepout:
        assert regions is not None
        xy, yaw = arrays["root_pos"][..., :2].astype(np.float64), yaw_from_quat(arrays["root_quat"].astype(np.float64))
        gen = np.random.default_rng(regions.seed)
        n = len(t_idx)
        ahead = np.minimum(t_idx + gen.integers(0, regions.lookahead_steps + 1, n), last)
        angle, radius = gen.uniform(-np.pi, np.pi, n), regions.spread_m * np.sqrt(gen.uniform(0.0, 1.0, n))
        far = gen.uniform(0.0, 1.0, n) < regions.far_fraction
        radius[far] = regions.far_m * np.sqrt(gen.uniform(0.0, 1.0, int(far.sum())))
        anchor = np.where(far[:, None], xy[e_idx, t_idx], xy[e_idx, ahead])
        center = anchor + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (N, 2)

        def offset(t: np.ndarray) -> np.ndarray:  # the centre seen from step t of each row's episode
            c = center if t.ndim == 1 else center[:, None, :]
            e = e_idx if t.ndim == 1 else e_idx[:, None]
            return region_offset(c, xy[e, t], yaw[e, t]).astype(np.float32)

        region = offset(steps)  # (N, K, 2)
        states = np.concatenate([states, offset(t_idx)], axis=1)
        next_states = np.concatenate([next_states, offset(nxt)], axis=1)
        entry = _steps_to_entry(center, xy, e_idx, t_idx, last, cfg.keepout_radius_m, regions.entry_window_steps)
        steps_to_fall = np.where((entry >= 0) & ((steps_to_fall < 0) | (entry < steps_to_fall)), entry, steps_to_fall)
    h_steps = constraint_signal(
        state[e_idx[:, None], steps].astype(np.float64),
        joint_pos[e_idx[:, None], steps].astype(np.float64),
        cfg,
        region,
    )  # (N, K)
    return Transitions(
        states=torch.from_numpy(np.ascontiguousarray(states)),
        actions=torch.from_numpy(action[e_idx[:, None], steps].reshape(len(t_idx), -1)),
        h=torch.from_numpy(h_steps.max(axis=1).astype(np.float32)),
        next_states=torch.from_numpy(np.ascontiguousarray(next_states)),
        ended=torch.from_numpy(end.astype(np.float32)),
        steps_to_fall=torch.from_numpy(steps_to_fall),
    )


def _steps_to_entry(
    center: np.ndarray,
    xy: np.ndarray,
    e_idx: np.ndarray,
    t_idx: np.ndarray,
    last: np.ndarray,
    radius_m: float,
    window: int,
) -> np.ndarray:
    """Steps from each row's state until its pelvis is first inside its region (0: already inside), looking at most
    ``window`` steps ahead and not past the episode's last recorded step; -1 where it does not enter."""
    out = np.full(len(t_idx), -1, dtype=np.int64)
    for lo in range(0, len(t_idx), 65536):  # bounded memory: rows x window distances at a time
        sl = slice(lo, lo + 65536)
        t = np.minimum(t_idx[sl, None] + np.arange(window + 1)[None, :], last[sl, None])  # (n, W + 1)
        inside = np.linalg.norm(xy[e_idx[sl, None], t] - center[sl, None, :], axis=-1) < radius_m
        inside &= t_idx[sl, None] + np.arange(window + 1)[None, :] <= last[sl, None]
        first = inside.argmax(axis=1)
        out[sl] = np.where(inside.any(axis=1), first, -1)
    return out


def load_data(cfg: FeasibilityTrainConfig) -> tuple[Transitions, Transitions, float]:
    """Training and validation transitions of ``cfg.data`` (episodes split per file) and the control period."""
    train, val, dt = [], [], None
    gen = np.random.default_rng(cfg.seed)
    falls = 0
    for path in cfg.data:
        data = load_planner_dataset(path, allow_falls=True)
        if dt is not None and abs(data.ctrl_dt_s - dt) > 1e-9:
            raise PlannerDatasetError(f"{path}: control period {data.ctrl_dt_s} s, the first file's is {dt} s")
        dt = data.ctrl_dt_s
        arrays = data.arrays
        if "fell_at" in arrays:
            falls += int((arrays["fell_at"] < data.episode_steps).sum())
        order = gen.permutation(data.num_episodes)
        n_val = max(1, round(cfg.val_fraction * data.num_episodes))
        chunk = cfg.critic.action_chunk
        regions = [  # keep-out critics: their own draws for each file's validation and training episodes
            RegionSampling(
                round(cfg.keepout_lookahead_s / dt),
                cfg.keepout_spread_m,
                cfg.seed + 1 + 2 * len(val) + k,
                cfg.keepout_far_fraction,
                cfg.keepout_far_m,
            )
            if cfg.constraints.keepout
            else None
            for k in (0, 1)
        ]
        val.append(transitions(arrays, order[:n_val], cfg.constraints, chunk, regions[0]))
        train.append(transitions(arrays, order[n_val:], cfg.constraints, chunk, regions[1]))
    if falls == 0 and not cfg.constraints.keepout:
        raise PlannerDatasetError(
            f"{', '.join(map(str, cfg.data))}: no episode ends in a fall; the critic needs both outcomes (collect one "
            "with `python -m training.planner.collect --keep-falls` and stronger pushes)"
        )

    def cat(parts: list[Transitions]) -> Transitions:
        return Transitions(*(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Transitions)))

    assert dt is not None
    return cat(train), cat(val), dt


def soon_key(horizon_s: float) -> str:
    """The report's key of the share of states within ``horizon_s`` before a fall classed infeasible."""
    return f"infeasible_share_last_{horizon_s:g}_s_before_a_fall"


@torch.no_grad()
def report(value: StateFeasibility, val: Transitions, ctrl_dt_s: float, horizon_s: float) -> dict[str, Any]:
    """The critic's classification of held-out states against what happened (module docstring). The keys say
    "fall"; for a keep-out critic they count the first violation, a fall or an entry into the region (within the
    report's window of :class:`RegionSampling`), and "stood" means none came."""
    v = torch.cat([value(val.states[i : i + 8192]) for i in range(0, len(val), 8192)]).numpy()
    to_fall_s = val.steps_to_fall.numpy() * ctrl_dt_s
    stood = val.steps_to_fall.numpy() < 0
    soon = (~stood) & (to_fall_s <= horizon_s)
    out: dict[str, Any] = {
        "states": len(val),
        "states_of_episodes_that_stood": int(stood.sum()),
        "states_before_a_fall": int((~stood).sum()),
        "feasible_share_stood": float((v[stood] <= 0).mean()) if stood.any() else None,
        soon_key(horizon_s): float((v[soon] > 0).mean()) if soon.any() else None,
        "mean_value_stood": float(v[stood].mean()) if stood.any() else None,
    }
    bins = []
    edges = [*TIME_TO_FALL_BINS_S, float("inf")]
    for lo, hi in itertools.pairwise(edges):
        m = (~stood) & (to_fall_s >= lo) & (to_fall_s < hi)
        bins.append(
            {
                "time_before_fall_s": [lo, hi],
                "states": int(m.sum()),
                "mean_value": float(v[m].mean()) if m.any() else None,
                "infeasible_share": float((v[m] > 0).mean()) if m.any() else None,
            }
        )
    out["by_time_before_fall"] = bins
    return out


def critic_state_dim(constraints: ConstraintConfig) -> int:
    """Columns the critic reads: the planner state, then the region offset of a keep-out constraint."""
    return PLANNER_STATE_DIM + (REGION_DIM if constraints.keepout else 0)


def keepout_range_m(cfg: FeasibilityTrainConfig) -> float:
    """How far from the pelvis the keep-out critic's regions were drawn: beyond it the guidance term reads a
    region as if at this distance (:class:`envs.planner.feasibility.KeepOutCost`)."""
    near = cfg.keepout_spread_m + cfg.keepout_lookahead_s * 1.5  # the data walk at most ~1.5 m/s
    return max(near, cfg.keepout_far_m) if cfg.keepout_far_fraction > 0.0 else near


def critic_file(critic: FeasibilityCritic, cfg: FeasibilityTrainConfig, ctrl_dt_s: float) -> dict[str, Any]:
    """The exported ``V_h`` as plain data (``model/critic.safetensors`` with its ``.json``)."""
    return {
        "format": CRITIC_FORMAT,
        "version": CRITIC_VERSION,
        "state_dim": critic_state_dim(cfg.constraints),
        "hidden": list(cfg.critic.hidden),
        "critic": to_jsonable(cfg.critic),
        "constraints": to_jsonable(cfg.constraints),
        "keepout_range_m": keepout_range_m(cfg) if cfg.constraints.keepout else None,
        "ctrl_dt_s": ctrl_dt_s,
        "data": [str(p) for p in cfg.data],
        "weights": {k: v.detach().clone() for k, v in critic.value.state_dict().items()},
        "action_dim": C.NUM_JOINTS,
        "num_q_heads": cfg.critic.num_q_heads,
        "q_weights": {k: v.detach().clone() for k, v in critic.q.state_dict().items()},
    }


class FeasibilityTrainer:
    """The training loop, its checkpoints and resume (module docstring)."""

    def __init__(self, cfg: FeasibilityTrainConfig) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads)
        self.train, self.val, self.ctrl_dt_s = load_data(cfg)
        torch.manual_seed(cfg.seed)
        # V_h reads the planner state (and a keep-out region's offset), Q_h also K x 29 actions
        self.critic = FeasibilityCritic(critic_state_dim(cfg.constraints), C.NUM_JOINTS, cfg.critic)
        self.critic.fit_normalizer(self.train.states)
        self.opt = torch.optim.Adam([*self.critic.value.parameters(), *self.critic.q.parameters()], lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self.run_dir = run = RunDir(cfg.run_dir)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            check_resume(read_feasibility_run_config(cfg.run_dir), cfg, FEASIBILITY_RESUME_MAY_CHANGE, run.config)
            self._load(run.resume_checkpoint())
        else:
            run.start(json.dumps(to_jsonable(cfg), indent=2) + "\n", METRIC_FIELDS)

    def save(self) -> Path:
        """``checkpoints/last.pt`` and ``model/critic.safetensors`` (atomic)."""
        path = self.run_dir.last
        save_checkpoint(
            {
                "step": self.step,
                "critic": self.critic.state_dict(),
                "opt": self.opt.state_dict(),
                "gen": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            path,
        )
        save_model_file(self.run_dir.model("critic.safetensors"), critic_file(self.critic, self.cfg, self.ctrl_dt_s))
        return path

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from (start the run without --resume)")
        state = load_checkpoint(path)
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        truncate_log_rows(self.run_dir.metrics, self.step, METRIC_FIELDS)

    def evaluate(self) -> dict[str, Any]:
        """:func:`report` on the validation episodes."""
        return report(self.critic.value, self.val, self.ctrl_dt_s, self.cfg.horizon_s)

    def run(self) -> dict[str, Any]:
        """Train to ``steps``, checkpointing; returns the final report (also written to ``report.json``)."""
        cfg = self.cfg
        last_t, last_step, logs = time.perf_counter(), self.step, {}
        bar = tqdm(total=cfg.steps, initial=self.step, desc="feasibility critic", unit="step")
        with graceful_stop() as stop, self.run_dir.metrics.open("a", newline="") as handle:
            writer = csv.writer(handle)
            while self.step < cfg.steps and stop.signal is None:
                idx = torch.randint(len(self.train), (cfg.batch_size,), generator=self.gen)
                loss, logs = self.critic.loss(self.train.batch(idx))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.critic.update_target()
                self.step += 1
                bar.update(1)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    rep = self.evaluate()
                    now = time.perf_counter()
                    rate = (self.step - last_step) / max(now - last_t, 1e-9)
                    last_t, last_step = now, self.step
                    soon = rep[soon_key(cfg.horizon_s)]
                    writer.writerow(
                        [
                            self.step,
                            *(f"{logs[k]:.5f}" for k in ("loss_v", "loss_q", "v_mean")),
                            f"{rep['feasible_share_stood']:.4f}",
                            f"{soon:.4f}",
                            f"{rate:.1f}",
                        ]
                    )
                    handle.flush()
                    bar.set_postfix(stood_ok=f"{rep['feasible_share_stood']:.3f}", fall_seen=f"{soon:.3f}")
                if self.step % cfg.save_every == 0:
                    self.save()
        bar.close()
        self.save()
        rep = self.evaluate()
        rep["step"] = self.step
        atomic_write_text(cfg.run_dir / "report.json", json.dumps(rep, indent=2) + "\n")
        return rep


def main(cfg: FeasibilityTrainConfig) -> None:
    """CLI entry point."""
    trainer = FeasibilityTrainer(cfg)
    print(
        f"feasibility critic: {len(trainer.train)} training / {len(trainer.val)} validation transitions from "
        f"{', '.join(map(str, cfg.data))}; {'resumed at' if cfg.resume else 'starting at'} step {trainer.step}"
    )
    rep = trainer.run()
    soon = rep[soon_key(cfg.horizon_s)]
    event = "fall or keep-out entry" if cfg.constraints.keepout else "fall"
    print(
        f"{RunDir(cfg.run_dir).model('critic.safetensors')}: held-out states with no {event} ahead classed feasible "
        f"{rep['feasible_share_stood']:.1%}; states in the last {cfg.horizon_s:g} s before a {event} classed "
        f"infeasible {soon:.1%} (report.json)"
    )


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``python -m training.planner.feasibility``: a user's mistake is one line and exit code 2."""
    return trainer_cli(
        FeasibilityTrainConfig,
        main,
        args,
        run_config=read_feasibility_run_config,
        may_change=FEASIBILITY_RESUME_MAY_CHANGE,
        presets=FEASIBILITY_PRESETS,
        description="Train a Hamilton-Jacobi feasibility critic (FISOR) on the G1 planner's states.",
    )


if __name__ == "__main__":
    sys.exit(cli())
