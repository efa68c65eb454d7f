"""Import time and resident memory of the robot-side runtime closure against the full deploy CLI.

    python benchmarks/runtime_footprint.py [--onnx-planner PATH] [--repeats 3] [--json PATH]

Each row runs in a fresh interpreter: the imports timed with ``time.perf_counter``, then the peak resident set
(``VmHWM``) after the imports and, with ``--onnx-planner``, after loading that planner and planning once.
Rows: the closure (``deploy.loop``, ``deploy.g1_backend``, ``deploy.onnx_io``, ``deploy.planner_policy``,
``robot.estimation``) and ``deploy.run`` (the CLI, which brings the simulator, torch and gymnasium).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine_info, run_benchmark, write_json  # noqa: E402 - after the path insert

CLOSURE = ["deploy.loop", "deploy.g1_backend", "deploy.onnx_io", "deploy.planner_policy", "robot.estimation"]
CHILD = r"""
import json, sys, time

def peak_mb():  # VmHWM: ru_maxrss would carry the parent's peak across exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

t = time.perf_counter()
for m in json.loads(sys.argv[1]):
    __import__(m)
import_s = time.perf_counter() - t
rss = peak_mb()
out = {"import_s": import_s, "rss_mb": rss, "torch": "torch" in sys.modules, "mujoco": "mujoco" in sys.modules}
if sys.argv[2]:
    import numpy as np
    from envs.planner.onnx import OnnxPlanner, OnnxPlannerModel
    p = OnnxPlanner(OnnxPlannerModel(sys.argv[2], sys.argv[3]))
    params = np.zeros((1, p.param_dim), np.float32)
    params[0, p.gate("joystick")] = 1.0
    z = np.zeros((1, p.history, p.state_dim + p.action_dim), np.float32)
    p.plan(z[..., : p.state_dim], z[..., p.state_dim :], params)
    out["rss_with_planner_mb"] = peak_mb()
print(json.dumps(out))
"""


def run(modules: list[str], planner: str, precision: str) -> dict:
    args = [sys.executable, "-c", CHILD, json.dumps(modules), planner, precision]
    return json.loads(subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout)


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    onnx_planner: Optional[Path] = None
    """an ONNX planner export to load and plan with once after the imports (default: imports only)"""
    repeats: int = 3
    """fresh interpreters per row (the fastest import is kept, all import times listed)"""
    json: Optional[Path] = None
    """also write the rows as JSON here"""


def main(args: Args) -> int:
    planner = str(args.onnx_planner or "")
    rows = []
    for name, modules, precision in (
        ("closure", CLOSURE, "fp32"),
        ("closure (int8 planner)", CLOSURE, "int8"),
        ("deploy.run", ["deploy.run"], "fp32"),
    ):
        if "int8" in name and not planner:
            continue
        runs = [run(modules, planner if name != "deploy.run" else "", precision) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["import_s"])
        row = {"row": name, **best, "import_s_all": [round(r["import_s"], 3) for r in runs]}
        rows.append(row)
        extra = f", with the planner {best['rss_with_planner_mb']:.0f} MB" if "rss_with_planner_mb" in best else ""
        print(
            f"{name:24s} import {best['import_s']:.2f} s (of {row['import_s_all']}), RSS {best['rss_mb']:.0f} MB"
            f"{extra}; torch {best['torch']}, mujoco {best['mujoco']}"
        )
    if args.json:
        write_json(args.json, {"machine": machine_info(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
