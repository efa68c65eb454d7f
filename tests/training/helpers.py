"""Shared pieces of the safe-RL training tests: a tiny DSRL file, tiny algorithm configs and a fake cost env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from envs.planner.state import PLANNER_STATE_DIM
from envs.safe_rl import DSRLTask, write_dsrl
from policies.baselines import BCConfig, BCQLagConfig
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import PLANNER_MODEL_FORMAT, DiffusionPlanner, PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from policies.fisor import FISORConfig
from robot.configio import to_jsonable
from robot.g1 import constants as C
from training.safe_rl.config import EvalConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[2]

OBS_DIM, ACT_DIM = 7, 2  # BallRun's dimensions, so the task is inferred from the file name

TINY_FISOR = {
    "critic_hidden": (16, 16),
    "actor_width": 16,
    "actor_blocks": 1,
    "actor_expansion": 2,
    "time_features": 4,
    "time_hidden": 8,
    "num_candidates": 2,
    "batch_size": 32,
    "critic_batch_size": 16,
}
TINY_BC = {"hidden": (16,), "batch_size": 32}
TINY_BCQ = {
    "actor_hidden": (16,),
    "critic_hidden": (16,),
    "vae_hidden": 16,
    "num_samples": 2,
    "batch_size": 32,
    "episode_len": 10,
}


def tiny_algorithm(name: str, num_steps: int) -> FISORConfig | BCConfig | BCQLagConfig:
    """A small config of each algorithm (the algorithm itself unchanged)."""
    if name == "fisor":
        return FISORConfig(**TINY_FISOR, num_steps=num_steps)
    if name in ("bc_all", "bc_safe"):
        return BCConfig(**TINY_BC, mode=name[3:], num_steps=num_steps, cost_limit=3.0)
    return BCQLagConfig(**TINY_BCQ, num_steps=num_steps)


def write_tiny_dataset(folder: Path, episodes: int = 12, length: int = 10, seed: int = 0) -> Path:
    """A BallRun-shaped DSRL file: half the episodes safe (cost 0), half costly (cost on every other step)."""
    rng = np.random.default_rng(seed)
    n = episodes * length
    timeouts = np.zeros(n, np.float32)
    timeouts[length - 1 :: length] = 1.0
    risky = np.repeat(np.arange(episodes) % 2 == 1, length)
    actions = rng.uniform(-1, 1, size=(n, ACT_DIM)).astype(np.float32)
    arrays = {
        "observations": rng.normal(size=(n, OBS_DIM)).astype(np.float32),
        "next_observations": rng.normal(size=(n, OBS_DIM)).astype(np.float32),
        "actions": actions,
        "rewards": (10.0 * actions[:, 0]).astype(np.float32),
        "costs": (risky & (np.arange(n) % 2 == 0)).astype(np.float32),
        "terminals": np.zeros(n, np.float32),
        "timeouts": timeouts,
    }
    return write_dsrl(folder / f"BallRun-v0-80-{episodes}.hdf5", arrays)


def train_config(dataset: Path, run_dir: Path, algorithm: str = "fisor", num_steps: int = 12, **overrides: Any):
    """A quiet, fast :class:`TrainConfig` on ``dataset``."""
    options: dict[str, Any] = {
        "algorithm": tiny_algorithm(algorithm, num_steps),
        "dataset": dataset,
        "run_dir": run_dir,
        "checkpoint_every": 4,
        "log_every": 2,
        "eval_every": 0,
        "eval": EvalConfig(episodes=2, seeds=(0,)),
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig(**options)


class FakeCostEnv(gymnasium.Env):
    """A tiny env reporting ``info["cost"]``: ``length`` steps, reward ``100 * (seed + 1)`` per step where ``seed``
    is the last seed given to ``reset``, cost 1 on a step whose first action component is > 0."""

    def __init__(self, length: int = 5, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM, with_cost: bool = True):
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        self.length, self.with_cost = length, with_cost
        self.seed_value, self.t = 0, 0
        self.resets: list[int | None] = []
        self.closed = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.resets.append(seed)
        if seed is not None:
            self.seed_value = seed
        self.t = 0
        return self.np_random.normal(size=self.observation_space.shape).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.normal(size=self.observation_space.shape).astype(np.float32)
        info = {"cost": float(action[0] > 0)} if self.with_cost else {}
        return obs, 100.0 * (self.seed_value + 1), False, self.t >= self.length, info

    def close(self) -> None:
        self.closed = True


class FakeEnvFactory:
    """``factory(task)`` making :class:`FakeCostEnv` and keeping every env it made."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.envs: list[FakeCostEnv] = []

    def __call__(self, task: DSRLTask) -> FakeCostEnv:
        env = FakeCostEnv(**self.kwargs)
        self.envs.append(env)
        return env


def write_random_planner_dataset(path: Path, episodes: int = 6, steps: int = 30, seed: int = 0) -> Path:
    """A planner dataset file of the right layout with random values (phase in [0, 1))."""
    from envs.planner.dataset import STEP_KEYS, PlannerDataset, write_planner_dataset

    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(size=(episodes, steps, *shape)).astype(np.float32) for k, (shape, *_) in STEP_KEYS.items()}
    arrays["phase"] = rng.uniform(0.0, 1.0, size=(episodes, steps)).astype(np.float32)
    arrays["mirrored"] = np.zeros(episodes, dtype=bool)
    return write_planner_dataset(path, PlannerDataset(arrays, 0.02, {"test": True}))


def tiny_planner_model(path: Path) -> Path:
    """A random-weight G1 planner model file (the format training.planner.train writes), 1x32 transformer."""
    pc = PlannerConfig(
        state_dim=PLANNER_STATE_DIM,
        action_dim=C.NUM_JOINTS,
        history=4,
        horizon=8,
        latent_dim=4,
        denoiser=TransformerDenoiserConfig(num_layers=1, num_heads=2, width=32),
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(num_train_steps=20),
            prediction_type="x0",
            sampler=SamplerConfig(num_steps=3),
        ),
    )
    planner = DiffusionPlanner(pc)
    planner.fit_normalizers(torch.randn(64, PLANNER_STATE_DIM), torch.randn(64, C.NUM_JOINTS))
    planner.fit_latent_normalizer(torch.randn(64, PLANNER_STATE_DIM), torch.randn(64, C.NUM_JOINTS))
    torch.save(
        {
            "format": PLANNER_MODEL_FORMAT,
            "planner_config": to_jsonable(pc),
            "weights": planner.weights(),
            "ctrl_dt_s": 0.02,
        },
        path,
    )
    return path


def export_tiny_planner(folder: Path) -> Path:
    """:func:`tiny_planner_model` exported with the G1 costs (2 sampler steps); returns the ``planner.pt``."""
    from deploy.export_planner import ExportPlannerConfig
    from deploy.export_planner import main as export_main

    model = tiny_planner_model(folder / "planner_model.pt")
    pt, _ = export_main(ExportPlannerConfig(model=model, out=folder / "planner.pt", sampler_steps=2))
    return pt


def tiny_critic_file(path: Path, ctrl_dt_s: float = 0.02, keepout_radius_m: float = 0.0) -> Path:
    """A random-weight feasibility critic in the format ``training.planner.feasibility`` writes (a keep-out critic,
    reading a region offset beside the state, with ``keepout_radius_m > 0``)."""
    from policies.feasibility import (
        CRITIC_FORMAT,
        CRITIC_VERSION,
        FeasibilityCriticConfig,
        StateActionFeasibility,
        StateFeasibility,
    )

    torch.manual_seed(3)
    dim = PLANNER_STATE_DIM + (2 if keepout_radius_m > 0 else 0)
    value = StateFeasibility(dim, (16, 16))
    value.normalizer.fit(torch.randn(64, dim))
    q = StateActionFeasibility(value.normalizer, C.NUM_JOINTS, FeasibilityCriticConfig(hidden=(16, 16)))
    torch.save(
        {
            "format": CRITIC_FORMAT,
            "version": CRITIC_VERSION,
            "state_dim": dim,
            "hidden": [16, 16],
            "ctrl_dt_s": ctrl_dt_s,
            "constraints": {"keepout_radius_m": keepout_radius_m} if keepout_radius_m > 0 else {},
            "weights": value.state_dict(),
            "action_dim": C.NUM_JOINTS,
            "num_q_heads": 2,
            "q_weights": q.state_dict(),
        },
        path,
    )
    return path


def run_python(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root, output captured, one OpenMP thread (small networks: more threads
    only contend on a busy machine)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def export_tiny_keepout_planner(tmp_path: Path) -> Path:
    """A tiny planner exported with a random keep-out critic of a 0.5 m disc (``planner.pt`` under ``tmp_path``)."""
    from deploy.export_planner import ExportPlannerConfig
    from deploy.export_planner import main as export_main

    critic = tiny_critic_file(tmp_path / "keepout.pt", keepout_radius_m=0.5)
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    pt, _ = export_main(
        ExportPlannerConfig(model=model, out=tmp_path / "k" / "planner.pt", sampler_steps=2, keepout_critic=critic)
    )
    return pt
