"""Checkpoints of offline safe-RL runs: atomic writes, every RNG state, clear errors, the "best" rule.

A checkpoint is one ``torch.save`` file of plain containers, written and read by :mod:`training.checkpoint` (no
pickled objects; read back with ``weights_only=True``)::

    format      "steer.safe_rl.checkpoint.v1"
    step        int, gradient steps done
    config      the run's options (config.json's content)
    algorithm   {"policy": state dict (targets and EMA included), "optimizers": {name: state dict}}
    rng         {"python", "numpy", "torch", "cuda", "sampler"}: every generator the training loop draws from
    best        {"step", "normalized_reward", "normalized_cost"} of the best evaluation so far, or None
    data        {"fingerprint", "num_transitions", "obs_dim", "act_dim", "task", "source"}

Writes go to a temporary file in the destination folder, are fsynced, then renamed over the destination
(``os.replace`` is atomic on POSIX), so a crash leaves either the old file or the new one, never half of one.
"""

import contextlib
import pickle
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from policies.model_file import (
    SUFFIXES,
    ModelFileError,
    load_model_file,
    model_exists,
    model_file_pair,
    save_model_file,
)
from training.checkpoint import CheckpointError as CheckpointError  # re-exported: callers import it from here
from training.checkpoint import one_line, torch_load_plain
from training.checkpoint import save_checkpoint as torch_save_atomic

CHECKPOINT_FORMAT = "steer.safe_rl.checkpoint.v1"
CHECKPOINT_KEYS = ("format", "step", "config", "algorithm", "rng", "best", "data")
POLICY_FORMAT = "steer.safe_rl.policy.v1"
"""A trained policy alone: a checkpoint's ``step``, ``config``, ``data`` and the policy's state dict (targets and EMA
included, since FISOR acts with its EMA actor and ranks candidates with its critics), without optimiser or RNG
states: a quarter of the size, what a committed demo policy needs."""
POLICY_KEYS = ("format", "step", "config", "policy", "data")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (module docstring); ``payload`` must carry every key of the format."""
    missing = [key for key in CHECKPOINT_KEYS if key not in payload]
    assert not missing, f"checkpoint payload lacks {missing}"  # built by the trainer, never by users
    return torch_save_atomic(payload, Path(path))


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, not a Steer safe-RL checkpoint, or lacks a part.
    """
    return _load(path, map_location, {CHECKPOINT_FORMAT: CHECKPOINT_KEYS})


def load_policy_or_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a policy file (:data:`POLICY_FORMAT`) or a full checkpoint; check it as :func:`load_checkpoint` does."""
    return _load(path, map_location, {CHECKPOINT_FORMAT: CHECKPOINT_KEYS, POLICY_FORMAT: POLICY_KEYS})


def policy_from_checkpoint(payload: dict[str, Any], parts: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """The :data:`POLICY_FORMAT` content of a loaded checkpoint (no optimiser, RNG or best-score state); with
    ``parts``, only those submodules of the policy (what acting needs), listed under ``acting_parts``."""
    weights = payload["algorithm"]["policy"]
    if parts is not None:
        weights = {k: v for k, v in weights.items() if k.split(".", 1)[0] in parts}
    out = {
        "format": POLICY_FORMAT,
        "step": payload["step"],
        "config": payload["config"],
        "policy": weights,
        "data": payload["data"],
    }
    if parts is not None:
        out["acting_parts"] = list(parts)
    return out


def save_policy(path: Path, payload: dict[str, Any]) -> Path:
    """Write a policy file atomically; ``payload`` from :func:`policy_from_checkpoint`. A ``.json`` or
    ``.safetensors`` path writes a model file pair (:mod:`policies.model_file`; what a run's ``model/`` holds),
    any other path one ``torch.save`` file. Returns the path written (the JSON half of a pair)."""
    missing = [key for key in POLICY_KEYS if key not in payload]
    assert not missing and payload["format"] == POLICY_FORMAT, f"policy payload lacks {missing}"
    if Path(path).suffix in SUFFIXES:
        return save_model_file(path, payload)
    return torch_save_atomic(payload, Path(path))


def _load(path: Path, map_location: str, formats: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    path = Path(path)
    if not model_exists(path):
        raise FileNotFoundError(f"{path}: no checkpoint there (expected a file written by training.safe_rl.train)")
    try:
        if model_file_pair(path) is not None:
            payload: Any = load_model_file(path, map_location)
        else:
            payload = torch_load_plain(path, map_location)
    except ModelFileError as error:
        raise CheckpointError(f"{error}; use another policy or checkpoint file") from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}: {one_line(error)}); the file is truncated or "
            "corrupt: use another checkpoint (best.pt or last.pt) or start the run again"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        what = "a checkpoint" if len(formats) == 1 else "a policy or checkpoint"
        expected = " or ".join(repr(f) for f in formats)
        raise CheckpointError(f"{path}: expected {what} of format {expected}, got {found!r}")
    keys = formats[payload["format"]]
    missing = [key for key in keys if key not in payload]
    if missing:
        what = "checkpoint" if payload["format"] == CHECKPOINT_FORMAT else "policy file"
        raise CheckpointError(f"{path}: {what} lacks {missing}; expected keys {list(keys)}")
    return payload


# --------------------------------------------------------------------------------------------------- RNG state
def capture_rng(sampler: Optional[torch.Generator] = None) -> dict[str, Any]:
    """Every global RNG state (python, numpy, torch CPU and CUDA) and the batch sampler's generator."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "sampler": sampler.get_state() if sampler is not None else None,
    }


def restore_rng(state: dict[str, Any], sampler: Optional[torch.Generator] = None) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if sampler is not None:
        if state["sampler"] is None:
            raise CheckpointError("checkpoint: expected the batch sampler's generator state, found none")
        sampler.set_state(state["sampler"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (an evaluation) without moving any global RNG the training loop draws from."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


# ---------------------------------------------------------------------------------------------- best selection
@dataclass(frozen=True)
class EvalScore:
    """The score of one evaluation, as the best-checkpoint rule sees it."""

    step: int
    """gradient steps done when it was evaluated"""
    normalized_reward: float
    """mean normalized reward over the evaluation's episodes"""
    normalized_cost: float
    """mean normalized cost (C / limit) over the evaluation's episodes"""


def is_better(candidate: EvalScore, best: Optional[EvalScore]) -> bool:
    """OSRL's rule: lower normalized cost wins; at equal cost, higher normalized reward; the first of equals stays."""
    if best is None:
        return True
    if candidate.normalized_cost != best.normalized_cost:
        return candidate.normalized_cost < best.normalized_cost
    return candidate.normalized_reward > best.normalized_reward
