"""MuJoCo backend of :class:`robot.interface.RobotInterface`.

The simulated robot behaves like the real one: a physics loop at ``physics_dt_s`` applies the last accepted
command with the motor PD law at every step (in C, see :mod:`robot.actuation`), runs the safety watchdog and
publishes a state sample. Two ways to drive it:

- threaded (``connect()`` with ``threaded=True``): a daemon thread steps physics in real time (or as fast as
  possible with ``realtime=False``), like the robot's own computer;
- manual (``threaded=False``): the caller advances time with :meth:`MujocoRobot.step` (tests, envs).

Optional realism: a command latency (commands take effect ``command_latency_s`` of simulated time after they
are sent), a sensor model (:mod:`robot.sensor_model`: IMU white noise and drifting biases, encoder noise,
attitude error) and state jitter (a sample reaches the reader up to ``state_jitter_steps`` physics steps late,
in order, so readers see repeated and skipped samples as over DDS). The clock of the robot is the simulation
time; every sample carries the time it was measured.

Ground truth: with ``oracle=True`` (the default for now) samples carry the exact base position and velocity, which
a real G1 does not publish; ``oracle=False`` leaves them empty, as on hardware. :meth:`MujocoRobot.ground_truth`
always returns the exact base state, foot contacts and sensor biases at the time of the last delivered sample,
for measuring an estimator.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Literal, get_args

import mujoco
import numpy as np

from robot.actuation import pd_ctrl, set_pd_gains
from robot.g1 import constants as C
from robot.g1.model import G1ModelConfig, build_g1_model, joint_dof_adr, joint_qpos_adr
from robot.interface import RobotCommand, RobotInterface, RobotState
from robot.safety import SafetyConfig, SafetyLayer
from robot.sensor_model import SensorModel, SensorModelConfig

InitialMode = Literal["hold", "damping", "zero_torque"]
INITIAL_MODES: tuple[str, ...] = get_args(InitialMode)


@dataclass(frozen=True)
class GroundTruth:
    """The exact simulated state behind one published sample (never published by a real robot)."""

    timestamp_s: float
    """Simulation time of the sample."""
    base_pos_m: np.ndarray
    """(3,) pelvis origin in the world."""
    base_quat_wxyz: np.ndarray
    """(4,) pelvis orientation in the world."""
    base_lin_vel_m_per_s: np.ndarray
    """(3,) pelvis origin velocity in the world frame."""
    base_ang_vel_rad_per_s: np.ndarray
    """(3,) pelvis angular velocity in the pelvis frame."""
    foot_contact: np.ndarray
    """(2,) bool: left, right foot geom touching the floor."""
    gyro_bias_rad_per_s: np.ndarray
    """(3,) gyro bias of the sensor model at that time."""
    accel_bias_m_per_s2: np.ndarray
    """(3,) accelerometer bias of the sensor model at that time."""


@dataclass
class SimRobotConfig:
    """Simulated G1 robot."""

    model: G1ModelConfig = field(default_factory=G1ModelConfig)
    """How to build the MuJoCo model (ignored when a compiled model is passed in)."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Safety limits applied to every command."""
    threaded: bool = True
    """Step physics in a background thread after ``connect()``; False: call ``step()`` yourself."""
    realtime: bool = True
    """Threaded mode only: pace physics to the wall clock (False: as fast as possible)."""
    command_latency_s: float = 0.0
    """Simulated delay between ``send_command`` and the motors using the command."""
    joint_pos_noise_rad: float = 0.0
    """Std of Gaussian noise on reported joint positions."""
    joint_vel_noise_rad_per_s: float = 0.0
    """Std of Gaussian noise on reported joint velocities."""
    gyro_noise_rad_per_s: float = 0.0
    """Std of Gaussian noise on the reported gyro."""
    accel_noise_m_per_s2: float = 0.0
    """Std of Gaussian noise on the reported accelerometer."""
    sensors: SensorModelConfig = field(default_factory=SensorModelConfig)
    """IMU biases, attitude error and encoder noise (ideal by default; ``SensorModelConfig.g1_mems()`` for the
    G1's class of sensors). Its white noise adds to the four noise fields above."""
    state_jitter_steps: int = 0
    """A sample reaches ``read_state``/``step`` up to this many physics steps late (uniform), never out of order."""
    oracle: bool = True
    """Publish the exact base position and velocity in every sample (a real G1 does not; False: empty, as there).
    Ground truth stays available through ``MujocoRobot.ground_truth()`` either way."""
    initial_mode: InitialMode = "hold"
    """Before the first command: ``hold`` the default pose with stand gains, ``damping`` or ``zero_torque``."""
    seed: int = 0
    """Seed of the sensor-noise generator."""

    def __post_init__(self) -> None:
        if self.initial_mode not in INITIAL_MODES:
            raise ValueError(f"initial_mode: expected one of {INITIAL_MODES}, got {self.initial_mode!r}")
        for name in ("command_latency_s", "joint_pos_noise_rad", "joint_vel_noise_rad_per_s"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("gyro_noise_rad_per_s", "accel_noise_m_per_s2"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.state_jitter_steps < 0:
            raise ValueError(f"state_jitter_steps: expected >= 0, got {self.state_jitter_steps}")


class MujocoRobot(RobotInterface):
    """The G1 in MuJoCo behind the robot interface (see module docstring)."""

    def __init__(self, cfg: SimRobotConfig | None = None, model: mujoco.MjModel | None = None) -> None:
        self.cfg = cfg or SimRobotConfig()
        self.model = model if model is not None else build_g1_model(self.cfg.model)
        if self.model.nu != C.NUM_JOINTS:
            raise ValueError(f"model: expected {C.NUM_JOINTS} PD actuators in SDK order, got nu={self.model.nu}")
        self.data = mujoco.MjData(self.model)
        self.joint_names = C.JOINT_NAMES
        self.safety = SafetyLayer(
            self.cfg.safety, C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, C.EFFORT_LIMIT_NM, C.VELOCITY_LIMIT_RAD_PER_S
        )
        self._qadr = joint_qpos_adr(self.model)
        self._vadr = joint_dof_adr(self.model)
        self._sensor = {
            name: slice(self.model.sensor(name).adr[0], self.model.sensor(name).adr[0] + self.model.sensor(name).dim[0])
            for name in (C.SENSOR_IMU_QUAT, C.SENSOR_IMU_GYRO, C.SENSOR_IMU_ACCEL)
        }
        self._rng = np.random.default_rng(self.cfg.seed)
        # its own stream, so that adding the sensor model leaves the legacy noise draws unchanged
        self._sensor_model = SensorModel(self.cfg.sensors, np.random.default_rng([self.cfg.seed, 1]))
        self._ideal_sensors = self.cfg.sensors.ideal  # once: checking every field costs ~15 us a sample
        self._feet_geoms = np.array([self.model.geom(name).id for name in C.FEET_GEOMS])
        self._world_geom = self.model.geom_bodyid == 0
        self._samples: collections.deque[tuple[RobotState, GroundTruth]] = collections.deque(
            maxlen=self.cfg.state_jitter_steps + 1
        )
        self._lock = threading.RLock()
        self._pending: collections.deque[tuple[float, RobotCommand]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = False
        self.applied_command: RobotCommand = self.safety.damping_command()
        self.reset()

    # ----- lifecycle ------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Start the physics thread (threaded mode) and mark the link open."""
        if self._connected:
            return
        self._connected = True
        if self.cfg.threaded:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="MujocoRobot", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread; the robot is left in damping."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            self.safety.trip("closed")
            self._use(self.safety.damping_command())
        self._connected = False

    @property
    def is_connected(self) -> bool:
        """Whether ``connect()`` was called and ``close()`` was not."""
        return self._connected

    def reset(
        self,
        base_pos_m: np.ndarray | None = None,
        base_quat_wxyz: np.ndarray | None = None,
        joint_pos_rad: np.ndarray | None = None,
        joint_vel_rad_per_s: np.ndarray | None = None,
    ) -> RobotState:
        """Put the robot at a pose (default: standing at the home keyframe), clear safety and commands."""
        with self._lock:
            mujoco.mj_resetData(self.model, self.data)
            self.data.qpos[:3] = (0.0, 0.0, C.DEFAULT_BASE_HEIGHT_M) if base_pos_m is None else base_pos_m
            self.data.qpos[3:7] = (1.0, 0.0, 0.0, 0.0) if base_quat_wxyz is None else base_quat_wxyz
            q0 = C.DEFAULT_JOINT_POS_RAD if joint_pos_rad is None else joint_pos_rad
            self.data.qpos[self._qadr] = q0
            if joint_vel_rad_per_s is not None:
                self.data.qvel[self._vadr] = joint_vel_rad_per_s
            self.safety.reset()
            self._pending.clear()
            self._sensor_model.reset()
            self._samples.clear()
            self._last_publish_s: float | None = None
            self._delivered_s = -np.inf
            if self.cfg.initial_mode == "hold":
                initial = RobotCommand.position(q0, C.STAND_KP_NM_PER_RAD, C.STAND_KD_NMS_PER_RAD)
            elif self.cfg.initial_mode == "damping":
                initial = self.safety.damping_command()
            else:
                initial = RobotCommand.position(q0, np.zeros(C.NUM_JOINTS), np.zeros(C.NUM_JOINTS))
            self._use(initial)
            mujoco.mj_forward(self.model, self.data)
            self._publish()
            return self._state.copy()

    # ----- interface hooks ------------------------------------------------------------------------------------
    def read_state(self) -> RobotState:
        """Latest published sample (noisy if configured)."""
        with self._lock:
            return self._state.copy()

    def ground_truth(self) -> GroundTruth:
        """Exact base state, foot contacts and sensor biases behind the latest delivered sample."""
        with self._lock:
            return self._truth

    def _now_s(self) -> float:
        return float(self.data.time)

    def _measured_joint_pos_rad(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def send_command(self, command: RobotCommand) -> None:
        """Safety-filter and queue a command (see :meth:`RobotInterface.send_command`)."""
        with self._lock:
            super().send_command(command)

    def _apply_command(self, command: RobotCommand) -> None:
        if self.safety.damping:
            self._pending.clear()
            self._use(command)
        elif self.cfg.command_latency_s > 0.0:
            self._pending.append((self._now_s() + self.cfg.command_latency_s, command.copy()))
        else:
            self._use(command)

    # ----- physics --------------------------------------------------------------------------------------------
    def _use(self, command: RobotCommand) -> None:
        """Make ``command`` the one the motors run (already filtered)."""
        self.applied_command = command.copy()
        set_pd_gains(self.model, command.kp_nm_per_rad, command.kd_nms_per_rad)
        self.data.ctrl[:] = pd_ctrl(*command.arrays())

    def step(self, num_steps: int = 1) -> RobotState:
        """Advance physics ``num_steps`` steps (manual mode) and return the new state."""
        if self.cfg.threaded and self._thread is not None:
            raise RuntimeError("step() drives a manual-mode robot; this one runs its own physics thread")
        every_step = self.estimator is not None  # an estimator integrates every sample, as the threaded robot's
        with self._lock:
            for i in range(num_steps):
                self._physics_step(publish=every_step or i == num_steps - 1)
            return self._state.copy()

    def _physics_step(self, publish: bool = True) -> None:
        damping = self._safety_tick()
        if damping is not None:
            self._pending.clear()
            self._use(damping)
        while self._pending and self._pending[0][0] <= self._now_s() + 1e-12:
            self._use(self._pending.popleft()[1])
        mujoco.mj_step(self.model, self.data)
        if not (np.all(np.isfinite(self.data.qpos)) and np.all(np.isfinite(self.data.qvel))):
            # Diverged physics is a simulator fault: restart from rest in damping rather than publish NaN.
            self.safety.trip("non-finite simulation state")
            time_s = self.data.time
            mujoco.mj_resetData(self.model, self.data)
            self.data.qpos[2] = C.DEFAULT_BASE_HEIGHT_M
            self.data.qpos[self._qadr] = C.DEFAULT_JOINT_POS_RAD
            self.data.time = time_s
            self._use(self.safety.damping_command())
            mujoco.mj_forward(self.model, self.data)
        if publish:
            self._publish()

    def _publish(self) -> None:
        d, cfg, rng, sensors = self.data, self.cfg, self._rng, self._sensor_model
        now = float(d.time)
        sensors.advance(0.0 if self._last_publish_s is None else now - self._last_publish_s)
        self._last_publish_s = now
        q = d.qpos[self._qadr].copy()
        dq = d.qvel[self._vadr].copy()
        gyro = d.sensordata[self._sensor[C.SENSOR_IMU_GYRO]].copy()
        accel = d.sensordata[self._sensor[C.SENSOR_IMU_ACCEL]].copy()
        if cfg.joint_pos_noise_rad > 0.0:
            q += rng.normal(0.0, cfg.joint_pos_noise_rad, q.shape)
        if cfg.joint_vel_noise_rad_per_s > 0.0:
            dq += rng.normal(0.0, cfg.joint_vel_noise_rad_per_s, dq.shape)
        if cfg.gyro_noise_rad_per_s > 0.0:
            gyro += rng.normal(0.0, cfg.gyro_noise_rad_per_s, 3)
        if cfg.accel_noise_m_per_s2 > 0.0:
            accel += rng.normal(0.0, cfg.accel_noise_m_per_s2, 3)
        quat = d.sensordata[self._sensor[C.SENSOR_IMU_QUAT]].copy()
        if not self._ideal_sensors:
            quat, gyro, accel = sensors.imu(quat, gyro, accel)
            q, dq = sensors.joints(q, dq)
        truth = GroundTruth(
            timestamp_s=now,
            base_pos_m=d.qpos[:3].copy(),
            base_quat_wxyz=d.qpos[3:7].copy(),
            base_lin_vel_m_per_s=d.qvel[:3].copy(),
            base_ang_vel_rad_per_s=d.qvel[3:6].copy(),
            foot_contact=self._foot_contacts(),
            gyro_bias_rad_per_s=sensors.gyro_bias_rad_per_s.copy(),
            accel_bias_m_per_s2=sensors.accel_bias_m_per_s2.copy(),
        )
        state = RobotState(
            joint_pos_rad=q,
            joint_vel_rad_per_s=dq,
            imu_quat_wxyz=quat,
            imu_gyro_rad_per_s=gyro,
            imu_accel_m_per_s2=accel,
            timestamp_s=now,
            joint_torque_nm=d.actuator_force.copy(),
            damping=self.safety.damping,
            base_pos_m=truth.base_pos_m.copy() if cfg.oracle else np.zeros(0),
            base_lin_vel_m_per_s=truth.base_lin_vel_m_per_s.copy() if cfg.oracle else np.zeros(0),
        )
        self._samples.append((state, truth))
        self._deliver()

    def _deliver(self) -> None:
        """Hand the reader a sample up to ``state_jitter_steps`` old, never older than the one it already has."""
        lag = int(self._rng.integers(0, len(self._samples))) if self.cfg.state_jitter_steps else 0
        state, truth = self._samples[-1 - lag]
        if state.timestamp_s < self._delivered_s:
            return  # in-order delivery: the reader keeps (sees again) the newer sample it has
        if state.timestamp_s == self._delivered_s:
            return  # the reader already has this sample (and the estimator has folded it in)
        self._state, self._truth, self._delivered_s = self._estimated(state), truth, state.timestamp_s

    def _foot_contacts(self) -> np.ndarray:
        pairs = self.data.contact.geom  # (ncon, 2)
        world = self._world_geom[pairs]  # (ncon, 2)
        robot_side = np.where(world[:, 0], pairs[:, 1], pairs[:, 0])[world[:, 0] != world[:, 1]]
        # a broadcast compare, not np.isin: 2 feet against a few contacts, at every physics step (isin: ~90 us)
        return (robot_side[:, None] == self._feet_geoms[None, :]).any(axis=0)

    def _run(self) -> None:
        dt = self.model.opt.timestep
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            with self._lock:
                self._physics_step()
            if not self.cfg.realtime:
                continue
            next_tick += dt
            delay = next_tick - time.perf_counter()
            if delay > 0.0:
                time.sleep(delay)
            elif delay < -0.1:
                next_tick = time.perf_counter()  # fell far behind (debugger, overload): do not burst to catch up
