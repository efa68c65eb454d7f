"""Do two runs of a benchmark agree? Compare their ``--json`` outputs field by field, timing fields aside.

    python benchmarks/compare_results.py BEFORE.json AFTER.json [--ignore KEY ...]

For refactors that must not change behaviour: run the benchmarks that touch the moved code before and after the
change (same seeds, same options) and compare. Fields whose names say they measure time or the machine (``time``,
``_ms``, ``_us``, ``steps_per_s``, ``train_s``, ``machine``, the load average, ...) and paths are left out, since
they differ between any two runs; everything else (tracking errors, falls, RMSEs, counts, configs) must be equal
(NaN equals NaN). Prints the differing fields and exits 1 when there are any, 0 when the runs agree.
"""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/compare_results.py`

from benchmarks._common import run_benchmark

TIMING = re.compile(
    r"_ms$|_us$|^(time_utc|seconds|measured|machine|cpu|cpu_count|python|torch|torch_threads|load_average_1min)$"
    r"|(^|_)(train|eval|wall)_s$|steps_per_s|ticks_per_s|s_per_100k"
)
"""Fields that measure time or describe the machine: they differ between any two runs (``latency_ms``, the
simulated latency of a condition, is a setting, but it is also in the condition's name, which is compared)."""
PATHS = re.compile(r"^(path|policy|planner|dataset|file|out|json|checkpoint)$")
"""Fields that hold a file's path: the two runs may come from two checkouts."""


def differences(a: Any, b: Any, path: str = "", ignore: tuple[str, ...] = ()) -> list[str]:
    """Fields where ``a`` and ``b`` differ, timing and path fields left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if TIMING.search(str(key)) or PATHS.search(str(key)) or key in ignore:
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'the second' if key in b else 'the first'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}", ignore)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]", ignore)]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)
    return [] if same else [f"{path}: {a!r} against {b!r}"]


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    before: tyro.conf.Positional[Path]
    """the first run's --json output"""
    after: tyro.conf.Positional[Path]
    """the second run's --json output"""
    ignore: tuple[str, ...] = ()
    """more field names to leave out"""


def main(args: Args) -> int:
    try:
        a, b = (json.loads(p.read_text()) for p in (args.before, args.after))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    found = differences(a, b, ignore=tuple(args.ignore))
    for line in found:
        print(line)
    print(f"{args.before} against {args.after}: " + ("agree" if not found else f"{len(found)} fields differ"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
