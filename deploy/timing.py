"""Fixed-rate pacing and timing statistics of the control loop.

Pacing (:class:`RatePacer`): sleep until ``spin_s`` before the deadline, then spin on the clock until it. A sleep
alone wakes 50-100 µs late on an idle Linux machine and milliseconds late under load; spinning the last stretch
removes most of that at the cost of ``spin_s / period`` of one core. A tick that starts later than a whole period
skips the lost ticks instead of bursting to catch up (a robot wants the newest command, not a backlog).

Statistics (:class:`TimingStats`), per tick, in seconds: ``lateness`` (start minus scheduled deadline, the
jitter), ``period`` (start minus previous start), ``policy`` (network latency, NaN when the policy did not run),
``compute`` (start of the tick to the command sent). A tick *misses* its deadline when its lateness exceeds
``miss_tolerance_s``; skipped ticks count as misses. Nothing is written during the loop: :meth:`TimingStats.summary`,
:meth:`TimingStats.write_csv` and :meth:`TimingStats.write_tensorboard` run at exit.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robot.files import atomic_write

COLUMNS = ("tick", "start_s", "lateness_ms", "period_ms", "policy_ms", "compute_ms", "missed", "mode")


class RatePacer:
    """Wake at ``t0 + k * period_s`` with sleep-then-spin (see module docstring)."""

    def __init__(
        self,
        period_s: float,
        spin_s: float = 0.0015,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not period_s > 0.0:
            raise ValueError(f"period_s: expected > 0, got {period_s}")
        if not 0.0 <= spin_s < period_s:
            raise ValueError(f"spin_s: expected in [0, period_s={period_s}), got {spin_s}")
        self.period_s = period_s
        self.spin_s = spin_s
        self.clock = clock
        self.sleep = sleep
        self.deadline_s = math.nan
        self.skipped_ticks = 0

    def start(self, now_s: float | None = None) -> float:
        """First deadline = now (the first tick runs at once); returns it."""
        self.deadline_s = self.clock() if now_s is None else now_s
        self.skipped_ticks = 0
        return self.deadline_s

    def wait(self) -> tuple[float, float, int]:
        """Wait for the current deadline; returns (deadline, actual wake time, ticks skipped before it).

        Advances the deadline by one period afterwards, or past every period already lost when the wake is late
        by more than a period.
        """
        if math.isnan(self.deadline_s):
            raise RuntimeError("RatePacer.wait() before start()")
        deadline = self.deadline_s
        remaining = deadline - self.spin_s - self.clock()
        if remaining > 0.0:
            self.sleep(remaining)
        now = self.clock()
        while now < deadline:
            now = self.clock()
        skipped = 0
        late = now - deadline
        if late >= self.period_s:
            # The ticks whose deadlines passed while we were stalled are dropped: this tick becomes the last of them.
            skipped = int(late // self.period_s)
            deadline += skipped * self.period_s
            self.skipped_ticks += skipped
        self.deadline_s = deadline + self.period_s
        return deadline, now, skipped


class TimingStats:
    """Per-tick timing records in preallocated arrays (no allocation in the loop until the capacity doubles)."""

    def __init__(self, period_s: float, miss_tolerance_s: float = 0.002, capacity: int = 4096) -> None:
        if not 0.0 < miss_tolerance_s:
            raise ValueError(f"miss_tolerance_s: expected > 0, got {miss_tolerance_s}")
        self.period_s = period_s
        self.miss_tolerance_s = miss_tolerance_s
        self.n = 0
        self.skipped = 0
        self.consecutive_misses = 0
        self._data = np.full((capacity, 6), np.nan)  # start, lateness, period, policy, compute, missed
        self._modes: list[str] = []

    def record(
        self, start_s: float, lateness_s: float, policy_s: float, compute_s: float, skipped: int, mode: str
    ) -> bool:
        """Store one tick; returns whether it missed its deadline (and updates ``consecutive_misses``)."""
        if self.n == len(self._data):
            self._data = np.concatenate([self._data, np.full_like(self._data, np.nan)])
        period = start_s - self._data[self.n - 1, 0] if self.n else math.nan
        missed = lateness_s > self.miss_tolerance_s or skipped > 0
        self._data[self.n] = (start_s, lateness_s, period, policy_s, compute_s, float(missed))
        self._modes.append(mode)
        self.n += 1
        self.skipped += skipped
        self.consecutive_misses = self.consecutive_misses + 1 + skipped if missed else 0
        return missed

    def complete_last(self, policy_s: float, compute_s: float, mode: str) -> None:
        """Fill in what is known only at the end of the tick recorded last."""
        if self.n == 0:
            raise RuntimeError("TimingStats.complete_last() before any record()")
        self._data[self.n - 1, 3] = policy_s
        self._data[self.n - 1, 4] = compute_s
        self._modes[-1] = mode

    def column(self, name: str) -> np.ndarray:
        """One recorded column, (n,): start_s, lateness_s, period_s, policy_s, compute_s or missed."""
        index = ("start_s", "lateness_s", "period_s", "policy_s", "compute_s", "missed").index(name)
        return self._data[: self.n, index].copy()

    @property
    def misses(self) -> int:
        """Ticks that missed their deadline, skipped ticks included."""
        return int(np.nansum(self._data[: self.n, 5])) + self.skipped

    def summary(self) -> dict[str, float]:
        """p50 / p99 / max in ms of lateness (jitter), period error, policy latency and compute; miss counts."""
        out: dict[str, float] = {"ticks": float(self.n), "misses": float(self.misses), "skipped": float(self.skipped)}
        out["miss_rate"] = self.misses / max(self.n + self.skipped, 1)
        rows = {
            "jitter": self.column("lateness_s"),
            "period_error": np.abs(self.column("period_s") - self.period_s),
            "policy": self.column("policy_s"),
            "compute": self.column("compute_s"),
        }
        for name, values in rows.items():
            values = values[np.isfinite(values)] * 1e3
            for q, label in ((50, "p50"), (99, "p99")):
                out[f"{name}_{label}_ms"] = float(np.percentile(values, q)) if len(values) else math.nan
            out[f"{name}_max_ms"] = float(values.max()) if len(values) else math.nan
        return out

    def report(self) -> str:
        """The table printed at exit."""
        s = self.summary()
        lines = [
            f"timing over {int(s['ticks'])} ticks at {1.0 / self.period_s:.1f} Hz: "
            f"{int(s['misses'])} deadline misses ({100 * s['miss_rate']:.3f} %, tolerance "
            f"{1e3 * self.miss_tolerance_s:.1f} ms), {int(s['skipped'])} skipped",
            f"{'':<22}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
        ]
        for name, label in (
            ("jitter", "jitter (lateness)"),
            ("period_error", "|period - nominal|"),
            ("policy", "policy latency"),
            ("compute", "tick compute"),
        ):
            lines.append(
                f"{label:<22}{s[f'{name}_p50_ms']:>10.3f}{s[f'{name}_p99_ms']:>10.3f}{s[f'{name}_max_ms']:>10.3f}"
            )
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> Path:
        """One row per tick (``COLUMNS``), written atomically."""
        path = Path(path)

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(COLUMNS)
                for i in range(self.n):
                    start, *times_s, missed = self._data[i]
                    ms = [f"{1e3 * t:.4f}" for t in times_s]  # lateness, period, policy, compute
                    writer.writerow([i, f"{start:.6f}", *ms, int(missed), self._modes[i]])

        atomic_write(path, write)
        return path

    def write_tensorboard(self, log_dir: str | Path, every: int = 1) -> None:
        """Per-tick scalars under ``timing/`` (step = tick) and the summary at the last step."""
        from torch.utils.tensorboard import SummaryWriter  # only at exit, never in the loop

        writer = SummaryWriter(str(log_dir))
        try:
            names = ("lateness_ms", "period_ms", "policy_ms", "compute_ms")
            cols = [self.column(c) * 1e3 for c in ("lateness_s", "period_s", "policy_s", "compute_s")]
            for i in range(0, self.n, every):
                for name, col in zip(names, cols, strict=True):
                    if np.isfinite(col[i]):
                        writer.add_scalar(f"timing/{name}", float(col[i]), i)
            for key, value in self.summary().items():
                if np.isfinite(value):
                    writer.add_scalar(f"timing_summary/{key}", value, max(self.n - 1, 0))
        finally:
            writer.close()
