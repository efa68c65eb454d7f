"""Keep a trained offline safe-RL policy without its training state: the file a demo or a user ships.

    python -m training.safe_rl.export --checkpoint runs/<run>/checkpoints/last.pt --out assets/safe_rl/<name>.pt

The policy file (:data:`training.safe_rl.checkpoint.POLICY_FORMAT`) holds the checkpoint's step, run config, data
description and the weights acting reads (all of the policy's for BC and BCQ-Lag; FISOR's EMA actor, observation
normaliser and target ``Q_h``, under ``acting_parts``: 7 of its 16 MB), and none of its optimiser, RNG or best-score
state: such a file can act and be evaluated, not trained on. ``python -m training.safe_rl.evaluate --checkpoint
FILE`` and :func:`training.safe_rl.evaluate.load_algorithm` read it like a checkpoint. The weights are checked
against the stored config before anything is written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro

from robot.cli import run_cli
from training.safe_rl.checkpoint import load_checkpoint, policy_from_checkpoint, save_policy
from training.safe_rl.evaluate import algorithm_from_payload, load_algorithm


@dataclass
class ExportConfig:
    """Write the policy of a safe-RL checkpoint to a weights-only policy file."""

    checkpoint: Path
    """checkpoint of ``training.safe_rl.train`` (``runs/<run>/checkpoints/last.pt`` or ``best.pt``)"""
    out: Path
    """policy file to write (atomic; its folder is created)"""


def export_policy(checkpoint: Path, out: Path) -> Path:
    """Write ``checkpoint``'s policy to ``out``; the written file is loaded back once to check it."""
    if Path(out).resolve() == Path(checkpoint).resolve():
        raise ValueError(f"--out {out}: the same file as --checkpoint; choose another path")
    payload = load_checkpoint(checkpoint)  # a training checkpoint: a policy file has nothing left to strip
    algorithm = algorithm_from_payload(payload, checkpoint)  # the weights fit the config: refuse before writing
    path = save_policy(out, policy_from_checkpoint(payload, algorithm.acting_parts))
    algorithm, payload = load_algorithm(path)
    print(f"{algorithm.name} at step {payload['step']} ({payload['data']['task']}): wrote {path}")
    return path


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-export-safe-rl``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""

    def run(argv: Sequence[str] | None, prog: str | None) -> None:
        cfg = tyro.cli(ExportConfig, args=argv, prog=prog)
        export_policy(cfg.checkpoint, cfg.out)

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(cli())
