"""Typed configs to JSON and back: run folders keep ``config.json``, tools rebuild the dataclasses from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, paths and dict keys -> strings (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def from_jsonable(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Rebuild ``cls`` from :func:`to_jsonable` output.

    Nested configs take the type of the field's default (so a field defaulting to one task config is rebuilt
    as that config); lists become tuples. Fields missing from ``data`` keep their defaults; unknown fields raise
    a ``ValueError`` naming them (a file written by another version of the code).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown} of {cls.__name__} (written by another Steer version?)")
    kwargs = {}
    for key, value in data.items():
        default = getattr(defaults, key)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            kwargs[key] = from_jsonable(type(default), value, f"{where}.{key}")
        elif isinstance(value, str) and isinstance(default, Path):
            kwargs[key] = Path(value)
        else:
            kwargs[key] = _tuples(value)
    return cls(**kwargs)
