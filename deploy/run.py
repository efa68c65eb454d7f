"""``python -m deploy.run``: drive the simulated G1 (MuJoCo in its real-time thread) with an exported policy.

The operator input is a scripted command file (:class:`deploy.teleop.ScriptedTeleop`, the default script stands
up, holds, then runs the policy with a few velocity commands), the keyboard, or a gamepad. At exit it prints the
mode transitions and the timing report, and writes ``timing.csv``, ``tb/`` (TensorBoard, ``timing/`` tags) and
``summary.json`` under ``--out-dir``.

Without ``--policy`` it exports and runs a zero-action MLP (holds the default pose with the stand gains): there is
no trained walking expert yet, and that policy shows the runtime, the safety state machine and the timing.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import tyro

from deploy.loop import ControlLoop, LoopConfig
from deploy.policy_io import ExportedPolicy, PolicyMetadata, build_mlp_policy, export_policy, load_policy
from deploy.teleop import CommandRanges, KeyboardTeleop, ScriptedTeleop, ScriptEvent, TeleopSource
from robot.sim import MujocoRobot, SimRobotConfig

DEFAULT_SCRIPT: tuple[ScriptEvent, ...] = (
    ScriptEvent(0.0, deadman=False),
    ScriptEvent(0.02, request="stand", deadman=False),
    ScriptEvent(2.5, deadman=True),
    ScriptEvent(2.6, request="walk"),
    ScriptEvent(4.0, command=(0.5, 0.0, 0.0)),
    ScriptEvent(7.0, command=(0.0, 0.3, 0.5)),
    ScriptEvent(10.0, command=(0.0, 0.0, 0.0)),
)


@dataclass
class RunConfig:
    """Run an exported policy on the simulated G1 in real time."""

    policy: Path | None = None
    """Exported policy (.pt with its .json); None: export a zero-action hold policy into --out-dir."""
    teleop: Literal["script", "keyboard", "gamepad"] = "script"
    """Operator input."""
    script: Path | None = None
    """Command file for --teleop script (None: the built-in stand/walk script, also written to --out-dir)."""
    duration_s: float = 12.0
    """How long to run."""
    out_dir: Path = Path("outputs/deploy_run")
    """Where timing.csv, tb/ and summary.json go."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    """Control loop options."""
    tensorboard: bool = True
    """Write the per-tick timing to TensorBoard at exit."""

    def __post_init__(self) -> None:
        if not self.duration_s > 0.0:
            raise ValueError(f"duration_s: expected > 0, got {self.duration_s}")
        if self.policy is not None and not self.policy.is_file():
            raise ValueError(f"policy: expected an exported .pt file, got {self.policy} (not found)")


def hold_policy(out_dir: Path) -> ExportedPolicy:
    """Export (once) and load the zero-action demo policy with stand gains."""
    meta = PolicyMetadata.for_g1("stand", extra={"demo": "zero-action hold policy"})
    path = out_dir / "hold_policy.pt"
    if not path.is_file():
        export_policy(build_mlp_policy(meta.obs_dim, meta.num_joints, (64, 64), zero_output=True), meta, path)
    return load_policy(path)


def make_teleop(cfg: RunConfig, ranges: CommandRanges) -> TeleopSource:
    """The operator input chosen by ``cfg``."""
    if cfg.teleop == "keyboard":
        return KeyboardTeleop(ranges)
    if cfg.teleop == "gamepad":
        from deploy.gamepad import EvdevGamepad

        return EvdevGamepad(ranges=ranges)
    path = cfg.script or ScriptedTeleop.write(cfg.out_dir / "script.json", DEFAULT_SCRIPT)
    return ScriptedTeleop.from_file(path, ranges)


def main(cfg: RunConfig) -> dict[str, float]:
    """Run, print the report, write the logs; returns the timing summary (plus the final mode)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(cfg.policy) if cfg.policy else hold_policy(cfg.out_dir)
    meta = policy.metadata
    teleop = make_teleop(cfg, CommandRanges(tuple(meta.command_low), tuple(meta.command_high)))
    robot = MujocoRobot(SimRobotConfig(threaded=True, realtime=True, initial_mode="damping"))
    print(f"policy {policy.path} ({meta.gain_profile} gains, {meta.control_freq_hz:.0f} Hz), {cfg.duration_s} s")
    with robot:
        loop = ControlLoop(robot, policy, teleop, cfg=cfg.loop)
        stats = loop.run(cfg.duration_s)
        base_height_m = float(robot.data.qpos[2])
    print(stats.report())
    stats.write_csv(cfg.out_dir / "timing.csv")
    if cfg.tensorboard:
        stats.write_tensorboard(cfg.out_dir / "tb")
    damping_reasons = [t.reason for t in loop.fsm.transitions if t.target.value == "damping"]
    summary = {
        **stats.summary(),
        "base_height_m": base_height_m,
        "transitions": [str(t) for t in loop.fsm.transitions],
        "first_damping_reason": damping_reasons[0] if damping_reasons else None,
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
    }
    (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"final base height {base_height_m:.3f} m; logs in {cfg.out_dir}")
    return summary


if __name__ == "__main__":
    main(tyro.cli(RunConfig))
