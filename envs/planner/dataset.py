"""Planner training data: expert rollouts of the G1 as fixed-length episodes in one HDF5 file, and its reader.

Layout (format ``steer.planner_dataset``, version 1). E episodes of T steps, J = 29 joints, S = planner state
(:mod:`envs.planner.state`). Step ``t`` holds the state *before* ``action[t]`` is applied; ``state[t + 1]`` is
where it led. Everything is float32 except ``mirrored``.

==================  ==========  ======================================================================
key                 shape       meaning
==================  ==========  ======================================================================
``state``           (E, T, S)   planner state (yaw-normalised bodies and root; names in the attributes)
``root_pos``        (E, T, 3)   pelvis position in the world (m)
``root_quat``       (E, T, 4)   pelvis orientation, world-from-body quaternion (w, x, y, z)
``joint_pos``       (E, T, J)   joint angles (rad), SDK motor order
``joint_vel``       (E, T, J)   joint velocities (rad/s)
``action``          (E, T, J)   action sent to the robot (expert action + exploration noise)
``expert_action``   (E, T, J)   the expert's own (noise-free) action at that state
``command``         (E, T, 3)   velocity command (vx m/s, vy m/s, yaw rate rad/s), heading frame
``phase``           (E, T)      gait phase of the left foot in [0, 1) (the right foot's is +0.5)
``mirrored``        (E,)        bool: episode is the left-right mirror image of a recorded one
``fell_at``         (E,)        optional, int32: the step whose action led to a fall (T: the episode stood);
                                later steps repeat the last state before the fall. Only in collections that
                                keep falls (for a feasibility critic); the planner's loaders refuse them
==================  ==========  ======================================================================

File attributes: ``format``, ``version``, ``ctrl_dt_s``, ``joint_names``, ``tracked_bodies`` and
``state_names`` (JSON lists), ``collection`` (JSON: how the data was made) and ``schema`` (this table as JSON,
also written beside the file as ``<name>.schema.json``). Actions are joint position offsets:
``q* = q_default + action_scale * action``.

:func:`load_planner_dataset` checks every key, shape, dtype and value and raises :class:`PlannerDatasetError`
naming the file, the key and the problem; the file is opened read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from envs.planner.state import PLANNER_STATE_DIM, planner_state_mirror_map, planner_state_names
from robot.files import atomic_write, atomic_write_text
from robot.g1 import constants as C

FORMAT = "steer.planner_dataset"
VERSION = 1
J, S = C.NUM_JOINTS, PLANNER_STATE_DIM

STEP_KEYS: dict[str, tuple[tuple[int, ...], str, str]] = {
    "state": ((S,), "", "planner state (envs.planner.state), names in attrs['state_names']"),
    "root_pos": ((3,), "m", "pelvis position, world frame"),
    "root_quat": ((4,), "", "pelvis orientation, world-from-body quaternion (w, x, y, z)"),
    "joint_pos": ((J,), "rad", "joint angles, SDK motor order"),
    "joint_vel": ((J,), "rad/s", "joint velocities"),
    "action": ((J,), "action units", "executed action (expert + exploration noise); q* = q_default + scale * a"),
    "expert_action": ((J,), "action units", "the expert's noise-free action at this state"),
    "command": ((3,), "m/s, m/s, rad/s", "velocity command (vx, vy, yaw rate), heading frame"),
    "phase": ((), "cycles", "left-foot gait phase in [0, 1); the right foot's is +0.5"),
}
"""Per-step keys: (trailing shape, unit, meaning); stored as (E, T, *shape) float32."""


class PlannerDatasetError(ValueError):
    """A planner dataset file is missing, truncated or inconsistent (the message names the file and key)."""


def schema() -> dict[str, Any]:
    """The layout as JSON (written beside every file and into its attributes)."""
    keys = {
        k: {"shape": ["E", "T", *shape], "dtype": "float32", "unit": unit, "description": desc}
        for k, (shape, unit, desc) in STEP_KEYS.items()
    }
    keys["mirrored"] = {"shape": ["E"], "dtype": "bool", "description": "episode is a left-right mirror image"}
    return {
        "format": FORMAT,
        "version": VERSION,
        "convention": "step t holds the state before action[t]; state[t+1] is where it led",
        "dims": {"J": J, "S": S},
        "keys": keys,
        "attributes": ["format", "version", "ctrl_dt_s", "joint_names", "tracked_bodies", "state_names", "collection"],
    }


@dataclass
class PlannerDataset:
    """Episodes in memory (arrays as in the module docstring) plus the file's metadata."""

    arrays: dict[str, np.ndarray]
    ctrl_dt_s: float
    collection: dict[str, Any] = field(default_factory=dict)

    @property
    def num_episodes(self) -> int:
        """E."""
        return int(self.arrays["state"].shape[0])

    @property
    def episode_steps(self) -> int:
        """T."""
        return int(self.arrays["state"].shape[1])

    @property
    def num_transitions(self) -> int:
        """E * T."""
        return self.num_episodes * self.episode_steps


def phase_float32(phase: np.ndarray) -> np.ndarray:
    """A phase in [0, 1) stored as float32 and still in [0, 1): float64 values within 3e-8 of 1 round up to 1.0 in
    float32, which is phase 0 of the next cycle."""
    out = np.asarray(phase, dtype=np.float32)
    return np.where(out >= 1.0, np.float32(0.0), out)


def mirror_episodes(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Left-right mirror images of episodes (reflection y -> -y of the world and of every heading frame).

    Joint vectors go through :func:`robot.g1.constants.mirror_joint_values`, the planner state through
    :func:`envs.planner.state.planner_state_mirror_map`; the quaternion ``(w, x, y, z)`` becomes
    ``(w, -x, y, -z)``, commands ``(vx, -vy, -wz)`` and the phase shifts by half a cycle (the legs swap).
    Mirroring twice gives the input back.
    """
    perm, sign = planner_state_mirror_map()
    out = {
        "state": arrays["state"][..., perm] * sign.astype(np.float32),
        "root_pos": arrays["root_pos"] * np.array([1.0, -1.0, 1.0], dtype=np.float32),
        "root_quat": arrays["root_quat"] * np.array([1.0, -1.0, 1.0, -1.0], dtype=np.float32),
        "command": arrays["command"] * np.array([1.0, -1.0, -1.0], dtype=np.float32),
        "phase": phase_float32(np.mod(np.asarray(arrays["phase"], np.float64) + 0.5, 1.0)),
        "mirrored": ~arrays["mirrored"],
    }
    if "fell_at" in arrays:
        out["fell_at"] = arrays["fell_at"]
    for key in ("joint_pos", "joint_vel", "action", "expert_action"):
        out[key] = C.mirror_joint_values(arrays[key]).astype(np.float32)
    return out


def validate_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Check keys, shapes, dtypes and values; raise :class:`PlannerDatasetError` naming ``where`` and the key."""
    missing = [k for k in (*STEP_KEYS, "mirrored") if k not in arrays]
    if missing:
        raise PlannerDatasetError(f"{where}: missing keys {missing}; expected {[*STEP_KEYS, 'mirrored']}")
    e, t = arrays["state"].shape[:2] if arrays["state"].ndim >= 2 else (-1, -1)
    for key, (shape, _, _) in STEP_KEYS.items():
        a = arrays[key]
        if a.shape != (e, t, *shape):
            raise PlannerDatasetError(
                f"{where}: key {key!r} has shape {a.shape}, expected (E, T, *{shape}) = {(e, t, *shape)}"
            )
        if a.dtype != np.float32:
            raise PlannerDatasetError(f"{where}: key {key!r} has dtype {a.dtype}, expected float32")
        bad = ~np.isfinite(a)
        if bad.any():
            ep = int(np.argwhere(bad)[0][0])
            raise PlannerDatasetError(
                f"{where}: key {key!r} holds {int(bad.sum())} NaN/inf values (first in episode {ep})"
            )
    if arrays["mirrored"].shape != (e,) or arrays["mirrored"].dtype != np.bool_:
        raise PlannerDatasetError(
            f"{where}: key 'mirrored' has shape {arrays['mirrored'].shape} and dtype {arrays['mirrored'].dtype}, "
            f"expected ({e},) bool"
        )
    if e < 1 or t < 2:
        raise PlannerDatasetError(f"{where}: expected at least 1 episode of 2 steps, got E={e}, T={t}")
    if "fell_at" in arrays:
        fell_at = arrays["fell_at"]
        if fell_at.shape != (e,) or fell_at.dtype != np.int32 or fell_at.min() < 0 or fell_at.max() > t:
            raise PlannerDatasetError(
                f"{where}: key 'fell_at' must be ({e},) int32 steps in [0, {t}], got shape {fell_at.shape}, dtype "
                f"{fell_at.dtype}"
            )
    phase = arrays["phase"]
    if phase.min() < 0.0 or phase.max() >= 1.0:
        raise PlannerDatasetError(f"{where}: key 'phase' outside [0, 1): [{phase.min()}, {phase.max()}]")


def write_planner_dataset(path: Path, data: PlannerDataset) -> Path:
    """Validate and write ``data`` atomically (HDF5, lzf-compressed, one chunk per episode) plus the schema JSON."""
    path = Path(path)
    validate_arrays(data.arrays, str(path))
    attrs = {
        "format": FORMAT,
        "version": VERSION,
        "ctrl_dt_s": float(data.ctrl_dt_s),
        "joint_names": json.dumps(list(C.JOINT_NAMES)),
        "tracked_bodies": json.dumps(list(C.TRACKED_BODIES)),
        "state_names": json.dumps(planner_state_names()),
        "collection": json.dumps(data.collection),
        "schema": json.dumps(schema()),
    }

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, value in data.arrays.items():
                chunks = (1, *value.shape[1:]) if value.ndim > 1 else None
                f.create_dataset(key, data=value, chunks=chunks, compression="lzf" if chunks else None)
            f.attrs.update(attrs)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    atomic_write_text(path.with_name(path.stem + ".schema.json"), json.dumps(schema(), indent=2) + "\n")
    return path


def load_planner_dataset(path: Path, allow_falls: bool = False) -> PlannerDataset:
    """Read and validate a planner dataset (see module docstring); raises :class:`PlannerDatasetError`, also for a
    file whose episodes end in falls (``fell_at``) unless ``allow_falls`` (a feasibility critic's data)."""
    path = Path(path)
    if not path.is_file():
        raise PlannerDatasetError(f"{path}: no such file (collect one with `python -m training.planner.collect`)")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("format") != FORMAT:
                raise PlannerDatasetError(f"{path}: attribute format={attrs.get('format')!r}, expected {FORMAT!r}")
            if int(attrs.get("version", -1)) != VERSION:
                raise PlannerDatasetError(f"{path}: version {attrs.get('version')}, this reader reads {VERSION}")
            arrays = {k: f[k][()] for k in f.keys()}
    except OSError as exc:
        raise PlannerDatasetError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {exc}") from exc
    validate_arrays(arrays, str(path))
    if not allow_falls and "fell_at" in arrays and (arrays["fell_at"] < arrays["state"].shape[1]).any():
        raise PlannerDatasetError(
            f"{path}: {int((arrays['fell_at'] < arrays['state'].shape[1]).sum())} episodes end in a fall (a "
            "collection with --keep-falls, for a feasibility critic); the planner learns from episodes that stand"
        )
    for name, expected in (
        ("joint_names", list(C.JOINT_NAMES)),
        ("tracked_bodies", list(C.TRACKED_BODIES)),
        ("state_names", planner_state_names()),
    ):
        found = json.loads(attrs.get(name, "null"))
        if found != expected:
            raise PlannerDatasetError(f"{path}: attribute {name} differs from this robot's ({found} != {expected})")
    return PlannerDataset(
        arrays=arrays, ctrl_dt_s=float(attrs["ctrl_dt_s"]), collection=json.loads(attrs["collection"])
    )


def episode_physics(data: PlannerDataset, source: str = "dataset") -> tuple[list[str], np.ndarray]:
    """The physics each stored episode was recorded under, ``(columns, (E, C))``, from a randomized collection's
    metadata (``training.planner.collect --randomize``: one row per recorded world with whether it was kept):
    the stored episodes are the kept worlds of each wave in order, up to the number kept (every world with
    ``keep_falls``), then their mirror images in the same order. ``source`` names the file in errors."""
    c = data.collection
    if "physics" not in c or "config" not in c:
        raise PlannerDatasetError(f"{source}: no per-world physics in its metadata (not a randomized collection)")
    columns = list(c["physics_columns"])
    physics = np.asarray(c["physics"], dtype=np.float64)
    n_env, wanted = int(c["config"]["num_envs"]), int(c["episodes_kept"])
    rows: list[np.ndarray] = []
    for w in range(0, len(physics), n_env):
        wave = physics[w : w + n_env]
        take = np.arange(len(wave)) if c.get("keep_falls") else np.flatnonzero(wave[:, -1] == 1.0)
        rows.extend(wave[take[: wanted - len(rows)], :-1])
    mirrored = data.arrays["mirrored"]
    if len(rows) != wanted or int((~mirrored).sum()) != wanted or int(mirrored.sum()) not in (0, wanted):
        raise PlannerDatasetError(
            f"{source}: its physics metadata gives {len(rows)} episodes, the file holds {int((~mirrored).sum())} "
            f"recorded and {int(mirrored.sum())} mirrored"
        )
    originals = np.stack(rows)
    out = np.empty((data.num_episodes, originals.shape[1]))
    out[~mirrored] = originals
    out[mirrored] = originals[: int(mirrored.sum())]
    return columns[:-1], out


def select_episodes(data: PlannerDataset, keep: np.ndarray) -> PlannerDataset:
    """The episodes where ``keep (E,)`` is true, metadata unchanged (a merge records the selection)."""
    return PlannerDataset({k: v[keep] for k, v in data.arrays.items()}, data.ctrl_dt_s, data.collection)


def merge_planner_datasets(
    paths: list[Path], mass_scale_ranges: list[tuple[float, float]] | None = None
) -> PlannerDataset:
    """The episodes of several planner datasets in one (in the order given), e.g. a randomized collection and a
    second one that covers a corner of its range more densely. Every file is loaded and checked as by
    :func:`load_planner_dataset` (falls allowed: ``fell_at`` is T for the episodes of inputs without it); their
    control period and episode length must agree (one line naming the file otherwise). The merged ``collection``
    lists each input's path, episode count and own metadata.

    ``mass_scale_ranges`` (one ``(low, high)`` per input) keeps only the episodes of each randomized collection
    whose whole-robot mass scale lies in ``[low, high)`` (:func:`episode_physics`): data from several experts, each
    on the part of the range it handles."""
    if len(paths) < 2:
        raise PlannerDatasetError(f"merge: expected at least two datasets, got {len(paths)}")
    if mass_scale_ranges is not None and len(mass_scale_ranges) != len(paths):
        raise PlannerDatasetError(
            f"merge: expected one mass-scale range per dataset ({len(paths)}), got {len(mass_scale_ranges)}"
        )
    parts = [load_planner_dataset(Path(p), allow_falls=True) for p in paths]
    selected = []
    for i, (path, part) in enumerate(zip(paths, parts, strict=True)):
        if mass_scale_ranges is None:
            selected.append(None)
            continue
        lo, hi = mass_scale_ranges[i]
        columns, physics = episode_physics(part, str(path))
        mass = physics[:, columns.index("mass_scale")]
        keep = (mass >= lo) & (mass < hi)
        if not keep.any():
            raise PlannerDatasetError(f"{path}: no episode with a mass scale in [{lo}, {hi})")
        parts[i] = select_episodes(part, keep)
        selected.append([lo, hi])
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:], strict=True):
        if abs(part.ctrl_dt_s - first.ctrl_dt_s) > 1e-9:
            raise PlannerDatasetError(
                f"{path}: control period {part.ctrl_dt_s} s differs from {paths[0]}'s {first.ctrl_dt_s} s"
            )
        if part.episode_steps != first.episode_steps:
            raise PlannerDatasetError(
                f"{path}: episodes of {part.episode_steps} steps, {paths[0]} has {first.episode_steps}; "
                "collect with the same --episode-length-s"
            )
    if any("fell_at" in p.arrays for p in parts):  # episodes of a collection without falls stood to the end
        for p in parts:
            p.arrays.setdefault("fell_at", np.full(p.num_episodes, p.episode_steps, dtype=np.int32))
    arrays = {k: np.concatenate([p.arrays[k] for p in parts]) for k in first.arrays}
    collection = {
        "merged_from": [
            {"path": str(path), "episodes": part.num_episodes, "mass_scale_range": sel, "collection": part.collection}
            for path, part, sel in zip(paths, parts, selected, strict=True)
        ]
    }
    return PlannerDataset(arrays=arrays, ctrl_dt_s=first.ctrl_dt_s, collection=collection)
