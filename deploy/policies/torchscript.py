"""The TorchScript backend: ``policy.pt`` (metadata embedded as the extra file ``metadata.json``) and its ``.json``.

torch is imported when a file is loaded or run, so importing this module costs nothing on an ONNX-only robot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deploy.policies.base import NetworkPolicy
from deploy.policies.metadata import (
    EMBEDDED_METADATA,
    PolicyMetadata,
    check_embedded_metadata,
    read_metadata_file,
)

if TYPE_CHECKING:
    import torch


class TorchScriptPolicy(NetworkPolicy):
    """An exported policy run by TorchScript (``module``: the scripted network, on the CPU, in eval mode)."""

    def __init__(self, module: torch.jit.ScriptModule, metadata: PolicyMetadata, path: Path | None = None) -> None:
        super().__init__(metadata, path)
        self.module = module

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network on a batch ``(B, O)`` float32 -> ``(B, J)`` (no clipping)."""
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(obs)).numpy()


def load_torchscript_policy(path: str | Path) -> TorchScriptPolicy:
    """Load ``policy.pt`` and its ``.json``; refuses a missing file, a foreign format or a mismatched pair."""
    path = Path(path)
    metadata, data = read_metadata_file(path)
    import torch

    extra = {EMBEDDED_METADATA: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    check_embedded_metadata(extra[EMBEDDED_METADATA], data, path)
    module.eval()
    return TorchScriptPolicy(module, metadata, path)
