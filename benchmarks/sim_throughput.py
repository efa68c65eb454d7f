"""Simulation throughput of the G1: bare physics (the limit), single env, vectorized env at 1 and 2 threads.

    python benchmarks/sim_throughput.py [--quick] [--json PATH] [--check]

The bare rate is C MuJoCo stepping one G1 under the policy PD gains with zero action (it falls and is reset
every 1.28 s, like the env rollouts here), no Python per step. Env rates count control steps (50 Hz, 4 physics
substeps each); "physics/s per thread" multiplies by the substeps and divides by the thread count, and the
ratio compares it with the bare rate. Target: vectorized ratio >= 0.70. ``--check`` exits 1 when
the 1-thread vectorized ratio misses it. Every configuration is measured in several interleaved rounds and
the best round is reported, so a busy neighbour on a shared machine biases all rows alike.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import mujoco
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/sim_throughput.py`

from benchmarks._common import run_benchmark
from envs.g1.env import G1Env
from envs.g1.vec_env import G1VecEnv, G1VecEnvConfig
from robot.files import atomic_write_text

TARGET_RATIO = 0.70
SUBSTEPS = 4


def bare_physics_steps_per_s(duration_s: float) -> float:
    env = G1Env()  # same compiled model as the envs
    model = env.robot.model
    data = mujoco.MjData(model)
    steps, chunk, episode = 0, 64, 256
    start = time.perf_counter()
    while time.perf_counter() - start < duration_s:
        if steps % episode == 0:
            mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
        mujoco.mj_step(model, data, chunk)
        steps += chunk
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def bare_physics_two_threads_steps_per_s(duration_s: float) -> float:
    """Two independent worlds stepped by two threads (MuJoCo releases the GIL): the 2-core limit."""
    rates = [0.0, 0.0]
    workers = [
        threading.Thread(target=lambda i=i: rates.__setitem__(i, bare_physics_steps_per_s(duration_s)))
        for i in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(rates)


def single_env_steps_per_s(duration_s: float) -> float:
    env = G1Env()
    env.reset(seed=0)
    action = np.zeros(29, dtype=np.float32)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < duration_s:
        _, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def vec_env_steps_per_s(num_envs: int, num_threads: int, duration_s: float) -> float:
    vec = G1VecEnv(G1VecEnvConfig(num_envs=num_envs, num_threads=num_threads))
    actions = torch.zeros(num_envs, 29)
    vec.step(actions)  # warm the thread pool
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < duration_s:
        vec.step(actions)
        steps += num_envs
    rate = steps / (time.perf_counter() - start)
    vec.close()
    return rate


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    quick: bool = False
    """short measurements (under a minute)"""
    json: Optional[Path] = None
    """write the results to this JSON file"""
    num_envs: int = 256
    """worlds in the vectorized env"""
    check: bool = False
    """exit 1 if the 1-thread vectorized ratio is under 0.70"""


def main(args: Args) -> int:
    duration, rounds = (1.5, 2) if args.quick else (4.0, 3)
    torch.set_num_threads(1)

    best = {"bare": 0.0, "bare2": 0.0, "single": 0.0, "vec1": 0.0, "vec2": 0.0}
    for _ in range(rounds):
        best["bare"] = max(best["bare"], bare_physics_steps_per_s(duration))
        best["bare2"] = max(best["bare2"], bare_physics_two_threads_steps_per_s(duration))
        best["single"] = max(best["single"], single_env_steps_per_s(duration))
        best["vec1"] = max(best["vec1"], vec_env_steps_per_s(args.num_envs, 1, duration))
        best["vec2"] = max(best["vec2"], vec_env_steps_per_s(args.num_envs, 2, duration))
    bare, single = best["bare"], best["single"]
    bare2 = best["bare2"]
    rows = [("bare physics (C, 1 thread)", 1, bare / SUBSTEPS, bare, 1.0)]
    rows.append(("bare physics (C, 2 threads)", 2, bare2 / SUBSTEPS, bare2 / 2, bare2 / 2 / bare))
    rows.append(("G1Env (gymnasium)", 1, single, single * SUBSTEPS, single * SUBSTEPS / bare))
    for threads in (1, 2):
        rate = best[f"vec{threads}"]
        per_thread = rate * SUBSTEPS / threads
        rows.append((f"G1VecEnv x{args.num_envs}", threads, rate, per_thread, per_thread / bare))

    print(f"G1 simulation throughput ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, physics dt 5 ms)")
    header = f"{'':30s} {'threads':>7s} {'control steps/s':>16s} {'physics/s/thread':>17s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for name, threads, ctrl, phys, ratio in rows:
        print(f"{name:30s} {threads:7d} {ctrl:16.0f} {phys:17.0f} {ratio:6.2f}")
    vec_ratio = rows[3][4]
    vec2_vs_bare2 = rows[4][3] / rows[1][3]
    print(f"vectorized 1-thread ratio {vec_ratio:.2f} (target >= {TARGET_RATIO:.2f}); 2-thread ratio {rows[4][4]:.2f}")
    print(f"2-thread vectorized vs 2-thread bare physics per thread: {vec2_vs_bare2:.2f}")
    if args.json is not None:
        results = {
            "bare_physics_steps_per_s": bare,
            "bare_physics_two_threads_steps_per_s": bare2,
            "single_env_steps_per_s": single,
            "vec_env_steps_per_s": {str(r[1]): r[2] for r in rows[3:]},
            "vec_ratio": {str(r[1]): r[4] for r in rows[3:]},
            "vec2_vs_bare2_per_thread": vec2_vs_bare2,
            "num_envs": args.num_envs,
            "load_average": os.getloadavg()[0],
            "target_ratio": TARGET_RATIO,
        }
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 1 if args.check and vec_ratio < TARGET_RATIO else 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main, Args, __doc__))
