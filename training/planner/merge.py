"""Merge planner datasets: ``python -m training.planner.merge A.h5 B.h5 --out C.h5``.

Concatenates the episodes of collections of the same robot, control period and episode length (for instance a
domain-randomized collection and one that covers the heavy end of its mass range more densely) into one file that
``training.planner.train`` and ``training.planner.action_head`` read like any other. The inputs are checked as the
trainer checks them; the output is written atomically with the inputs' metadata under ``collection.merged_from``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from envs.planner.dataset import merge_planner_datasets, write_planner_dataset
from robot.cli import run_cli


@dataclass
class MergeConfig:
    """Merge of planner datasets."""

    inputs: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Planner datasets (``training.planner.collect``), in the order their episodes are stored."""
    out: Path = Path("data/planner/g1_walk_merged.h5")
    """Output HDF5 file (a ``.schema.json`` is written beside it)."""
    mass_scale_ranges: tuple[float, ...] | None = None
    """``LOW HIGH`` per input (randomized collections): keep only each input's episodes whose whole-robot mass
    scale lies in ``[LOW, HIGH)``, e.g. ``0 1.1 1.1 9`` for one expert's data below 1.1 and another's above."""


def main(cfg: MergeConfig) -> None:
    """CLI entry point."""
    if cfg.out.resolve() in {Path(p).resolve() for p in cfg.inputs}:
        raise ValueError(f"--out {cfg.out} is one of the inputs; write the merge to a new file")
    ranges = None
    if cfg.mass_scale_ranges is not None:
        r = cfg.mass_scale_ranges
        if len(r) != 2 * len(cfg.inputs):
            raise ValueError(f"--mass-scale-ranges: expected LOW HIGH for each of the {len(cfg.inputs)} inputs")
        ranges = [(r[2 * i], r[2 * i + 1]) for i in range(len(cfg.inputs))]
    data = merge_planner_datasets(list(cfg.inputs), ranges)
    path = write_planner_dataset(cfg.out, data)
    counts = ", ".join(f"{m['episodes']} from {m['path']}" for m in data.collection["merged_from"])
    print(f"{path}: {data.num_episodes} episodes x {data.episode_steps} steps ({counts})")


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``python -m training.planner.merge``: a user's mistake is one line and exit code 2."""
    return run_cli(lambda argv, prog: main(tyro.cli(MergeConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
