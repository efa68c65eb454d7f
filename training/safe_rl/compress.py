"""Rewrite a DSRL dataset gzip-compressed, in place, and update the summary JSON beside it.

    python -m training.safe_rl.compress data/safe_rl/CarCircle-v0-100-1450.hdf5

For datasets built before ``training.safe_rl.collect`` compressed by default: the arrays are read, written again with
:data:`envs.safe_rl.dsrl_data.COMPRESSION` (still DSRL's layout; h5py and dsrl read it transparently) and their
sha256 is checked against the original's before the new file replaces the old one (atomically, root attributes
kept). The summary JSON (``<file>.json``, as the collector writes it) gets the new file's ``sha256``, the arrays'
``arrays_sha256`` (unchanged by compression) and the ``compression``; its other entries are kept.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import tyro

from envs.safe_rl.dsrl_data import COMPRESSION, DSRLDataError, arrays_sha256, read_dsrl, write_dsrl
from robot.cli import run_cli
from robot.files import atomic_write_text


@dataclass(frozen=True)
class CompressConfig:
    """Compress a DSRL dataset in place (see the module docstring)."""

    path: tyro.conf.Positional[Path]
    """the dataset (``<Task>-v0-<MaxCost>-<N>.hdf5``); its summary JSON, if present, is updated"""


def compress_dataset(path: Path) -> dict[str, str]:
    """Compress ``path`` in place; returns its new ``sha256``, ``arrays_sha256`` and ``compression``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset")
    data = read_dsrl(path)
    before = arrays_sha256(data)
    with h5py.File(path, "r") as handle:
        attrs = {name: handle.attrs[name] for name in handle.attrs}
    write_dsrl(path, data, overwrite=True, attrs=attrs, compress=True)
    after = arrays_sha256(read_dsrl(path))
    if after != before:  # h5py's gzip is lossless; this guards the file system, not the codec
        raise DSRLDataError(f"{path}: the compressed arrays differ from the original ({after} != {before})")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = {"sha256": digest, "arrays_sha256": after, "compression": COMPRESSION}
    summary_path = path.with_suffix(".json")
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        atomic_write_text(summary_path, json.dumps(summary | entry, indent=1) + "\n")
    return entry


def main(cfg: CompressConfig) -> dict[str, str]:
    """Compress and report the sizes."""
    size = cfg.path.stat().st_size if cfg.path.is_file() else 0
    entry = compress_dataset(cfg.path)
    now = cfg.path.stat().st_size
    print(f"{cfg.path}: {size / 1e6:.1f} MB -> {now / 1e6:.1f} MB ({COMPRESSION}), arrays unchanged")
    return entry


def cli(args: Sequence[str] | None = None) -> int:
    """Command line: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(
        lambda argv, prog: main(tyro.cli(CompressConfig, args=argv, prog=prog)), args, errors=(DSRLDataError,)
    )


if __name__ == "__main__":
    sys.exit(cli())
