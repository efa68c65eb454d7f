"""Export a feed-forward policy (observation -> action network) with its metadata, as TorchScript or ONNX.

``export_policy(net, metadata, "policy.pt")`` scripts the network and embeds the metadata JSON as the extra file
``metadata.json``; ``export_policy_onnx(net, metadata, "policy.onnx")`` writes input ``obs`` (B, O) float32,
output ``action`` (B, J), dynamic batch, with the metadata in the model's ``metadata_props``. Both write the same
``policy.json`` beside the network, check it on a zero observation first, and write atomically.

The ONNX exporter is torch's TorchScript-based one (``dynamo=False``): it also converts already scripted modules,
such as the actor the walking trainer writes, which ``torch.export`` cannot take. Parity with the TorchScript
file is checked by the tests and by ``benchmarks/policy_backends.py``. ONNX needs the ``onnx`` extra. torch is
imported when a network is built or exported.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.policies.metadata import EMBEDDED_METADATA, PolicyMetadata
from deploy.policies.onnx import INPUT_NAME, OUTPUT_NAME, require_onnx_extra
from robot.files import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from torch import nn

ONNX_OPSET = 17


def build_mlp_policy(
    obs_dim: int, action_dim: int, hidden: Sequence[int] = (64, 64), seed: int = 0, zero_output: bool = False
) -> nn.Module:
    """A plain ELU MLP ``(B, obs_dim) -> (B, action_dim)`` (the shape of a PPO actor mean).

    ``zero_output`` zeroes the last layer: the policy then always asks for the default pose (tests, demos).
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    width = obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ELU()]
        width = h
    layers.append(nn.Linear(width, action_dim))
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(max(p.shape[-1], 1))))
        if zero_output:
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    return net


def checked_eval_copy(policy: nn.Module, metadata: PolicyMetadata) -> nn.Module:
    """An eval-mode copy of ``policy`` after checking its output on a zero observation (shape, finiteness)."""
    import torch

    frozen = policy if isinstance(policy, torch.jit.ScriptModule) else copy.deepcopy(policy)
    frozen.eval()
    with torch.no_grad():
        out = frozen(torch.zeros(1, metadata.obs_dim))
    if tuple(out.shape) != (1, metadata.num_joints):
        raise ValueError(
            f"policy output: expected shape (1, {metadata.num_joints}) for an input (1, {metadata.obs_dim}), "
            f"got {tuple(out.shape)}"
        )
    if not torch.isfinite(out).all():
        raise ValueError("policy output: non-finite action on a zero observation; refusing to export")
    return frozen


def export_policy(policy: nn.Module, metadata: PolicyMetadata, path: str | Path) -> tuple[Path, Path]:
    """Script ``policy`` (``(B, obs_dim) -> (B, J)``) to ``path`` (``.pt``) and write the ``.json`` beside it.

    The network is checked on a zero observation first (output shape and finiteness). Both writes are atomic.
    """
    import torch

    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"export path: expected a file name ending in .pt, got {path}")
    frozen = checked_eval_copy(policy, metadata)
    try:
        scripted = torch.jit.script(frozen)
    except Exception:  # modules with Python-only features still trace as a fixed graph
        scripted = torch.jit.trace(frozen, torch.zeros(1, metadata.obs_dim))
    text = metadata.to_json()
    meta_path = path.with_suffix(".json")
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files={EMBEDDED_METADATA: text}))
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(text))
    return path, meta_path


def export_policy_onnx(policy: nn.Module, metadata: PolicyMetadata, path: str | Path) -> tuple[Path, Path]:
    """Write ``policy`` (``(B, O) -> (B, J)``, eager or scripted) as ONNX plus ``.json`` beside it (both atomic)."""
    onnx = require_onnx_extra("onnx")
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
