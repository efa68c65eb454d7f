"""Helpers shared by the benchmarks: the command line, percentiles, matmul and matvec floors, FLOP counting, tables,
JSON.

Every benchmark's options are a dataclass parsed by tyro, like the rest of Steer's CLIs (:func:`run_benchmark`);
those built on :class:`BenchmarkArgs` take ``--quick`` (finishes within a minute) and ``--json PATH`` (the same rows
they print, as JSON, plus the machine they ran on), so results can be compared run to run.
"""

import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

from robot.cli import run_cli
from robot.files import atomic_write_text

T = TypeVar("T")


@dataclass(kw_only=True)
class BenchmarkArgs:
    """The two options every measuring benchmark has."""

    quick: bool = False
    """a reduced grid that finishes within a minute"""
    json: Optional[Path] = None
    """also write the rows as JSON here"""


def run_benchmark(main: Callable[[T], int], args_type: type[T], doc: str, args: Sequence[str] | None = None) -> int:
    """Parse the command line into ``args_type`` with tyro (the first paragraph of ``doc`` as the description) and
    return ``main``'s exit code; a user's mistake (a missing file, a bad option: :data:`robot.cli.USER_ERRORS`)
    is one line and exit code 2, its traceback with ``--debug``."""
    import tyro  # here: the helpers above serve tests that do not parse a command line

    code = 0

    def run(argv: list[str], prog: str) -> None:
        nonlocal code
        code = main(tyro.cli(args_type, args=argv, prog=prog, description=doc.split("\n\n")[0]))

    return run_cli(run, args) or code


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile: expected at least one value, got none")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile: expected q in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """Median, p90, p99, mean, min and max in milliseconds of per-call times in nanoseconds."""
    ms = [s / 1e6 for s in samples_ns]
    return {
        "p50_ms": percentile(ms, 50.0),
        "p90_ms": percentile(ms, 90.0),
        "p99_ms": percentile(ms, 99.0),
        "mean_ms": sum(ms) / len(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def matmul_gflops(n: int = 512, repeats: int = 20, warmup: int = 3) -> dict[str, float]:
    """This machine's float32 ``n x n @ n x n`` rate (``2 n^3`` FLOPs a product) at the current torch threads.

    Returns the best and the median of ``repeats`` timed products in GFLOP/s; the best is the physical floor
    a network of matmuls can approach on this core (the median shows how busy the machine was).
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter_ns() - start)
    flops = 2.0 * n**3
    return {"n": n, "best_gflops": flops / min(times), "median_gflops": flops / percentile(times, 50.0)}


def matvec_gflops(n: int = 4096, repeats: int = 20, warmup: int = 3) -> dict[str, float]:
    """This machine's float32 ``(n x n) @ (n,)`` rate (``2 n^2`` FLOPs) with the matrix streamed from memory.

    A batch-1 network whose weights do not fit in cache runs at about this rate, not the matmul rate: each weight
    is read once per pass and used for one multiply-add. Returns the best GFLOP/s and the implied GB/s.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    v = torch.randn(n, generator=gen)
    for _ in range(warmup):
        torch.mv(a, v)
    best = min(_timed_ns(lambda: torch.mv(a, v)) for _ in range(repeats))
    return {"n": n, "best_gflops": 2.0 * n * n / best, "best_gb_per_s": 4.0 * n * n / best}


def _timed_ns(fn: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, core count, load, torch version and threads."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "time_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


@dataclass
class Column:
    """One table column: the row key it shows, its header, width and how a value is written."""

    key: str
    header: str
    width: int
    fmt: Callable[[Any], str] = str


class Table:
    """A fixed-width table printed one row at a time, so a long benchmark shows its progress as it goes."""

    def __init__(self, columns: list[Column]) -> None:
        self.columns = columns

    def _line(self, cells: list[str]) -> str:
        return " ".join(
            cell.ljust(col.width) if i == 0 else cell.rjust(col.width)
            for i, (col, cell) in enumerate(zip(self.columns, cells, strict=True))
        )

    def header(self) -> None:
        line = self._line([c.header for c in self.columns])
        print(line)
        print("-" * len(line), flush=True)

    def row(self, row: dict[str, Any]) -> None:
        cells = [c.fmt(row[c.key]) if row.get(c.key) is not None else "-" for c in self.columns]
        print(self._line(cells), flush=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON atomically (never half a file)."""
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


class MatmulFlopCounter(TorchDispatchMode):
    """Counts the matmul-class FLOPs of every aten op run inside it, forward and backward.

    ``torch.utils.flop_counter.FlopCounterMode`` cannot be used: its module tracker breaks
    ``torch.autograd.grad`` inside the guided sampler, and its table lacks the CPU flash-attention kernels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:
            self.flops += int(flop_registry[packet](*args, **kwargs, out_val=out))
        elif packet is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu:
            q, k, v = args[:3]
            self.flops += int(sdpa_flop_count(q.shape, k.shape, v.shape))
        elif packet is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward:
            grad_out, q, k, v = args[:4]
            self.flops += int(sdpa_backward_flop_count(grad_out.shape, q.shape, k.shape, v.shape))
        return out


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over each ``window`` consecutive entries along axis 0 (``(T, ...) -> (T - window + 1, ...)``), e.g. a
    velocity averaged over one stride."""
    kernel = np.ones(window) / window
    return np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="valid"), 0, values)
