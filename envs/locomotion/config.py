"""Configs of the walking task: velocity commands and their curriculum, reward weights, observation noise, and
the task (:class:`LocomotionConfig`) that holds them with the simulated robot's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from envs.g1.env import G1EnvConfig
from envs.g1.observations import ObservationConfig
from envs.g1.vec_env import DomainRandomizationConfig, G1VecEnvConfig
from robot.g1 import constants as C


@dataclass
class CommandConfig:
    """Velocity commands and their curriculum."""

    vx_range_m_per_s: tuple[float, float] = (-1.0, 1.0)
    """Forward velocity range at full curriculum."""
    vy_range_m_per_s: tuple[float, float] = (-0.5, 0.5)
    """Lateral velocity range at full curriculum."""
    yaw_rate_range_rad_per_s: tuple[float, float] = (-1.2, 1.2)
    """Yaw-rate range at full curriculum."""
    resample_interval_s: tuple[float, float] = (4.0, 6.0)
    """A new command is drawn after a time uniform in this range."""
    standing_fraction: float = 0.1
    """Probability that a drawn command is zero (stand in place)."""
    curriculum_initial_scale: float = 0.3
    """Initial scale of the command ranges (1 = full ranges)."""
    curriculum_step: float = 0.05
    """Increase of the scale after a good window (one episode length) of finished episodes."""
    curriculum_threshold: float = 0.7
    """A window is good when its episodes' mean velocity-tracking kernel (0..1, over the full episode length,
    so early falls score low) exceeds this."""

    def __post_init__(self) -> None:
        for name in ("vx_range_m_per_s", "vy_range_m_per_s", "yaw_rate_range_rad_per_s", "resample_interval_s"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: expected (low, high) with low <= high, got {(lo, hi)}")
        if self.resample_interval_s[0] <= 0.0:
            raise ValueError(f"resample_interval_s: expected > 0, got {self.resample_interval_s}")
        if not 0.0 <= self.standing_fraction <= 1.0:
            raise ValueError(f"standing_fraction: expected in [0, 1], got {self.standing_fraction}")
        if not 0.0 < self.curriculum_initial_scale <= 1.0:
            raise ValueError(f"curriculum_initial_scale: expected in (0, 1], got {self.curriculum_initial_scale}")


@dataclass
class RewardConfig:
    """Reward weights (per second; multiplied by the control period) and their targets."""

    tracking_lin_vel: float = 1.0
    """exp(-|v_xy* - v_xy|^2 / sigma) with the body-frame planar velocity."""
    tracking_ang_vel: float = 0.5
    """exp(-(w_z* - w_z)^2 / sigma)."""
    tracking_sigma: float = 0.25
    """Width of the tracking kernels."""
    lin_vel_z: float = -2.0
    """Vertical base velocity squared."""
    ang_vel_xy: float = -0.05
    """Roll and pitch rates squared."""
    orientation: float = -1.0
    """Horizontal part of the projected gravity squared (tilt)."""
    base_height: float = -10.0
    """(pelvis height - target)^2."""
    base_height_target_m: float = C.DEFAULT_BASE_HEIGHT_M
    """Pelvis height target."""
    torques: float = -1e-5
    """Sum of squared joint torques."""
    dof_acc: float = -2.5e-7
    """Sum of squared joint accelerations."""
    dof_vel: float = -1e-3
    """Sum of squared joint velocities."""
    action_rate: float = -0.01
    """|a_t - a_{t-1}|^2."""
    dof_pos_limits: float = -5.0
    """Distance beyond the soft joint limits."""
    soft_limit_fraction: float = 0.9
    """Soft limits: this fraction of each joint range, centred."""
    alive: float = 0.15
    """Per second not fallen."""
    hip_pos: float = -1.0
    """Hip roll and yaw offsets from default, squared."""
    upper_body_pose: float = -0.5
    """Waist and arm offsets from default, squared."""
    contact: float = 0.18
    """Per foot whose contact state matches its gait phase (stance: in contact)."""
    feet_swing_height: float = -20.0
    """Per swinging foot, (sole height - swing height)^2."""
    swing_height_m: float = 0.08
    """Sole clearance target in swing."""
    contact_no_vel: float = -0.2
    """Per foot in contact, its squared velocity (slip)."""
    contact_force_threshold_n: float = 1.0
    """Touch force above which a foot counts as in contact."""
    ref_joint_pos: float = 1.0
    """exp(-2 |q_legs - q_ref|) over the 12 leg joints, with ``q_ref`` the default pose plus a lift of the swing
    leg that follows the gait clock (humanoid-gym's reference-posture reward): it shows PPO the stepping pattern
    to explore around instead of leaving it to discover stepping from the contact reward alone."""
    ref_lift_rad: float = 0.25
    """Peak lift of the reference swing leg: hip pitch -x, knee +2x, ankle pitch -x (the foot stays level)."""
    ref_stride_scale: float = 0.0
    """Stride of the reference gait, as a multiple of the one that travels at the command (:func:`stride_matrix`;
    0 = the reference steps in place). ``hip_pos`` penalises hip roll and yaw relative to the reference's, so that
    lateral and turning steps are not paid against."""
    ref_turn_gain: float = 1.0
    """Multiplier of the reference's turning stride (the yaw-rate column of :func:`stride_matrix`). The geometric
    stride turns the G1 at about half the commanded rate (the soles pivot on the floor and the hip yaw lags its PD
    target): the S6 expert turned at 0.47-0.52 of constant yaw commands with gain 1 and at 0.99-1.06 with 2.5."""


@dataclass
class ObservationNoiseConfig:
    """Uniform noise on the policy observation (the critic sees clean values)."""

    scale: float = 1.0
    """Multiplier of all terms (0 disables noise)."""
    gyro_rad_per_s: float = 0.2
    """Gyro noise (before the observation scale)."""
    gravity: float = 0.05
    """Projected gravity noise."""
    joint_pos_rad: float = 0.01
    """Joint position noise."""
    joint_vel_rad_per_s: float = 1.5
    """Joint velocity noise (before the observation scale)."""


def _default_env_config() -> G1EnvConfig:
    return G1EnvConfig(obs=ObservationConfig(gait_period_s=0.8), fall_height_m=0.45)


@dataclass
class LocomotionConfig:
    """The walking task (:mod:`envs.locomotion.env`)."""

    num_envs: int = 512
    """Parallel worlds."""
    num_threads: int = 2
    """Physics worker threads."""
    env: G1EnvConfig = field(default_factory=_default_env_config)
    """Robot, control period, action clip and observation scales (its gait clock period is the gait's)."""
    randomization: DomainRandomizationConfig = field(default_factory=DomainRandomizationConfig)
    """Domain randomization and pushes."""
    episode_length_s: float = 20.0
    """Episodes time out after this long."""
    commands: CommandConfig = field(default_factory=CommandConfig)
    """Velocity commands and curriculum."""
    rewards: RewardConfig = field(default_factory=RewardConfig)
    """Reward weights."""
    stance_fraction: float = 0.55
    """Part of the gait cycle a foot should be in contact."""
    noise: ObservationNoiseConfig = field(default_factory=ObservationNoiseConfig)
    """Policy observation noise."""
    seed: int = 0
    """Seed of commands, randomization, noise and resets."""

    def __post_init__(self) -> None:
        if self.env.obs.gait_period_s <= 0.0:
            raise ValueError("env.obs.gait_period_s: the walking task needs a gait clock (> 0)")
        if not 0.0 < self.stance_fraction < 1.0:
            raise ValueError(f"stance_fraction: expected in (0, 1), got {self.stance_fraction}")

    @property
    def gait_period_s(self) -> float:
        """Gait cycle duration."""
        return self.env.obs.gait_period_s

    def vec_config(self) -> G1VecEnvConfig:
        """The underlying vectorized env's config."""
        return G1VecEnvConfig(
            num_envs=self.num_envs,
            num_threads=self.num_threads,
            env=self.env,
            randomization=self.randomization,
            episode_length_s=self.episode_length_s,
            seed=self.seed,
        )
