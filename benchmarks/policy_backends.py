"""Policy inference backends side by side: TorchScript vs ONNX Runtime, one observation per call, as the 50 Hz loop
runs them; plus their largest output difference.

    python benchmarks/policy_backends.py [--policy assets/g1_walk/deploy/policy.pt] [--calls N] [--quick] [--json PATH]

Without ``--policy`` (or when the file is missing) it exports the walking expert's architecture (98 -> 256 -> 256
-> 128 -> 29 ELU with an observation normaliser, random weights) to both formats in a temporary folder. With a
TorchScript ``--policy`` the ONNX file beside it is used, or exported from it. Rows time ``ExportedPolicy.act``
(numpy in, clipped float64 action out) with one torch thread and one ONNX Runtime thread; the ratio column is
p50 of the row / p50 of TorchScript.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BenchmarkArgs, Column, Table, latency_stats_ms, machine_info, run_benchmark, write_json
from deploy.onnx_io import export_policy_onnx
from deploy.policy_io import ExportedPolicy, PolicyMetadata, build_mlp_policy, export_policy, load_policy


class _ExpertShapedActor(nn.Module):
    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.net = build_mlp_policy(obs_dim, 29, (256, 256, 128), seed=0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net((obs - self.mean) / self.std)


def _pair(policy: Path | None, folder: Path) -> tuple[Path, Path]:
    if policy is not None and policy.is_file():
        onnx_path = policy.with_suffix(".onnx")
        if not onnx_path.is_file():
            loaded = load_policy(policy)
            onnx_path = folder / "policy.onnx"
            export_policy_onnx(loaded.module, loaded.metadata, onnx_path)
        return policy, onnx_path
    meta = PolicyMetadata.for_g1("policy", obs_gait_period_s=0.8)
    actor = _ExpertShapedActor(meta.obs_dim)
    pt, _ = export_policy(actor, meta, folder / "policy.pt")
    onnx_path, _ = export_policy_onnx(actor, meta, folder / "policy.onnx")
    return pt, onnx_path


def _time(policy: ExportedPolicy, obs: np.ndarray, calls: int) -> list[int]:
    policy.warmup(20)
    samples = []
    for i in range(calls):
        start = time.perf_counter_ns()
        policy.act(obs[i % len(obs)])
        samples.append(time.perf_counter_ns() - start)
    return samples


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    policy: Optional[Path] = None
    """exported TorchScript policy (.pt with .json)"""
    calls: Optional[int] = None
    """timed calls per row (default 5000, quick 500)"""


def main(args: Args) -> int:
    calls = args.calls or (500 if args.quick else 5000)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        pt, ox = _pair(args.policy, Path(tmp))
        backends = {"torchscript": load_policy(pt), "onnxruntime": load_policy(ox)}
        obs = np.random.default_rng(0).normal(size=(256, backends["torchscript"].metadata.obs_dim)).astype(np.float32)
        diff = float(np.max(np.abs(backends["onnxruntime"].forward(obs) - backends["torchscript"].forward(obs))))
        f3 = "{:.3f}".format
        table = Table(
            [
                Column("row", "backend", 12),
                Column("p50_ms", "p50 ms", 8, f3),
                Column("p99_ms", "p99 ms", 8, f3),
                Column("max_ms", "max ms", 8, f3),
                Column("ratio", "p50/TS", 7, "{:.2f}".format),
            ]
        )
        print(f"policy act() latency, {calls} single-observation calls, 1 thread; policy {pt.name}")
        table.header()
        rows = []
        for name, policy in backends.items():
            row = {"row": name, **latency_stats_ms(_time(policy, obs, calls))}
            rows.append(row)
        for row in rows:
            row["ratio"] = row["p50_ms"] / rows[0]["p50_ms"]
            table.row(row)
    print(f"largest |onnx - torchscript| output difference on 256 observations: {diff:.2e}")
    if args.json:
        write_json(args.json, {"machine": machine_info(), "calls": calls, "max_abs_diff": diff, "rows": rows})
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
