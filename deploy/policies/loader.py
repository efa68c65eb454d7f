"""Open any exported policy file as a :class:`~deploy.policies.base.RuntimePolicy`: one table, (backend, format) ->
loader.

The backend is the file's suffix (``.onnx``: ONNX Runtime; anything else: TorchScript); the format is the tag in
the ``.json`` beside a TorchScript file or the metadata key embedded in an ONNX file: ``steer.policy`` (a
feed-forward network) or ``steer.planner`` (a guided planner, ``python -m deploy.export_planner``). The planner's
module (its state estimator, and torch's planner runtime) is imported only when a planner is opened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from deploy.policies.base import RuntimePolicy
from deploy.policies.metadata import PLANNER_FORMAT, POLICY_FORMAT
from deploy.policies.onnx import load_onnx_policy, onnx_file_format
from deploy.policies.torchscript import load_torchscript_policy

Loader = Callable[[Path], RuntimePolicy]


def _load_planner(path: Path) -> RuntimePolicy:
    from deploy.policies.planner import load_planner_policy

    return load_planner_policy(path)


def _torchscript_file_format(path: Path) -> str | None:
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return POLICY_FORMAT  # its loader names the missing file
    return json.loads(meta_path.read_text()).get("format")


def _backend(path: Path) -> str:
    return "onnx" if path.suffix == ".onnx" else "torchscript"


FORMAT_READERS: dict[str, Callable[[Path], str | None]] = {
    "torchscript": _torchscript_file_format,
    "onnx": onnx_file_format,
}
"""Backend -> the function that reads a file's format tag."""
LOADERS: dict[tuple[str, str], Loader] = {
    ("torchscript", POLICY_FORMAT): load_torchscript_policy,
    ("torchscript", PLANNER_FORMAT): _load_planner,
    ("onnx", POLICY_FORMAT): load_onnx_policy,
    ("onnx", PLANNER_FORMAT): _load_planner,
}
"""(backend, format) -> the loader that opens such a file."""


def load_policy(path: str | Path) -> RuntimePolicy:
    """Load ``policy.pt`` / ``policy.onnx`` (with its ``.json``) or an exported planner (``.pt`` or ``.onnx``);
    refuses a missing file, a foreign format or a mismatched pair."""
    path = Path(path)
    backend = _backend(path)
    file_format = FORMAT_READERS[backend](path)
    loader = LOADERS.get((backend, file_format)) if file_format is not None else None
    if loader is None:
        expected = " or ".join(repr(f) for b, f in LOADERS if b == backend)
        raise ValueError(f"{path.with_suffix('.json')}: expected format {expected}, got {file_format!r}")
    return loader(path)
