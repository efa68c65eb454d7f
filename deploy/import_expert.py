"""Turn the walking trainer's actor into a deploy policy: ``policy.pt`` + ``policy.json`` (+ ``policy.onnx``).

    python -m deploy.import_expert --run-dir runs/g1_walk --out-dir assets/g1_walk/deploy

The trainer (``training.locomotion.train``) writes its deterministic actor as TorchScript (``actor.pt``:
observation normaliser + MLP mean) and ``actor_meta.json`` (observation scales, gait clock, command ranges,
control period). This reads those files (no ``training`` import: the layers meet at the file format), completes
the metadata from the robot constants (joint order, default pose, the "policy" gains the walking task uses,
action scale), checks the network on a zero observation, and writes the deploy pair and its ONNX twin.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro

from deploy.policies.export import export_policy, export_policy_onnx
from deploy.policies.metadata import PolicyMetadata
from robot.cli import run_cli

TRAINER_KEYS = (
    "joint_names",
    "control_dt_s",
    "action_clip",
    "obs_ang_vel_scale",
    "obs_joint_vel_scale",
    "obs_clip",
    "obs_gait_period_s",
    "command_low",
    "command_high",
    "history_length",
)
"""Keys of the trainer's ``actor_meta.json`` carried into :class:`deploy.policies.metadata.PolicyMetadata`."""


def expert_metadata(trainer_meta: dict[str, Any], source: str) -> PolicyMetadata:
    """Deploy metadata of a walking actor from the trainer's ``actor_meta.json`` content."""
    missing = [k for k in TRAINER_KEYS if k not in trainer_meta]
    if missing:
        raise ValueError(f"{source}: missing keys {missing} (not written by training.locomotion.train?)")
    overrides = {k: trainer_meta[k] for k in TRAINER_KEYS}
    overrides["extra"] = {"source": source, "trainer_metadata": trainer_meta}
    return PolicyMetadata.for_g1("policy", **overrides)


def _trainer_actor(run_dir: Path) -> tuple[Path, Path]:
    """The actor file and its metadata in ``run_dir``'s ``export/`` or in ``run_dir`` itself, under today's names
    (``actor.pt``) or the earlier ones (``policy.pt``); today's names in ``export/`` when none exists."""
    for folder in (run_dir / "export", run_dir):
        for stem in ("actor", "policy"):
            if (folder / f"{stem}.pt").is_file():
                return folder / f"{stem}.pt", folder / f"{stem}_meta.json"
    return run_dir / "export" / "actor.pt", run_dir / "export" / "actor_meta.json"


def import_expert(run_dir: Path, out_dir: Path, onnx: bool = True) -> list[Path]:
    """Convert the trainer's actor, ``run_dir/export/actor.pt`` + ``actor_meta.json`` (or the two beside each other in
    ``run_dir``: the assets folder), into the deploy files ``out_dir/policy.{pt,json,onnx}``. Runs written before the
    actor had its own name hold ``policy.pt`` + ``policy_meta.json`` there instead; they are read too."""
    actor_path, meta_path = _trainer_actor(run_dir)
    for p in (actor_path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (train with `python -m training.locomotion.train` first)")
    metadata = expert_metadata(json.loads(meta_path.read_text()), str(meta_path))
    actor = torch.jit.load(str(actor_path), map_location="cpu").eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = list(export_policy(actor, metadata, out_dir / "policy.pt"))
    if onnx:
        written.append(export_policy_onnx(actor, metadata, out_dir / "policy.onnx")[0])
    return written


@dataclass
class ImportConfig:
    """Convert a walking run's actor into deploy files."""

    run_dir: Path = Path("runs/g1_walk")
    """Trainer run folder (its export/ holds actor.pt and actor_meta.json), or a folder holding the two."""
    out_dir: Path = Path("assets/g1_walk/deploy")
    """Where policy.pt, policy.json and policy.onnx go."""
    onnx: bool = True
    """Also write the ONNX twin (needs the onnx extra)."""


def main(cfg: ImportConfig) -> None:
    """CLI entry point."""
    for path in import_expert(cfg.run_dir, cfg.out_dir, cfg.onnx):
        print(path)


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-import-expert``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(ImportConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
