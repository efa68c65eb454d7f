"""Checkpoint files of every trainer: atomic writes, loads that never unpickle objects, one error type.

A checkpoint is one ``torch.save`` file of plain data: tensors, ``str``/``int``/``float``/``bool``/``None`` and
dicts, lists and tuples of them. It is read back with ``weights_only=True``, so loading a file never imports a
class or runs code; a file that holds a pickled object is refused with :class:`CheckpointError`. Numpy arrays are
the one exception the reader allows, because runs written before this rule hold them: they are data (the
unpickler still refuses any object inside them). New files carry numpy data as tensors
(:func:`arrays_to_tensors`, and :func:`tensors_to_arrays` on the way back).

Writes go through :func:`robot.files.atomic_write` (temporary file, fsync, rename), so readers see either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import collections
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies.model_file import ModelFileError, load_model_file, model_file_pair
from robot.cli import UserError
from robot.files import atomic_write, atomic_write_text

PLAIN_SCALARS = (str, int, float, bool, type(None), bytes, torch.dtype, torch.device)
"""Leaf types a checkpoint may hold besides tensors (all of them load with ``weights_only=True``)."""
_reconstruct = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct
LEGACY_NUMPY_GLOBALS = [
    np.ndarray,
    np.dtype,
    *(type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFD"),  # numeric dtypes; object arrays stay refused
    (_reconstruct, "numpy._core.multiarray._reconstruct"),  # the name numpy 2 pickles
    (_reconstruct, "numpy.core.multiarray._reconstruct"),  # the name numpy 1 pickled
]
"""What numpy arrays in older checkpoints need from the unpickler: array and dtype reconstruction, nothing else."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that is missing or cannot be used; the message names the file and what to do."""


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the first entry of ``obj`` that is not plain data (module docstring)."""
    if isinstance(obj, torch.Tensor) or type(obj) in PLAIN_SCALARS:
        return
    if type(obj) in (dict, collections.OrderedDict):
        for key, value in obj.items():
            if type(key) not in PLAIN_SCALARS:
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; expected str, int or float")
            check_plain(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple, torch.Size):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where}: {type(obj).__name__} is not plain data; store tensors, numbers, strings and containers of them "
        "(arrays_to_tensors for numpy arrays, to_jsonable for dataclasses and paths)"
    )


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, rename); returns the path.

    Raises:
        TypeError: ``obj`` holds something that is not plain data (a trainer's mistake, caught before writing).
    """
    check_plain(obj)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)

    return atomic_write(path, write)


def torch_load_plain(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: plain data and (older files) numpy arrays, never an object.

    Raises what ``torch.load`` raises for a truncated, corrupt or foreign file, ``pickle.UnpicklingError`` for one
    that holds a pickled object; :func:`load_checkpoint` turns them into a :class:`CheckpointError`.
    """
    with torch.serialization.safe_globals(LEGACY_NUMPY_GLOBALS):
        return torch.load(path, map_location=map_location, weights_only=True)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, or a model file pair written by
    :func:`policies.model_file.save_model_file` (``.json`` beside ``.safetensors``); clear errors for missing,
    corrupt or unsafe files."""
    path = Path(path)
    if model_file_pair(path) is not None:  # a model file pair (policies.model_file): JSON beside safetensors
        try:
            return load_model_file(path, map_location)
        except (FileNotFoundError, ModelFileError) as exc:
            raise CheckpointError(str(exc)) from exc
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        data = torch_load_plain(path, map_location)
    except Exception as exc:  # torch raises several types for truncated, foreign or object-holding files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(data).__name__}")
    return data


def one_line(error: BaseException) -> str:
    """``torch.load``'s error in one line: for a file that holds a pickled object, which object it is."""
    text = str(error)
    found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)|but got <class '([^']+)'>", text)
    if "Weights only load failed" in text:
        what = next((name for name in found.groups() if name), "object") if found else "object"
        return f"it holds a pickled {what}, and objects are never unpickled; save state dicts and plain data"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def arrays_to_tensors(tree: Any) -> Any:
    """``tree`` with every numpy array as a tensor of the same dtype and every numpy scalar as a Python number."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree).copy())
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {key: arrays_to_tensors(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(arrays_to_tensors(value) for value in tree)
    return tree


def tensors_to_arrays(tree: Any) -> Any:
    """Inverse of :func:`arrays_to_tensors` (numpy arrays, as older checkpoints hold them, pass through)."""
    if isinstance(tree, torch.Tensor):
        return tree.numpy().copy()
    if isinstance(tree, dict):
        return {key: tensors_to_arrays(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tensors_to_arrays(value) for value in tree)
    return tree


def truncate_log_rows(path: str | os.PathLike[str], last_step: int, fields: tuple[str, ...]) -> None:
    """On resume: keep the CSV log's header and its rows up to ``last_step`` (first column), dropping the rows a
    killed run wrote after its last checkpoint; a missing log is started with the ``fields`` header."""
    path = Path(path)
    if not path.exists():
        atomic_write_text(path, ",".join(fields) + "\n")
        return
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= last_step]
    atomic_write_text(path, "\n".join(kept) + "\n")
