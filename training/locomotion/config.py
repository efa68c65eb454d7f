"""Options of the G1 walking-expert trainer (``python -m training.locomotion.train``), what may change on
``--resume``, and the named presets: the recipes of the committed experts.

    python -m training.locomotion.train --preset g1-walk --run-dir runs/my_walk \\
        --init-from assets/g1_walk/checkpoint/weights.pt
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.locomotion.config import CommandConfig, LocomotionConfig, RewardConfig
from training.run_config import read_config_json


@dataclass
class PPOConfig:
    """rsl-rl-lib PPO and network settings."""

    num_steps_per_env: int = 24
    """Steps collected per env and iteration (batch = num_envs x this)."""
    num_learning_epochs: int = 5
    """Passes over each batch."""
    num_mini_batches: int = 4
    """Mini-batches per pass."""
    clip_param: float = 0.2
    """PPO ratio clip."""
    gamma: float = 0.99
    """Discount."""
    lam: float = 0.95
    """GAE lambda."""
    value_loss_coef: float = 1.0
    """Value loss weight."""
    entropy_coef: float = 0.01
    """Entropy bonus weight."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate (adapted to the KL target)."""
    desired_kl: float = 0.01
    """KL target of the adaptive learning-rate schedule."""
    max_grad_norm: float = 1.0
    """Gradient clip."""
    actor_hidden_dims: tuple[int, ...] = (256, 256, 128)
    """Actor MLP hidden sizes."""
    critic_hidden_dims: tuple[int, ...] = (256, 256, 128)
    """Critic MLP hidden sizes."""
    activation: str = "elu"
    """Hidden activation."""
    init_std: float = 0.8
    """Initial action noise standard deviation (action units)."""
    max_action_std: float | None = None
    """Upper bound of the action noise standard deviation (action units; None: unbounded). Needed with
    ``--residual-clip``: clipped actions hide the std from the environment, so the entropy bonus grows it without
    limit (measured: 0.5 -> 1.84 over 1,200 iterations with the bound 0.5, actions all but bang-bang, the mean
    action's gradient washed out)."""
    symmetry_augmentation: bool = True
    """Append left-right mirrored samples to every mini-batch (rsl-rl's Symmetry extension)."""

    def __post_init__(self) -> None:
        if self.init_std <= 0.0:
            raise ValueError(f"init_std: expected > 0, got {self.init_std}")
        if self.max_action_std is not None and self.max_action_std < self.init_std:
            raise ValueError(
                f"max_action_std: expected None or >= init_std ({self.init_std}), got {self.max_action_std}"
            )


@dataclass
class TrainConfig:
    """G1 walking expert training run."""

    run_dir: Path = Path("runs/g1_walk")
    """Run folder (config, TensorBoard, metrics.csv, checkpoints, exported policy)."""
    iterations: int = 3000
    """Total PPO iterations of the run (a resumed run continues up to this number)."""
    max_minutes: float | None = None
    """Stop (with a checkpoint) after this much wall time; resume later with --resume."""
    save_every: int = 25
    """Checkpoint period in iterations."""
    eval_every: int = 50
    """Deterministic evaluation period in iterations (0: off): ``eval_episodes`` episodes of ``eval_seconds`` with
    the expert benchmark's commands, nominal physics; rows in ``eval.csv`` and TensorBoard ``eval/``. The first
    row that meets the targets gives the samples-to-walking."""
    eval_episodes: int = 32
    """Episodes per periodic evaluation."""
    eval_seconds: float = 10.0
    """Episode length of the periodic evaluation (commands change every 5 s)."""
    resume: bool = False
    """Continue from run_dir/checkpoints/last.pt with the options of run_dir/config.json; options given with it must
    agree with the run's, except the run length, checkpoint and evaluation periods, device and threads."""
    init_from: Path | None = None
    """Start a new run from the networks (actor, critic, normalisers) of another run's checkpoint (``last.pt``
    or a ``model/weights.safetensors``; a ``weights.pt`` of the earlier layout also loads): fine-tuning under a
    changed task or recipe. Optimizer, environment, curriculum and iteration count start fresh. Ignored with
    ``--resume``."""
    reset_action_std: float | None = None
    """With ``init_from``: set the actor's action noise std to this value instead of the loaded one."""
    actuated: Literal["legs", "legs_waist", "all"] = "legs"
    """Joints the policy drives: the 12 leg joints, with waist and arms held at the default pose by their PD (as
    unitree_rl_gym's G1 walking task does; 17 fewer noisy action dimensions to explore), the legs and the 3 waist
    joints (the torso can counter-rotate against the swing leg), or all 29. The exported actor always outputs all 29
    joints (zeros for the held ones), so evaluation, data collection and deployment do not depend on this."""
    added_joint_action_std: float = 0.1
    """With ``init_from`` a run that drives fewer joints: the action noise std of the joints the source did not
    drive (their mean actions start at zero, the default pose the source held them at)."""
    action_reference: float = 0.0
    """Policy actions are residuals on the swing-leg reference gait of the ``ref_joint_pos`` reward (read off the
    gait clock), times this factor: the robot steps in place at zero policy output, and the policy learns to balance
    and steer that gait instead of having to discover stepping. 0: actions are plain offsets from the default pose.
    The exported actor includes the reference."""
    residual_clip: float | None = None
    """With ``action_reference``: bound the policy's actions to +-this (action units) so that it cannot cancel the
    reference gait (without a bound PPO learns to cancel it and stand within ~100 iterations). None: no bound."""
    residual_excess_penalty: float = 1.0
    """With ``residual_clip``: reward penalty per second on the squared excess of the raw policy actions beyond the
    bound (:class:`training.locomotion.rsl_env.RslLocomotionEnv`); without it the clamp hides the mean action from
    the environment and PPO lets it drift far outside (0: off)."""
    device: str = "cpu"
    """Where PPO learns ("cpu", "cuda"); physics always runs on the CPU with ``env.num_threads`` threads."""
    seed: int = 0
    """Seed of torch, numpy and the environment."""
    torch_threads: int = 2
    """Torch intra-op threads (the PPO update; physics uses the env's threads)."""
    env: LocomotionConfig = field(default_factory=LocomotionConfig)
    """Walking task and simulation."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO settings."""


RESUME_MAY_CHANGE = (
    "run_dir",
    "resume",
    "iterations",
    "max_minutes",
    "save_every",
    "eval_every",
    "eval_episodes",
    "eval_seconds",
    "init_from",  # the three init options are ignored on resume
    "reset_action_std",
    "added_joint_action_std",
    "device",
    "torch_threads",
    "env.num_threads",
)
"""Options a ``--resume`` may give other values than the run's: the run's length, checkpoint and evaluation
periods, where PPO learns and on how many threads (evaluations leave the training RNG streams alone)."""


def g1_walk() -> TrainConfig:
    """The committed walking expert's recipe (phase S10, ``assets/g1_walk``): the 12 leg joints drive a residual
    bounded at +-1 on the swing-leg reference gait, with the contact-pattern reward 5, tracking weights 6 / 6, the
    reference's turning stride x2.5, action-rate penalty 1, action noise bounded at 0.25, full command ranges from
    the start; 512 worlds on one physics and one torch thread. The expert was fine-tuned this way from phase S9's
    weights (``--init-from``, not committed; docs/results/walking-expert.md has the lineage): to refine the
    committed expert pass ``--init-from assets/g1_walk/checkpoint/weights.pt``."""
    rewards = RewardConfig(
        tracking_lin_vel=6.0,
        tracking_ang_vel=6.0,
        action_rate=-1.0,
        contact=5.0,
        ref_joint_pos=0.0,
        ref_stride_scale=1.0,
        ref_turn_gain=2.5,
    )
    env = LocomotionConfig(num_threads=1, commands=CommandConfig(curriculum_initial_scale=1.0), rewards=rewards)
    return TrainConfig(
        iterations=2000,
        save_every=10,
        eval_every=25,
        reset_action_std=0.25,
        actuated="legs",
        action_reference=1.0,
        residual_clip=1.0,
        residual_excess_penalty=1.0,
        torch_threads=1,
        env=env,
        ppo=PPOConfig(init_std=0.25, max_action_std=0.25),
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {"g1-walk": g1_walk}
"""``--preset`` names: one per committed expert."""


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config a run folder was started with (its ``config.json``)."""
    return read_config_json(TrainConfig, run_dir / "config.json")
