"""The tick latency benchmark drives the committed planner to POLICY and times every part of its ticks."""

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.tick_latency import DEFAULT_POLICY, PARTS, run  # noqa: E402


@pytest.mark.skipif(not (ROOT / DEFAULT_POLICY).is_file(), reason="the planner is not in assets/")
def test_tick_latency_times_each_part_of_planner_ticks():
    row = run(ROOT / DEFAULT_POLICY, ticks=20, seed=0)
    assert row["ticks"] == 20 and row["final_mode"] == "POLICY"
    assert 1.0 <= row["samples_per_tick"] <= 4.0  # 4 physics steps a tick, repeats from jitter not fed twice
    for p in PARTS:
        assert math.isfinite(row[f"{p}_p50_ms"]) and row[f"{p}_p50_ms"] > 0.0
    assert row["tick_p50_ms"] >= row["plan_p50_ms"]
