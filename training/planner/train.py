"""Train the G1 diffusion planner on expert rollouts (BeyondMimic's recipe, sized for a CPU).

    python -m training.planner.collect --out data/planner/g1_walk.h5 --episodes 400
    python -m training.planner.train --data data/planner/g1_walk.h5 --run-dir runs/g1_planner
    python -m training.planner.train --run-dir runs/g1_planner --resume     # the run's options from its config.json
    python -m training.planner.train --preset g1-planner-base              # the committed planner's recipes
    python -m training.planner.train --data data/planner/g1_walk_dr.h5 --run-dir runs/g1_planner_ft \
        --init-from assets/g1_planner/checkpoint/planner_model.pt --steps 3000 --planner.latent-dim 0

Windows of ``history + horizon`` consecutive steps are cut from every episode (:mod:`envs.planner.dataset`).
Token ``k`` of a window holds the planner state ``s_k`` and the action ``a_{k-1}`` that led to it, so at run
time every history token is fully known (the last ``Hh`` states and the ``Hh`` actions before the current
one) and the first planned token carries ``a_t``, the action to execute now, with ``s_{t+1}``, the state it is
expected to reach. The actions are by default the expert's clean ones (the data was collected with exploration
noise on the executed actions, so the states cover recoveries while the actions stay the expert's). Episodes,
not windows, are split into training and validation sets.

Two stages when the planner has an action latent (``planner.latent_dim > 0``, BeyondMimic v4): first the
action autoencoder (``vae_steps``), which is then frozen and its latent normaliser fitted; then the denoiser.
With ``latent_dim = 0`` the planner diffuses raw actions (the state-action variant) and stage one is skipped.
An EMA copy of the planner is what gets evaluated and exported.

``init_from`` fine-tunes: the run starts from a trained planner's weights (its ``planner_model.safetensors``,
normalisers included, so the network sees its inputs scaled as it learned them) with a fresh optimizer, learning-rate
schedule and EMA; a latent planner keeps its autoencoder and latent normaliser and trains the denoiser only.

Run folder (:mod:`training.run_dir`): ``config.json``, ``tb/`` (TensorBoard), ``metrics.csv`` (step, stage, train
loss, validation loss of the EMA model, steps/s), ``checkpoints/last.pt`` (full training state, atomic, every
``save_every`` steps, on SIGINT / SIGTERM and at the end; ``--resume`` continues it exactly) and
``model/planner_model.safetensors``: the EMA planner's
``PlannerConfig`` (as JSON-ready data), its weights and the data's control period, which
``python -m deploy.export_planner`` turns into a TorchScript planner with its guidance costs. Options, presets and
what ``--resume`` may change are in :mod:`training.planner.config`.
"""

from __future__ import annotations

import copy
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from envs.planner.dataset import PlannerDataset, load_planner_dataset
from envs.planner.state import PLANNER_STATE_DIM
from policies.critics.networks import polyak_update
from policies.diffusion.planner import PLANNER_MODEL_FORMAT, DiffusionPlanner, PlannerConfig, load_planner_model
from policies.model_file import save_model_file
from robot.configio import from_jsonable, to_jsonable
from robot.g1 import constants as C
from training.checkpoint import load_checkpoint, save_checkpoint, truncate_log_rows
from training.planner.config import ACTION_KEYS as ACTION_KEYS  # re-exported: callers import them from here
from training.planner.config import PRESETS, RESUME_MAY_CHANGE, PlannerTrainConfig, read_run_config
from training.planner.config import g1_planner_config as g1_planner_config
from training.run_config import check_resume, trainer_cli
from training.run_dir import RunDir
from training.stop import graceful_stop

NETWORK_FIELDS = (
    "state_dim",
    "action_dim",
    "history",
    "horizon",
    "latent_dim",
    "denoiser",
)
"""PlannerConfig fields that shape the networks: a planner initialised from another must agree on them."""
METRIC_FIELDS = ("step", "stage", "loss", "val_loss", "steps_per_s", "wall_s")


class WindowData:
    """Training and validation windows of a planner dataset, as index pairs into its episodes."""

    def __init__(self, data: PlannerDataset, cfg: PlannerTrainConfig) -> None:
        p = cfg.planner
        if p.state_dim != PLANNER_STATE_DIM or p.action_dim != C.NUM_JOINTS:
            raise ValueError(
                f"planner: state_dim/action_dim {p.state_dim}/{p.action_dim} do not fit the G1 data "
                f"({PLANNER_STATE_DIM}/{C.NUM_JOINTS})"
            )
        E, T, H = data.num_episodes, data.episode_steps, p.window
        if T < H + 1:
            raise ValueError(
                f"{cfg.data}: episodes of {T} steps are too short for the planner window ({H} steps after a first "
                "step whose action leads into it)"
            )
        if E < 2:
            raise ValueError(f"{cfg.data}: {E} episode(s); need at least 2 to hold one out for validation")
        self.states = torch.from_numpy(np.ascontiguousarray(data.arrays["state"], dtype=np.float32))
        self.actions = torch.from_numpy(np.ascontiguousarray(data.arrays[cfg.action_key], dtype=np.float32))
        self.window = H
        order = np.random.default_rng(cfg.seed).permutation(E)
        n_val = max(1, round(cfg.val_fraction * E))
        starts = np.arange(1, T - H + 1)  # window [t, t + H) pairs states t.. with actions t-1..

        def pairs(episodes: np.ndarray) -> torch.Tensor:
            e, t = np.meshgrid(np.sort(episodes), starts, indexing="ij")
            return torch.from_numpy(np.stack([e.ravel(), t.ravel()], axis=1))

        self.train = pairs(order[n_val:])
        self.val = pairs(order[:n_val])
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        pick = torch.randperm(len(self.val), generator=gen)[: cfg.val_windows]
        self.val_batch = self.batch(self.val[pick])
        self.ctrl_dt_s = data.ctrl_dt_s

    def batch(self, pairs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Windows ``states (B, H, S)`` and the actions that led to them ``(B, H, A)`` at ``(episode, start)``
        pairs ``(B, 2)`` (start >= 1)."""
        steps = pairs[:, 1:2] + torch.arange(self.window)  # (B, H)
        episodes = pairs[:, 0:1].expand_as(steps)
        return {"states": self.states[episodes, steps], "actions": self.actions[episodes, steps - 1]}

    def sample(self, batch_size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A random training batch."""
        return self.batch(self.train[torch.randint(len(self.train), (batch_size,), generator=gen)])


class PlannerTrainer:
    """One planner training run (see module docstring)."""

    def __init__(self, cfg: PlannerTrainConfig) -> None:
        self.cfg = cfg
        self.run_dir = run = RunDir(cfg.run_dir)
        if cfg.resume and run.config.is_file():
            check_resume(read_run_config(cfg.run_dir), cfg, RESUME_MAY_CHANGE, run.config)
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.data = WindowData(load_planner_dataset(cfg.data), cfg)
        self.planner = DiffusionPlanner(cfg.planner)
        self.planner.fit_normalizers(self.data.states, self.data.actions)
        self.ema: DiffusionPlanner | None = None
        self.latent = cfg.planner.latent_dim > 0
        self.step = 0
        self.wall_s = 0.0
        self.gen = torch.Generator().manual_seed(cfg.seed + 2)
        self._start_stage()
        if cfg.resume:
            self._load(run.resume_checkpoint())
        else:
            if cfg.init_from is not None:
                self._init_weights(cfg.init_from)
            run.start(json.dumps(to_jsonable(cfg), indent=2) + "\n", METRIC_FIELDS)

    @property
    def stage(self) -> str:
        """``"vae"`` while the autoencoder trains, then ``"denoiser"``."""
        return "vae" if self.latent and self.step < self.cfg.vae_steps else "denoiser"

    def _stage_steps(self) -> int:
        return self.cfg.vae_steps if self.stage == "vae" else self.cfg.steps

    def _start_stage(self) -> None:
        """Optimizer and schedule of the current stage (the autoencoder is frozen in the denoiser stage)."""
        vae = self.planner.decoder.vae
        if self.stage == "vae":
            assert vae is not None
            params = list(vae.parameters())
        else:
            if vae is not None:
                vae.requires_grad_(False)
            params = [p for p in self.planner.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, max(1, self._stage_steps()), eta_min=0.1 * self.cfg.lr
        )

    def _init_weights(self, path: Path) -> None:
        """Load a trained planner's weights (normalisers included) into the planner being trained."""
        model = load_planner_model(path)
        source = from_jsonable(PlannerConfig, model["planner_config"], f"{path}:planner_config")
        differ = {
            f: (getattr(self.cfg.planner, f), getattr(source, f))
            for f in NETWORK_FIELDS
            if getattr(self.cfg.planner, f) != getattr(source, f)
        }
        if differ:
            raise ValueError(
                f"init_from {path}: the planner config differs in its networks (field: this run, the file): {differ}; "
                "pass the file's values (e.g. --planner.latent-dim 0)"
            )
        self.planner.load_weights(model["weights"], without_action_head=True)

    def _enter_denoiser_stage(self) -> None:
        """After the autoencoder: fit the latent normaliser on the training data, start the EMA and optimizer."""
        if self.latent and self.cfg.init_from is None:
            idx = self.data.train[torch.randperm(len(self.data.train), generator=self.gen)[:20000]]
            b = self.data.batch(idx)
            self.planner.fit_latent_normalizer(b["states"], b["actions"])
        self._start_stage()
        self.ema = copy.deepcopy(self.planner).requires_grad_(False).eval()

    # ----- one step -------------------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One optimisation step of the current stage; returns its loss."""
        if self.stage == "denoiser" and self.ema is None:
            self._enter_denoiser_stage()
        batch = self.data.sample(self.cfg.batch_size, self.gen)
        self.planner.train()
        if self.stage == "vae":
            loss, _ = self.planner.vae_loss(batch)
        else:
            batch["seed"] = torch.randint(2**31 - 1, (), generator=self.gen)
            loss, _ = self.planner.loss(batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.stage == "denoiser" and self.ema is not None:
            polyak_update(self.ema, self.planner, self.cfg.ema_rate)
        self.step += 1
        if self.latent and self.step == self.cfg.vae_steps:
            self._enter_denoiser_stage()
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Loss of the evaluated model on the fixed validation windows (fixed noise): autoencoder in stage one,
        the EMA denoiser after. Its noise is fixed and the training RNG streams are left untouched, so scoring
        more or less often never changes the training run."""
        batch = dict(self.data.val_batch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(12345)
            if self.stage == "vae":
                self.planner.eval()
                loss, _ = self.planner.vae_loss(batch)
                return float(loss)
            model = self.ema if self.ema is not None else self.planner
            batch["seed"] = torch.tensor(12345)
            loss, _ = model.loss(batch)
            return float(loss)

    # ----- checkpoints ----------------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The full training state."""
        return {
            "planner": self.planner.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "wall_s": self.wall_s,
            "gen": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": to_jsonable(self.cfg),
        }

    def model_file(self) -> dict[str, Any]:
        """What inference needs: the EMA planner's config and weights and the data's control period."""
        model = self.ema if self.ema is not None else self.planner
        return {
            "format": PLANNER_MODEL_FORMAT,
            "planner_config": to_jsonable(self.cfg.planner),
            "weights": model.weights(),
            "ctrl_dt_s": self.data.ctrl_dt_s,
            "step": self.step,
            "data": str(self.cfg.data),
        }

    def save(self) -> Path:
        """Write checkpoints/last.pt and model/planner_model.{safetensors,json} atomically."""
        path = save_checkpoint(self.checkpoint(), self.run_dir.last)
        save_model_file(self.run_dir.model("planner_model.safetensors"), self.model_file())
        return path

    def _load(self, path: Path) -> None:
        state = load_checkpoint(path)
        for key in ("planner", "opt", "step", "gen"):
            if key not in state:
                raise ValueError(f"{path}: not a planner training checkpoint (no {key!r} entry)")
        self.planner.load_state_dict(state["planner"])
        self.step = int(state["step"])
        self.wall_s = float(state["wall_s"])
        if self.stage == "denoiser" and state["ema"] is not None:
            if self.planner.decoder.vae is not None:
                self.planner.decoder.vae.requires_grad_(False)
            self.ema = copy.deepcopy(self.planner).requires_grad_(False).eval()
            self.ema.load_state_dict(state["ema"])
        self._start_stage()
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        truncate_log_rows(self.run_dir.metrics, self.step, METRIC_FIELDS)

    # ----- loop -----------------------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train to ``total_steps`` (or ``max_minutes`` / a stop signal), checkpointing; returns last.pt."""
        cfg = self.cfg
        total = cfg.total_steps
        writer = SummaryWriter(log_dir=str(self.run_dir.tb), purge_step=self.step)
        bar = tqdm(total=total, initial=self.step, desc="planner", unit="step", dynamic_ncols=True)
        start = time.monotonic()
        last = self.run_dir.last
        losses: list[float] = []
        with graceful_stop() as stop, self.run_dir.metrics.open("a", newline="") as handle:
            rows = csv.writer(handle)
            tick = time.perf_counter()
            while self.step < total:
                stage = self.stage
                losses.append(self.train_step())
                bar.update(1)
                done = self.step == total
                out_of_time = cfg.max_minutes is not None and time.monotonic() - start > 60.0 * cfg.max_minutes
                halt = out_of_time or stop.signal is not None
                if self.step % cfg.eval_every == 0 or done or halt:
                    now = time.perf_counter()
                    self.wall_s += now - tick
                    rate = len(losses) / max(now - tick, 1e-9)
                    val = self.validation_loss()
                    train_loss = float(np.mean(losses))
                    writer.add_scalar(f"{stage}/loss", train_loss, self.step)
                    writer.add_scalar(f"{stage}/val_loss", val, self.step)
                    writer.add_scalar("perf/steps_per_s", rate, self.step)
                    writer.add_scalar("train/lr", self.opt.param_groups[0]["lr"], self.step)
                    rows.writerow([self.step, stage, train_loss, val, round(rate, 2), round(self.wall_s, 1)])
                    handle.flush()
                    bar.set_postfix(stage=stage, loss=f"{train_loss:.4f}", val=f"{val:.4f}")
                    losses, tick = [], time.perf_counter()
                if self.step % cfg.save_every == 0 or done or halt:
                    last = self.save()
                if halt:
                    why = f"after {cfg.max_minutes} min" if out_of_time else f"on signal {stop.signal}"
                    tqdm.write(f"stopping {why} at step {self.step}: {last}")
                    break
        bar.close()
        writer.close()
        return last


def main(cfg: PlannerTrainConfig) -> None:
    """CLI entry point."""
    trainer = PlannerTrainer(cfg)
    d = trainer.data
    n_params = sum(p.numel() for p in trainer.planner.parameters())
    print(
        f"G1 planner: {n_params / 1e6:.2f} M parameters, {len(d.train)} training / {len(d.val)} validation windows "
        f"from {cfg.data}; {'resumed at' if cfg.resume else 'starting at'} step {trainer.step}/{cfg.total_steps}"
    )
    path = trainer.run()
    print(f"checkpoint: {path}; planner: {RunDir(cfg.run_dir).model('planner_model.safetensors')}")


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-train-planner``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return trainer_cli(
        PlannerTrainConfig,
        main,
        args,
        run_config=read_run_config,
        may_change=RESUME_MAY_CHANGE,
        presets=PRESETS,
        description="Train the G1 diffusion planner on expert rollouts.",
    )


if __name__ == "__main__":
    sys.exit(cli())
