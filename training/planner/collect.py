"""Record planner training data from the walking expert: noisy rollouts, falls rejected, optional mirror copies.

    python -m training.planner.collect --out data/planner/g1_walk.h5 --episodes 256 [--policy P] [--no-mirror]

Episodes run in waves of ``num_envs`` parallel worlds for ``episode_length_s`` each, with random velocity
commands (resampled every few seconds), pushes, and Ornstein-Uhlenbeck noise on the expert's actions
(BeyondMimic's recipe, Liao et al. 2025) on the joints the expert drives (the legs of a legs-only expert: the
waist and arms hold the default pose as in its training). Every world that falls is dropped from its wave; waves repeat
until ``episodes`` episodes are kept. With ``mirror`` each kept episode is also stored mirrored (left-right),
doubling the data. The file format is :mod:`envs.planner.dataset`; the rate (kept transitions/s) is printed.

With ``randomize`` every world draws its physics at each reset (:class:`PhysicsRandomizationConfig`: whole-robot
mass, friction, motor strength, PD gain error, action latency, as scales of the nominal robot like the evaluation's
:class:`~training.locomotion.evaluate.Conditions`), so the planner sees how the expert walks a heavier, lighter,
slipperier or slower-reacting robot (domain randomization, Tobin et al. 2017; Peng et al. 2018). The default
ranges cover the sim-to-sim rows of the expert benchmark.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro
from tqdm import tqdm

from envs.g1.vec_env import DomainRandomizationConfig
from envs.locomotion.config import CommandConfig, LocomotionConfig
from envs.planner.dataset import PlannerDataset, mirror_episodes, phase_float32, write_planner_dataset
from envs.planner.state import PlannerStateEstimator
from robot.actuation import set_pd_gains
from robot.cli import run_cli
from robot.configio import to_jsonable
from robot.g1 import constants as C
from training.locomotion.evaluate import (
    DEFAULT_EXPERT_POLICY,
    Conditions,
    FixedConditionsEnv,
    Policy,
    expert_action_joints,
    load_exported_policy,
)


@dataclass
class OUNoiseConfig:
    """Ornstein-Uhlenbeck action noise per joint: ``x += -theta x dt + sigma sqrt(dt) N(0, 1)``, dt = control period.

    The stationary standard deviation is ``sigma / sqrt(2 theta)`` (0.079 action units with the defaults).
    """

    theta_per_s: float = 0.8
    """Mean-reversion rate (BeyondMimic: 0.8)."""
    sigma: float = 0.1
    """Diffusion (action units per sqrt(s); BeyondMimic: 0.1)."""

    def __post_init__(self) -> None:
        if self.theta_per_s < 0.0 or self.sigma < 0.0:
            raise ValueError(f"theta_per_s and sigma must be >= 0, got {self.theta_per_s}, {self.sigma}")


class OUNoise:
    """Per-env, per-joint OU processes (N, A) from a seeded generator; ``reset(envs)`` zeroes some of them."""

    def __init__(self, cfg: OUNoiseConfig, shape: tuple[int, int], dt_s: float, seed: int) -> None:
        self.cfg, self.dt_s = cfg, dt_s
        self.x = np.zeros(shape)
        self.rng = np.random.default_rng(seed)

    def reset(self, envs: np.ndarray | slice = slice(None)) -> None:
        """Start the processes of ``envs`` from zero."""
        self.x[envs] = 0.0

    def sample(self) -> np.ndarray:
        """Advance one control period and return the noise (N, A)."""
        c, dt = self.cfg, self.dt_s
        self.x += -c.theta_per_s * self.x * dt + c.sigma * math.sqrt(dt) * self.rng.standard_normal(self.x.shape)
        return self.x.copy()


@dataclass
class ReactionBurstConfig:
    """Wrong reactions to pushes: after a push, with probability ``probability``, a constant offset drawn uniformly
    in +-``amplitude`` per driven joint is added to the expert's action for ``duration_s``. Data for a feasibility
    critic: from the same pushed states, the expert's own reaction and perturbed ones then lead to different
    outcomes, so the critic can learn which actions save a state (off: ``probability`` 0)."""

    probability: float = 0.0
    """Share of pushes followed by a burst."""
    amplitude: float = 0.5
    """Largest offset per joint (action units)."""
    duration_s: float = 0.4
    """Length of a burst."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0 or self.amplitude < 0.0 or self.duration_s <= 0.0:
            raise ValueError(
                f"reaction bursts: expected probability in [0, 1], amplitude >= 0 and duration_s > 0, got "
                f"{self.probability}, {self.amplitude}, {self.duration_s}"
            )


@dataclass
class PhysicsRandomizationConfig:
    """Per-world physics of a randomized collection, drawn uniformly at every reset, relative to the nominal robot."""

    mass_scale_range: tuple[float, float] = (0.75, 1.25)
    """Scale of every link mass and inertia, one draw per world (the whole robot heavier or lighter)."""
    link_mass_jitter_range: tuple[float, float] = (0.95, 1.05)
    """Further independent scale per link on top of the whole-robot scale (how the mass is distributed)."""
    friction_scale_range: tuple[float, float] = (0.6, 1.3)
    """Scale of the floor and foot sliding friction."""
    motor_strength_range: tuple[float, float] = (0.9, 1.1)
    """Scale of all actuator torques."""
    gain_error_range: tuple[float, float] = (-0.1, 0.1)
    """Relative error of kp and kd, per joint."""
    latency_range_s: tuple[float, float] = (0.0, 0.015)
    """Action latency, rounded to whole physics steps (at most one control period)."""

    def __post_init__(self) -> None:
        for name in (
            "mass_scale_range",
            "link_mass_jitter_range",
            "friction_scale_range",
            "motor_strength_range",
            "gain_error_range",
            "latency_range_s",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: expected (low, high) with low <= high, got {(lo, hi)}")
        for name in ("mass_scale_range", "link_mass_jitter_range", "friction_scale_range", "motor_strength_range"):
            if getattr(self, name)[0] <= 0.0:
                raise ValueError(f"{name}: expected scales > 0, got {getattr(self, name)}")
        if self.gain_error_range[0] <= -1.0:
            raise ValueError(f"gain_error_range: expected low > -1 (gains stay positive), got {self.gain_error_range}")
        if self.latency_range_s[0] < 0.0:
            raise ValueError(f"latency_range_s: expected >= 0, got {self.latency_range_s}")


@dataclass
class CollectConfig:
    """Planner-data collection run."""

    out: Path = Path("data/planner/g1_walk.h5")
    """Output HDF5 file (a ``.schema.json`` is written beside it)."""
    policy: Path = DEFAULT_EXPERT_POLICY
    """Exported expert actor (its training config.json beside it)."""
    episodes: int = 64
    """Episodes to keep (before mirroring)."""
    episode_length_s: float = 10.0
    """Length of every episode."""
    num_envs: int = 64
    """Parallel worlds per wave."""
    max_waves: int = 50
    """Give up (with an error) after this many waves."""
    noise: OUNoiseConfig = field(default_factory=OUNoiseConfig)
    """Exploration noise on the expert's actions."""
    commands: CommandConfig = field(
        default_factory=lambda: CommandConfig(
            vx_range_m_per_s=(-0.8, 0.8),
            vy_range_m_per_s=(-0.4, 0.4),
            yaw_rate_range_rad_per_s=(-1.0, 1.0),
            resample_interval_s=(2.0, 5.0),
            standing_fraction=0.1,
            curriculum_initial_scale=1.0,
            curriculum_step=0.0,
        )
    )
    """Velocity commands (full ranges from the start; no curriculum)."""
    push_interval_s: float = 4.0
    """Time between pushes (<= 0: none)."""
    push_velocity_m_per_s: float = 0.3
    """Largest horizontal velocity change of a push."""
    mirror: bool = True
    """Also store the left-right mirror image of every kept episode."""
    keep_falls: bool = False
    """Keep the worlds that fall as well (every recorded world is an episode): a dataset for a feasibility critic,
    which must see both sides of the fall line. ``fell_at`` (E,) then holds the step whose action led to the fall
    (T: stood to the end); steps after it repeat the last state before the fall. The planner's trainers refuse such
    a file."""
    randomize: bool = False
    """Draw every world's physics at each reset from ``randomization`` (off: the nominal robot everywhere)."""
    randomization: PhysicsRandomizationConfig = field(default_factory=PhysicsRandomizationConfig)
    """Physics ranges of a randomized collection."""
    bursts: ReactionBurstConfig = field(default_factory=ReactionBurstConfig)
    """Perturbed reactions after pushes (off by default)."""
    num_threads: int = 2
    """Physics worker threads."""
    seed: int = 0
    """Seed of commands, pushes, initial states and noise."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.num_envs < 1 or self.max_waves < 1:
            raise ValueError(
                f"episodes, num_envs and max_waves must be >= 1, got {self.episodes}, {self.num_envs}, {self.max_waves}"
            )
        if self.episode_length_s <= 0.0:
            raise ValueError(f"episode_length_s: expected > 0, got {self.episode_length_s}")


class RecordingEnv(FixedConditionsEnv):
    """The nominal walking env that also reports the planner's per-step record.

    The planner state comes from :class:`envs.planner.state.PlannerStateEstimator` on each world's base pose,
    twist and joints: the same computation the deploy runtime runs on a robot's state, so recorded and deployed
    states cannot drift apart. (The simulator's body sensors are not used: after a step they hold the values
    from before the last physics substep, 5 ms older than the base pose.)
    """

    def __init__(self, cfg: LocomotionConfig, conditions: Conditions) -> None:
        super().__init__(cfg, conditions)
        self._estimator = PlannerStateEstimator(self.models[0])

    def planner_states(self) -> np.ndarray:
        """(N, S) planner state of every world now."""
        qpos, qvel = self.qpos, self.qvel
        qadr, vadr = self.joint_columns
        return np.stack(
            [
                self._estimator(qpos[i, :3], qpos[i, 3:7], qvel[i, :3], qvel[i, 3:6], qpos[i, qadr], qvel[i, vadr])
                for i in range(self.num_envs)
            ]
        )

    def step_record(self) -> dict[str, np.ndarray]:
        """The per-step keys of :mod:`envs.planner.dataset` (except actions) for every env now, float32."""
        qpos, qvel = self.qpos, self.qvel
        qadr, vadr = self.joint_columns
        record = {
            "state": self.planner_states(),
            "root_pos": qpos[:, :3],
            "root_quat": qpos[:, 3:7],
            "joint_pos": qpos[:, qadr],
            "joint_vel": qvel[:, vadr],
            "command": self.command,
        }
        record = {k: np.asarray(v, dtype=np.float32) for k, v in record.items()}
        record["phase"] = phase_float32(self.phase())
        return record


PHYSICS_COLUMNS = ("mass_scale", "friction_scale", "motor_strength", "mean_abs_kp_error", "latency_s")
"""What :class:`RandomizedRecordingEnv` reports of each world's draw (the collection metadata keeps them)."""


class RandomizedRecordingEnv(RecordingEnv):
    """A :class:`RecordingEnv` whose worlds draw their physics at every reset (:class:`PhysicsRandomizationConfig`)
    from their own seeded generator, so the commands, pushes and initial states stay those of the nominal run."""

    def __init__(self, cfg: LocomotionConfig, randomization: PhysicsRandomizationConfig, seed: int) -> None:
        physics_dt_s = cfg.env.robot.model.physics_dt_s
        lo, hi = (round(s / physics_dt_s) for s in randomization.latency_range_s)
        if hi > cfg.env.substeps:
            raise ValueError(
                f"latency_range_s: expected at most one control period ({cfg.env.ctrl_dt_s} s), "
                f"got {randomization.latency_range_s}"
            )
        self.randomization = randomization
        self.latency_substeps_range = (lo, hi)
        self._physics_rng = np.random.default_rng(seed)
        self.physics = np.zeros((cfg.num_envs, len(PHYSICS_COLUMNS)))
        """(N, 5) each world's current draw (:data:`PHYSICS_COLUMNS`)."""
        super().__init__(cfg, Conditions())

    def _randomize(self, i: int) -> None:
        super()._randomize(i)  # the nominal robot; every quantity drawn below overwrites its nominal value
        r, rng, m = self.randomization, self._physics_rng, self.models[i]
        scale = rng.uniform(*r.mass_scale_range)
        mass = scale * rng.uniform(*r.link_mass_jitter_range, size=m.nbody)  # (bodies,)
        m.body_mass[:] = self._nominal_mass * mass
        m.body_inertia[:] = self._nominal_inertia * mass[:, None]
        friction = rng.uniform(*r.friction_scale_range)
        m.geom_friction[self._friction_geoms, 0] = self._nominal_friction * friction
        strength = rng.uniform(*r.motor_strength_range)
        kp_err, kd_err = rng.uniform(*r.gain_error_range, size=(2, C.NUM_JOINTS))
        kp = C.KP_NM_PER_RAD * (1.0 + kp_err)
        set_pd_gains(m, kp, C.KD_NMS_PER_RAD * (1.0 + kd_err), strength)
        self._kp[i] = kp
        self._latency[i] = rng.integers(self.latency_substeps_range[0], self.latency_substeps_range[1] + 1)
        dt = self.cfg.env.robot.model.physics_dt_s
        self.physics[i] = (scale, friction, strength, np.abs(kp_err).mean(), self._latency[i] * dt)


class Bursts:
    """:class:`ReactionBurstConfig` applied in a wave: which worlds react wrongly to the push just made, and how."""

    def __init__(
        self, cfg: ReactionBurstConfig, push_interval_s: float, dt: float, shape: tuple[int, int], seed: int
    ) -> None:
        self.cfg, self.shape = cfg, shape
        self.interval = max(1, round(push_interval_s / dt)) if push_interval_s > 0.0 else 0
        self.length = max(1, round(cfg.duration_s / dt))
        self.rng = np.random.default_rng(seed)
        self.offset = np.zeros(shape)
        self.active = np.zeros(shape[0], dtype=bool)

    def sample(self, t: int) -> np.ndarray:
        """The offset ``(N, len(joints))`` at wave step ``t`` (the env pushes at every multiple of the interval)."""
        if self.cfg.probability <= 0.0 or self.interval == 0:
            return np.zeros(self.shape)
        since = t % self.interval
        if t > 0 and since == 0:
            self.active = self.rng.random(self.shape[0]) < self.cfg.probability
            self.offset = self.rng.uniform(-self.cfg.amplitude, self.cfg.amplitude, self.shape)
        on = self.active & (t >= self.interval) & (since < self.length)
        return self.offset * on[:, None]


def _wave(
    env: RecordingEnv,
    policy: Policy,
    noise: OUNoise,
    steps: int,
    joints: tuple[int, ...],
    bursts: Bursts | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """One wave from a fresh reset: arrays (N, T, ...), the step (N,) at whose action each world fell (T: it
    stood) and, in a randomized env, every world's physics draw (N, 5) for this wave.

    The noise (N, len(joints)) goes on the expert's actions of ``joints`` only.
    """
    env.reset()
    physics = env.physics.copy() if isinstance(env, RandomizedRecordingEnv) else None
    noise.reset()
    obs = env.get_observations()["policy"]
    fell_at = np.full(env.num_envs, steps, dtype=np.int64)
    per_step: dict[str, list[np.ndarray]] = {}
    for t in range(steps):
        record = env.step_record()
        with torch.inference_mode():
            expert = policy(obs).numpy().astype(np.float64)  # (N, A)
        action = expert.copy()
        action[:, joints] += noise.sample()
        if bursts is not None:
            action[:, joints] += bursts.sample(t)
        record["expert_action"] = expert.astype(np.float32)
        record["action"] = action.astype(np.float32)
        for k, v in record.items():
            per_step.setdefault(k, []).append(v)
        groups, _, terminated, _, _ = env.step(torch.from_numpy(action).float())
        fell_at[terminated.numpy() & (fell_at == steps)] = t  # the world auto-resets: later steps are a new episode
        obs = groups["policy"]
    return {k: np.stack(v, axis=1) for k, v in per_step.items()}, fell_at, physics


def hold_after_fall(arrays: dict[str, np.ndarray], fell_at: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step ``arrays (E, T, ...)`` with every step after ``fell_at[e]`` replaced by step ``fell_at[e]`` (the
    last state before the fall; an auto-reset world's next episode is not this one's continuation)."""
    steps = next(iter(arrays.values())).shape[1]
    src = np.minimum(np.arange(steps)[None, :], fell_at[:, None])  # (E, T)
    rows = np.arange(len(fell_at))[:, None]
    return {k: v[rows, src] for k, v in arrays.items()}


def collect(cfg: CollectConfig) -> PlannerDataset:
    """Run the waves (see module docstring) and return the dataset (not yet written)."""
    policy, train = load_exported_policy(cfg.policy)
    env_cfg = dataclasses.replace(
        train,
        num_envs=cfg.num_envs,
        num_threads=cfg.num_threads,
        randomization=DomainRandomizationConfig(
            enabled=False, push_interval_s=cfg.push_interval_s, push_velocity_m_per_s=cfg.push_velocity_m_per_s
        ),
        # one step longer than recorded, so the last recorded step is never the time-out reset
        episode_length_s=cfg.episode_length_s + train.env.ctrl_dt_s,
        commands=cfg.commands,
        seed=cfg.seed,
    )
    env = (
        RandomizedRecordingEnv(env_cfg, cfg.randomization, cfg.seed + 2)
        if cfg.randomize
        else RecordingEnv(env_cfg, Conditions())
    )
    dt = env.cfg.env.ctrl_dt_s
    steps = round(cfg.episode_length_s / dt)
    joints = expert_action_joints(cfg.policy)  # a legs-only expert never saw its waist and arms move
    noise = OUNoise(cfg.noise, (cfg.num_envs, len(joints)), dt, cfg.seed + 1)
    bursts = (
        Bursts(cfg.bursts, cfg.push_interval_s, dt, (cfg.num_envs, len(joints)), cfg.seed + 3)
        if cfg.bursts.probability > 0.0
        else None
    )
    chunks: list[dict[str, np.ndarray]] = []
    draws: list[np.ndarray] = []  # (N, 6) per wave: the physics of every recorded world and whether it was kept
    kept_total, recorded, fell, start = 0, 0, 0, time.perf_counter()
    bar = tqdm(total=cfg.episodes, desc="episodes kept", unit="ep")
    try:
        for wave in range(cfg.max_waves):
            arrays, fell_at, physics = _wave(env, policy, noise, steps, joints, bursts)
            kept = fell_at == steps
            recorded += cfg.num_envs
            fell += int((~kept).sum())
            if cfg.keep_falls:
                arrays = hold_after_fall(arrays, fell_at)
                arrays["fell_at"] = fell_at.astype(np.int32)
            take = np.flatnonzero(kept | cfg.keep_falls)[: cfg.episodes - kept_total]
            chunks.append({k: v[take] for k, v in arrays.items()})
            if physics is not None:
                draws.append(np.concatenate([physics, kept[:, None]], axis=1))
            kept_total += len(take)
            bar.update(len(take))
            bar.set_postfix(wave=wave + 1, fall=f"{1 - kept.mean():.1%}")
            if kept_total >= cfg.episodes:
                break
    finally:
        bar.close()
        env.close()
    seconds = time.perf_counter() - start
    if kept_total < cfg.episodes:
        raise RuntimeError(
            f"kept only {kept_total} of {cfg.episodes} episodes in {cfg.max_waves} waves of {cfg.num_envs} "
            f"(the rest fell): is {cfg.policy} a walking expert? Raise --max-waves or lower the noise."
        )
    arrays = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    arrays["mirrored"] = np.zeros(kept_total, dtype=bool)
    if cfg.mirror:
        mirrored = mirror_episodes(arrays)
        arrays = {k: np.concatenate([arrays[k], mirrored[k]]) for k in arrays}
    collection = {
        "policy": str(cfg.policy),
        "policy_sha256": hashlib.sha256(cfg.policy.read_bytes()).hexdigest(),
        "episodes_recorded": recorded,
        "episodes_kept": kept_total,
        "episodes_fell": fell,
        "keep_falls": cfg.keep_falls,
        "fall_rate": fell / recorded,  # worlds that stood but were not needed in the last wave are no falls
        "seconds": seconds,
        "kept_transitions_per_s": kept_total * steps / seconds,
        "config": {k: v for k, v in to_jsonable(cfg).items() if k not in ("out", "policy")},
    }
    if draws:
        collection["physics_columns"] = [*PHYSICS_COLUMNS, "kept"]
        collection["physics"] = np.round(np.concatenate(draws), 4).tolist()
    return PlannerDataset(arrays=arrays, ctrl_dt_s=dt, collection=collection)


def main(cfg: CollectConfig) -> None:
    """CLI entry point."""
    data = collect(cfg)
    path = write_planner_dataset(cfg.out, data)
    c = data.collection
    print(
        f"{path}: {data.num_episodes} episodes x {data.episode_steps} steps ({data.num_transitions} transitions"
        f"{', half of them mirrored' if cfg.mirror else ''}); fall rate {c['fall_rate']:.1%} over "
        f"{c['episodes_recorded']} recorded; {c['kept_transitions_per_s']:.0f} kept transitions/s"
    )


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-collect``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(CollectConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
