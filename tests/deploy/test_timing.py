"""Pacing with a fake clock (sleep then spin, skipping lost ticks) and the statistics, CSV and TensorBoard."""

import csv
import math

import numpy as np
import pytest

from deploy.timing import RatePacer, TimingStats


class FakeClock:
    def __init__(self, oversleep_s: float = 0.0) -> None:
        self.t = 0.0
        self.oversleep_s = oversleep_s
        self.sleeps: list[float] = []
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.t += 1e-5  # every clock read costs 10 µs
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s + self.oversleep_s


def test_pacer_sleeps_then_spins_to_the_deadline():
    clock = FakeClock(oversleep_s=0.0005)  # the OS wakes us 0.5 ms late, inside the 1.5 ms spin window
    pacer = RatePacer(0.02, spin_s=0.0015, clock=clock, sleep=clock.sleep)
    t0 = pacer.start()
    wakes = [pacer.wait() for _ in range(5)]
    for k, (deadline, now, skipped) in enumerate(wakes):
        assert deadline == pytest.approx(t0 + 0.02 * k)
        assert 0.0 <= now - deadline <= 3e-5 and skipped == 0  # a few clock reads
    assert all(s == pytest.approx(0.0185, abs=1e-4) for s in clock.sleeps)  # one sleep per tick, spin the rest


def test_pacer_skips_lost_ticks_instead_of_bursting():
    clock = FakeClock()
    pacer = RatePacer(0.02, spin_s=0.001, clock=clock, sleep=clock.sleep)
    pacer.start()
    pacer.wait()
    clock.t += 0.065  # a 65 ms stall
    deadline, now, skipped = pacer.wait()
    assert skipped == 2 and 0.0 < now - deadline < 0.02
    deadline2, now2, _ = pacer.wait()
    assert deadline2 == pytest.approx(deadline + 0.02) and now2 >= deadline2
    with pytest.raises(ValueError, match="spin_s"):
        RatePacer(0.02, spin_s=0.02)


def test_stats_summary_misses_csv_and_tensorboard(tmp_path):
    stats = TimingStats(0.02, miss_tolerance_s=0.002, capacity=4)  # small capacity: exercises growth
    late = [0.0, 0.001, 0.003, 0.004, 0.0, 0.0005, 0.01, 0.0]
    for k, lateness in enumerate(late):
        missed = stats.record(0.02 * k + lateness, lateness, math.nan, math.nan, 0, "hold")
        stats.complete_last(0.0003 if k % 2 else math.nan, 0.001, "policy")
        assert missed == (lateness > 0.002)
        if k == 3:
            assert stats.consecutive_misses == 2
    assert stats.consecutive_misses == 0 and stats.misses == 3
    s = stats.summary()
    assert s["ticks"] == 8 and s["miss_rate"] == pytest.approx(3 / 8)
    assert s["jitter_max_ms"] == pytest.approx(10.0)
    assert s["jitter_p50_ms"] == pytest.approx(np.percentile(np.array(late) * 1e3, 50))
    assert s["policy_p50_ms"] == pytest.approx(0.3)
    assert "3 deadline misses" in stats.report()
    rows = list(csv.DictReader(open(stats.write_csv(tmp_path / "t.csv"))))
    assert len(rows) == 8 and rows[2]["missed"] == "1" and rows[0]["mode"] == "policy"
    assert float(rows[6]["lateness_ms"]) == pytest.approx(10.0)
    stats.write_tensorboard(tmp_path / "tb")
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
