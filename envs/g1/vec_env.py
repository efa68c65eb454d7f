"""Vectorized G1 environment: many MuJoCo worlds stepped by C MuJoCo across threads, torch tensors out.

Each env owns an ``MjModel`` copy (so domain randomization can change masses, friction and gains per env);
the physics state of all envs lives in one ``(N, nstate)`` array (``mjSTATE_FULLPHYSICS``). A step hands the
states, the per-substep controls and the models to MuJoCo's C rollout (:mod:`mujoco.rollout`): each of
``num_threads`` worker threads steps its block of envs ``substeps`` times in C without the GIL.
Observations, rewards and terminations are then computed once, batched, with the same functions as the single
env (:mod:`envs.g1.observations`, :mod:`envs.tasks`), and returned as torch tensors ready for PPO.
The solver warm start is not carried between control steps (the rollout starts each call cold), which
costs nothing measurable with the Newton solver and keeps each env's result independent of the threads.

Per-step semantics equal :class:`envs.g1.env.G1Env`: targets ``q_default + scale * a`` pass the robot
safety clamps (joint limits, rate limit; non-finite actions put that env in damping and terminate it), then
``substeps`` physics steps. Domain randomization (per episode): floor/foot friction, link masses, motor
strength, PD gain error, action latency (the first ``k`` substeps still use the previous targets) and
random pushes of the base velocity.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np
import torch
from mujoco import rollout

from envs.g1.env import G1EnvConfig, build_task_model
from envs.g1.observations import joint_targets_from_action, observation_dim, policy_observation, root_planar_state
from robot.actuation import set_pd_gains
from robot.g1 import constants as C
from robot.g1.model import joint_dof_adr, joint_qpos_adr
from robot.safety import clamp_position_targets


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass
class DomainRandomizationConfig:
    """Per-episode randomization ranges (uniform) and pushes.

    ``enabled=False`` gives the nominal robot everywhere; pushes have their own switch (``push_interval_s``).
    """

    enabled: bool = True
    """Randomize the model per episode (friction, masses, motor strength, gains, latency)."""
    friction_range: tuple[float, float] = (0.4, 1.2)
    """Sliding friction of floor and feet."""
    link_mass_scale_range: tuple[float, float] = (0.9, 1.1)
    """Independent scale of each link's mass (and inertia): how the mass is distributed."""
    body_mass_scale_range: tuple[float, float] = (1.0, 1.0)
    """One scale per world on every link's mass and inertia, on top of the per-link scale: the whole robot heavier or
    lighter (a payload, a battery, a model that is off). Per-link draws alone average out over the G1's 30 bodies."""
    motor_strength_range: tuple[float, float] = (0.9, 1.1)
    """Scale of all actuator torques."""
    gain_error_range: tuple[float, float] = (-0.1, 0.1)
    """Relative error of kp and kd per joint."""
    latency_substeps_range: tuple[int, int] = (0, 1)
    """Physics substeps (inclusive range) before a new action takes effect."""
    push_interval_s: float = 5.0
    """Time between pushes (<= 0 disables them)."""
    push_interval_jitter_s: float = 0.0
    """Each world's next push comes ``push_interval_s`` plus a uniform draw in [0, this] after its last (0: every
    world on the same fixed period)."""
    push_velocity_m_per_s: float = 0.5
    """Largest horizontal base velocity change of a push."""

    def __post_init__(self) -> None:
        for name in (
            "friction_range",
            "link_mass_scale_range",
            "body_mass_scale_range",
            "motor_strength_range",
            "gain_error_range",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: expected (low, high) with low <= high, got {(lo, hi)}")
        if min(self.friction_range[0], self.link_mass_scale_range[0], self.body_mass_scale_range[0]) <= 0.0 or (
            self.motor_strength_range[0] <= 0.0
        ):
            raise ValueError("friction, mass scale and motor strength ranges must stay > 0")
        if self.gain_error_range[0] <= -1.0:
            raise ValueError(f"gain_error_range: expected low > -1, got {self.gain_error_range}")
        lo, hi = self.latency_substeps_range
        if not 0 <= lo <= hi:
            raise ValueError(f"latency_substeps_range: expected 0 <= low <= high, got {(lo, hi)}")
        if self.push_interval_jitter_s < 0.0:
            raise ValueError(f"push_interval_jitter_s: expected >= 0, got {self.push_interval_jitter_s}")


@dataclass
class G1VecEnvConfig:
    """Vectorized G1 environment."""

    num_envs: int = 16
    """Number of parallel worlds."""
    num_threads: int = 2
    """Worker threads stepping physics."""
    env: G1EnvConfig = field(default_factory=G1EnvConfig)
    """Per-env task, observation, reward and robot settings."""
    randomization: DomainRandomizationConfig = field(default_factory=DomainRandomizationConfig)
    """Domain randomization."""
    episode_length_s: float = 20.0
    """Episodes are truncated (time-out) after this long."""
    seed: int = 0
    """Seed of all randomization."""

    def __post_init__(self) -> None:
        if self.num_envs < 1 or self.num_threads < 1:
            raise ValueError(f"num_envs and num_threads: expected >= 1, got {self.num_envs}, {self.num_threads}")
        if self.episode_length_s < self.env.ctrl_dt_s:
            raise ValueError(
                f"episode_length_s: expected >= ctrl_dt_s={self.env.ctrl_dt_s}, got {self.episode_length_s}"
            )
        if self.randomization.latency_substeps_range[1] > self.env.substeps:
            raise ValueError(
                f"latency_substeps_range: expected at most {self.env.substeps} substeps, "
                f"got {self.randomization.latency_substeps_range}"
            )


class G1VecEnv:
    """Batched G1 (see module docstring). Tensors: obs (N, O) float32, reward (N,), dones (N,) bool."""

    def __init__(self, cfg: G1VecEnvConfig | None = None) -> None:
        self.cfg = cfg = cfg or G1VecEnvConfig()
        self.num_envs = n = cfg.num_envs
        base, self.task = build_task_model(cfg.env, self._modify_spec)
        self.models = [copy.deepcopy(base) for _ in range(n)]
        self._scratch = mujoco.MjData(base)  # resets and env_data()
        self._state_spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        nstate = mujoco.mj_stateSize(base, self._state_spec)
        self._state = np.zeros((n, nstate))  # (N, nstate): time, qpos, qvel, act, ...
        self._qpos_cols = slice(1, 1 + base.nq)
        self._qvel_cols = slice(1 + base.nq, 1 + base.nq + base.nv)
        self._nominal_mass = base.body_mass.copy()
        self._nominal_inertia = base.body_inertia.copy()
        foot_geoms = [base.geom(name).id for name in C.FEET_GEOMS]
        self._friction_geoms = np.array([*foot_geoms, base.geom("floor").id])
        self._nominal_friction = base.geom_friction[self._friction_geoms, 0].copy()
        self._qadr, self._vadr = joint_qpos_adr(base), joint_dof_adr(base)
        sens = {name: base.sensor(name).adr[0] for name in (C.SENSOR_IMU_QUAT, C.SENSOR_IMU_GYRO)}
        self._quat_adr, self._gyro_adr = sens[C.SENSOR_IMU_QUAT], sens[C.SENSOR_IMU_GYRO]
        self.num_obs = observation_dim(C.NUM_JOINTS)
        self.num_actions = C.NUM_JOINTS
        self.max_episode_length = round(cfg.episode_length_s / cfg.env.ctrl_dt_s)
        self._rng = np.random.default_rng(cfg.seed)
        # One contiguous block of envs per worker thread; each worker runs a pool-less rollout (nthread=0) on its
        # block, in C without the GIL, while the calling thread sleeps on the futures (MuJoCo's own pool
        # scaled worse here: its calling thread competes for the 2 cores).
        self._blocks = [b for b in np.array_split(np.arange(n), cfg.num_threads) if len(b)]
        self._rollouts = [rollout.Rollout(nthread=0) for _ in self._blocks]
        self._block_datas = [[mujoco.MjData(base)] for _ in self._blocks]
        self._pool = ThreadPoolExecutor(max_workers=len(self._blocks), thread_name_prefix="G1VecEnv")
        self._next_state = np.zeros((n, cfg.env.substeps, nstate))
        self._next_sensordata = np.zeros((n, cfg.env.substeps, base.nsensordata))
        j = C.NUM_JOINTS
        self._qpos = self._state[:, self._qpos_cols]  # views into the state
        self._qvel = self._state[:, self._qvel_cols]
        self._sensordata = np.zeros((n, base.nsensordata))
        self._kp = np.tile(C.KP_NM_PER_RAD, (n, 1))  # (N, J) effective gains incl. error
        self._ctrl = np.zeros((n, j))
        self._prev_ctrl = np.zeros((n, j))
        self._targets = np.tile(C.DEFAULT_JOINT_POS_RAD, (n, 1))
        self._last_action = np.zeros((n, j))
        self._latency = np.zeros(n, dtype=np.int64)
        self._damping = np.zeros(n, dtype=bool)
        self._params = np.zeros((n, self.task.param_dim))
        self.episode_length = np.zeros(n, dtype=np.int64)
        self._next_push = np.full(n, -1, dtype=np.int64)  # jittered pushes: each world's next push step
        self._last_length = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)  # to see restarted episodes
        self.reset()

    def _modify_spec(self, spec: mujoco.MjSpec) -> None:
        """Hook for subclasses: add sites or sensors to the model before it is compiled."""

    # ----- randomization and reset ----------------------------------------------------------------------------
    def _randomize(self, i: int) -> None:
        m, dr, rng = self.models[i], self.cfg.randomization, self._rng
        j = C.NUM_JOINTS
        if not dr.enabled:
            strength, kp_err, kd_err, friction, mass = 1.0, np.zeros(j), np.zeros(j), None, np.ones(m.nbody)
            self._latency[i] = 0
        else:
            strength = rng.uniform(*dr.motor_strength_range)
            kp_err, kd_err = rng.uniform(*dr.gain_error_range, size=(2, j))
            friction = rng.uniform(*dr.friction_range)
            mass = rng.uniform(*dr.link_mass_scale_range, size=m.nbody)
            if dr.body_mass_scale_range[0] != dr.body_mass_scale_range[1]:
                mass = mass * rng.uniform(*dr.body_mass_scale_range)
            else:
                mass = mass * dr.body_mass_scale_range[0]
            self._latency[i] = rng.integers(dr.latency_substeps_range[0], dr.latency_substeps_range[1] + 1)
        m.body_mass[:] = self._nominal_mass * mass
        m.body_inertia[:] = self._nominal_inertia * mass[:, None]
        if friction is not None:
            m.geom_friction[self._friction_geoms, 0] = friction
        kp = C.KP_NM_PER_RAD * (1.0 + kp_err)
        set_pd_gains(m, kp, C.KD_NMS_PER_RAD * (1.0 + kd_err), strength)
        self._kp[i] = kp

    def _reset_env(self, i: int) -> None:
        m, d = self.models[i], self._scratch
        self._randomize(i)
        mujoco.mj_resetData(m, d)
        noise = self._rng.uniform(-1.0, 1.0, C.NUM_JOINTS) * self.cfg.env.init_joint_noise_rad
        q0 = np.clip(C.DEFAULT_JOINT_POS_RAD + noise, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD)
        d.qpos[2] = C.DEFAULT_BASE_HEIGHT_M
        d.qpos[3] = 1.0
        d.qpos[self._qadr] = q0
        self._targets[i] = q0
        self._ctrl[i] = self._prev_ctrl[i] = self._kp[i] * q0
        d.ctrl[:] = self._ctrl[i]
        mujoco.mj_forward(m, d)
        mujoco.mj_getState(m, d, self._state[i], self._state_spec)
        self._sensordata[i] = d.sensordata
        self._last_action[i] = 0.0
        self._damping[i] = False
        self.episode_length[i] = 0

    def _planar(self) -> np.ndarray:
        return root_planar_state(self._qpos[:, :3], self._qpos[:, 3:7], self._qvel[:, :3], self._qvel[:, 5])  # (N, 6)

    def _observations(self, planar: np.ndarray) -> np.ndarray:
        command = self.task.command(planar, self._params)  # (N, 3)
        q, a, g = self._quat_adr, self._gyro_adr, self._sensordata
        return policy_observation(
            self._qpos[:, self._qadr],
            self._qvel[:, self._vadr],
            g[:, q : q + 4],
            g[:, a : a + 3],
            command,
            self._last_action,
            C.DEFAULT_JOINT_POS_RAD,
            self.cfg.env.obs,
        )  # (N, O)

    def reset(self) -> torch.Tensor:
        """Reset every env; returns observations (N, O)."""
        for i in range(self.num_envs):
            self._reset_env(i)
        planar = self._planar()
        self._params[:] = self.task.sample_params(self._rng, planar)
        self._obs = self._observations(planar)
        return torch.from_numpy(self._obs)

    def get_observations(self) -> torch.Tensor:
        """Latest observations (N, O) without stepping."""
        return torch.from_numpy(self._obs)

    @property
    def qpos(self) -> np.ndarray:
        """Generalized positions of every env now (N, nq): free joint (pos, quat wxyz), then joints. Read-only view."""
        return _read_only(self._qpos)

    @property
    def qvel(self) -> np.ndarray:
        """Generalized velocities (N, nv): world linear, body angular, then joints. Read-only view."""
        return _read_only(self._qvel)

    @property
    def sensordata(self) -> np.ndarray:
        """Sensor readings of every env at the last physics step (N, nsensordata). Read-only view."""
        return _read_only(self._sensordata)

    @property
    def substep_states(self) -> np.ndarray:
        """Physics state after each substep of the last control step (N, substeps, nstate), laid out as
        ``mjSTATE_FULLPHYSICS``: time, qpos, qvel, act, ... (what a robot publishing at the physics rate reports).
        A world reset at the end of that step still holds its finished episode here. Read-only view."""
        return _read_only(self._next_state)

    @property
    def substep_sensordata(self) -> np.ndarray:
        """Sensor readings of each substep of the last control step (N, substeps, nsensordata): those of the
        forward pass of that substep's ``mj_step``, as :class:`robot.sim.MujocoRobot` publishes them beside the
        state after it. Same reset caveat as :attr:`substep_states`. Read-only view."""
        return _read_only(self._next_sensordata)

    @property
    def joint_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Columns of the 29 joints (SDK order) in ``qpos`` and in ``qvel``."""
        return np.asarray(self._qadr), np.asarray(self._vadr)

    def env_data(self, i: int) -> mujoco.MjData:
        """A fresh ``MjData`` holding env ``i``'s current state, forward dynamics computed (rendering, checks)."""
        m = self.models[i]
        d = mujoco.MjData(m)
        mujoco.mj_setState(m, d, self._state[i], self._state_spec)
        d.ctrl[:] = self._ctrl[i]
        mujoco.mj_forward(m, d)
        return d

    # ----- stepping -------------------------------------------------------------------------------------------
    def _physics(self) -> None:
        """``substeps`` physics steps of every env in C; the first ``latency`` substeps keep the old controls."""
        substeps = self.cfg.env.substeps
        old = np.arange(substeps)[None, :] < self._latency[:, None]  # (N, S)
        control = np.where(old[:, :, None], self._prev_ctrl[:, None, :], self._ctrl[:, None, :])  # (N, S, nu)

        def run(k: int) -> None:
            lo, hi = self._blocks[k][0], self._blocks[k][-1] + 1
            self._rollouts[k].rollout(
                self.models[lo:hi],
                self._block_datas[k],
                self._state[lo:hi],
                control[lo:hi],
                state=self._next_state[lo:hi],
                sensordata=self._next_sensordata[lo:hi],
            )

        if len(self._blocks) == 1:
            run(0)
        else:
            list(self._pool.map(run, range(len(self._blocks))))
        self._state = self._next_state[:, -1].copy()
        self._sensordata = self._next_sensordata[:, -1].copy()
        self._qpos = self._state[:, self._qpos_cols]
        self._qvel = self._state[:, self._qvel_cols]

    def _apply_pushes(self) -> None:
        dr, env = self.cfg.randomization, self.cfg.env
        if dr.push_interval_s <= 0.0:
            return
        interval = max(1, round(dr.push_interval_s / env.ctrl_dt_s))
        if dr.push_interval_jitter_s > 0.0:
            pushed = self._jittered_pushes(interval, round(dr.push_interval_jitter_s / env.ctrl_dt_s))
        else:
            pushed = np.flatnonzero((self.episode_length > 0) & (self.episode_length % interval == 0))
        if len(pushed):
            kick = self._rng.uniform(-dr.push_velocity_m_per_s, dr.push_velocity_m_per_s, (len(pushed), 2))
            self._state[pushed, self._qvel_cols.start : self._qvel_cols.start + 2] += kick

    def _jittered_pushes(self, interval: int, jitter: int) -> np.ndarray:
        """Worlds due for a push now, each on its own schedule (``push_interval_jitter_s``): a world whose episode
        restarted, or that was just pushed, draws its next push time ``interval + U{0..jitter}`` steps ahead."""
        length = self.episode_length
        restarted = (length < self._last_length) | (self._next_push < 0)
        self._next_push[restarted] = length[restarted] + interval + self._rng.integers(0, jitter + 1, restarted.sum())
        self._last_length = length.copy()
        pushed = np.flatnonzero(length >= self._next_push)
        self._next_push[pushed] = length[pushed] + interval + self._rng.integers(0, jitter + 1, len(pushed))
        return pushed

    def _enter_damping(self, envs: np.ndarray) -> None:
        for i in envs:
            zeros = np.zeros(C.NUM_JOINTS)
            set_pd_gains(self.models[i], zeros, np.full(C.NUM_JOINTS, C.DAMPING_KD_NMS_PER_RAD))
            self._kp[i] = 0.0
            self._damping[i] = True

    def _terminations(self) -> tuple[np.ndarray, np.ndarray]:
        """(terminated, diverged) (N,) bool: fallen (pelvis low or tilted past 60 deg), non-finite or damping."""
        up_z = 1.0 - 2.0 * (self._qpos[:, 4] ** 2 + self._qpos[:, 5] ** 2)
        fallen = (self._qpos[:, 2] < self.cfg.env.fall_height_m) | (up_z < 0.5)
        diverged = ~(np.all(np.isfinite(self._qpos), axis=1) & np.all(np.isfinite(self._qvel), axis=1))
        return fallen | diverged | self._damping, diverged

    def _apply_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Validate and clip actions (N, A), set this step's PD controls; returns the clipped actions (float64)."""
        env = self.cfg.env
        a = actions.detach().to("cpu", torch.float64).numpy().copy()  # (N, A)
        if a.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions: expected shape ({self.num_envs}, {self.num_actions}), got {tuple(a.shape)}")
        bad = ~np.all(np.isfinite(a), axis=1)
        a[bad] = 0.0
        self._enter_damping(np.flatnonzero(bad & ~self._damping))
        a = np.clip(a, -env.action_clip, env.action_clip)
        targets = joint_targets_from_action(a, C.DEFAULT_JOINT_POS_RAD, C.ACTION_SCALE_RAD)
        targets = clamp_position_targets(
            targets, self._targets, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, env.robot.safety.max_delta_q_per_tick_rad
        )
        self._targets = targets
        self._prev_ctrl = self._ctrl
        self._ctrl = self._kp * targets  # ctrl = kp q* (dq* = 0, tau_ff = 0), see robot.actuation
        return a

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Apply actions (N, A); returns obs, reward, terminated, truncated (time-out), info. Auto-resets."""
        a = self._apply_actions(actions)
        self._apply_pushes()
        self._physics()
        self.episode_length += 1

        env = self.cfg.env
        planar = self._planar()
        terminated, diverged = self._terminations()
        truncated = (self.episode_length >= self.max_episode_length) & ~terminated
        rate = np.sum((a - self._last_action) ** 2, axis=1)
        reward = self.task.reward(planar, self._params) + env.alive_bonus * ~terminated - env.action_rate_weight * rate
        reward = np.where(diverged, 0.0, reward)
        metrics = {k: float(np.mean(v)) for k, v in self.task.metrics(planar, self._params).items()}
        self._last_action = a
        done = np.flatnonzero(terminated | truncated)
        for i in done:
            self._reset_env(i)
        if len(done):
            planar = self._planar()
            self._params[done] = self.task.sample_params(self._rng, planar[done])
        self._obs = self._observations(planar)
        info = {"time_outs": torch.from_numpy(truncated.copy()), "metrics": metrics, "num_resets": len(done)}
        return (
            torch.from_numpy(self._obs),
            torch.from_numpy(reward.astype(np.float32)),
            torch.from_numpy(terminated),
            torch.from_numpy(truncated),
            info,
        )

    def close(self) -> None:
        """Stop the worker threads."""
        for r in self._rollouts:
            r.close()
        self._pool.shutdown(wait=True)
