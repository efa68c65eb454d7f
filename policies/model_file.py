"""Model files: a trained network as a JSON file beside a safetensors file, the layout of every run's ``model/``.

A trainer's model payload is a tree of dicts and lists whose leaves are tensors and JSON values (its format tag,
its config as JSON-ready data, step counts, the data it learned from). :func:`save_model_file` writes it as two
files with one stem::

    model/planner_model.json          {"model_file": 1, "pair": "<id>",
                                       "payload": {..., "weights": {"w": {"$tensor": "weights/w"}}}}
    model/planner_model.safetensors   every tensor of the payload, named by its path in the tree

so that the config and the figures are readable with any text tool and the weights load without unpickling
anything (safetensors, as Hugging Face and lerobot publish models). :func:`load_model_file` rebuilds the same
payload. The safetensors file is written first and the JSON file last, each atomically; both carry the same random
``pair`` id, so a crash between the two writes, or two files of different saves copied side by side, is reported
instead of silently mixing weights and config.

Files written before this layout are single ``torch.save`` files (``planner_model.pt``, ``critic.pt``,
``policy.pt``, ``weights.pt``); their loaders still read them (:func:`model_file_pair` says which kind a path is).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

MODEL_FILE_VERSION = 1
"""``model_file`` of the JSON file: the layout of this module."""
TENSOR_KEY = "$tensor"
"""A JSON leaf ``{"$tensor": name}`` stands for the tensor ``name`` of the safetensors file."""
SUFFIXES = (".json", ".safetensors")


class ModelFileError(ValueError):
    """A model file pair that is missing a half, corrupt, or mixed from two saves; the message names the file."""


def model_file_pair(path: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """The ``(json, safetensors)`` paths that ``path`` names, or None when it names a single-file (``.pt``) model.

    ``path`` may be either half of the pair, or the stem with another suffix (``model/planner_model.pt``) when that
    file does not exist but the pair does: older commands and docs name the ``.pt`` file.
    """
    path = Path(path)
    stem = path.with_suffix("")
    pair = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if path.suffix in SUFFIXES:
        return pair
    if not path.exists() and (pair[0].exists() or pair[1].exists()):
        return pair
    return None


def model_exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names something to load: a single-file model, or a pair of which at least one half exists
    (a pair missing a half is then reported by :func:`load_model_file`)."""
    pair = model_file_pair(path)
    return Path(path).is_file() if pair is None else any(half.exists() for half in pair)


def _split(tree: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, torch.Tensor):
        tensors[path] = tree.detach().cpu().contiguous().clone()  # safetensors refuses views that share storage
        return {TENSOR_KEY: path}
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            if not isinstance(key, str):
                where = path or "payload"
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; model files need str keys")
            if "/" in key:
                raise TypeError(f"{path or 'payload'}: key {key!r} holds '/', which separates the tensor names")
            out[key] = _split(value, f"{path}/{key}" if path else key, tensors)
        return out
    if isinstance(tree, (list, tuple)):
        return [_split(value, f"{path}/{i}" if path else str(i), tensors) for i, value in enumerate(tree)]
    if tree is None or isinstance(tree, (str, bool, int, float)):
        return tree
    raise TypeError(f"{path or 'payload'}: {type(tree).__name__} is neither a tensor nor JSON data")


def _join(tree: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {TENSOR_KEY}:
            name = tree[TENSOR_KEY]
            if name not in tensors:
                raise ModelFileError(f"{where}: the JSON names tensor {name!r}, which the safetensors file lacks")
            return tensors[name]
        return {key: _join(value, tensors, where) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_join(value, tensors, where) for value in tree]
    return tree


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` on a temporary file beside ``path``, fsync, rename over ``path`` (readers see the old file or
    the new one, never half of one): :func:`robot.files.atomic_write`'s steps, here because ``policies`` stays free
    of ``robot`` imports (the layer contract)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # after the write: a writer may replace the file (safetensors does), mkstemp's is 0600
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def save_model_file(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``<stem>.safetensors`` then ``<stem>.json`` (module docstring); returns the JSON path.

    ``path`` names the pair by its stem (any suffix). Raises ``TypeError`` for a payload entry that is neither a
    tensor nor JSON data (a trainer's mistake, caught before anything is written).
    """
    stem = Path(path).with_suffix("")
    json_path, tensor_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(payload, "", tensors)
    pair = uuid.uuid4().hex
    _atomic(tensor_path, lambda tmp: save_file(tensors, tmp, metadata={"pair": pair}))
    text = json.dumps({"model_file": MODEL_FILE_VERSION, "pair": pair, "payload": tree}, indent=1) + "\n"
    _atomic(json_path, lambda tmp: Path(tmp).write_text(text))
    return json_path


def load_model_file(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, Any]:
    """The payload :func:`save_model_file` wrote, its tensors on ``device``; ``path`` names the pair as
    :func:`model_file_pair` reads it.

    Raises:
        FileNotFoundError: a half of the pair is missing.
        ModelFileError: a half is corrupt, or the two come from different saves.
    """
    pair = model_file_pair(path)
    if pair is None:
        raise ModelFileError(f"{path}: not a model file pair (expected .json beside .safetensors)")
    json_path, tensor_path = pair
    for half in pair:
        if not half.is_file():
            raise FileNotFoundError(f"{half}: missing (a model file is {json_path.name} with {tensor_path.name})")
    try:
        head = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{json_path}: not readable JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(head, dict) or head.get("model_file") != MODEL_FILE_VERSION or "payload" not in head:
        raise ModelFileError(f"{json_path}: not a Steer model file (expected 'model_file': {MODEL_FILE_VERSION})")
    try:
        with safe_open(tensor_path, framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, SafetensorError, ValueError) as exc:
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from exc
    if metadata.get("pair") != head.get("pair"):
        raise ModelFileError(
            f"{json_path}: its weights file {tensor_path.name} comes from another save (pair "
            f"{metadata.get('pair')!r} against {head.get('pair')!r}); save the model again"
        )
    payload = _join(head["payload"], tensors, str(json_path))
    if not isinstance(payload, dict):
        raise ModelFileError(f"{json_path}: expected a payload object, got {type(payload).__name__}")
    return payload


def read_model_payload(path: str | os.PathLike[str], what: str, hint: str) -> dict[str, Any]:
    """A model's payload from a model file pair or a single-file ``torch.save`` model of the earlier layout (read
    with ``weights_only=True``: plain data, never an object), with one clear error for a missing, unreadable or
    non-dict file. ``what`` names the kind of model in errors, ``hint`` says how to make one.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: unreadable, corrupt or mixed files (:class:`ModelFileError` for a pair).
    """
    path = Path(path)
    if not model_exists(path):
        raise FileNotFoundError(f"{path}: no {what} here ({hint})")
    if model_file_pair(path) is not None:
        return load_model_file(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)  # tensors and JSON-ready data only
    except Exception as exc:  # truncated, foreign or object-holding files raise several types
        raise ValueError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a readable {what} (expected a dict, got {type(data).__name__})")
    return data
