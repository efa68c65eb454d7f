"""Velocity-command walking task of the G1 for PPO, on the vectorized MuJoCo env.

The recipe follows the established legged-robot ones (legged_gym / unitree_rl_gym's G1 task, mjlab's velocity
task), sized for a CPU budget:

- Commands ``(vx, vy, yaw_rate)`` in the body frame are resampled every few seconds, a fraction of them zero
  (stand), within ranges that grow with a curriculum: the range scale starts small and grows each time the
  episodes that reach the time limit tracked the command well.
- A gait clock: the left foot's phase ``(t / period) mod 1`` (the right foot's is +0.5) enters the policy
  observation as sin/cos (:mod:`envs.g1.observations`), and a contact-pattern reward pays each foot for being in
  contact exactly during its stance part of the cycle; swing feet are pulled to a clearance height.
- Shaping: velocity tracking (exponential kernels), upright posture, base height, smooth and small joint
  motion and torques, soft joint limits, hip roll/yaw and upper-body pose near default, no foot slip.
  Weights are per second and multiplied by the control period, so they do not depend on the control rate.
- Termination on falls; domain randomization and pushes come from :class:`envs.g1.vec_env.G1VecEnv`.

The configs are in :mod:`envs.locomotion.config`, the reward terms in :mod:`envs.locomotion.rewards`, the
curriculum in :mod:`envs.locomotion.curriculum` and the reference gait in :mod:`envs.locomotion.gait`.

Actions are joint position offsets ``q* = q_default + action_scale * a`` with the robot constants' action scale
and PD gains, through the same safety clamps as the robot. Observations are a dict of two groups:
``"policy"`` (the deployable observation with sensor noise) and ``"critic"`` (the clean observation plus
privileged terms: base linear velocity, height, foot contacts and heights) for an asymmetric critic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco
import numpy as np
import torch

from envs.g1.observations import (
    COMMAND_DIM,
    gait_phase,
    observation_dim,
    observation_mirror_map,
    observation_names,
    policy_observation,
    quat_rotate_inverse,
)
from envs.g1.vec_env import G1VecEnv
from envs.locomotion.config import LocomotionConfig
from envs.locomotion.curriculum import CommandCurriculum
from envs.locomotion.gait import LIFT_MATRIX, SwingReference, stride_matrix, swing_reference_rad
from envs.locomotion.rewards import StepState, reward_terms
from robot.g1 import constants as C

EPISODES_FINISHED = "episodes_finished"
"""Log key: episodes that finished at this step."""
EPISODE_SUM = "episode_sum/"
"""Log key prefix: per-episode tracking errors and falls summed over the episodes that finished at this step."""
EPISODE_REWARD_SUM = "episode_reward_sum/"
"""Log key prefix: per-episode reward terms (per second of the full episode length) summed likewise."""
CRITIC_EXTRA_DIM = 8
"""Privileged critic terms: base linear velocity (3), base height (1), foot contacts (2), foot heights (2)."""


class G1LocomotionEnv(G1VecEnv):
    """Batched G1 walking on velocity commands (see module docstring). Torch tensors out, numpy inside."""

    def __init__(self, cfg: LocomotionConfig | None = None) -> None:
        self.loco = loco = cfg or LocomotionConfig()
        n, j = loco.num_envs, C.NUM_JOINTS
        self.command = np.zeros((n, COMMAND_DIM))
        self._command_timer = np.zeros(n)
        self._prev_dq = np.zeros((n, j))
        self._episode_sums: dict[str, np.ndarray] = {}
        self.curriculum = CommandCurriculum(loco.commands)
        self._obs_noise = self._noise_vector()
        self._lift = torch.from_numpy(LIFT_MATRIX)
        self._stride = loco.rewards.ref_stride_scale * stride_matrix(loco.gait_period_s, loco.stance_fraction)
        self._stride[:, 2, :] *= loco.rewards.ref_turn_gain
        super().__init__(loco.vec_config())  # ends with reset()
        self.num_obs = observation_dim(j, loco.env.obs)
        self.num_critic_obs = self.num_obs + CRITIC_EXTRA_DIM

    # ----- model ----------------------------------------------------------------------------------------------
    def _modify_spec(self, spec: mujoco.MjSpec) -> None:
        for site_name, body_name in zip(C.FOOT_SITES, C.FEET_BODIES, strict=True):
            touch_site = spec.body(body_name).add_site()
            touch_site.name = f"{site_name}_touch"
            touch_site.type = mujoco.mjtGeom.mjGEOM_BOX
            touch_site.size = C.FOOT_TOUCH_BOX_HALF_SIZE_M
            touch_site.pos = C.FOOT_TOUCH_BOX_POS_M
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
        feet = [f"{s}_{k}" for s in C.FOOT_SITES for k in ("pos", "vel", "touch")]
        for name in (C.SENSOR_IMU_QUAT, C.SENSOR_IMU_GYRO, *feet):
            sensor = m.sensor(name)
            out[name] = slice(int(sensor.adr[0]), int(sensor.adr[0] + sensor.dim[0]))
        return out

    # ----- commands, resets -----------------------------------------------------------------------------------
    def _sample_commands(self, envs: np.ndarray) -> None:
        if len(envs) == 0:
            return
        c, s, rng = self.loco.commands, self.curriculum.scale, self._rng
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
        pos = np.stack([sd[:, sl[f"{s}_pos"]] for s in C.FOOT_SITES], axis=1)
        vel = np.stack([sd[:, sl[f"{s}_vel"]] for s in C.FOOT_SITES], axis=1)
        touch = np.stack([sd[:, sl[f"{s}_touch"]][:, 0] for s in C.FOOT_SITES], axis=1)
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
    @property
    def curriculum_scale(self) -> float:
        """Scale of the command ranges now (:class:`envs.locomotion.curriculum.CommandCurriculum`)."""
        return self.curriculum.scale

    def _reward_terms(self, a: np.ndarray) -> dict[str, np.ndarray]:
        """Weighted reward terms (N,) of this step, already multiplied by the control period."""
        base_quat = self._qpos[:, 3:7]
        q, dq = self._qpos[:, self._qadr], self._qvel[:, self._vadr]
        tau = np.clip(self._kp * (self._targets - q) - C.KD_NMS_PER_RAD * dq, -C.EFFORT_LIMIT_NM, C.EFFORT_LIMIT_NM)
        foot_pos, foot_vel, contact = self._feet()
        leg_phase = np.mod(self.phase()[:, None] + np.array([0.0, 0.5]), 1.0)  # (N, 2)
        state = StepState(
            base_quat=base_quat,
            base_lin_vel=quat_rotate_inverse(base_quat, self._qvel[:, :3]),  # body frame
            base_ang_vel=self._qvel[:, 3:6],  # free-joint angular velocity is in the body frame
            base_height=self._qpos[:, 2],
            joint_pos=q,
            joint_vel=dq,
            prev_joint_vel=self._prev_dq,
            joint_torque=tau,
            action=a,
            last_action=self._last_action,
            foot_pos=foot_pos,
            foot_vel=foot_vel,
            contact=contact,
            stance=leg_phase < self.loco.stance_fraction,
            command=self.command,
            reference=self._ref_offsets(leg_phase),  # (N, 29)
        )
        return reward_terms(self.loco.rewards, self.cfg.env.ctrl_dt_s, state)

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
        """Feed the episodes that ended now to the curriculum: each one's tracking kernel summed over the episode
        and divided by the full episode length (an early fall scores low)."""
        w = self.loco.rewards.tracking_lin_vel * self.cfg.env.ctrl_dt_s
        if w <= 0.0:
            return
        kernels = self._episode_sums["tracking_lin_vel"][done] / (w * self.max_episode_length)
        self.curriculum.update(kernels, self.max_episode_length)

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
            **self.curriculum.state_dict(),
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
        self.curriculum.load_state_dict(state)
        self._rng.bit_generator.state = state["rng"]
        # The stored observations, not recomputed ones: their noise was drawn before the RNG state was saved.
        self._obs_groups = {k: torch.from_numpy(v.copy()) for k, v in state["obs"].items()}
