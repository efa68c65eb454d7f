"""Atomic file writes for every package (the lowest layer, so exports, checkpoints, datasets and reports share it).

:func:`atomic_write` hands a temporary path beside the target to a writer, flushes it to disk and renames it
over the target (``os.replace`` is atomic on POSIX): a crash leaves either the old file or the complete new one,
never half of one, and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it, rename it over ``path``; returns it.

    The new file is readable by everyone (0644; ``mkstemp`` would leave it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # after the write: a writer may replace the file, and mkstemp's is private (0600)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # make the rename itself durable where the file system allows it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_metadata_beside(path: str | os.PathLike[str], expected_format: str) -> dict:
    """The ``.json`` metadata written beside an exported file ``path`` (e.g. ``planner.pt`` + ``planner.json``),
    after checking that both files exist and that its ``format`` tag is ``expected_format``."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"exported file: expected {p} to exist (the export writes both files together)")
    data = json.loads(meta_path.read_text())
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{meta_path}: expected format {expected_format!r}, got {found!r}")
    return data


def git_revision() -> str:
    """The repository's ``HEAD`` commit, ``-dirty`` appended when tracked files changed; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")
