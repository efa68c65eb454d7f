"""Options of the G1 planner trainer (``python -m training.planner.train``), of its action-head fit
(``python -m training.planner.action_head``) and of the feasibility critic (``python -m training.planner.feasibility``),
what a ``--resume`` of each may change, and the named presets: the recipes of the committed planner
(``assets/g1_planner``) and critic (``assets/g1_feasibility``).

    python -m training.planner.train --preset g1-planner-base            # the first network, from scratch
    python -m training.planner.train --preset g1-planner                 # fine-tuned from it on randomized physics
    python -m training.planner.action_head --preset g1-planner-head      # its action head
    python -m training.planner.feasibility --preset g1-feasibility       # the feasibility critic
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

from envs.planner.feasibility import ConstraintConfig
from envs.planner.state import PLANNER_STATE_DIM
from policies.diffusion.guidance import GuidanceMode
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from policies.feasibility import FeasibilityCriticConfig
from robot.g1 import constants as C
from training.run_config import read_config_json

ActionKey = Literal["expert_action", "action"]
ACTION_KEYS: tuple[str, ...] = get_args(ActionKey)
HEAD_TASKS = ("joystick", "waypoint")
"""Tasks of the action head's guided windows (``ActionHeadConfig.task_mix`` shares, in this order)."""


def g1_planner_config() -> PlannerConfig:
    """The default G1 planner: 4 + 16 steps, 16-d action latent, 2x128 transformer (0.7 M parameters; BeyondMimic's
    earlier code used 2x256, which costs ~4x the compute per step here), cosine / x0 / 10 DDIM steps."""
    return PlannerConfig(
        state_dim=PLANNER_STATE_DIM,
        action_dim=C.NUM_JOINTS,
        history=4,
        horizon=16,
        latent_dim=16,
        denoiser=TransformerDenoiserConfig(num_layers=2, num_heads=4, width=128, attention="full"),
        action_loss_steps=8,
        execute_steps=1,
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(kind="cosine", num_train_steps=100),
            prediction_type="x0",
            per_token_noise=True,
            sampler=SamplerConfig(kind="ddim", num_steps=10),
        ),
    )


@dataclass
class PlannerTrainConfig:
    """G1 planner training run."""

    data: Path = Path("data/planner/g1_walk.h5")
    """Planner dataset (``python -m training.planner.collect``)."""
    run_dir: Path = Path("runs/g1_planner")
    """Run folder (config, TensorBoard, metrics.csv, checkpoints, the EMA planner)."""
    planner: PlannerConfig = field(default_factory=g1_planner_config)
    """Planner shapes, denoiser, schedule and default sampler."""
    action_key: ActionKey = "expert_action"
    """Actions learned: the expert's clean ones (``expert_action``) or the executed noisy ones (``action``)."""
    steps: int = 30000
    """Denoiser optimisation steps."""
    vae_steps: int = 3000
    """Action-autoencoder steps before the denoiser (latent planners only)."""
    batch_size: int = 256
    """Windows per step."""
    lr: float = 3e-4
    """Adam learning rate (cosine-annealed to 10 % over each stage)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    ema_rate: float = 0.005
    """Polyak rate of the EMA planner per denoiser step."""
    val_fraction: float = 0.05
    """Fraction of episodes held out for the validation loss."""
    val_windows: int = 1024
    """Validation windows (fixed) scored every ``eval_every`` steps."""
    eval_every: int = 500
    """Validation and logging period (steps)."""
    save_every: int = 1000
    """Checkpoint period (steps)."""
    max_minutes: float | None = None
    """Stop with a checkpoint after this much wall time (continue with --resume)."""
    resume: bool = False
    """Continue from run_dir/checkpoints/last.pt (the options of run_dir/config.json)."""
    init_from: Path | None = None
    """Start from this trained planner's model file (``model/planner_model.safetensors``; a ``planner_model.pt``
    of the earlier layout also loads), with a fresh optimizer and schedule; ignored on resume."""
    seed: int = 0
    """Seed of the split, batches, noise and initialisation."""
    torch_threads: int = 2
    """Torch intra-op threads."""

    def __post_init__(self) -> None:
        if self.action_key not in ACTION_KEYS:
            raise ValueError(f"action_key: expected one of {ACTION_KEYS}, got {self.action_key!r}")
        if self.steps < 0 or self.vae_steps < 0 or self.batch_size < 1:
            raise ValueError("steps and vae_steps must be >= 0 and batch_size >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected in (0, 1), got {self.val_fraction}")
        for name in ("eval_every", "save_every", "val_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if self.init_from is not None and self.planner.latent_dim > 0 and self.vae_steps > 0:
            raise ValueError(
                f"vae_steps: a latent planner started from {self.init_from} keeps its autoencoder; expected 0, "
                f"got {self.vae_steps} (pass --vae-steps 0)"
            )

    @property
    def total_steps(self) -> int:
        """Autoencoder plus denoiser steps."""
        return (self.vae_steps if self.planner.latent_dim > 0 else 0) + self.steps


@dataclass
class ActionHeadConfig:
    """Action-head fit of a trained planner."""

    model: Path = Path("runs/g1_planner/model/planner_model.safetensors")
    """``model/planner_model.safetensors`` of ``python -m training.planner.train`` (without a head)."""
    data: Path = Path("data/planner/g1_walk.h5")
    """The planner's training data."""
    out_dir: Path = Path("runs/g1_planner_head")
    """Output folder."""
    states: int = 2
    """M, planned states the head reads (``PlannerConfig.action_head_states``)."""
    width: int = 256
    """Hidden width of the head."""
    history_velocity_noise_m_per_s: float = 0.0
    """Largest std of a base-velocity error added to the history states before their plans are sampled: the same
    vector on the root's and every body's linear velocity, drawn per window step, its std per window uniform in
    [0, this]. A state estimator's error enters the planner state this way; 0 fits on exact states."""
    mirror: bool = True
    """Make the head left-right equivariant with the G1's mirror maps (``PlannerConfig.action_head_mirror``): the
    head's own small asymmetries otherwise add up in closed loop to a sideways drift."""
    windows: int = 150000
    """Training windows sampled by the planner."""
    val_windows: int = 4000
    """Held-out windows (validation episodes)."""
    steps: int = 8000
    """Adam steps."""
    batch_size: int = 512
    """Windows per step."""
    lr: float = 1e-3
    """Adam learning rate (cosine-annealed to 10 %)."""
    task_mix: tuple[float, float] = (0.75, 0.25)
    """Shares of the sampled windows guided by the joystick (the window's recorded command) and by a waypoint (where
    the expert was ``lookahead_s`` later, in the plan frame)."""
    lookahead_s: tuple[float, float] = (0.5, 5.0)
    """Waypoint windows: how far ahead in the episode the goal is taken (cut at the episode's end)."""
    guidance_mode: GuidanceMode | None = None
    """Sampler settings the head is fitted for (None: the model's); export with the same ones."""
    guidance_scale: float | None = None
    """Guidance scale of the sampled plans (None: the model's)."""
    sampler_steps: int | None = None
    """DDIM steps (None: the model's)."""
    int8: bool = False
    """Sample the plans with the denoiser in int8 (as the export then runs it: the head learns what the quantized
    network's plans mean); written into the config, so the export follows."""
    action_key: ActionKey = "expert_action"
    """Actions of the history and the target (the planner's training key)."""
    val_fraction: float = 0.05
    """Validation episodes, drawn as ``training.planner.train`` draws them (same seed)."""
    seed: int = 0
    """The planner's training seed (episode split); also seeds windows, noise and the fit."""
    torch_threads: int = 2
    """Torch intra-op threads."""

    def __post_init__(self) -> None:
        if self.action_key not in ACTION_KEYS:
            raise ValueError(f"action_key: expected one of {ACTION_KEYS}, got {self.action_key!r}")
        if len(self.task_mix) != len(HEAD_TASKS) or min(self.task_mix) < 0.0 or sum(self.task_mix) <= 0.0:
            raise ValueError(
                f"task_mix: expected {len(HEAD_TASKS)} non-negative shares for {HEAD_TASKS}, got {self.task_mix}"
            )
        if self.history_velocity_noise_m_per_s < 0.0:
            raise ValueError(
                f"history_velocity_noise_m_per_s: expected >= 0, got {self.history_velocity_noise_m_per_s}"
            )
        for name in ("states", "width", "windows", "val_windows", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")


RESUME_MAY_CHANGE = ("run_dir", "resume", "max_minutes", "eval_every", "save_every", "torch_threads")
"""Options a planner ``--resume`` may give other values than the run's: the time budget, the validation and
checkpoint periods (validation leaves the training RNG streams alone) and the threads."""


def g1_planner_base() -> PlannerTrainConfig:
    """The committed planner's first network: the plain state-action variant (no action latent) with the action
    loss x5, 7,000 steps on 400 + 400 mirrored rollouts of the walking expert (``training.planner.collect
    --episodes 400``), one torch thread."""
    return PlannerTrainConfig(
        data=Path("data/planner/g1_walk.h5"),
        run_dir=Path("runs/g1_planner_plain_w5"),
        planner=replace(g1_planner_config(), latent_dim=0, action_loss_weight=5.0),
        steps=7000,
        torch_threads=1,
    )


def g1_planner() -> PlannerTrainConfig:
    """The committed planner (``assets/g1_planner/checkpoint``): the first network (:func:`g1_planner_base`, saved
    as ``runs/planner_first_7k.pt``) fine-tuned for 2,500 steps at learning rate 1.5e-4 on 600 + 600 mirrored
    rollouts under domain randomization (``training.planner.collect --randomize``)."""
    return replace(
        g1_planner_base(),
        data=Path("data/planner/g1_walk_dr.h5"),
        run_dir=Path("runs/g1_planner_dr_ft"),
        init_from=Path("runs/planner_first_7k.pt"),
        steps=2500,
        lr=1.5e-4,
        eval_every=250,
        save_every=250,
    )


def g1_planner_head() -> ActionHeadConfig:
    """The committed planner's action head (``assets/g1_planner/head``): fitted on the fine-tuned planner's plans
    sampled as the export runs them (2 DDIM steps, x0 guidance 10, int8 denoiser), mirrored, with base-velocity
    errors up to 0.08 m/s (std) added to the history states, one torch thread."""
    return ActionHeadConfig(
        model=Path("runs/g1_planner_dr_ft/model/planner_model.safetensors"),
        data=Path("data/planner/g1_walk_dr.h5"),
        out_dir=Path("runs/g1_planner_dr_head"),
        guidance_mode="x0",
        guidance_scale=10.0,
        sampler_steps=2,
        int8=True,
        history_velocity_noise_m_per_s=0.08,
        torch_threads=1,
    )


PRESETS: dict[str, Callable[[], PlannerTrainConfig]] = {"g1-planner-base": g1_planner_base, "g1-planner": g1_planner}
"""``training.planner.train --preset`` names: one per committed network."""
HEAD_PRESETS: dict[str, Callable[[], ActionHeadConfig]] = {"g1-planner-head": g1_planner_head}
"""``training.planner.action_head --preset`` names: one per committed head."""


def read_run_config(run_dir: Path) -> PlannerTrainConfig:
    """The config a planner run folder was started with (its ``config.json``)."""
    return read_config_json(PlannerTrainConfig, run_dir / "config.json")


# ----- the feasibility critic (training.planner.feasibility) ---------------------------------------------------


@dataclass
class FeasibilityTrainConfig:
    """Feasibility-critic training run."""

    data: tuple[Path, ...] = (Path("data/planner/g1_walk_falls.h5"),)
    """Planner datasets; at least one must hold falls (``training.planner.collect --keep-falls``)."""
    run_dir: Path = Path("runs/g1_feasibility")
    """Run folder."""
    critic: FeasibilityCriticConfig = field(default_factory=FeasibilityCriticConfig)
    """Networks and losses."""
    constraints: ConstraintConfig = field(default_factory=ConstraintConfig)
    """Where the constraints lie (the signal ``h``)."""
    steps: int = 20000
    """Adam steps."""
    batch_size: int = 512
    """Transitions per step."""
    lr: float = 3e-4
    """Adam learning rate."""
    val_fraction: float = 0.1
    """Episodes held out for the report."""
    eval_every: int = 2000
    """Validation period (steps)."""
    save_every: int = 2000
    """Checkpoint period (steps)."""
    horizon_s: float = 0.5
    """Report: a state this close before a fall (or a keep-out entry) counts as one the critic should class
    infeasible."""
    keepout_lookahead_s: float = 2.0
    """Keep-out critics (``--constraints.keepout-radius-m``): each transition's region is centred near where the
    pelvis was up to this long after it (``training.planner.feasibility.RegionSampling``)."""
    keepout_spread_m: float = 1.5
    """Keep-out critics: the region's centre lies within this distance of that point."""
    keepout_far_fraction: float = 0.5
    """Keep-out critics: this share of the regions is drawn anywhere within ``keepout_far_m`` of the pelvis instead
    (a critic that only saw nearby regions climbs again beyond them: 0.7 at 5 m ahead, unsafe)."""
    keepout_far_m: float = 6.0
    """Keep-out critics: radius of those far draws."""
    seed: int = 0
    """Episode split, batches and initial weights."""
    torch_threads: int = 1
    """Torch intra-op threads."""
    resume: bool = False
    """Continue ``run_dir/checkpoints/last.pt`` (its config.json gives the options)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data: expected at least one planner dataset")
        for name in ("steps", "batch_size", "eval_every", "save_every", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {self.val_fraction}")
        if not 0.0 <= self.keepout_far_fraction <= 1.0 or self.keepout_far_m <= 0.0:
            raise ValueError(
                f"keepout_far_fraction in [0, 1] and keepout_far_m > 0 expected, got {self.keepout_far_fraction}, "
                f"{self.keepout_far_m}"
            )
        if self.keepout_lookahead_s < 0.0 or self.keepout_spread_m < 0.0:
            raise ValueError(
                f"keepout_lookahead_s and keepout_spread_m: expected >= 0, got {self.keepout_lookahead_s}, "
                f"{self.keepout_spread_m}"
            )


FEASIBILITY_RESUME_MAY_CHANGE = ("run_dir", "resume", "steps", "eval_every", "save_every", "torch_threads")
"""Options a feasibility ``--resume`` may change (the run length, periods and threads)."""


def g1_feasibility() -> FeasibilityTrainConfig:
    """The committed critic (``assets/g1_feasibility``): the fall constraint, 20,000 steps on 400 + 400 mirrored
    randomized episodes with 1.0 m/s pushes every 2.5 s and doubled action noise, falls kept
    (``data/planner/g1_walk_falls.h5``), beside the planner's own randomized data (``g1_walk_dr.h5``, every
    episode stood)."""
    return FeasibilityTrainConfig(
        data=(Path("data/planner/g1_walk_falls.h5"), Path("data/planner/g1_walk_dr.h5")),
        run_dir=Path("runs/g1_feasibility"),
    )


FEASIBILITY_PRESETS: dict[str, Callable[[], FeasibilityTrainConfig]] = {"g1-feasibility": g1_feasibility}
"""``training.planner.feasibility --preset`` names: one per committed critic."""


def read_feasibility_run_config(run_dir: Path) -> FeasibilityTrainConfig:
    """The config of the run in ``run_dir`` (its ``config.json``)."""
    return read_config_json(FeasibilityTrainConfig, Path(run_dir) / "config.json")
