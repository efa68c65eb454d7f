"""Read, validate and write offline safe-RL datasets in the DSRL HDF5 layout.

The layout (Liu et al., DSRL; ``dsrl==0.1.0``): seven arrays at the root of an HDF5 file, one row per
transition, episodes ending where ``terminals | timeouts``::

    observations       (N, S)  float32
    next_observations  (N, S)  float32
    actions            (N, A)  float32
    rewards            (N,)    float32
    costs              (N,)    float32   (>= 0; DSRL's Bullet tasks use 0 / 1 per step)
    terminals          (N,)    float32   0 or 1
    timeouts           (N,)    float32   0 or 1

File name ``<Task>-v0-<MaxCost>-<NumTrajectories>.hdf5`` (dsrl's own downloads carry a ``Safety`` prefix, e.g.
``SafetyBallRun-v0-80-940.hdf5``; both are found by task name).

Where data comes from (:func:`load_dsrl`): an explicit path, the directory ``$DSRL_DATASET_DIR`` (default
``~/.dsrl/datasets``, as dsrl) searched by task name, or the ``dsrl`` package's own ``get_dataset()`` on its
official file (``backend="dsrl"``; dsrl is imported lazily). Every route ends in :func:`validate_arrays`, which
raises :class:`DSRLDataError` naming the file, the key and the problem. Reading never writes to the file;
:func:`write_dsrl` writes atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from envs.safe_rl.tasks import DSRL_TASKS, DSRLTask, canonical_task_name, get_task
from robot.files import atomic_write

DSRL_KEYS = ("observations", "next_observations", "actions", "rewards", "costs", "terminals", "timeouts")
COMPRESSION = "gzip level 4, byte shuffle"
"""How :func:`write_dsrl` stores each array when asked to compress (recorded in a dataset's summary JSON)."""
_VECTOR_KEYS = ("observations", "next_observations", "actions")
_SCALAR_KEYS = ("rewards", "costs", "terminals", "timeouts")
_FLAG_KEYS = ("terminals", "timeouts")
_SAFE_RL_EXTRA = (
    "install the optional safe-RL dependencies: pip install pybullet && "
    "pip install --no-deps dsrl==0.1.0 bullet-safety-gym==1.4.0 (the 'safe-rl' extra)"
)


class DSRLDataError(ValueError):
    """A DSRL dataset that cannot be used: the message names the file, the key and the problem."""


@dataclass(frozen=True, eq=False)
class DSRLData:
    """A validated DSRL dataset held in memory (float32 arrays; see the module docstring for shapes)."""

    observations: np.ndarray
    """(N, S) states s_t"""
    next_observations: np.ndarray
    """(N, S) states s_{t+1}"""
    actions: np.ndarray
    """(N, A) actions a_t"""
    rewards: np.ndarray
    """(N,) rewards r_t"""
    costs: np.ndarray
    """(N,) costs c_t >= 0"""
    terminals: np.ndarray
    """(N,) 1 where the episode ended in a terminal state (no bootstrap), else 0"""
    timeouts: np.ndarray
    """(N,) 1 where the episode was cut by the time limit, else 0"""
    source: str = "<memory>"
    """where the data came from (a file path), used in error messages"""

    @property
    def num_transitions(self) -> int:
        """N, the number of rows."""
        return int(self.observations.shape[0])

    @property
    def obs_dim(self) -> int:
        """S, the observation dimension."""
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        """A, the action dimension."""
        return int(self.actions.shape[1])

    def as_dict(self) -> dict[str, np.ndarray]:
        """The seven arrays by DSRL key."""
        return {key: getattr(self, key) for key in DSRL_KEYS}

    def select(self, rows: np.ndarray) -> DSRLData:
        """A new dataset with the rows picked by an index or boolean mask ``rows``."""
        return DSRLData(**{key: value[rows] for key, value in self.as_dict().items()}, source=self.source)


assert tuple(f.name for f in fields(DSRLData))[:7] == DSRL_KEYS  # the dataclass mirrors the file layout


def _fail(source: str, key: str | None, problem: str) -> DSRLDataError:
    where = f"{source}: key '{key}'" if key is not None else source
    return DSRLDataError(f"{where}: {problem}")


def validate_arrays(
    arrays: Mapping[str, np.ndarray],
    source: str = "<memory>",
    task: DSRLTask | str | None = None,
    obs_dim: int | None = None,
    act_dim: int | None = None,
) -> DSRLData:
    """Check seven arrays against the DSRL layout and return them as float32 :class:`DSRLData` copies.

    Args:
        arrays: the arrays by DSRL key (other keys are ignored).
        source: the file (or description) named in error messages.
        task: a DSRL task (or its name) whose observation and action dimensions the data must have.
        obs_dim, act_dim: explicit dimensions to check (override the task's).

    Raises:
        DSRLDataError: a key is missing or not numeric, shapes or lengths disagree, dimensions differ from the
            task's, a value is NaN or inf, a flag is not 0/1, a cost is negative, or the data is empty.
    """
    if task is not None:
        info = task if isinstance(task, DSRLTask) else get_task(task)
        obs_dim = info.obs_dim if obs_dim is None else obs_dim
        act_dim = info.act_dim if act_dim is None else act_dim
    missing = [key for key in DSRL_KEYS if key not in arrays]
    if missing:
        raise _fail(
            source,
            missing[0],
            f"missing; the DSRL layout needs {list(DSRL_KEYS)}, found {sorted(arrays)} (missing {missing})",
        )
    out: dict[str, np.ndarray] = {}
    for key in DSRL_KEYS:
        value = np.asarray(arrays[key])
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise _fail(source, key, f"expected a numeric array, got dtype {value.dtype}")
        if key in _SCALAR_KEYS and value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]  # (N, 1) -> (N,), as dsrl's own loader accepts
        expected_ndim = 2 if key in _VECTOR_KEYS else 1
        if value.ndim != expected_ndim:
            layout = "(N, D)" if expected_ndim == 2 else "(N,)"
            raise _fail(source, key, f"expected shape {layout}, got {value.shape}")
        out[key] = value
    n = out["observations"].shape[0]
    if n == 0:
        raise _fail(source, "observations", "expected at least one transition, got 0 rows")
    for key in DSRL_KEYS:
        if out[key].shape[0] != n:
            raise _fail(
                source,
                key,
                f"expected {n} rows (the length of 'observations'), got {out[key].shape[0]}: "
                "mismatched lengths, the file may have been cut while writing",
            )
    expected = {
        "observations": obs_dim,
        "next_observations": obs_dim if obs_dim is not None else out["observations"].shape[1],
        "actions": act_dim,
    }
    for key, dim in expected.items():
        if dim is not None and out[key].shape[1] != dim:
            what = f"the task {canonical_task_name(str(task))}" if task is not None else "the requested dimension"
            raise _fail(source, key, f"expected dimension {dim} ({what}), got shape {out[key].shape}")
    for key in DSRL_KEYS:
        value = out[key].astype(np.float32)
        bad = ~np.isfinite(value)
        if bad.any():
            rows = np.nonzero(bad.reshape(n, -1).any(axis=1))[0]
            problem = f"expected finite values, got NaN or inf in {len(rows)} rows (first row {rows[0]})"
            raise _fail(source, key, problem)
        out[key] = value
    for key in _FLAG_KEYS:
        bad_rows = np.nonzero((out[key] != 0.0) & (out[key] != 1.0))[0]
        if len(bad_rows):
            raise _fail(source, key, f"expected 0 or 1, got {out[key][bad_rows[0]]} at row {bad_rows[0]}")
    negative = np.nonzero(out["costs"] < 0.0)[0]
    if len(negative):
        raise _fail(source, "costs", f"expected costs >= 0, got {out['costs'][negative[0]]} at row {negative[0]}")
    return DSRLData(**out, source=source)


def read_dsrl(
    path: str | os.PathLike[str],
    task: DSRLTask | str | None = None,
    obs_dim: int | None = None,
    act_dim: int | None = None,
) -> DSRLData:
    """Read and validate a DSRL HDF5 file (opened read-only; the file is never modified).

    Raises:
        FileNotFoundError: no file at ``path``.
        DSRLDataError: the file is not readable HDF5 (truncated or corrupt), or fails :func:`validate_arrays`.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no DSRL dataset file there")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise _fail(
            source,
            None,
            f"cannot open as HDF5 ({error}); the file is truncated or corrupt: regenerate it (or download it again)",
        ) from error
    arrays: dict[str, np.ndarray] = {}
    with handle:
        for key in DSRL_KEYS:
            if key not in handle:
                continue  # reported with the full list by validate_arrays
            item = handle[key]
            if not isinstance(item, h5py.Dataset):
                raise _fail(source, key, f"expected an HDF5 dataset, got a {type(item).__name__}")
            try:
                arrays[key] = item[()]
            except (OSError, ValueError) as error:
                raise _fail(source, key, f"cannot read the data ({error}); the file is truncated or corrupt") from error
    return validate_arrays(arrays, source, task, obs_dim, act_dim)


def dsrl_file_name(task: str, max_cost: float, num_trajectories: int) -> str:
    """``<Task>-v0-<MaxCost>-<NumTrajectories>.hdf5``; MaxCost prints without decimals when integral."""
    if num_trajectories < 1 or max_cost < 0:
        raise ValueError(f"expected num_trajectories >= 1 and max_cost >= 0, got {num_trajectories}, {max_cost}")
    cost = f"{int(max_cost)}" if float(max_cost).is_integer() else f"{max_cost:g}"
    return f"{canonical_task_name(task)}-v0-{cost}-{int(num_trajectories)}.hdf5"


def dataset_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The folder searched by task name: ``directory``, else ``$DSRL_DATASET_DIR``, else ``~/.dsrl/datasets``."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get("DSRL_DATASET_DIR", os.path.expanduser("~/.dsrl/datasets")))


def find_dsrl_file(task: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The one file for ``task`` in the dataset folder (``[Safety]<Task>-v0-<MaxCost>-<NumTraj>.hdf5``).

    Raises:
        FileNotFoundError: no matching file (the message names the folder and the pattern), or several match.
    """
    name = canonical_task_name(task)
    folder = dataset_dir(directory)
    pattern = re.compile(rf"^(Safety)?{re.escape(name)}-v0-\d+(\.\d+)?-\d+\.hdf5$")
    found = sorted(p for p in folder.glob("*.hdf5") if pattern.match(p.name)) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"no dataset for task {name!r} in {folder} (expected a file named {name}-v0-<MaxCost>-<NumTraj>.hdf5 "
            "or dsrl's Safety-prefixed name): generate one, set $DSRL_DATASET_DIR, or pass a path"
        )
    if len(found) > 1:
        raise FileNotFoundError(
            f"several datasets for task {name!r} in {folder}: {[p.name for p in found]}; pass the path of the one "
            "to use"
        )
    return found[0]


@contextlib.contextmanager
def _process_streams() -> Iterator[None]:
    """Expose the process's own stdout / stderr while bullet_safety_gym is imported and builds an env.

    Its ``RedirectStream`` flushes the C stream named after ``stream.name`` ("<stdout>", "<stderr>", bound at
    import time) and fails with "undefined symbol" when Python's streams are redirected (pytest, notebooks).
    """
    saved = sys.stdout, sys.stderr
    if sys.__stdout__ is not None and sys.__stderr__ is not None:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def make_dsrl_env(task: DSRLTask) -> Any:
    """``gymnasium.make("Offline<Task>-v0")`` after importing dsrl and bullet_safety_gym (cost in ``info["cost"]``)."""
    import gymnasium

    try:
        with _process_streams():
            import bullet_safety_gym  # noqa: F401 - registers the Safety*-v0 Bullet envs dsrl wraps
            import dsrl  # noqa: F401 - registers the Offline*-v0 ids
    except ImportError as error:
        raise ImportError(f"{task.gym_id} needs pybullet, bullet-safety-gym and dsrl: {_SAFE_RL_EXTRA}") from error
    with _process_streams(), warnings.catch_warnings():
        # bullet_safety_gym builds Box spaces from float64 infinities; gymnasium warns on the float32 cast
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        return gymnasium.make(task.gym_id)


def read_with_dsrl_package(task: str) -> DSRLData:
    """Load the official file of ``task`` through ``dsrl``'s ``env.get_dataset()``, then validate it.

    Only reads a file already in dsrl's dataset folder: dsrl's download servers are not reachable here.
    """
    try:
        with _process_streams():
            import dsrl  # noqa: F401 - registers the Offline*-v0 environments
            import gymnasium
            from dsrl import offline_env
    except ImportError as error:
        raise ImportError(f"reading through the dsrl package needs dsrl: {_SAFE_RL_EXTRA}") from error
    info = get_task(task)
    path = Path(offline_env.DATASET_PATH) / info.file_name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: dsrl's official {info.name} dataset is not there and cannot be downloaded from here; "
            "place the file there or read a generated dataset with load_dsrl(path=...)"
        )
    with _process_streams():
        env = gymnasium.make(info.gym_id)
    try:
        arrays = env.unwrapped.get_dataset(str(path))
    except (AssertionError, OSError, ValueError, KeyError) as error:
        raise _fail(str(path), None, f"dsrl could not read it: {error}") from error
    finally:
        env.close()
    return validate_arrays(arrays, str(path), info)


def load_dsrl(
    task: str | None = None,
    path: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    backend: str = "h5py",
) -> DSRLData:
    """Load a validated DSRL dataset from a path, or by task name from the dataset folder.

    Args:
        task: task name (``BallRun``, ``OfflineBallRun-v0``); its dimensions are checked when it is a DSRL task.
        path: an explicit file; wins over the folder search.
        directory: the folder to search instead of ``$DSRL_DATASET_DIR``.
        backend: ``h5py`` (Steer's reader) or ``dsrl`` (the package's ``get_dataset()`` on its official file).
    """
    if backend not in ("h5py", "dsrl"):
        raise ValueError(f"backend: expected 'h5py' or 'dsrl', got {backend!r}")
    known = task is not None and canonical_task_name(task) in DSRL_TASKS
    if path is not None:
        return read_dsrl(path, task if known else None)
    if task is None:
        raise ValueError("load_dsrl: expected a task name or a path, got neither")
    if backend == "dsrl":
        return read_with_dsrl_package(task)
    return read_dsrl(find_dsrl_file(task, directory), task if known else None)


def write_dsrl(
    path: str | os.PathLike[str],
    data: DSRLData | Mapping[str, np.ndarray],
    overwrite: bool = False,
    attrs: Mapping[str, str | int | float] | None = None,
    compress: bool = False,
) -> Path:
    """Validate and write the seven arrays (float32) atomically; returns the path.

    ``attrs`` (provenance such as the generating seed) go to the root attributes, which dsrl ignores. ``compress``
    stores each array gzip-compressed (level 4, byte shuffle): still DSRL's layout, which h5py (and so dsrl) reads
    transparently, about a third smaller for the Bullet tasks' data; the arrays read back bit for bit.
    """
    path = Path(path)
    arrays = data.as_dict() if isinstance(data, DSRLData) else dict(data)
    checked = validate_arrays(arrays, source=str(path))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")

    storage: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress else {}

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as handle:
            for key, value in checked.as_dict().items():
                handle.create_dataset(key, data=value, dtype=np.float32, **storage)
            for name, value in (attrs or {}).items():
                handle.attrs[name] = value

    return atomic_write(path, write)


def arrays_sha256(data: DSRLData) -> str:
    """sha256 of the seven arrays' bytes in DSRL's key order: the same for a file and its compressed copy."""
    digest = hashlib.sha256()
    for key in DSRL_KEYS:
        digest.update(np.ascontiguousarray(getattr(data, key)).tobytes())
    return digest.hexdigest()
