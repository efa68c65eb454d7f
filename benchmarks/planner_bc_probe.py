"""Is the planner's input enough to walk? A behaviour-cloning probe beside the diffusion planner, same data and inputs.

    python benchmarks/planner_bc_probe.py --data data/planner/g1_walk.h5
        [--planner-model runs/g1_planner/model/planner_model.safetensors] [--seconds 240] [--episodes 16] \\
        [--quick] [--json PATH]

The planner executes the action of its first planned token, given the last 4 planner states and the 4 actions before
the current one. The probe fits an MLP (3 x 512, GELU, MSE, Adam) from exactly that history to the expert's action,
once without and once with the velocity command as an extra input (the planner never sees the command: guidance
supplies it), on the planner's training episodes (the same seeded episode split as ``training.planner.train``),
for ``--seconds`` of wall time each on one thread. Reported per probe: held-out leg-action RMSE against the expert,
and the closed loop (``--episodes`` worlds x 10 s, expert task, commands changed every 5 s, fixed seed): fall rate,
planar velocity and yaw-rate error. With ``--planner-model``, the planner's own first action is scored on the same
held-out windows (deterministic start x_T = 0, and x_T ~ N(0, I)), unguided, so the rows read side by side.

What it tells: if the probes walk and the planner does not, the state representation and the data suffice and the
gap is the diffusion model's action (training, sampling); a probe that falls would point at the data instead.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks._common import BenchmarkArgs, machine_info, run_benchmark, write_json
from envs.planner.dataset import load_planner_dataset
from robot.g1 import constants as C
from training.locomotion.evaluate import Conditions, EvalConfig, evaluate
from training.planner.collect import RecordingEnv
from training.planner.evaluate import ControlHistory, PlannerEvalConfig, expert_task

HISTORY = 4
LEGS = slice(0, 12)


def windows(
    states: np.ndarray, actions: np.ndarray, commands: np.ndarray, episodes: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random windows of ``episodes``: history states (n, 4, S) ``s_{k-3..k}``, actions (n, 4, A)
    ``a_{k-4..k-1}``, the command at k (n, 3) and the target ``a_k`` (n, A)."""
    rng = np.random.default_rng(seed)
    e = rng.choice(episodes, n)
    k = rng.integers(HISTORY, states.shape[1] - 1, n)
    hs = np.stack([states[e, k - HISTORY + 1 + j] for j in range(HISTORY)], axis=1)
    ha = np.stack([actions[e, k - HISTORY + j] for j in range(HISTORY)], axis=1)
    return hs, ha, commands[e, k], actions[e, k]


def features(hs: np.ndarray, ha: np.ndarray, cmd: np.ndarray, with_command: bool) -> torch.Tensor:
    """Flattened history states and actions (and the command) as one input row per window."""
    x = [hs.reshape(len(hs), -1), ha.reshape(len(ha), -1)] + ([cmd] if with_command else [])
    return torch.tensor(np.concatenate(x, axis=1), dtype=torch.float32)


class Probe:
    """MLP from (history states, history actions[, command]) to the action, with its input normalisation."""

    def __init__(self, in_dim: int, out_dim: int, with_command: bool) -> None:
        self.with_command = with_command
        self.net = torch.nn.Sequential(
            torch.nn.Linear(in_dim, 512),
            torch.nn.GELU(),
            torch.nn.Linear(512, 512),
            torch.nn.GELU(),
            torch.nn.Linear(512, 512),
            torch.nn.GELU(),
            torch.nn.Linear(512, out_dim),
        )
        self.mu = torch.zeros(in_dim)
        self.sd = torch.ones(in_dim)

    def features(self, hs: np.ndarray, ha: np.ndarray, cmd: np.ndarray) -> torch.Tensor:
        return features(hs, ha, cmd, self.with_command)

    def fit(self, x: torch.Tensor, y: torch.Tensor, seconds: float, seed: int) -> int:
        """Adam on random batches for ``seconds``; returns the steps taken."""
        torch.manual_seed(seed)
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-3
        xn = (x - self.mu) / self.sd
        opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(seed)
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            i = torch.randint(len(x), (512,), generator=gen)
            loss = (self.net(xn[i]) - y[i]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        return steps

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mu) / self.sd)


class ProbeController:
    """The probe in the closed loop, fed by the same :class:`ControlHistory` as the planner's controller."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def bind(self, env: RecordingEnv) -> None:
        self.env = env
        self.history = ControlHistory(env.num_envs, HISTORY, C.NUM_JOINTS)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        states, actions = self.history.observe(self.env)
        action = self.probe(self.probe.features(states.numpy(), actions.numpy(), self.env.command))
        self.history.executed(action)
        return action


def planner_first_action_rmse(model: Path, hs: np.ndarray, ha: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Leg RMSE of the planner's first planned action (unguided) on the windows, from x_T = 0 and x_T ~ N(0, I)."""
    from deploy.export_planner import load_planner_model
    from policies.diffusion.planner import DiffusionPlanner, PlannerConfig
    from robot.configio import from_jsonable

    data = load_planner_model(model)
    pc = from_jsonable(PlannerConfig, data["planner_config"], f"{model}:planner_config")
    planner = DiffusionPlanner(pc)
    planner.load_weights(data["weights"])
    planner.eval()
    out = {}
    s, a, y = (torch.tensor(v, dtype=torch.float32) for v in (hs, ha, target))
    for name, scale in (("x_T = 0", 0.0), ("x_T ~ N(0, I)", 1.0)):
        gen = torch.Generator().manual_seed(0)
        rows = []
        for i in range(0, len(s), 256):
            noise = scale * torch.randn(len(s[i : i + 256]), pc.window, pc.token_dim, generator=gen)
            with torch.no_grad():
                plan, _ = planner(s[i : i + 256], a[i : i + 256], None, noise, None)
            rows.append(plan[:, 0, pc.state_dim :])
        pred = torch.cat(rows)
        out[name] = float((pred - y)[:, LEGS].pow(2).mean().sqrt())
    return out


@dataclass(kw_only=True)
class Args(BenchmarkArgs):
    """Options of this benchmark (module docstring)."""

    data: Path
    """planner dataset (training.planner.collect)"""
    planner_model: Optional[Path] = None
    """also score this planner model (planner_model.safetensors or .pt)"""
    seconds: Optional[float] = None
    """fit time per probe (default 240, quick 5)"""
    episodes: Optional[int] = None
    """closed-loop worlds (default 16, quick 2)"""
    episode_seconds: Optional[float] = None
    """closed loop (default 10, quick 1)"""
    val_fraction: float = 0.05
    """held-out episodes (as the planner)"""
    seed: int = 0
    """split seed (the planner's training seed)"""


def main(args: Args) -> int:
    seconds = args.seconds or (5.0 if args.quick else 240.0)
    worlds = args.episodes or (2 if args.quick else 16)
    length = args.episode_seconds or (1.0 if args.quick else 10.0)
    torch.set_num_threads(1)
    data = load_planner_dataset(args.data)
    states = np.asarray(data.arrays["state"], dtype=np.float32)
    actions = np.asarray(data.arrays["expert_action"], dtype=np.float32)
    commands = np.asarray(data.arrays["command"], dtype=np.float32)
    E = states.shape[0]
    order = np.random.default_rng(args.seed).permutation(E)  # training.planner.train's episode split
    n_val = max(1, round(args.val_fraction * E))
    train_eps, val_eps = order[n_val:], order[:n_val]
    train = windows(states, actions, commands, train_eps, 20_000 if args.quick else 400_000, args.seed + 1)
    val = windows(states, actions, commands, val_eps, 512 if args.quick else 10_000, args.seed + 2)
    task = expert_task(PlannerEvalConfig().expert)
    ecfg = EvalConfig(
        episodes=worlds, episode_length_s=length, command_interval_s=5.0, num_threads=1, seed=1, train=task
    )
    rows = []
    for with_command in (False, True):
        x = features(*train[:3], with_command)
        probe = Probe(x.shape[1], actions.shape[2], with_command)
        steps = probe.fit(x, torch.tensor(train[3]), seconds, args.seed)
        pred = probe(probe.features(*val[:3]))
        rmse = float((pred - torch.tensor(val[3]))[:, LEGS].pow(2).mean().sqrt())
        result = evaluate(ProbeController(probe), ecfg, Conditions(name="probe"), env_cls=RecordingEnv)  # type: ignore[arg-type]
        rows.append(
            {
                "model": "MLP probe" + (" + command" if with_command else ""),
                "fit_steps": steps,
                "val_leg_rmse": rmse,
                "fall_rate": result.fall_rate,
                "lin_err": result.lin_err_m_per_s,
                "yaw_err": result.yaw_err_rad_per_s,
            }
        )
        print(rows[-1], flush=True)
    hold_last = float(np.sqrt(((val[1][:, -1] - val[3])[:, LEGS] ** 2).mean()))  # repeat the previous action
    planner_rows = {}
    if args.planner_model is not None:
        planner_rows = planner_first_action_rmse(args.planner_model, val[0], val[1], val[3])
    print(
        f"\nheld-out windows: {len(val[3])} from {n_val} episodes; leg actions std {val[3][:, LEGS].std():.3f}, "
        f"repeating the previous action scores an RMSE of {hold_last:.3f}"
    )
    print("\n| model | fit steps | held-out leg RMSE | closed loop: falls | v err m/s | yaw err rad/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['fit_steps']} | {r['val_leg_rmse']:.3f} | {r['fall_rate']:.3f} | {r['lin_err']:.3f} "
            f"| {r['yaw_err']:.3f} |"
        )
    for name, rmse in planner_rows.items():
        print(f"| planner {args.planner_model} ({name}, unguided) | - | {rmse:.3f} | - | - | - |")
    if args.json:
        payload = {"rows": rows, "planner": planner_rows, "hold_last_rmse": hold_last, "machine": machine_info()}
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
