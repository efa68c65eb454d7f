"""ONNX export of feed-forward policies and their ONNX Runtime loader (the second deploy backend).

``export_policy_onnx(policy, metadata, "policy.onnx")`` writes the network (input ``obs`` (B, O) float32,
output ``action`` (B, J), dynamic batch) with the metadata JSON embedded in the model's ``metadata_props`` and the
same ``policy.json`` beside it as the TorchScript export. :func:`deploy.policy_io.load_policy` opens either file;
the loaded :class:`OnnxPolicy` has the same ``act`` as the TorchScript one, so the control loop cannot tell them
apart. Guided planners export as several forward-only graphs with numpy host code instead
(:mod:`deploy.export_planner_onnx`); :func:`load_onnx_policy` recognises them by their embedded metadata.
Loading needs only numpy and ``onnxruntime`` (the metadata is read through ONNX Runtime): no torch, no ``onnx``.

The exporter is torch's TorchScript-based one (``dynamo=False``): it also converts already scripted modules, such
as the actor the walking trainer writes, which ``torch.export`` cannot take. Parity with the TorchScript file is
checked by the tests and by ``benchmarks/policy_backends.py``. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

from deploy.policy_io import (
    EMBEDDED_METADATA,
    ExportedPolicy,
    PolicyMetadata,
    check_embedded_metadata,
    checked_eval_copy,
    read_metadata_file,
)
from robot.files import atomic_write, atomic_write_text

ONNX_OPSET = 17
PLANNER_KEY = "steer.planner"
"""Embedded-metadata key of an ONNX planner (:mod:`deploy.export_planner_onnx`)."""
INPUT_NAME, OUTPUT_NAME = "obs", "action"


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"ONNX export/loading needs the onnx extra: pip install -e '.[onnx]' ({exc})") from exc


def export_policy_onnx(policy: nn.Module, metadata: PolicyMetadata, path: str | Path) -> tuple[Path, Path]:
    """Write ``policy`` (``(B, O) -> (B, J)``, eager or scripted) as ONNX plus ``.json`` beside it (both atomic)."""
    onnx = _require("onnx")
    import torch

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"export path: expected a file name ending in .onnx, got {path}")
    frozen = checked_eval_copy(policy, metadata)
    text = metadata.to_json()

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message="no signature found")  # scripted input: the example sets shapes
            torch.onnx.export(
                frozen,
                (torch.zeros(1, metadata.obs_dim),),
                str(tmp),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
        model = onnx.load(str(tmp))
        entry = model.metadata_props.add()
        entry.key, entry.value = EMBEDDED_METADATA, text
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))

    atomic_write(path, write)
    meta_path = atomic_write_text(path.with_suffix(".json"), text)
    return path, meta_path


class OnnxPolicy(ExportedPolicy):
    """An exported policy run by ONNX Runtime (one intra-op thread: a 50 Hz MLP does not gain from more)."""

    def __init__(self, session: Any, metadata: PolicyMetadata, path: Path | None = None) -> None:
        super().__init__(module=None, metadata=metadata, path=path)  # type: ignore[arg-type]
        self.session = session

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network on a batch ``(B, O)`` float32 -> ``(B, J)`` (no clipping)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: obs})[0]


def load_onnx_policy(path: str | Path, intra_op_threads: int = 1) -> ExportedPolicy:
    """Load ``policy.onnx`` and ``policy.json``; refuses a missing file, a foreign format or a mismatched pair.
    An ONNX planner (``deploy.export_planner --onnx``) is handed to :func:`deploy.planner_policy.load_planner_policy`.
    """
    ort = _require("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported policy: expected {path} to exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    if PLANNER_KEY in props:
        from deploy.planner_policy import load_planner_policy

        return load_planner_policy(path)
    metadata, data = read_metadata_file(path)
    check_embedded_metadata(props.get(EMBEDDED_METADATA), data, path)
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [INPUT_NAME] or inputs[0].shape[-1] != metadata.obs_dim:
        raise ValueError(
            f"{path}: expected one input {INPUT_NAME!r} of width {metadata.obs_dim}, "
            f"got {[(i.name, i.shape) for i in inputs]}"
        )
    return OnnxPolicy(session, metadata, path)
