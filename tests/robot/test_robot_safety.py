"""The safety layer on its own: every rule has a case that trips or clamps it."""

import numpy as np
import pytest

from robot.g1 import constants as C
from robot.messages import RobotCommand
from robot.safety import SafetyConfig, SafetyLayer, clamp_position_targets, clamp_torque


def make_layer(**kwargs) -> SafetyLayer:
    return SafetyLayer(
        SafetyConfig(**kwargs), C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, C.EFFORT_LIMIT_NM, C.VELOCITY_LIMIT_RAD_PER_S
    )


def hold_command(q: np.ndarray) -> RobotCommand:
    return RobotCommand.position(q, C.KP_NM_PER_RAD, C.KD_NMS_PER_RAD)


def test_in_limit_command_passes_unchanged():
    layer = make_layer()
    cmd = hold_command(C.DEFAULT_JOINT_POS_RAD)
    out = layer.filter(cmd, C.DEFAULT_JOINT_POS_RAD, 0.0)
    for a, b in zip(out.arrays(), cmd.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert layer.num_clamped_commands == 0 and not layer.damping


def test_targets_clamped_to_limits_and_rate():
    layer = make_layer(max_delta_q_per_tick_rad=0.1)
    q0 = C.DEFAULT_JOINT_POS_RAD.copy()
    far = np.full(C.NUM_JOINTS, 100.0)
    out = layer.filter(hold_command(far), q0, 0.0)
    np.testing.assert_allclose(out.q_target_rad, np.minimum(q0 + 0.1, C.JOINT_UPPER_RAD))
    # Repeating the request walks towards it by at most 0.1 rad per tick and never past the limit.
    for k in range(100):
        prev = out.q_target_rad
        out = layer.filter(hold_command(far), q0, 0.02 * (k + 1))
        assert np.all(out.q_target_rad - prev <= 0.1 + 1e-12)
    np.testing.assert_allclose(out.q_target_rad, C.JOINT_UPPER_RAD)
    assert layer.num_clamped_commands == 101


def test_gains_velocity_and_torque_clamped():
    layer = make_layer(max_kp_nm_per_rad=500.0, max_kd_nms_per_rad=20.0)
    cmd = hold_command(C.DEFAULT_JOINT_POS_RAD)
    cmd.kp_nm_per_rad[:] = 1e6
    cmd.kd_nms_per_rad[:] = -3.0
    cmd.dq_target_rad_per_s[:] = 1e3
    cmd.tau_ff_nm[:] = -1e4
    out = layer.filter(cmd, C.DEFAULT_JOINT_POS_RAD, 0.0)
    assert np.all(out.kp_nm_per_rad == 500.0) and np.all(out.kd_nms_per_rad == 0.0)
    np.testing.assert_array_equal(out.dq_target_rad_per_s, C.VELOCITY_LIMIT_RAD_PER_S)
    np.testing.assert_array_equal(out.tau_ff_nm, -C.EFFORT_LIMIT_NM)


@pytest.mark.parametrize(
    "field", ["q_target_rad", "dq_target_rad_per_s", "kp_nm_per_rad", "kd_nms_per_rad", "tau_ff_nm"]
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_latches_damping(field, bad):
    layer = make_layer()
    cmd = hold_command(C.DEFAULT_JOINT_POS_RAD)
    getattr(cmd, field)[7] = bad
    out = layer.filter(cmd, C.DEFAULT_JOINT_POS_RAD, 0.0)
    assert layer.damping and "non-finite" in layer.fault_reason
    assert np.all(out.kp_nm_per_rad == 0.0) and np.all(out.kd_nms_per_rad == layer.cfg.damping_kd_nms_per_rad)
    assert all(np.all(np.isfinite(a)) for a in out.arrays())
    # Latched: a good command afterwards is still replaced by damping until reset().
    good = layer.filter(hold_command(C.DEFAULT_JOINT_POS_RAD), C.DEFAULT_JOINT_POS_RAD, 0.01)
    assert np.all(good.kp_nm_per_rad == 0.0)
    layer.reset()
    assert not layer.damping


def test_watchdog_only_after_first_command_and_after_timeout():
    layer = make_layer(watchdog_timeout_s=0.05)
    assert not layer.watchdog(10.0)  # never commanded: nothing to watch
    layer.filter(hold_command(C.DEFAULT_JOINT_POS_RAD), C.DEFAULT_JOINT_POS_RAD, 1.0)
    assert not layer.watchdog(1.049)
    assert layer.watchdog(1.0501)
    assert layer.damping and "watchdog" in layer.fault_reason
    assert not layer.watchdog(2.0)  # reports the trip once


def test_shape_errors_raise_with_context():
    layer = make_layer()
    cmd = hold_command(C.DEFAULT_JOINT_POS_RAD[:10])
    with pytest.raises(ValueError, match=r"expected shape \(29,\), got \(10,\)"):
        layer.filter(cmd, C.DEFAULT_JOINT_POS_RAD, 0.0)


def test_config_validation():
    with pytest.raises(ValueError, match="watchdog_timeout_s"):
        SafetyConfig(watchdog_timeout_s=0.0)
    with pytest.raises(ValueError, match="damping_kd"):
        SafetyConfig(damping_kd_nms_per_rad=1e3)
    with pytest.raises(ValueError, match="empty range"):
        make_layer(joint_limit_margin_rad=1.0)


def test_batched_helpers():
    tau = np.array([[np.nan, 1e3, -1e3] + [0.0] * 26])
    out = clamp_torque(tau, C.EFFORT_LIMIT_NM)
    assert out[0, 0] == 0.0 and out[0, 1] == C.EFFORT_LIMIT_NM[1] and out[0, 2] == -C.EFFORT_LIMIT_NM[2]
    q = clamp_position_targets(np.full((4, 29), 5.0), np.zeros((4, 29)), C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, 0.2)
    assert q.shape == (4, 29) and np.all(q <= 0.2) and np.all(q <= C.JOINT_UPPER_RAD)
