"""Which part of the estimated planner state costs joystick tracking: the same worlds driven from ground truth, from
the estimator, from the estimator with ideal sensors, and from the estimator with the true base velocity.

    python benchmarks/planner_state_ablation.py [--planner assets/g1_planner/planner.pt] [--seed 7]
        [--condition "physics 0.002 s x 10"] [--episodes 16] [--seconds 20] [--quick] [--json PATH]

Rows (all with the joystick cost on, scored on the simulator's truth):

- ``ground_truth``: the simulator's base pose and twist (what the training data hold);
- ``estimator``: the contact-aided Kalman filter behind the MEMS sensor model, as ``planner_eval --state-sources
  estimator`` runs it;
- ``estimator, ideal sensors``: the same filter fed exact IMU and joint readings (no noise, bias or heading drift);
- ``estimator, true velocity``: the estimated state with the base's linear velocity replaced by the true one (the
  sensor model stays on).

If the last row tracks like ground truth and the third like the estimator, the error is the velocity estimate's;
the estimator's own velocity error (RMSE in the heading frame, and its slow and within-stride parts) is printed
beside it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any

import numpy as np
import torch

from benchmarks._common import BenchmarkArgs, machine_info, moving_average, run_benchmark, write_json
from envs.g1.observations import yaw_from_quat
from robot.cli import UserError
from robot.sensor_model import SensorModelConfig
from training.locomotion.evaluate import EvalConfig, evaluate
from training.planner.collect import RecordingEnv
from training.planner.control import GroundTruthStates, PlannerController, expert_task
from training.planner.estimated_state import EstimatedStates
from training.planner.evaluate import CONDITIONS, DEFAULT_EXPERT_POLICY, DEFAULT_PLANNER, joystick_params, load_planner

STRIDE_STEPS = 35  # 0.7 s at 50 Hz: one stride of both legs


class TrueVelocityStates(EstimatedStates):
    """The estimator's planner state with the simulator's base velocity in place of the estimate."""

    def __init__(self, env: RecordingEnv) -> None:
        super().__init__(env)
        self._env = env

    def base_position_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimated position, true world velocity of the pelvis (N, 3) each."""
        pos, _ = super().base_position_velocity()
        return pos, self._env.qvel[:, :3].copy()


SOURCES: dict[str, Any] = {
    "ground_truth": lambda env: GroundTruthStates(),
    "estimator": EstimatedStates,
    "estimator, ideal sensors": lambda env: EstimatedStates(env, sensors=SensorModelConfig()),
    "estimator, true velocity": TrueVelocityStates,
}


class _Probe(PlannerController):
    """The planner controller with its state source swapped in, logging estimated against true base velocity."""

    def __init__(self, make_source: Any, *args: Any) -> None:
        super().__init__(*args)
        self.make_source = make_source
        self.velocities: list[tuple[np.ndarray, np.ndarray]] = []

    def bind(self, env: Any) -> None:
        super().bind(env)
        self.history.source = self.make_source(env)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        action = super().__call__(obs)
        source, env = self.history.source, self.env
        if isinstance(source, EstimatedStates) and env is not None:
            yaw = -yaw_from_quat(env.qpos[:, 3:7])
            c, s = np.cos(yaw), np.sin(yaw)

            def heading(v: np.ndarray) -> np.ndarray:
                return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1)  # (N, 2)

            _, estimated = source.base_position_velocity()
            self.velocities.append((heading(estimated), heading(env.qvel[:, :3])))
        return action


def velocity_error(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """RMSE of the estimated planar velocity (after the first second), and its slow (stride-averaged) and
    within-stride parts."""
    est = np.stack([e for e, _ in pairs])[50:]  # (T, N, 2)
    true = np.stack([t for _, t in pairs])[50:]

    err = est - true
    if len(err) < 2 * STRIDE_STEPS:  # too short to split into slow and within-stride parts
        return {"velocity_rmse_m_per_s": float(np.sqrt((err**2).sum(-1).mean()))}
    slow_err = moving_average(est, STRIDE_STEPS) - moving_average(true, STRIDE_STEPS)
    half = STRIDE_STEPS // 2
    fast_err = err[half : half + len(slow_err)] - slow_err

    def rmse(e: np.ndarray) -> float:
        return float(np.sqrt((e**2).sum(-1).mean()))

    return {
        "velocity_rmse_m_per_s": rmse(err),
        "slow_rmse_m_per_s": rmse(slow_err),
        "fast_rmse_m_per_s": rmse(fast_err),
    }


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    planner: Path = DEFAULT_PLANNER
    """exported planner"""
    seed: int = 7
    """seed of worlds, commands, sensors and sampling noise"""
    condition: str = "physics 0.002 s x 10"
    """physics condition by name (``training.planner.evaluate.CONDITIONS``)"""
    episodes: Optional[int] = None
    """worlds (default 16, quick 2)"""
    seconds: Optional[float] = None
    """episode length (default 20, quick 3)"""


def main(args: Args) -> int:
    if args.condition not in CONDITIONS:
        raise UserError(f"--condition: expected one of {list(CONDITIONS)}, got {args.condition!r}")
    """CLI entry point."""
    torch.set_num_threads(1)
    ecfg = EvalConfig(
        episodes=args.episodes or (2 if args.quick else 16),
        episode_length_s=args.seconds or (3.0 if args.quick else 20.0),
        command_interval_s=5.0,
        num_threads=1,
        seed=args.seed,
        train=expert_task(DEFAULT_EXPERT_POLICY),
    )
    module, meta = load_planner(args.planner)
    rows = []
    print(f"joystick row, {args.condition}, seed {args.seed}, {ecfg.episodes} worlds x {ecfg.episode_length_s:g} s")
    print("| planner state | falls | v err m/s | estimate v RMSE | slow | within-stride |")
    print("|---|---|---|---|---|---|")
    for name, make in SOURCES.items():
        ctrl = _Probe(make, module, meta, joystick_params(meta), args.seed)
        result = evaluate(ctrl, ecfg, CONDITIONS[args.condition], progress=False, env_cls=RecordingEnv)  # type: ignore[arg-type]
        row: dict[str, Any] = {"source": name, "fall_rate": result.fall_rate, "lin_err_m_per_s": result.lin_err_m_per_s}
        if ctrl.velocities:
            row.update(velocity_error(ctrl.velocities))
        rows.append(row)
        v = [
            f"{row[k]:.3f}" if k in row else ""
            for k in ("velocity_rmse_m_per_s", "slow_rmse_m_per_s", "fast_rmse_m_per_s")
        ]
        print(f"| {name} | {row['fall_rate']:.1%} | {row['lin_err_m_per_s']:.3f} | {' | '.join(v)} |")
    if args.json:
        payload = {"planner": str(args.planner), "condition": args.condition, "seed": args.seed, "rows": rows}
        write_json(args.json, {**payload, "episodes": ecfg.episodes, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
