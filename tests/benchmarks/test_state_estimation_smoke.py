"""Closed loop: the walking expert in the simulated G1 with the MEMS sensor model, the estimator alongside."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.state_estimation import DEFAULT_POLICY, run_row  # noqa: E402
from deploy.policy_io import load_policy  # noqa: E402
from training.locomotion.evaluate import SIM_TO_SIM  # noqa: E402


@pytest.mark.skipif(not (ROOT / DEFAULT_POLICY).is_file(), reason="the walking expert is not in assets/")
def test_estimator_tracks_the_walking_expert_with_noisy_sensors():
    row = run_row(load_policy(ROOT / DEFAULT_POLICY), SIM_TO_SIM[0], seconds=4.0)
    assert not row["fell"] and row["walked_m"] > 1.0
    assert row["kf_valid_share"] == 1.0
    assert row["kf_vel_rmse_m_per_s"] < 0.12  # the benchmark's 60 s target is 0.08
    assert row["kf_height_rmse_m"] < 0.02
    assert row["kf_drift_share"] < 0.1
    assert row["kf_vel_rmse_m_per_s"] < row["legs_vel_rmse_m_per_s"]  # better than either naive baseline
    assert row["kf_vel_rmse_m_per_s"] < row["imu_vel_rmse_m_per_s"]


PLANNER = ROOT / "assets" / "g1_planner" / "planner.pt"


@pytest.mark.skipif(not PLANNER.is_file(), reason="the planner is not in assets/")
def test_planner_walks_from_the_estimate_that_is_scored():
    row = run_row(load_policy(PLANNER), SIM_TO_SIM[0], seconds=4.0)
    assert not row["fell"] and row["walked_m"] > 1.0
    assert row["kf_valid_share"] == 1.0
    assert row["kf_vel_rmse_m_per_s"] < 0.12 and row["kf_height_rmse_m"] < 0.02
    assert row["kf_update_p50_us"] > 0  # the attached estimator's updates were timed
