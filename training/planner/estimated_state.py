"""The planner state of N simulated G1 worlds from the base-state estimator instead of the simulator's truth.

A real G1 reports its IMU (orientation, gyro, accelerometer) and joint encoders, never its base position or
linear velocity; the deploy runtime fills those in with the contact-aided Kalman filter of
:mod:`robot.estimation` (leg kinematics fused with the IMU; Bloesch et al., RSS 2012, with the attitude taken from
the IMU as on MIT Cheetah 3, Bledt et al., IROS 2018). :class:`EstimatedStates` runs that filter over the worlds of
a vectorised env so a closed-loop evaluation sees what a robot would:

- every physics substep of the last control step is one sample (the G1 publishes at the physics rate): the
  exact IMU readings of the substep's sensors and the joints of the state after it (paired as
  :class:`robot.sim.MujocoRobot` publishes them) pass through one :class:`robot.sensor_model.SensorModel` per
  world (MEMS noise, drifting biases, heading drift; :meth:`SensorModelConfig.g1_mems`) and into one batched
  :class:`~robot.estimation.filter.ContactKalmanFilter` step;
- a world whose episode has just begun restarts: new sensor biases, the filter initialised at the reset pose
  (known planar position and zero velocity, both feet on the floor);
- the planner state is :class:`envs.planner.state.PlannerStateEstimator` of the estimated pelvis position and
  world velocity with the reported orientation, gyro and joints (what ``deploy.planner_policy`` hands it).

From the filter's IMU-point state ``x = [p, v, ...]``, attitude ``R`` and bias-corrected gyro ``w``, the pelvis
origin and velocity are ``p_base = p - R r_imu`` and ``v_base = v - R (w x r_imu)`` (``r_imu``: IMU in the
pelvis frame). :meth:`EstimatedStates.base_pose` gives the estimated planar pose (x, y, heading) for tasks that
must express a goal in the robot's frame.
"""

from __future__ import annotations

import numpy as np

from envs.g1.observations import yaw_from_quat
from envs.locomotion.env import G1LocomotionEnv
from envs.planner.state import PlannerStateEstimator
from robot.estimation.filter import ContactKalmanFilter, FilterConfig
from robot.g1 import constants as C
from robot.sensor_model import SensorModel, SensorModelConfig
from training.planner.collect import RecordingEnv


class EstimatedStates:
    """Planner states of every world of ``env`` from the estimator (module docstring); call once per control step.

    ``seed`` seeds world ``i``'s sensor noise with ``(seed, i)`` (default: the env's own seed, i.e. the
    evaluation's); ``sensors`` defaults to :meth:`SensorModelConfig.g1_mems`.
    """

    name = "estimator"

    def __init__(
        self,
        env: RecordingEnv,
        seed: int | None = None,
        sensors: SensorModelConfig | None = None,
        filter_cfg: FilterConfig | None = None,
    ) -> None:
        n, model = env.num_envs, env.models[0]
        seed = env.cfg.seed if seed is None else seed
        cfg = sensors or SensorModelConfig.g1_mems()
        self.sensors = [SensorModel(cfg, np.random.default_rng([seed, i])) for i in range(n)]
        self.filter = ContactKalmanFilter(n, filter_cfg)
        self._planner_state = PlannerStateEstimator(model)
        self._dt_s = env.cfg.env.robot.model.physics_dt_s
        self._qadr, self._vadr = env.joint_columns
        self._qpos0, self._qvel0 = 1, 1 + model.nq  # mjSTATE_FULLPHYSICS columns: time, qpos, qvel, ...
        adr = {s: int(model.sensor(s).adr[0]) for s in (C.SENSOR_IMU_QUAT, C.SENSOR_IMU_GYRO, C.SENSOR_IMU_ACCEL)}
        q, g, a = adr[C.SENSOR_IMU_QUAT], adr[C.SENSOR_IMU_GYRO], adr[C.SENSOR_IMU_ACCEL]
        self._quat_cols, self._gyro_cols, self._accel_cols = slice(q, q + 4), slice(g, g + 3), slice(a, a + 3)
        self._started = False
        # the last reported readings: (N, 4), (N, 3), (N, J), (N, J)
        self.quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        self.gyro = np.zeros((n, 3))
        self.joint_pos = np.tile(C.DEFAULT_JOINT_POS_RAD, (n, 1))
        self.joint_vel = np.zeros((n, C.NUM_JOINTS))

    def _report(
        self, i: int, sensordata: np.ndarray, qpos: np.ndarray, qvel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """World ``i``'s reported (quat, gyro, accel, q, dq) from its exact sensor row and state."""
        sm = self.sensors[i]
        quat, gyro, accel = sm.imu(
            sensordata[self._quat_cols], sensordata[self._gyro_cols], sensordata[self._accel_cols]
        )
        q, dq = sm.joints(qpos[self._qadr], qvel[self._vadr])
        return quat, gyro, accel, q, dq

    def _fold_in(self, env: RecordingEnv, fresh: np.ndarray) -> None:
        """One filter step per substep of the last control step, for every world (fresh ones are overwritten
        by the restart after this, so they get harmless inputs: their buffers hold the finished episode)."""
        n, dt = env.num_envs, self._dt_s
        states, sensordata = env.substep_states, env.substep_sensordata  # (N, K, nstate), (N, K, nsensordata)
        qpos, qvel = env.qpos, env.qvel
        nq, nv = qpos.shape[1], qvel.shape[1]
        for k in range(states.shape[1]):
            reports = []
            for i in range(n):
                if fresh[i]:
                    row, pos, vel = env.sensordata[i], qpos[i], qvel[i]
                else:
                    s = states[i, k]  # (nstate,)
                    row, pos, vel = (
                        sensordata[i, k],
                        s[self._qpos0 : self._qpos0 + nq],
                        s[self._qvel0 : self._qvel0 + nv],
                    )
                self.sensors[i].advance(dt)
                reports.append(self._report(i, row, pos, vel))
            quat, gyro, accel, q, dq = (
                np.stack(r) for r in zip(*reports, strict=True)
            )  # (N, 4), (N, 3), (N, 3), (N, J), (N, J)
            self.filter.step(np.full(n, dt), quat, gyro, accel, q, dq)
            self.quat, self.gyro, self.joint_pos, self.joint_vel = quat, gyro, q, dq

    def _restart(self, env: RecordingEnv, fresh: np.ndarray) -> None:
        """New sensor biases and a filter started at the reset pose, in the worlds of ``fresh`` (N,)."""
        qpos, qvel = env.qpos, env.qvel
        for i in np.flatnonzero(fresh):
            self.sensors[i].reset()
            quat, gyro, _, q, dq = self._report(i, env.sensordata[i], qpos[i], qvel[i])
            self.quat[i], self.gyro[i], self.joint_pos[i], self.joint_vel[i] = quat, gyro, q, dq
        self.filter.initialize(fresh, self.quat, self.joint_pos, qpos[:, :2])  # at rest, as a reset world is
        self.filter.omega[fresh] = self.gyro[fresh]  # the gyro bias estimate restarts at zero

    def __call__(self, env: RecordingEnv, fresh: np.ndarray) -> np.ndarray:
        """(N, S) planner state of every world from the estimate after the last control step's samples;
        ``fresh (N,)`` marks the worlds whose episode has just begun (restarted here)."""
        fresh = np.asarray(fresh, dtype=bool)
        if self._started:
            self._fold_in(env, fresh)
        else:  # the env was just reset: there is no last control step yet
            fresh = np.ones(env.num_envs, dtype=bool)
            self._started = True
        if fresh.any():
            self._restart(env, fresh)
        pos, vel = self.base_position_velocity()
        return np.stack(
            [
                self._planner_state(pos[i], self.quat[i], vel[i], self.gyro[i], self.joint_pos[i], self.joint_vel[i])
                for i in range(env.num_envs)
            ]
        )  # (N, S)

    def base_position_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimated pelvis origin ``p - R r_imu`` (N, 3) and world velocity ``v - R (w x r_imu)`` (N, 3)."""
        kf = self.filter
        r_imu = kf.kin.imu_m  # (3,) pelvis frame
        pos = kf.x[:, 0:3] - kf.rot @ r_imu  # (N, 3)
        vel = kf.x[:, 3:6] - (kf.rot @ np.cross(kf.omega, r_imu)[..., None])[..., 0]  # (N, 3)
        return pos, vel

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimated planar pose: pelvis (x, y) (N, 2) and heading (N,) rad (the filter's gyro-integrated yaw)."""
        pos, _ = self.base_position_velocity()
        return pos[:, :2], self.filter.yaw_rad.copy()


def planar_pose(env: G1LocomotionEnv, source: object) -> tuple[np.ndarray, np.ndarray]:
    """What the controller knows of each world's planar pose: ``source.base_pose()`` (xy (N, 2), yaw (N,)) when
    the state source estimates one, else the simulator's pelvis position and heading."""
    pose = getattr(source, "base_pose", None)
    if callable(pose):
        return pose()
    qpos = env.qpos
    return qpos[:, :2].copy(), yaw_from_quat(qpos[:, 3:7])
