"""The G1 planner on TorchScript and ONNX Runtime, fp32 and int8, per set of active cost terms, inside a 50 Hz loop.

    python benchmarks/planner_backends.py [--model assets/g1_planner/head/planner_model.pt] [--onnx PATH]
        [--ticks 100] [--json PATH]

Exports (once, into ``--cache``) the committed planner's model with its export settings (2 DDIM steps, rolling
start 1, x0 guidance 10): TorchScript with the float denoiser and with torch.ao's dynamic int8 (the committed
file), and ONNX (``deploy.export_planner --onnx --onnx-int8``; ``--onnx`` reuses an export). Each row plans once
per tick of a 50 Hz loop paced by the wall clock (the plan starts on the tick, one thread, batch 1, fresh noise,
warm-started), the way the deploy loop calls it; p50/p99 of the plan and ``over`` = plans past 5 ms.

Then the int8 re-check of the action head (fitted on plans sampled with torch.ao's int8 network): on 256 inputs
drawn around the data (normalised states and actions ~ N(0, 0.5^2), un-normalised) with the joystick on, the
executed action (the head's) of every backend against TorchScript int8, in units of the action normaliser's scale.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Column, Table, latency_stats_ms, machine_info, run_benchmark, write_json
from deploy.export import export_planner
from deploy.export_planner import ExportPlannerConfig, build_planner, load_planner_model
from deploy.export_planner_onnx import export_planner_onnx
from envs.planner.onnx import OnnxPlanner, OnnxPlannerModel
from envs.planner.runtime import ExportedPlanner

SETS = ("none", "joystick", "joystick+waypoint", "joystick+waypoint+obstacles")
PERIOD_S, BUDGET_MS = 0.02, 5.0


def exports(args: Args) -> tuple[dict[str, Path], torch.nn.Module]:
    cfg = ExportPlannerConfig(model=args.model, rolling_start=1)
    model = load_planner_model(args.model)
    float_planner = build_planner(model, cfg, float_network=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    paths = {"ts-fp32": args.cache / "fp32.pt", "ts-int8": args.cache / "int8.pt", "onnx": args.onnx}
    if not paths["ts-fp32"].is_file():
        export_planner(float_planner, paths["ts-fp32"])
    if not paths["ts-int8"].is_file():
        int8_cfg = ExportPlannerConfig(model=args.model, rolling_start=1, int8=True)
        export_planner(build_planner(model, int8_cfg), paths["ts-int8"])
    if paths["onnx"] is None:
        paths["onnx"] = args.cache / "planner.onnx"
        if not paths["onnx"].is_file():
            export_planner_onnx(float_planner, paths["onnx"], int8=True)
    return paths, float_planner


def params_for(key: str, offsets: dict[str, int], P: int) -> np.ndarray | None:
    if key == "none":
        return None
    p = np.zeros((1, P), np.float32)
    for term in key.split("+"):
        p[0, offsets[term]] = 1.0
    o = offsets
    p[0, o["joystick"] + 1 : o["joystick"] + 4] = (0.5, 0.0, 0.2)
    p[0, o["waypoint"] + 1 : o["waypoint"] + 3] = (2.0, 0.5)
    p[0, o["obstacles"] + 1 : o["obstacles"] + 7] = (0.8, 0.0, 0.15, 0.5, 0.0, 1.0)  # one box; cylinders inactive
    return p


def loop_row(plan, inputs: tuple[np.ndarray, np.ndarray], params: np.ndarray | None, ticks: int) -> list[int]:
    """Plan at every tick of a wall-clock 50 Hz loop; returns the plan durations (ns)."""
    for _ in range(5):
        plan(*inputs, params)
    samples, next_tick = [], time.perf_counter()
    gc.disable()
    try:
        for _ in range(ticks):
            next_tick += PERIOD_S
            while (left := next_tick - time.perf_counter()) > 0:
                time.sleep(min(left, 0.002))
            start = time.perf_counter_ns()
            plan(*inputs, params)
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return samples


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    model: Path = Path("assets/g1_planner/head/planner_model.pt")
    """trained planner with its action head (``planner_model.safetensors`` or ``.pt``) to export and time"""
    onnx: Optional[Path] = None
    """an ONNX planner export to time (with --onnx-int8)"""
    cache: Path = Path("outputs/bench/planner_backends")
    """where the TorchScript and ONNX exports of the rows are written"""
    ticks: int = 100
    """loop ticks per row"""
    json: Optional[Path] = None
    """also write the rows as JSON here"""


def main(args: Args) -> int:
    torch.set_num_threads(1)
    paths, float_planner = exports(args)
    backends = {
        "torchscript fp32": ExportedPlanner(*_ts(paths["ts-fp32"])),
        "torchscript int8": ExportedPlanner(*_ts(paths["ts-int8"])),
        "onnxruntime fp32": OnnxPlanner(OnnxPlannerModel(paths["onnx"], "fp32")),
        "onnxruntime int8": OnnxPlanner(OnnxPlannerModel(paths["onnx"], "int8")),
    }
    onnx_meta = backends["onnxruntime fp32"].meta
    offsets = {t["params"][0].removesuffix("_gate"): int(t["offset"]) for t in onnx_meta["cost_terms"]}
    norm = float_planner.decoder.normalizer
    S, Hh, P = float_planner.state_dim, float_planner.history, onnx_meta["cost_param_dim"]
    gen = torch.Generator().manual_seed(0)
    raw = norm.offset + norm.scale * 0.5 * torch.randn(256, Hh, norm.offset.shape[0], generator=gen)
    states, actions = raw[..., :S].float().numpy(), raw[..., S:].float().numpy()
    f3 = "{:.3f}".format
    table = Table(
        [
            Column("backend", "backend", 17),
            Column("costs", "active costs", 28),
            Column("p50_ms", "p50 ms", 7, f3),
            Column("p99_ms", "p99 ms", 7, f3),
            Column("over", f">{BUDGET_MS:.0f}ms", 6, "{:d}".format),
        ]
    )
    print(f"plan latency in a 50 Hz loop, {args.ticks} ticks a row, 1 thread, batch 1, warm-started")
    table.header()
    rows = []
    for name, planner in backends.items():
        call = _numpy_call(planner)
        for key in SETS:
            samples = loop_row(call, (states[:1], actions[:1]), params_for(key, offsets, P), args.ticks)
            row = {"backend": name, "costs": key, **latency_stats_ms(samples)}
            row["over"] = int(sum(s > BUDGET_MS * 1e6 for s in samples))
            rows.append(row)
            table.row(row)
    head = head_check(backends, states, actions, params_for("joystick", offsets, P), norm.scale[S:].numpy())
    if args.json:
        write_json(args.json, {"machine": machine_info(), "ticks": args.ticks, "rows": rows, "action_head": head})
    return 0


def _ts(path: Path) -> tuple[torch.jit.ScriptModule, dict]:
    from deploy.export import load_exported

    module, meta = load_exported(path)
    return module, meta


def _numpy_call(planner: ExportedPlanner | OnnxPlanner):
    if isinstance(planner, OnnxPlanner):
        return planner.plan

    def call(states: np.ndarray, actions: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        p = None if params is None else torch.from_numpy(params)
        return planner.plan(torch.from_numpy(states), torch.from_numpy(actions), p).numpy()

    return call


def head_check(backends: dict, states: np.ndarray, actions: np.ndarray, params: np.ndarray, scale: np.ndarray) -> dict:
    """Executed actions of every backend on the same noise, against TorchScript int8 (the head's training
    network), in action-normaliser units: mean |a - a_ref| / scale, and the 99th percentile."""
    B = len(states)
    shape = (B, backends["onnxruntime fp32"].window, backends["onnxruntime fp32"].token_dim)
    noise = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    p = np.repeat(params, B, axis=0)
    actions_out = {}
    for name, planner in backends.items():
        if isinstance(planner, OnnxPlanner):
            plan, _ = planner.model.sample(states, actions, p, noise)
        else:
            with torch.enable_grad():
                plan, _ = planner.module(*(torch.from_numpy(a) for a in (states, actions, p, noise)), None)
            plan = plan.detach().numpy()
        actions_out[name] = plan[:, 0, planner.state_dim :]  # (B, A): the head's action
    ref = actions_out["torchscript int8"]
    out = {}
    print("\nexecuted action (the action head's) against torchscript int8, |diff| / action scale:")
    for name, a in actions_out.items():
        err = np.abs(a - ref) / scale
        out[name] = {"mean": float(err.mean()), "p99": float(np.quantile(err, 0.99))}
        print(f"  {name:17s} mean {err.mean():.4f}  p99 {np.quantile(err, 0.99):.4f}")
    return out


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
