"""Base state estimator of the G1 for one robot: a :class:`robot.messages.RobotState` in, a :class:`BaseEstimate` out.

Wraps the batched :class:`robot.estimation.filter.ContactKalmanFilter` (one world) with what a control loop
needs around it: time steps from the samples' own timestamps (a repeated sample, as DDS jitter delivers, is
not fed twice), input checks that mark the estimate invalid with a reason instead of corrupting the filter, and
the outputs in the frames the runtime uses. Pure numpy: no torch, no MuJoCo, no network.

Faults that make an estimate invalid (``valid=False`` and ``reason``):

- a non-finite reading, a quaternion far from unit norm, a timestamp going backwards (the tick is skipped);
- a joint reading outside its range by more than ``joint_range_margin_rad`` (the tick is skipped);
- a frozen IMU: gyro and accelerometer bit-identical for ``frozen_imu_samples`` new samples in a row
  (a real MEMS IMU never repeats itself exactly; a stuck driver does);
- a gap between samples longer than ``max_gap_s`` (the filter predicts across it, the tick is flagged);
- a filter state that is no longer finite (latched until :meth:`BaseStateEstimator.reset`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robot.estimation.filter import ContactKalmanFilter, FilterConfig
from robot.g1 import constants as C
from robot.g1.kinematics import LegKinematics
from robot.messages import RobotState


@dataclass
class EstimatorConfig:
    """The filter's noise figures plus the input checks of the single-robot estimator."""

    filter: FilterConfig = field(default_factory=FilterConfig)
    """Noise densities and contact thresholds of the Kalman filter."""
    max_gap_s: float = 0.05
    """A longer gap between samples flags that tick invalid."""
    frozen_imu_samples: int = 50
    """This many new samples with bit-identical gyro and accelerometer readings mean a frozen IMU."""
    joint_range_margin_rad: float = 0.05
    """How far outside its limits a joint reading may be before it counts as a fault."""

    def __post_init__(self) -> None:
        if not self.max_gap_s > 0.0:
            raise ValueError(f"max_gap_s: expected > 0, got {self.max_gap_s}")
        if self.frozen_imu_samples < 2:
            raise ValueError(f"frozen_imu_samples: expected >= 2, got {self.frozen_imu_samples}")
        if self.joint_range_margin_rad < 0.0:
            raise ValueError(f"joint_range_margin_rad: expected >= 0, got {self.joint_range_margin_rad}")


@dataclass(frozen=True)
class BaseEstimate:
    """The estimated pelvis state at one sample (world frame: x, y from the start, z up from the floor)."""

    timestamp_s: float
    """Time of the sample the estimate is for."""
    valid: bool
    """False when an input fault or a diverged filter makes the numbers unusable (see ``reason``)."""
    reason: str
    """Why the estimate is invalid; empty when valid."""
    base_pos_m: np.ndarray
    """(3,) pelvis origin: planar position by integration, z on flat ground."""
    base_lin_vel_m_per_s: np.ndarray
    """(3,) pelvis origin velocity in the world frame."""
    base_lin_vel_heading_m_per_s: np.ndarray
    """(3,) the same in the heading frame (forward, left, up)."""
    yaw_rad: float
    """Heading, integrated from the bias-corrected gyro."""
    height_m: float
    """Pelvis height above the plane of the stance soles."""
    foot_contact: np.ndarray
    """(2,) bool: left, right sole taken to be in stance."""
    pos_cov_m2: np.ndarray
    """(3, 3) covariance of ``base_pos_m``."""
    vel_cov_m2_per_s2: np.ndarray
    """(3, 3) covariance of ``base_lin_vel_m_per_s``."""
    yaw_var_rad2: float
    """Variance of ``yaw_rad``."""
    height_var_m2: float
    """Variance of ``height_m``."""
    accel_bias_m_per_s2: np.ndarray
    """(3,) estimated accelerometer bias (IMU frame)."""
    gyro_bias_rad_per_s: np.ndarray
    """(3,) estimated gyro bias (IMU frame)."""


def heading_rotate(vec: np.ndarray, yaw_rad: float) -> np.ndarray:
    """World (3,) vector expressed in the heading frame: rotate by ``-yaw`` about z."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([c * vec[0] + s * vec[1], -s * vec[0] + c * vec[1], vec[2]])


class BaseStateEstimator:
    """Contact-aided Kalman filter for one G1 (see module docstring); call :meth:`update` with every sample."""

    def __init__(self, cfg: EstimatorConfig | None = None, kinematics: LegKinematics | None = None) -> None:
        self.cfg = cfg or EstimatorConfig()
        self.filter = ContactKalmanFilter(1, self.cfg.filter, kinematics)
        self._lower = C.JOINT_LOWER_RAD - self.cfg.joint_range_margin_rad
        self._upper = C.JOINT_UPPER_RAD + self.cfg.joint_range_margin_rad
        self._imu = tuple(self.filter.kin.imu_m.tolist())
        self._height_grad: dict[tuple[int, ...], np.ndarray] = {}  # (15,) d height / d x per stance-foot set
        self.reset()

    def reset(self, base_xy_m: tuple[float, float] = (0.0, 0.0), lin_vel_m_per_s: np.ndarray | None = None) -> None:
        """Start again at the next sample, the pelvis above ``base_xy_m`` with velocity ``lin_vel_m_per_s``."""
        self._start_xy = np.asarray(base_xy_m, dtype=np.float64)
        self._start_vel = None if lin_vel_m_per_s is None else np.asarray(lin_vel_m_per_s, dtype=np.float64)
        self._last_t: float | None = None
        self._last_imu: list[float] | None = None
        self._same_imu = 0
        self._diverged = ""
        self.last: BaseEstimate | None = None

    def _input_fault(self, state: RobotState) -> str:
        arrays = {
            "joint_pos_rad": state.joint_pos_rad,
            "joint_vel_rad_per_s": state.joint_vel_rad_per_s,
            "imu_quat_wxyz": state.imu_quat_wxyz,
            "imu_gyro_rad_per_s": state.imu_gyro_rad_per_s,
            "imu_accel_m_per_s2": state.imu_accel_m_per_s2,
        }
        if not np.isfinite(np.concatenate(tuple(arrays.values()))).all():  # one check on the per-sample path
            for name, arr in arrays.items():
                if not np.all(np.isfinite(arr)):
                    return f"non-finite {name}"
        if not math.isfinite(state.timestamp_s):
            return "non-finite timestamp_s"
        norm = math.sqrt(sum(v * v for v in state.imu_quat_wxyz.tolist()))
        if abs(norm - 1.0) > 0.01:
            return f"imu_quat_wxyz: expected unit norm, got {norm:.4f}"
        outside = (state.joint_pos_rad < self._lower) | (state.joint_pos_rad > self._upper)
        if outside.any():
            out = np.flatnonzero(outside)
            j = int(out[0])
            return (
                f"joint {C.JOINT_NAMES[j]} reads {state.joint_pos_rad[j]:.3f} rad, outside its range "
                f"[{C.JOINT_LOWER_RAD[j]:.3f}, {C.JOINT_UPPER_RAD[j]:.3f}]"
            )
        if self._last_t is not None and state.timestamp_s < self._last_t:
            return f"timestamp went backwards ({self._last_t:.4f} s -> {state.timestamp_s:.4f} s)"
        return ""

    def update(self, state: RobotState) -> BaseEstimate:
        """Fold in one sample (at the robot's state rate or the loop rate) and return the estimate."""
        fault = self._input_fault(state)
        if fault:
            return self._estimate(state.timestamp_s, fault)
        if self._last_t is not None and state.timestamp_s == self._last_t:
            return self.last if self.last is not None else self._estimate(state.timestamp_s, "")  # a repeat
        imu = state.imu_gyro_rad_per_s.tolist() + state.imu_accel_m_per_s2.tolist()  # finite: == is bit-equality
        self._same_imu = self._same_imu + 1 if imu == self._last_imu else 0
        self._last_imu = imu
        kf, q = self.filter, state.joint_pos_rad[None]
        if self._last_t is None:
            start_vel = None if self._start_vel is None else self._start_vel[None]
            kf.initialize(np.ones(1, bool), state.imu_quat_wxyz[None], q, self._start_xy[None], start_vel)
            self._last_t = state.timestamp_s
            return self._estimate(state.timestamp_s, "")
        dt = state.timestamp_s - self._last_t
        self._last_t = state.timestamp_s
        kf.step_one(
            dt,
            state.imu_quat_wxyz,
            state.imu_gyro_rad_per_s,
            state.imu_accel_m_per_s2,
            state.joint_pos_rad,
            state.joint_vel_rad_per_s,
        )
        # a sum is finite exactly when every term is (a non-finite term makes it inf or nan), unless it overflows
        finite = math.isfinite(float(kf.x.sum())) and math.isfinite(float(kf.p.sum()))
        if not (finite or (np.all(np.isfinite(kf.x)) and np.all(np.isfinite(kf.p)))):
            self._diverged = "filter state is not finite (diverged); reset the estimator"
        reason = ""
        if self._same_imu + 1 >= self.cfg.frozen_imu_samples:
            reason = f"frozen IMU: {self._same_imu + 1} identical gyro/accelerometer samples"
        elif dt > self.cfg.max_gap_s:
            reason = f"state gap of {dt:.3f} s (expected <= {self.cfg.max_gap_s} s)"
        return self._estimate(state.timestamp_s, reason)

    def _estimate(self, timestamp_s: float, reason: str) -> BaseEstimate:
        """The outputs from the filter's state: ``p_base = p_imu - R r_imu``, ``v_base = v_imu - R (w x r_imu)``,
        height = pelvis z minus the mean stance-sole z, and its variance ``g^T P g`` (Python floats: these are
        3-vectors, where numpy's call overhead would dominate)."""
        reason = self._diverged or reason
        kf = self.filter
        x, p = kf.x[0], kf.p[0]
        xs, r, w = x.tolist(), kf.rot[0].ravel().tolist(), kf.omega[0].tolist()
        m0, m1, m2 = self._imu
        wm = (w[1] * m2 - w[2] * m1, w[2] * m0 - w[0] * m2, w[0] * m1 - w[1] * m0)  # w x r_imu
        pos = [xs[i] - (r[3 * i] * m0 + r[3 * i + 1] * m1 + r[3 * i + 2] * m2) for i in range(3)]
        vel = [xs[3 + i] - (r[3 * i] * wm[0] + r[3 * i + 1] * wm[1] + r[3 * i + 2] * wm[2]) for i in range(3)]
        stance = kf.stance[0]
        feet = tuple(i for i in (0, 1) if stance[i]) or (int(np.argmin(x[[8, 11]])),)
        fz = [6 + 3 * i + 2 for i in feet]  # state indices of the stance soles' heights
        height = pos[2] - (xs[fz[0]] if len(fz) == 1 else (xs[fz[0]] + xs[fz[1]]) / 2.0)
        g = self._height_grad.get(feet)
        if g is None:
            g = self._height_grad[feet] = np.zeros(15)
            g[2], g[fz] = 1.0, -1.0 / len(feet)
        yaw = float(kf.yaw_rad[0])
        cy, sy = math.cos(yaw), math.sin(yaw)
        estimate = BaseEstimate(
            timestamp_s=float(timestamp_s),
            valid=not reason,
            reason=reason,
            base_pos_m=np.array(pos),
            base_lin_vel_m_per_s=np.array(vel),
            base_lin_vel_heading_m_per_s=np.array([cy * vel[0] + sy * vel[1], -sy * vel[0] + cy * vel[1], vel[2]]),
            yaw_rad=yaw,
            height_m=height,
            foot_contact=stance.copy(),
            pos_cov_m2=p[0:3, 0:3].copy(),
            vel_cov_m2_per_s2=p[3:6, 3:6].copy(),
            yaw_var_rad2=float(kf.yaw_var[0]),
            height_var_m2=float(g @ p @ g),
            accel_bias_m_per_s2=x[12:15].copy(),
            gyro_bias_rad_per_s=kf.gyro_bias[0].copy(),
        )
        if not reason:
            self.last = estimate
        return estimate

    def fill(self, state: RobotState, estimate: BaseEstimate | None = None) -> RobotState:
        """A copy of ``state`` whose ``base_pos_m`` / ``base_lin_vel_m_per_s`` are the estimate's (the fields a
        simulator fills from ground truth), or empty when there is no valid estimate."""
        est = estimate or self.last
        out = state.copy()
        ok = est is not None and est.valid
        out.base_pos_m = est.base_pos_m.copy() if ok else np.zeros(0)
        out.base_lin_vel_m_per_s = est.base_lin_vel_m_per_s.copy() if ok else np.zeros(0)
        return out
