"""Velocity-command walking task of the G1 for PPO, on the vectorized MuJoCo env.

The recipe follows the established legged-robot ones (legged_gym / unitree_rl_gym's G1 task, mjlab's velocity
task), sized for a CPU budget:

- Commands ``(vx, vy, yaw_rate)`` in the body frame are resampled every few seconds, a fraction of them zero
  (stand), within ranges that grow with a curriculum: the range scale starts small and grows each time the
  episodes that reach the time limit tracked the command well.
- A gait clock: the left foot's phase ``(t / period) mod 1`` (the right foot's is +0.5) enters the policy
  observation as sin/cos (:mod:`envs.observations`), and a contact-pattern reward pays each foot for being in
  contact exactly during its stance part of the cycle; swing feet are pulled to a clearance height.
- Shaping: velocity tracking (exponential kernels), upright posture, base height, smooth and small joint
  motion and torques, soft joint limits, hip roll/yaw and upper-body pose near default, no foot slip.
  Weights are per second and multiplied by the control period, so they do not depend on the control rate.
- Termination on falls; domain randomization and pushes come from :class:`envs.vec_env.G1VecEnv`.

Actions are joint position offsets ``q* = q_default + action_scale * a`` with the robot constants' action scale
and PD gains, through the same safety clamps as the robot. Observations are a dict of two groups:
``"policy"`` (the deployable observation with sensor noise) and ``"critic"`` (the clean observation plus
privileged terms: base linear velocity, height, foot contacts and heights) for an asymmetric critic.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np
import torch

from envs.g1_env import G1EnvConfig
from envs.observations import (
    COMMAND_DIM,
    ObservationConfig,
    gait_phase,
    observation_dim,
    observation_mirror_map,
    observation_names,
    policy_observation,
    projected_gravity,
    quat_rotate_inverse,
)
from envs.vec_env import DomainRandomizationConfig, G1VecEnv, G1VecEnvConfig
from robot.g1 import constants as C
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr

FOOT_SITES: tuple[str, str] = ("left_foot", "right_foot")
"""Sole-centre sites of the G1 model (left, right)."""
_TOUCH_SITE_HALF_SIZE_M = (0.115, 0.045, 0.02)
_TOUCH_SITE_POS_M = (0.039, 0.0, -0.025)  # the foot box centre in the ankle-roll frame
_HIP_ROLL_YAW = tuple(C.JOINT_NAMES.index(f"{s}_hip_{a}_joint") for s in ("left", "right") for a in ("roll", "yaw"))
_LIFT_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_{j}_joint") for j in ("hip_pitch", "knee", "ankle_pitch")] for s in ("left", "right")]
)
"""(2, 3): hip pitch, knee, ankle pitch of the left and right leg."""
_LIFT_PATTERN = np.array([-1.0, 2.0, -1.0])
"""Reference swing offsets per unit lift: the thigh swings forward, the knee bends twice that, the foot stays level."""
EPISODES_FINISHED = "episodes_finished"
"""Log key: episodes that finished at this step."""
EPISODE_SUM = "episode_sum/"
"""Log key prefix: per-episode tracking errors and falls summed over the episodes that finished at this step."""
EPISODE_REWARD_SUM = "episode_reward_sum/"
"""Log key prefix: per-episode reward terms (per second of the full episode length) summed likewise."""
CRITIC_EXTRA_DIM = 8
"""Privileged critic terms: base linear velocity (3), base height (1), foot contacts (2), foot heights (2)."""


def _lift_matrix() -> np.ndarray:
    """(2, 29): joint offsets per unit lift of the left (row 0) and right (row 1) swing leg."""
    m = np.zeros((2, C.NUM_JOINTS))
    for side in range(2):
        m[side, _LIFT_JOINTS[side]] = _LIFT_PATTERN
    return m


LIFT_MATRIX = _lift_matrix()
"""Joint offsets per unit lift of the left (row 0) and right (row 1) swing leg: hip pitch -1, knee 2, ankle -1."""


def stride_sweep(leg_phase: torch.Tensor, stance_fraction: float) -> torch.Tensor:
    """Where each foot is along its step, (N, 2) in [-1, 1]: -1 at touchdown (foot ahead), rising linearly to +1 at
    lift-off across the stance (the body travels over the planted foot), back to -1 across the swing (cosine)."""
    stance = 2.0 * leg_phase / stance_fraction - 1.0
    swing = torch.cos(torch.pi * torch.clamp((leg_phase - stance_fraction) / (1.0 - stance_fraction), 0.0, 1.0))
    return torch.where(leg_phase < stance_fraction, stance, swing)


_HIP_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_hip_{a}_joint") for a in ("pitch", "roll", "yaw")] for s in ("left", "right")]
)
_ANKLE_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_ankle_{a}_joint") for a in ("pitch", "roll")] for s in ("left", "right")]
)


@functools.lru_cache(maxsize=1)
def sole_kinematics() -> tuple[np.ndarray, np.ndarray]:
    """The sole sites of the nominal G1 at the default pose, in the pelvis frame: planar positions (2, 2) (left,
    right; x, y) and the Jacobians (2, 3, 3) of (x, y, yaw) with respect to that leg's hip pitch, roll and yaw."""
    model = build_g1_model()
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0  # pelvis at the origin, upright: the world frame is the pelvis frame
    data.qpos[joint_qpos_adr(model)] = C.DEFAULT_JOINT_POS_RAD
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    dofs = joint_dof_adr(model)
    pos, jac = np.zeros((2, 2)), np.zeros((2, 3, 3))
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for side, site in enumerate(FOOT_SITES):
        sid = model.site(site).id
        mujoco.mj_jacSite(model, data, jacp, jacr, sid)
        pos[side] = data.site_xpos[sid, :2]
        cols = dofs[_HIP_JOINTS[side]]
        jac[side] = np.stack([jacp[0, cols], jacp[1, cols], jacr[2, cols]])
    return pos, jac


def stride_matrix(gait_period_s: float, stance_fraction: float) -> np.ndarray:
    """Joint offsets at lift-off per unit command (vx m/s, vy m/s, yaw rate rad/s), (2 legs, 3, 29); the reference
    gait multiplies them by the command and :func:`stride_sweep`.

    Across a stance of ``T = stance_fraction * gait_period_s`` the pelvis moves at the command over the planted
    sole, so in the pelvis frame the sole at ``(x, y)`` moves by ``-T (vx - w y, vy + w x)`` and turns by ``-T w``
    (the outer foot takes the longer step in a turn): half of that ahead of its default place at touchdown, half
    behind at lift-off. Hip pitch, roll and yaw produce that motion to first order (the inverse of
    :func:`sole_kinematics`' Jacobian); ankle pitch and roll counter hip pitch and roll to keep the sole level."""
    half = 0.5 * stance_fraction * gait_period_s
    pos, jac = sole_kinematics()
    m = np.zeros((2, 3, C.NUM_JOINTS))
    for side in range(2):
        x, y = pos[side]
        sole = -half * np.array([[1.0, 0.0, -y], [0.0, 1.0, x], [0.0, 0.0, 1.0]])  # (x, y, yaw) per command
        hips = np.linalg.solve(jac[side], sole)  # (hip pitch, roll, yaw) per command
        m[side][:, _HIP_JOINTS[side]] = hips.T
        m[side][:, _ANKLE_JOINTS[side]] = -hips[:2].T
    return m


def swing_reference_rad(
    leg_phase: torch.Tensor,
    stance_fraction: float,
    lift_rad: float,
    lift_matrix: torch.Tensor,
    command: torch.Tensor | None = None,
    stride: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference joint offsets from the default pose (N, 29) at per-foot gait phases ``leg_phase`` (N, 2) (left,
    right). Lift: in stance a leg holds the default pose; across its swing hip pitch, knee and ankle pitch follow
    ``sin(pi s) * lift_rad`` times ``lift_matrix`` (:data:`LIFT_MATRIX`: thigh forward, knee bent twice that, sole
    level), s going 0 -> 1. Stride (optional): the velocity ``command`` (N, 3) times :func:`stride_sweep` times
    ``stride`` (2, 3, 29) (:func:`stride_matrix`), so that the reference travels at the command instead of stepping
    in place."""
    swing = torch.clamp((leg_phase - stance_fraction) / (1.0 - stance_fraction), 0.0, 1.0)
    lift = torch.sin(torch.pi * swing) * lift_rad  # (N, 2)
    ref = lift @ lift_matrix.to(lift.dtype)
    if command is not None and stride is not None:
        sweep = stride_sweep(leg_phase, stance_fraction).to(ref.dtype)  # (N, 2)
        cmd = command.to(ref.dtype)  # (N, 3)
        m = stride.to(ref.dtype)  # (2, 3, 29)
        ref = ref + (sweep[:, 0:1] * cmd) @ m[0] + (sweep[:, 1:2] * cmd) @ m[1]
    return ref


class SwingReference(torch.nn.Module):
    """The reference gait as policy actions (N, 29), read off the gait clock (sin, cos at ``clock_index``) and, with
    a ``stride`` (2, 3, 29) (:func:`stride_matrix`), the velocity command (at ``command_index``) of policy
    observations (N, O): a residual policy's actions are added to it. TorchScript-able, so an exported residual
    policy carries its reference; zero when ``lift_rad`` is 0 and there is no stride."""

    def __init__(
        self,
        stance_fraction: float,
        lift_rad: float,
        clock_index: int,
        command_index: int = 0,
        stride: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.stance_fraction = float(stance_fraction)
        self.lift_rad = float(lift_rad)
        self.clock_index = int(clock_index)
        self.command_index = int(command_index)
        m = np.zeros((2, 3, C.NUM_JOINTS)) if stride is None else np.asarray(stride, dtype=np.float64)
        self.register_buffer("inv_scale", torch.tensor((1.0 / C.ACTION_SCALE_RAD).tolist(), dtype=torch.float32))
        self.register_buffer("lift_matrix", torch.tensor(LIFT_MATRIX.tolist(), dtype=torch.float32))
        self.register_buffer("stride", torch.tensor(m.tolist(), dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Reference actions (N, 29) of policy observations (N, O)."""
        i = self.clock_index
        phase = torch.remainder(torch.atan2(obs[:, i], obs[:, i + 1]) / (2.0 * torch.pi), 1.0)
        leg = torch.remainder(phase[:, None] + torch.tensor([0.0, 0.5], dtype=obs.dtype, device=obs.device), 1.0)
        c = self.command_index
        cmd = obs[:, c : c + 3]
        ref = swing_reference_rad(leg, self.stance_fraction, self.lift_rad, self.lift_matrix, cmd, self.stride)
        return ref * self.inv_scale.to(obs.dtype)


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
    """The walking task (see module docstring)."""

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


class G1LocomotionEnv(G1VecEnv):
    """Batched G1 walking on velocity commands (see module docstring). Torch tensors out, numpy inside."""

    def __init__(self, cfg: LocomotionConfig | None = None) -> None:
        self.loco = loco = cfg or LocomotionConfig()
        n, j = loco.num_envs, C.NUM_JOINTS
        self.command = np.zeros((n, COMMAND_DIM))
        self._command_timer = np.zeros(n)
        self._prev_dq = np.zeros((n, j))
        self._episode_sums: dict[str, np.ndarray] = {}
        self.curriculum_scale = loco.commands.curriculum_initial_scale
        self._curriculum_window = np.zeros(3)  # kernel sum, episodes, steps since the last curriculum decision
        self._obs_noise = self._noise_vector()
        self._lift = torch.from_numpy(LIFT_MATRIX)
        self._stride = loco.rewards.ref_stride_scale * stride_matrix(loco.gait_period_s, loco.stance_fraction)
        self._stride[:, 2, :] *= loco.rewards.ref_turn_gain
        super().__init__(loco.vec_config())  # ends with reset()
        self.num_obs = observation_dim(j, loco.env.obs)
        self.num_critic_obs = self.num_obs + CRITIC_EXTRA_DIM

    # ----- model ----------------------------------------------------------------------------------------------
    def _modify_spec(self, spec: mujoco.MjSpec) -> None:
        for site_name, body_name in zip(FOOT_SITES, C.FEET_BODIES, strict=True):
            touch_site = spec.body(body_name).add_site()
            touch_site.name = f"{site_name}_touch"
            touch_site.type = mujoco.mjtGeom.mjGEOM_BOX
            touch_site.size = _TOUCH_SITE_HALF_SIZE_M
            touch_site.pos = _TOUCH_SITE_POS_M
            touch_site.group = 5  # hidden in renders
            for kind, suffix, site in (
                (mujoco.mjtSensor.mjSENS_FRAMEPOS, "pos", site_name),
                (mujoco.mjtSensor.mjSENS_FRAMELINVEL, "vel", site_name),
                (mujoco.mjtSensor.mjSENS_TOUCH, "touch", f"{site_name}_touch"),
            ):
                sensor = spec.add_sensor()
                sensor.name = f"{site_name}_{suffix}"
                sensor.type = kind
                sensor.objtype = mujoco.mjtObj.mjOBJ_SITE
                sensor.objname = site

    def _sensor_slices(self) -> dict[str, slice]:
        m = self.models[0]
        out = {}
        feet = [f"{s}_{k}" for s in FOOT_SITES for k in ("pos", "vel", "touch")]
        for name in (C.SENSOR_IMU_QUAT, C.SENSOR_IMU_GYRO, *feet):
            sensor = m.sensor(name)
            out[name] = slice(int(sensor.adr[0]), int(sensor.adr[0] + sensor.dim[0]))
        return out

    # ----- commands, resets -----------------------------------------------------------------------------------
    def _sample_commands(self, envs: np.ndarray) -> None:
        if len(envs) == 0:
            return
        c, s, rng = self.loco.commands, self.curriculum_scale, self._rng
        ranges = (c.vx_range_m_per_s, c.vy_range_m_per_s, c.yaw_rate_range_rad_per_s)
        lo = np.array([r[0] for r in ranges]) * s
        hi = np.array([r[1] for r in ranges]) * s
        cmd = rng.uniform(lo, hi, size=(len(envs), COMMAND_DIM))
        cmd[rng.random(len(envs)) < c.standing_fraction] = 0.0
        self.command[envs] = cmd
        self._command_timer[envs] = rng.uniform(*c.resample_interval_s, size=len(envs))

    def _reset_env(self, i: int) -> None:
        super()._reset_env(i)
        self._prev_dq[i] = 0.0
        for sums in self._episode_sums.values():
            sums[i] = 0.0
        self._sample_commands(np.array([i]))

    def reset(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Reset every env; returns the observation groups."""
        if not hasattr(self, "_sensor"):
            self._sensor = self._sensor_slices()
        for i in range(self.num_envs):
            self._reset_env(i)
        self._obs_groups = self._observations()
        return self._obs_groups

    def get_observations(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Latest observation groups without stepping."""
        return self._obs_groups

    # ----- observations ---------------------------------------------------------------------------------------
    def phase(self) -> np.ndarray:
        """Left-foot gait phase (N,) in [0, 1) from the episode time."""
        return gait_phase(self.episode_length * self.cfg.env.ctrl_dt_s, self.loco.gait_period_s)

    def _noise_vector(self) -> np.ndarray:
        nz, obs = self.loco.noise, self.loco.env.obs
        j = C.NUM_JOINTS
        parts = [
            np.full(3, nz.gyro_rad_per_s * obs.ang_vel_scale),
            np.full(3, nz.gravity),
            np.zeros(COMMAND_DIM + obs.clock_dim),
            np.full(j, nz.joint_pos_rad),
            np.full(j, nz.joint_vel_rad_per_s * obs.joint_vel_scale),
            np.zeros(j),
        ]
        return (np.concatenate(parts) * nz.scale).astype(np.float32)

    def _feet(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Foot sole positions (N, 2, 3), velocities (N, 2, 3) and contact flags (N, 2)."""
        sd, sl = self._sensordata, self._sensor
        pos = np.stack([sd[:, sl[f"{s}_pos"]] for s in FOOT_SITES], axis=1)
        vel = np.stack([sd[:, sl[f"{s}_vel"]] for s in FOOT_SITES], axis=1)
        touch = np.stack([sd[:, sl[f"{s}_touch"]][:, 0] for s in FOOT_SITES], axis=1)
        return pos, vel, touch > self.loco.rewards.contact_force_threshold_n

    def _observations(self, planar: np.ndarray | None = None) -> dict[str, torch.Tensor]:  # type: ignore[override]
        sd, sl = self._sensordata, self._sensor
        quat = sd[:, sl[C.SENSOR_IMU_QUAT]]
        clean = policy_observation(
            self._qpos[:, self._qadr],
            self._qvel[:, self._vadr],
            quat,
            sd[:, sl[C.SENSOR_IMU_GYRO]],
            self.command,
            self._last_action,
            C.DEFAULT_JOINT_POS_RAD,
            self.loco.env.obs,
            self.phase(),
        )  # (N, O)
        noise = self._rng.uniform(-1.0, 1.0, clean.shape).astype(np.float32) * self._obs_noise
        clip = self.loco.env.obs.clip
        policy = np.clip(clean + noise, -clip, clip)
        base_quat = self._qpos[:, 3:7]
        lin_vel = quat_rotate_inverse(base_quat, self._qvel[:, :3])
        foot_pos, _, contact = self._feet()
        extra = np.concatenate([lin_vel, self._qpos[:, 2:3], contact, foot_pos[:, :, 2]], axis=1)
        critic = np.concatenate([clean, extra.astype(np.float32)], axis=1)
        return {"policy": torch.from_numpy(policy), "critic": torch.from_numpy(critic)}

    # ----- rewards --------------------------------------------------------------------------------------------
    def _reward_terms(self, a: np.ndarray) -> dict[str, np.ndarray]:
        """Weighted reward terms (N,) of this step, already multiplied by the control period."""
        r, dt = self.loco.rewards, self.cfg.env.ctrl_dt_s
        base_quat = self._qpos[:, 3:7]
        lin_vel = quat_rotate_inverse(base_quat, self._qvel[:, :3])  # body frame
        ang_vel = self._qvel[:, 3:6]  # free-joint angular velocity is in the body frame
        gravity = projected_gravity(base_quat)
        q, dq = self._qpos[:, self._qadr], self._qvel[:, self._vadr]
        q_off = q - C.DEFAULT_JOINT_POS_RAD
        tau = np.clip(self._kp * (self._targets - q) - C.KD_NMS_PER_RAD * dq, -C.EFFORT_LIMIT_NM, C.EFFORT_LIMIT_NM)
        mid = 0.5 * (C.JOINT_LOWER_RAD + C.JOINT_UPPER_RAD)
        half = 0.5 * (C.JOINT_UPPER_RAD - C.JOINT_LOWER_RAD) * r.soft_limit_fraction
        beyond = np.clip(q - (mid + half), 0.0, None) + np.clip((mid - half) - q, 0.0, None)
        foot_pos, foot_vel, contact = self._feet()
        leg_phase = np.mod(self.phase()[:, None] + np.array([0.0, 0.5]), 1.0)  # (N, 2)
        stance = leg_phase < self.loco.stance_fraction
        lin_err = np.sum((self.command[:, :2] - lin_vel[:, :2]) ** 2, axis=1)
        ang_err = (self.command[:, 2] - ang_vel[:, 2]) ** 2
        upper = list(C.WAIST_JOINT_IDS + C.ARM_JOINT_IDS)
        ref = self._ref_offsets(leg_phase)  # (N, 29)
        raw = {
            "ref_joint_pos": np.exp(-2.0 * np.linalg.norm((q_off - ref)[:, list(C.LEG_JOINT_IDS)], axis=1)),
            "tracking_lin_vel": np.exp(-lin_err / r.tracking_sigma),
            "tracking_ang_vel": np.exp(-ang_err / r.tracking_sigma),
            "lin_vel_z": lin_vel[:, 2] ** 2,
            "ang_vel_xy": np.sum(ang_vel[:, :2] ** 2, axis=1),
            "orientation": np.sum(gravity[:, :2] ** 2, axis=1),
            "base_height": (self._qpos[:, 2] - r.base_height_target_m) ** 2,
            "torques": np.sum(tau**2, axis=1),
            "dof_acc": np.sum(((dq - self._prev_dq) / dt) ** 2, axis=1),
            "dof_vel": np.sum(dq**2, axis=1),
            "action_rate": np.sum((a - self._last_action) ** 2, axis=1),
            "dof_pos_limits": np.sum(beyond, axis=1),
            "alive": np.ones(self.num_envs),
            "hip_pos": np.sum((q_off - ref)[:, list(_HIP_ROLL_YAW)] ** 2, axis=1),
            "upper_body_pose": np.sum(q_off[:, upper] ** 2, axis=1),
            "contact": np.sum(contact == stance, axis=1).astype(np.float64),
            "feet_swing_height": np.sum((foot_pos[:, :, 2] - r.swing_height_m) ** 2 * ~contact, axis=1),
            "contact_no_vel": np.sum(np.sum(foot_vel**2, axis=2) * contact, axis=1),
        }
        return {k: getattr(r, k) * v * dt for k, v in raw.items()}

    def _ref_offsets(self, leg_phase: np.ndarray) -> np.ndarray:
        """Reference joint offsets from the default pose (N, 29) at per-foot phases ``leg_phase`` (N, 2) and the
        current commands (zero outside the legs)."""
        ref = swing_reference_rad(
            torch.from_numpy(leg_phase),
            self.loco.stance_fraction,
            self.loco.rewards.ref_lift_rad,
            self._lift,
            torch.from_numpy(self.command),
            torch.from_numpy(self._stride),
        )
        return ref.numpy()

    def swing_reference(self, scale: float = 1.0) -> SwingReference:
        """The reference gait of the ``ref_joint_pos`` reward, times ``scale``, as actions from observations."""
        names = observation_names(C.JOINT_NAMES, self.loco.env.obs)
        return SwingReference(
            self.loco.stance_fraction,
            scale * self.loco.rewards.ref_lift_rad,
            names.index("gait_clock_sin"),
            names.index("command_0"),
            scale * self._stride,
        )

    def tracking_errors(self, command: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Planar velocity error |v_xy* - v_xy| (m/s) and yaw-rate error (rad/s) of every env now, (N,) each.

        ``command`` (N, 3) defaults to the current commands (pass the previous ones to score a finished step
        across a command change).
        """
        cmd = self.command if command is None else command
        v = self.base_velocity()
        return np.linalg.norm(cmd[:, :2] - v[:, :2], axis=1), np.abs(cmd[:, 2] - v[:, 2])

    def base_velocity(self) -> np.ndarray:
        """What a command asks for, measured (N, 3): pelvis forward and lateral velocity in its own frame (m/s)
        and its yaw rate (rad/s, the free joint's body-frame z rate)."""
        lin_vel = quat_rotate_inverse(self._qpos[:, 3:7], self._qvel[:, :3])
        return np.stack([lin_vel[:, 0], lin_vel[:, 1], self._qvel[:, 5]], axis=1)

    # ----- stepping -------------------------------------------------------------------------------------------
    def step(  # type: ignore[override]
        self, actions: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Apply actions (N, 29); returns observation groups, reward, terminated, truncated, info (auto-resets).

        ``info["log"]`` holds per-term episode reward means, the fall rate and tracking errors of the episodes
        that ended this step (keys start with "/", as rsl-rl's logger expects), and the curriculum scale.
        """
        dt = self.cfg.env.ctrl_dt_s
        a = self._apply_actions(actions)
        self._apply_pushes()
        self._physics()
        self.episode_length += 1
        terminated, diverged = self._terminations()
        truncated = (self.episode_length >= self.max_episode_length) & ~terminated
        terms = self._reward_terms(a)
        terms["alive"] = terms["alive"] * ~terminated
        reward = np.where(diverged, 0.0, np.nan_to_num(sum(terms.values()), nan=0.0, posinf=0.0, neginf=0.0))
        for k, v in terms.items():
            self._episode_sums.setdefault(k, np.zeros(self.num_envs))
            self._episode_sums[k] += np.where(diverged, 0.0, v)
        lin_err, yaw_err = self.tracking_errors()
        self._episode_sums.setdefault("lin_err", np.zeros(self.num_envs))
        self._episode_sums.setdefault("yaw_err", np.zeros(self.num_envs))
        self._episode_sums["lin_err"] += np.nan_to_num(lin_err)
        self._episode_sums["yaw_err"] += np.nan_to_num(yaw_err)
        self._last_action = a
        self._prev_dq = self._qvel[:, self._vadr].copy()
        self._command_timer -= dt
        self._sample_commands(np.flatnonzero(self._command_timer <= 0.0))

        done = np.flatnonzero(terminated | truncated)
        log: dict[str, float] = {}
        if len(done):
            # Sums over the episodes that finished now, plus their count: a consumer adds them up over steps and
            # divides once, so every episode weighs the same (a mean of per-step means would weigh a step with
            # one fall as much as the step where hundreds of episodes time out together).
            steps = np.maximum(self.episode_length[done], 1)
            log[EPISODES_FINISHED] = float(len(done))
            log[f"{EPISODE_SUM}fall_rate"] = float(np.sum(terminated[done]))
            for k, v in self._episode_sums.items():
                if k in ("lin_err", "yaw_err"):
                    log[f"{EPISODE_SUM}{k}"] = float(np.sum(v[done] / steps))
                else:
                    log[f"{EPISODE_REWARD_SUM}{k}"] = float(np.sum(v[done]) / self.loco.episode_length_s)
        self._update_curriculum(done)
        log["curriculum/command_scale"] = self.curriculum_scale
        for i in done:
            self._reset_env(i)
        self._obs_groups = self._observations()
        info = {"time_outs": torch.from_numpy(truncated.copy()), "log": log, "num_resets": len(done)}
        return (
            self._obs_groups,
            torch.from_numpy(reward.astype(np.float32)),
            torch.from_numpy(terminated.copy()),
            torch.from_numpy(truncated.copy()),
            info,
        )

    def _update_curriculum(self, done: np.ndarray) -> None:
        """Grow the command ranges at most once per episode length (legged_gym's schedule), judged on every
        episode that ended in that window: its tracking kernel summed over the episode and divided by the full
        episode length, so an early fall scores low and a falling policy never advances."""
        w = self.loco.rewards.tracking_lin_vel * self.cfg.env.ctrl_dt_s
        if w <= 0.0:
            return
        kernel = self._episode_sums["tracking_lin_vel"][done] / (w * self.max_episode_length)
        self._curriculum_window += [float(np.sum(kernel)), float(len(done)), 1.0]  # one call per step
        total, count, steps = self._curriculum_window
        if steps < self.max_episode_length:
            return
        c = self.loco.commands
        if count > 0 and total / count > c.curriculum_threshold:
            self.curriculum_scale = min(1.0, self.curriculum_scale + c.curriculum_step)
        self._curriculum_window[:] = 0.0

    def critic_mirror_map(self) -> tuple[np.ndarray, np.ndarray]:
        """``(perm, sign)`` mirroring the critic observation (policy part, then the privileged terms)."""
        perm, sign = observation_mirror_map(C.NUM_JOINTS, self.loco.env.obs)
        o = len(perm)
        extra_perm = [o, o + 1, o + 2, o + 3, o + 5, o + 4, o + 7, o + 6]  # v, height, contacts L<->R, heights L<->R
        extra_sign = [1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        return np.concatenate([perm, extra_perm]), np.concatenate([sign, extra_sign])

    # ----- checkpointing --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue stepping exactly where this env is (numpy arrays and the RNG state)."""
        arrays = {
            name: getattr(self, name).copy()
            for name in (
                "_state",
                "_sensordata",
                "_kp",
                "_ctrl",
                "_prev_ctrl",
                "_targets",
                "_last_action",
                "_latency",
                "_damping",
                "episode_length",
                "command",
                "_command_timer",
                "_prev_dq",
            )
        }
        models = {
            "body_mass": np.stack([m.body_mass for m in self.models]),
            "body_inertia": np.stack([m.body_inertia for m in self.models]),
            "geom_friction": np.stack([m.geom_friction for m in self.models]),
            "actuator_gainprm": np.stack([m.actuator_gainprm for m in self.models]),
            "actuator_biasprm": np.stack([m.actuator_biasprm for m in self.models]),
            "actuator_forcerange": np.stack([m.actuator_forcerange for m in self.models]),
        }
        return {
            "arrays": arrays,
            "models": models,
            "episode_sums": {k: v.copy() for k, v in self._episode_sums.items()},
            "curriculum_scale": self.curriculum_scale,
            "curriculum_window": self._curriculum_window.copy(),
            "rng": self._rng.bit_generator.state,
            "obs": {k: v.numpy().copy() for k, v in self._obs_groups.items()},
            "config": dataclasses.asdict(self.loco),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same number of envs and model)."""
        arrays = state["arrays"]
        if arrays["_state"].shape != self._state.shape:
            raise ValueError(
                f"env state: expected {self._state.shape} (num_envs, nstate), got {arrays['_state'].shape}; "
                "resume with the num_envs of the checkpointed run"
            )
        for name, value in arrays.items():
            setattr(self, name, value.copy())
        self._qpos = self._state[:, self._qpos_cols]
        self._qvel = self._state[:, self._qvel_cols]
        for key, stacked in state["models"].items():
            for m, value in zip(self.models, stacked, strict=True):
                getattr(m, key)[:] = value
        self._episode_sums = {k: v.copy() for k, v in state["episode_sums"].items()}
        self.curriculum_scale = float(state["curriculum_scale"])
        self._curriculum_window = np.array(state.get("curriculum_window", np.zeros(3)), dtype=np.float64)
        self._rng.bit_generator.state = state["rng"]
        # The stored observations, not recomputed ones: their noise was drawn before the RNG state was saved.
        self._obs_groups = {k: torch.from_numpy(v.copy()) for k, v in state["obs"].items()}
