"""Atomic checkpoint files: a crash mid-write never leaves a half-written checkpoint behind.

Writes go through :func:`robot.files.atomic_write` (temporary file, fsync, rename), so readers see either the
old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from robot.cli import UserError
from robot.files import atomic_write


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that is missing or cannot be read; the message names the file."""


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, rename); returns the path."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(data).__name__}")
    return data


def truncate_log_rows(path: str | os.PathLike[str], last_step: int, fields: tuple[str, ...]) -> None:
    """On resume: keep the CSV log's header and its rows up to ``last_step`` (first column), dropping the rows a
    killed run wrote after its last checkpoint; a missing log is started with the ``fields`` header."""
    path = Path(path)
    if not path.exists():
        path.write_text(",".join(fields) + "\n")
        return
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= last_step]
    path.write_text("\n".join(kept) + "\n")
