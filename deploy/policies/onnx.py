"""The ONNX Runtime backend: ``policy.onnx`` (metadata embedded in ``metadata_props``) and its ``.json``.

The network's input is ``obs`` ``(B, O)`` float32 and its output ``action`` ``(B, J)``, with a dynamic batch
(:func:`deploy.policies.export.export_policy_onnx` writes it). :class:`OnnxPolicy` has the same ``act`` as the
TorchScript one, so the control loop cannot tell them apart. Loading needs only numpy and ``onnxruntime`` (the
metadata is read through ONNX Runtime): no torch, no ``onnx``. An ONNX planner's main file carries its own
metadata key instead (:func:`onnx_file_format` tells them apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.policies.base import NetworkPolicy
from deploy.policies.metadata import (
    EMBEDDED_METADATA,
    PLANNER_FORMAT,
    POLICY_FORMAT,
    PolicyMetadata,
    check_embedded_metadata,
    read_metadata_file,
)
from envs.planner.onnx import EMBEDDED_KEY as PLANNER_KEY

INPUT_NAME, OUTPUT_NAME = "obs", "action"


def require_onnx_extra(module: str) -> Any:
    """Import ``module`` (``onnx`` or ``onnxruntime``) or say which extra installs it."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"ONNX export/loading needs the onnx extra: pip install -e '.[onnx]' ({exc})") from exc


def open_session(path: Path, intra_op_threads: int = 1) -> Any:
    """An ONNX Runtime CPU session on ``path`` (one inter-op thread); refuses a missing file."""
    ort = require_onnx_extra("onnxruntime")
    if not path.is_file():
        raise FileNotFoundError(f"exported policy: expected {path} to exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])


def onnx_file_format(path: str | Path) -> str:
    """``steer.planner`` for an ONNX planner's main file (``deploy.export_planner --onnx``), else ``steer.policy``."""
    props = open_session(Path(path)).get_modelmeta().custom_metadata_map
    return PLANNER_FORMAT if PLANNER_KEY in props else POLICY_FORMAT


class OnnxPolicy(NetworkPolicy):
    """An exported policy run by ONNX Runtime (one intra-op thread: a 50 Hz MLP does not gain from more)."""

    def __init__(self, session: Any, metadata: PolicyMetadata, path: Path | None = None) -> None:
        super().__init__(metadata, path)
        self.session = session

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network on a batch ``(B, O)`` float32 -> ``(B, J)`` (no clipping)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]


def load_onnx_policy(path: str | Path, intra_op_threads: int = 1) -> OnnxPolicy:
    """Load ``policy.onnx`` and ``policy.json``; refuses a missing file, a foreign format or a mismatched pair."""
    path = Path(path)
    session = open_session(path, intra_op_threads)
    props = session.get_modelmeta().custom_metadata_map
    if PLANNER_KEY in props:
        raise ValueError(
            f"{path} is an exported planner, not a feed-forward policy: open it with deploy.policies.load_policy"
        )
    metadata, data = read_metadata_file(path)
    check_embedded_metadata(props.get(EMBEDDED_METADATA), data, path)
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [INPUT_NAME] or inputs[0].shape[-1] != metadata.obs_dim:
        raise ValueError(
            f"{path}: expected one input {INPUT_NAME!r} of width {metadata.obs_dim}, "
            f"got {[(i.name, i.shape) for i in inputs]}"
        )
    return OnnxPolicy(session, metadata, path)
