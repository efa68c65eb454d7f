"""Motor-side PD law on MuJoCo ``general`` actuators (built by :func:`robot.g1.model.add_pd_actuators`).

Each actuator computes ``tau = clip(s * (ctrl - kp q - kd dq), +-effort)`` in C at every physics step, with
``s`` a motor-strength factor (1 nominal, randomised in training). A command becomes
``ctrl = kp q* + kd dq* + tau_ff`` (:func:`pd_ctrl`) and its gains go into the actuator bias
(:func:`set_pd_gains`). Both functions broadcast over leading batch dimensions.
"""

from __future__ import annotations

import mujoco
import numpy as np


def pd_ctrl(
    q_target_rad: np.ndarray,
    dq_target_rad_per_s: np.ndarray,
    kp_nm_per_rad: np.ndarray,
    kd_nms_per_rad: np.ndarray,
    tau_ff_nm: np.ndarray,
) -> np.ndarray:
    """Actuator control that makes ``ctrl - kp q - kd dq`` equal the motor PD law, (..., J)."""
    return kp_nm_per_rad * q_target_rad + kd_nms_per_rad * dq_target_rad_per_s + tau_ff_nm


def set_pd_gains(
    model: mujoco.MjModel,
    kp_nm_per_rad: np.ndarray,
    kd_nms_per_rad: np.ndarray,
    strength: np.ndarray | float = 1.0,
) -> None:
    """Write per-joint gains (J,) and motor strength into the actuator parameters of ``model`` in place."""
    if np.shape(kp_nm_per_rad) != (model.nu,) or np.shape(kd_nms_per_rad) != (model.nu,):
        raise ValueError(
            f"gains: expected shape ({model.nu},), got kp {np.shape(kp_nm_per_rad)} kd {np.shape(kd_nms_per_rad)}"
        )
    model.actuator_gainprm[:, 0] = strength
    model.actuator_biasprm[:, 1] = -np.asarray(strength) * kp_nm_per_rad
    model.actuator_biasprm[:, 2] = -np.asarray(strength) * kd_nms_per_rad
