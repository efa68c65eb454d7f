"""Per-plan latency of the diffusion planner on one CPU thread, against the matmul floor of this machine.

    python benchmarks/planner_latency.py [--quick] [--json PATH] [--fail-above-ms X] [--models mlp,tf-2x256]

Target (a guided plan a humanoid can use at 50 Hz): p99 under 5 ms on one core.

This times synthetic planner architectures. The exported G1 planner itself, TorchScript against ONNX Runtime,
fp32 and int8, per set of active cost terms, inside a 50 Hz loop on one thread: ``benchmarks/planner_backends.py``
(and which backend to use where: docs/deploy_onnx.md).

Setup: a G1-like planner (state S = 64, action A = 29, or a Z = 32 action latent), 4 history + 16 future
steps, batch 1, T = 20 training steps, x0 prediction, DDIM with K = 20 / 10 / 5 steps. ``cold`` plans from
noise every call; ``rolling`` warm-starts from the previous plan shifted by one step, re-noised to entry
``K // 4`` of the step sequence, so a plan costs ``K - K // 4`` network passes (15 of 20, as BeyondMimic).
Guidance: ``none``; ``x0`` (x0-space, the gradient only goes through the decoder and the cost); ``classifier``
(the gradient goes back through the denoiser: one forward and one backward pass a step). The cost is a
joystick-style ``QuadraticCost`` pulling the root twist features (0, 1, 2) of the 16 future steps to a command.
Backends: ``eager`` and ``script`` (``torch.jit.script`` with frozen parameters, as ``deploy.export`` does).
Every plan runs with autograd enabled, the way the deploy runtime calls the exported module.

Latency: median and p99 over ``--plans`` plans (200) after ``--warmup`` plans (20), one torch thread, Python's
garbage collector paused while timing. A row stops early once it has used ``--row-budget-s`` seconds and has
``--min-plans`` plans; its ``n`` column then shows fewer plans than asked (such rows are tens of ms or slower,
far from the target; ``--row-budget-s 0`` always runs every plan). The 6 x 512 transformer runs TorchScript only.

FLOPs per plan are counted on one real plan of each row (eager, same inputs) with torch.utils.flop_counter's
formulas for the matmul-class ops (linear layers, batched matmuls, attention, forward and backward);
elementwise work (norms, activations, sampler arithmetic) is not counted. ``% peak`` divides the achieved rate
(FLOPs / median latency) by the best single-thread rate of a 512 x 512 float32 matmul on this machine: the
physical floor of a plan is FLOPs / that rate. The header also prints the rate of a matrix-vector product
streamed from memory: at batch 1 a network whose weights outgrow the cache runs near that rate instead (the
residual MLP over the flattened window is such a network; the transformer's 40 tokens reuse every weight).
"""

from __future__ import annotations

import gc
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/planner_latency.py`

from benchmarks._common import (
    BenchmarkArgs,
    Column,
    MatmulFlopCounter,
    Table,
    latency_stats_ms,
    machine_info,
    matmul_gflops,
    matvec_gflops,
    run_benchmark,
    write_json,
)
from policies.diffusion.guidance import CostSum, GuidanceConfig, QuadraticCost
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import DiffusionPlanner, MLPDenoiserConfig, PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from robot.cli import UserError

TARGET_P99_MS = 5.0
STATE_DIM, ACTION_DIM, HISTORY, HORIZON, TRAIN_STEPS = 64, 29, 4, 16, 20
COST_FEATURES = [0, 1, 2]  # root twist (vx, vy, yaw rate) in the yaw frame: a joystick command cost
COST_PARAMS = [[0.5, 0.0, 0.2]]  # (1, P) the command

MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"denoiser": MLPDenoiserConfig(width=256, blocks=3)},
    "tf-2x256": {"denoiser": TransformerDenoiserConfig(num_layers=2, width=256, num_heads=8)},
    "tf-4x256": {"denoiser": TransformerDenoiserConfig(num_layers=4, width=256, num_heads=8)},
    "tf-6x512": {"denoiser": TransformerDenoiserConfig(num_layers=6, width=512, num_heads=8)},
    "mlp-z32": {"denoiser": MLPDenoiserConfig(width=256, blocks=3), "latent_dim": 32},
}
GUIDANCE = ("none", "x0", "classifier")
MODES = ("cold", "rolling")


@dataclass(frozen=True)
class Case:
    """One planner configuration; it is timed once per backend."""

    model: str
    steps: int
    mode: str
    guidance: str

    @property
    def rolling_start(self) -> int:
        return self.steps // 4 if self.mode == "rolling" else 0

    @property
    def passes(self) -> int:
        """Network passes per plan (a classifier-guided pass is one forward plus one backward)."""
        return self.steps - self.rolling_start


def make_grid(quick: bool, models: Optional[list[str]]) -> list[tuple[Case, tuple[str, ...]]]:
    """The cases and their backends: the full grid, or a reduced one for ``--quick``."""
    if quick:
        plan: list[tuple[str, tuple[int, ...], tuple[str, ...], tuple[str, ...]]] = [
            ("mlp", (10, 5), GUIDANCE, ("eager", "script")),
            ("tf-2x256", (10,), GUIDANCE, ("script",)),
            ("mlp-z32", (5,), ("x0", "classifier"), ("script",)),
        ]
    else:
        plan = [
            ("mlp", (20, 10, 5), GUIDANCE, ("eager", "script")),
            ("tf-2x256", (20, 10, 5), GUIDANCE, ("eager", "script")),
            ("tf-4x256", (20, 10, 5), GUIDANCE, ("eager", "script")),
            ("tf-6x512", (20, 10, 5), GUIDANCE, ("script",)),
            ("mlp-z32", (10,), ("x0", "classifier"), ("script",)),
        ]
    if models is not None:
        unknown = sorted(set(models) - set(MODELS))
        if unknown:
            raise UserError(f"--models: expected names from {sorted(MODELS)}, got unknown {unknown}")
        plan = [p for p in plan if p[0] in models]
    return [
        (Case(model, steps, mode, guidance), backends)
        for model, all_steps, guidances, backends in plan
        for steps in all_steps
        for mode in MODES
        for guidance in guidances
    ]


def build_planner(case: Case, seed: int) -> DiffusionPlanner:
    """An untrained planner of ``case`` (latency does not depend on the weights), frozen like an export."""
    config = PlannerConfig(
        state_dim=STATE_DIM,
        action_dim=ACTION_DIM,
        history=HISTORY,
        horizon=HORIZON,
        rolling_start=case.rolling_start,
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(kind="cosine", num_train_steps=TRAIN_STEPS),
            prediction_type="x0",
            sampler=SamplerConfig(kind="ddim", num_steps=case.steps),
            guidance=GuidanceConfig(mode=case.guidance, scale=1.0, max_grad_norm=10.0),
        ),
        **MODELS[case.model],
    )
    future = list(range(HISTORY, HISTORY + HORIZON))
    costs = CostSum([QuadraticCost(COST_FEATURES, future)], [1.0])
    torch.manual_seed(seed)
    planner = DiffusionPlanner(config, costs).eval()
    planner.requires_grad_(False)
    return planner


@dataclass
class PlanInputs:
    """Fixed inputs of every plan of a row: history, command, and a small bank of start noises."""

    obs_history: torch.Tensor  # (1, Hh, S)
    action_history: torch.Tensor  # (1, Hh, A)
    cost_params: Optional[torch.Tensor]  # (1, P) or None (unguided)
    noises: list[torch.Tensor]  # each (1, H, D)


def make_inputs(planner: DiffusionPlanner, guided: bool, seed: int) -> PlanInputs:
    gen = torch.Generator().manual_seed(seed)
    cfg = planner.config
    return PlanInputs(
        obs_history=torch.randn(1, cfg.history, cfg.state_dim, generator=gen),
        action_history=torch.randn(1, cfg.history, cfg.action_dim, generator=gen),
        cost_params=torch.tensor(COST_PARAMS) if guided else None,
        noises=[torch.randn(1, cfg.window, cfg.token_dim, generator=gen) for _ in range(8)],
    )


def flops_per_plan(planner: DiffusionPlanner, inputs: PlanInputs, rolling: bool) -> int:
    """Matmul FLOPs of one plan (a warm-started one for rolling rows)."""
    x = inputs
    prev = planner(x.obs_history, x.action_history, x.cost_params, x.noises[0], None)[1] if rolling else None
    counter = MatmulFlopCounter()
    with counter:
        planner(x.obs_history, x.action_history, x.cost_params, x.noises[1], prev)
    return counter.flops


def time_plans(module: torch.nn.Module, inputs: PlanInputs, rolling: bool, args: Args) -> tuple[list[int], int]:
    """Per-plan wall times in ns after warm-up; rolling rows feed each plan's tokens to the next (as deployed).

    Returns the timed samples and the number of warm-up plans run.
    """
    x = inputs
    prev: Optional[torch.Tensor] = None
    budget_ns = args.row_budget_s * 1e9

    def plan(i: int) -> int:
        nonlocal prev
        start = time.perf_counter_ns()
        _, tokens = module(x.obs_history, x.action_history, x.cost_params, x.noises[i % len(x.noises)], prev)
        elapsed = time.perf_counter_ns() - start
        if rolling:
            prev = tokens
        return elapsed

    # Warm-up: TorchScript's profiling executor optimises after the first runs; a quarter of the budget at most.
    warm, spent = 0, 0
    while warm < max(args.warmup, 2) and (warm < 2 or budget_ns <= 0 or spent < budget_ns / 4):
        spent += plan(warm)
        warm += 1
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        spent = 0
        while len(samples) < args.plans and (budget_ns <= 0 or spent < budget_ns or len(samples) < args.min_plans):
            samples.append(plan(warm + len(samples)))
            spent += samples[-1]
    finally:
        gc.enable()
    return samples, warm


def run_case(case: Case, backends: tuple[str, ...], peak_gflops: float, args: Args) -> list[dict]:
    planner = build_planner(case, args.seed)
    inputs = make_inputs(planner, case.guidance != "none", args.seed)
    rolling = case.mode == "rolling"
    flops = flops_per_plan(planner, inputs, rolling)
    rows = []
    for backend in backends:
        module: torch.nn.Module = planner if backend == "eager" else torch.jit.script(planner)
        with torch.enable_grad():
            samples, warm = time_plans(module, inputs, rolling, args)
        stats = latency_stats_ms(samples)
        achieved = flops / (stats["p50_ms"] * 1e6)  # GFLOP/s
        rows.append(
            {
                "model": case.model,
                "params": sum(p.numel() for p in planner.parameters()),
                "token_dim": planner.config.token_dim,
                "steps": case.steps,
                "mode": case.mode,
                "rolling_start": case.rolling_start,
                "passes": case.passes,
                "guidance": case.guidance,
                "backend": backend,
                "plans": len(samples),
                "warmup_plans": warm,
                **stats,
                "ms_per_pass": stats["p50_ms"] / case.passes,
                "mflop_per_plan": flops / 1e6,
                "achieved_gflops": achieved,
                "pct_of_matmul_peak": 100.0 * achieved / peak_gflops,
                "floor_ms": flops / (peak_gflops * 1e6),
                "meets_target": stats["p99_ms"] < TARGET_P99_MS,
            }
        )
    return rows


def row_name(row: dict) -> str:
    return f"{row['model']} K={row['steps']} {row['mode']} {row['guidance']} {row['backend']}"


COLUMNS = [
    Column("model", "model", 9),
    Column("params", "params", 7, lambda v: f"{v / 1e6:.2f}M"),
    Column("token_dim", "D", 3),
    Column("steps", "K", 2),
    Column("mode", "mode", 7),
    Column("passes", "passes", 6),
    Column("guidance", "guidance", 10),
    Column("backend", "backend", 7),
    Column("plans", "n", 4),
    Column("p50_ms", "p50 ms", 8, lambda v: f"{v:.2f}"),
    Column("p99_ms", "p99 ms", 8, lambda v: f"{v:.2f}"),
    Column("mflop_per_plan", "MFLOP/plan", 10, lambda v: f"{v:.1f}"),
    Column("floor_ms", "floor ms", 8, lambda v: f"{v:.2f}"),
    Column("pct_of_matmul_peak", "% peak", 6, lambda v: f"{v:.1f}"),
    Column("meets_target", "p99<5ms", 7, lambda v: "yes" if v else "no"),
]


def summarize(rows: list[dict], args: Args) -> dict[str, Any]:
    guided = [r for r in rows if r["guidance"] != "none"]
    meeting = sorted((r for r in guided if r["meets_target"]), key=lambda r: r["p99_ms"])
    best = min(guided, key=lambda r: r["p99_ms"]) if guided else None
    short = [row_name(r) for r in rows if r["plans"] < args.plans]
    print()
    if meeting:
        print(f"guided configurations with p99 < {TARGET_P99_MS:g} ms ({len(meeting)} of {len(guided)}):")
        for r in meeting:
            print(f"  {row_name(r):45s} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms")
    else:
        print(f"no guided configuration has p99 < {TARGET_P99_MS:g} ms ({len(guided)} measured)")
    if best is not None:
        print(f"best guided: {row_name(best)}, p99 {best['p99_ms']:.2f} ms")
    if short:
        print(f"{len(short)} rows stopped at their {args.row_budget_s:g} s budget with fewer than {args.plans} plans")
    return {
        "target_p99_ms": TARGET_P99_MS,
        "guided_meeting_target": [row_name(r) for r in meeting],
        "best_guided": row_name(best) if best is not None else None,
        "best_guided_p99_ms": best["p99_ms"] if best is not None else None,
        "rows_under_plan_count": short,
    }


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    models: Optional[tuple[str, ...]] = None
    """a subset of the synthetic architectures (names from MODELS; commas also separate)"""
    plans: Optional[int] = None
    """timed plans per row (default 200; quick 30)"""
    warmup: Optional[int] = None
    """warm-up plans per row (default 20; quick 5)"""
    row_budget_s: Optional[float] = None
    """seconds of timing per row (default 3; quick 1; 0 = none)"""
    min_plans: Optional[int] = None
    """plans a row runs whatever its budget (10; 5)"""
    seed: int = 0
    """weights, inputs and noise seed"""
    fail_above_ms: Optional[float] = None
    """exit 1 if the best guided p99 exceeds this (default off)"""


def resolve_defaults(args: Args) -> Args:
    """Fill the quick / full defaults; refuse counts out of range."""
    defaults = {"plans": (200, 30), "warmup": (20, 5), "row_budget_s": (3.0, 1.0), "min_plans": (10, 5)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.plans < 1 or args.min_plans < 1 or args.warmup < 0:
        raise UserError(
            f"expected --plans, --min-plans >= 1 and --warmup >= 0, got {args.plans}, {args.min_plans}, {args.warmup}"
        )
    if args.models is not None:
        args.models = tuple(m for item in args.models for m in item.split(",") if m)
    return args


def main(args: Args) -> int:
    args = resolve_defaults(args)
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*TorchScript type system")
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    started = time.perf_counter()
    grid = make_grid(args.quick, args.models)
    peak = matmul_gflops()
    matvec = matvec_gflops()
    machine = machine_info()
    print(
        f"planner latency, 1 thread, batch 1: S={STATE_DIM} A={ACTION_DIM} Hh={HISTORY} Hf={HORIZON} T={TRAIN_STEPS}; "
        f"{len(grid)} configurations; {args.plans} plans/row after {args.warmup} warm-up, {args.row_budget_s:g} s "
        f"row budget"
    )
    print(
        f"{machine['cpu']} ({machine['cpu_count']} CPUs, load {machine['load_average_1min']:.2f}), torch "
        f"{machine['torch']}; matmul {peak['n']}^3 float32: best {peak['best_gflops']:.1f} GFLOP/s, median "
        f"{peak['median_gflops']:.1f}; matvec {matvec['n']}^2 from memory: {matvec['best_gflops']:.1f} GFLOP/s "
        f"({matvec['best_gb_per_s']:.1f} GB/s, the batch-1 rate once weights leave the cache)"
    )
    table = Table(COLUMNS)
    table.header()
    rows: list[dict] = []
    for case, backends in grid:
        for row in run_case(case, backends, peak["best_gflops"], args):
            table.row(row)
            rows.append(row)
    summary = summarize(rows, args)
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.0f} s")
    if args.json is not None:
        payload = {
            "benchmark": "planner_latency",
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine,
            "matmul": peak,
            "matvec": matvec,
            "elapsed_s": elapsed,
            "rows": rows,
            "summary": summary,
        }
        write_json(args.json, payload)
    if args.fail_above_ms is not None:
        best = summary["best_guided_p99_ms"]
        if best is None:
            print("--fail-above-ms: no guided configuration was measured", file=sys.stderr)
            return 2
        if best > args.fail_above_ms:
            print(f"FAIL: best guided p99 {best:.2f} ms > {args.fail_above_ms:g} ms", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main, Args, __doc__))
