"""Export a planner to one TorchScript file plus a JSON metadata file, and load it back.

The exported module holds normalisation, the guided sampling loop, the latent decoder and un-normalisation,
so the deploy runtime needs only ``torch.jit.load`` (no Steer import). TorchScript is used rather than
``torch.export`` because the guided loop calls ``torch.autograd.grad`` inside, which ``torch.export`` cannot
capture (checked with torch 2.13); a parity test keeps eager and exported outputs equal.

Call signature of the exported module (see ``DiffusionPlanner.forward``)::

    plan, tokens = module(obs_history (B, Hh, S), action_history (B, Hh, A),
                          cost_params (B, P) or None, noise (B, H, D) or None, prev_tokens (B, H, D) or None)

Call it with autograd enabled (not under ``torch.no_grad``) when guidance is on: the guidance gradient is
taken inside. Parameters are exported with ``requires_grad=False``, so no graph is kept over the weights.
"""

import copy
import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from envs.planner.onnx import PLANNER_FORMAT
from policies.diffusion.planner import DiffusionPlanner
from robot.files import atomic_write, git_revision, read_metadata_beside

METADATA_VERSION = 1


def planner_metadata(planner: DiffusionPlanner) -> dict[str, Any]:
    """Everything a runtime must know to feed and trust the exported planner."""
    cfg = planner.config
    diffusion = planner.diffusion
    return {
        "format": PLANNER_FORMAT,
        "metadata_version": METADATA_VERSION,
        "state_dim": cfg.state_dim,
        "action_dim": cfg.action_dim,
        "latent_dim": cfg.latent_dim,
        "token_dim": cfg.token_dim,
        "history": cfg.history,
        "horizon": cfg.horizon,
        "execute_steps": cfg.execute_steps,
        "rolling_start": cfg.rolling_start,
        "action_head_states": cfg.action_head_states,
        "denoiser": cfg.denoiser.kind,
        "schedule": asdict(cfg.diffusion.schedule),
        "prediction_type": cfg.diffusion.prediction_type,
        "sampler": asdict(diffusion.sampler_config),
        "sampler_steps": [int(t) for t in diffusion.steps.tolist()],
        "guidance": asdict(diffusion.guidance_config),
        "cost_param_dim": int(diffusion.costs.param_dim),
        "cost_terms": diffusion.costs.param_layout(),
        "inputs": {
            "obs_history": ["B", cfg.history, cfg.state_dim],
            "action_history": ["B", cfg.history, cfg.action_dim],
            "cost_params": ["B", int(diffusion.costs.param_dim)],
            "noise": ["B", cfg.window, cfg.token_dim],
            "prev_tokens": ["B", cfg.window, cfg.token_dim],
        },
        "outputs": {
            "plan": ["B", cfg.horizon, cfg.state_dim + cfg.action_dim],
            "tokens": ["B", cfg.window, cfg.token_dim],
        },
        "parameters": sum(p.numel() for p in planner.parameters()),
        "torch_version": torch.__version__,
        "git_revision": git_revision(),
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def export_planner(
    planner: DiffusionPlanner, path: str | Path, extra_metadata: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Script ``planner`` to ``path`` (``.pt``) and write ``path`` with suffix ``.json`` beside it.

    ``extra_metadata`` (robot joint order, gains, control period, ...) is merged into the JSON under
    ``"extra"``. Returns the two paths. Both writes are atomic.
    """
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"export path: expected a file name ending in .pt, got {path}")
    frozen = copy.deepcopy(planner).eval()
    frozen.reset()
    for p in frozen.parameters():
        p.requires_grad_(False)
    # Frozen: parameters and attributes become constants and the graph is folded (10-25 % off a G1 plan on one
    # core); only forward stays callable.
    scripted = torch.jit.freeze(torch.jit.script(frozen))
    metadata = planner_metadata(planner)
    metadata["extra"] = extra_metadata or {}
    meta_path = path.with_suffix(".json")
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp))
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(metadata, indent=2) + "\n"))
    return path, meta_path


def load_exported(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load an exported planner and its metadata, with a clear error when either file is missing or foreign."""
    metadata = read_metadata_beside(path, PLANNER_FORMAT)
    return torch.jit.load(str(path), map_location="cpu").eval(), metadata
