"""Typed configs to JSON and back: run folders keep ``config.json``, tools rebuild the dataclasses from it.

A field whose type is a union of several config dataclasses (a task, an algorithm, a denoiser) is written with a
tag, ``{"_type": "WaypointTaskConfig", ...}`` (the class name), so that it is rebuilt as the config it held and not
as the type of the field's default. Files written before the tag existed are still read: an untagged object is
rebuilt as the one union member whose fields hold all of its keys.

A config class may define ``migrate_json(data: dict) -> dict`` (a static or class method) to rewrite the JSON of
an older layout before it is rebuilt; :func:`from_jsonable` calls it on every object of that class.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TYPE_KEY = "_type"
"""Key of the tag that names the dataclass held by a union-typed field."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of dataclass ``cls`` (empty when they cannot be resolved, e.g. names imported only
    for type checking: the field's default then decides, as it did before tags)."""
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # any unresolvable annotation means "no hints", never a failed load
        return {}


def _strip(hint: Any) -> Any:
    """``Annotated[X, ...]`` -> ``X``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint


def _union_members(hint: Any) -> tuple[Any, ...] | None:
    """The members of a union type (``Annotated`` stripped, ``None`` dropped), or None when ``hint`` is no union."""
    hint = _strip(hint)
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    return tuple(_strip(a) for a in typing.get_args(hint) if a is not type(None))


def _config_members(hint: Any) -> list[type]:
    """The distinct dataclasses of a union type, in order (empty when ``hint`` is no union)."""
    out: list[type] = []
    for member in _union_members(hint) or ():
        if dataclasses.is_dataclass(member) and member not in out:
            out.append(member)  # type: ignore[arg-type]
    return out


def _is_choice(hint: Any) -> bool:
    """Whether a field of type ``hint`` may hold one of several config dataclasses (its JSON is then tagged)."""
    return len(_config_members(hint)) > 1


def to_jsonable(obj: Any) -> Any:
    """Dataclasses -> dicts (tagged where the field is a union of configs), tuples -> lists, paths and dict keys ->
    strings (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        hints = _hints(type(obj))
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            data = to_jsonable(value)
            if isinstance(data, dict) and dataclasses.is_dataclass(value) and _is_choice(hints.get(f.name)):
                data = {TYPE_KEY: type(value).__name__, **data}
            out[f.name] = data
        return out
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def _pick_member(members: list[type], data: dict[str, Any], default: Any, where: str) -> type:
    """The union member that ``data`` describes: the one its tag names, else (an untagged file) the only one whose
    fields hold all of its keys, preferring the type of the field's default when several do."""
    names = [m.__name__ for m in members]
    if TYPE_KEY in data:
        tag = data[TYPE_KEY]
        for member in members:
            if member.__name__ == tag:
                return member
        raise ValueError(f"{where}: {TYPE_KEY} expected one of {names}, got {tag!r}")
    fits = [m for m in members if set(data) <= _field_names(m)]
    if type(default) in fits:
        return type(default)
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise ValueError(f"{where}: the fields {sorted(data)} fit none of {names} (written by another Steer version?)")
    raise ValueError(
        f"{where}: the fields {sorted(data)} fit several of {names}; add {TYPE_KEY!r} with the class name to choose"
    )


def _rebuild(hint: Any, value: Any, default: Any, where: str) -> Any:
    """``value`` (JSON data) as the type ``hint`` (None: unknown, the type of ``default`` decides)."""
    if hint is None:
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            return from_jsonable(type(default), value, where)
        if isinstance(value, str) and isinstance(default, Path):
            return Path(value)
        return _tuples(value)
    if value is None:
        return None
    hint = _strip(hint)
    members = _union_members(hint)
    if members is not None:
        configs = _config_members(hint)
        if isinstance(value, dict) and configs:
            return from_jsonable(_pick_member(configs, value, default, where), value, where)
        if isinstance(value, str) and Path in members:
            return Path(value)
        return _tuples(value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_jsonable(hint, value, where)  # type: ignore[arg-type]
    if hint is Path and isinstance(value, str):
        return Path(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_rebuild(args[0], v, None, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) == len(value) and args != ((),):
            return tuple(
                _rebuild(a, v, None, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
    if origin is list and isinstance(value, list) and args:
        return [_rebuild(args[0], v, None, f"{where}[{i}]") for i, v in enumerate(value)]
    return _tuples(value)


def from_jsonable(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Rebuild ``cls`` from :func:`to_jsonable` output.

    Nested configs take their field's type (a union of configs: the tagged member, see the module docstring);
    paths become ``Path``; JSON lists become tuples (lists where the field is a ``list``). Fields missing from
    ``data`` keep their defaults; unknown fields raise a ``ValueError`` naming them (a file written by another
    version of the code).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    migrate = getattr(cls, "migrate_json", None)
    if migrate is not None:
        data = migrate(dict(data))
    tag = data.get(TYPE_KEY, cls.__name__)
    if tag != cls.__name__:
        raise ValueError(f"{where}: {TYPE_KEY} expected {cls.__name__!r}, got {tag!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields) - {TYPE_KEY})
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown} of {cls.__name__} (written by another Steer version?)")
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key == TYPE_KEY:
            continue
        hint = hints.get(key)
        default = _field_default(fields[key]) if hint is None or _config_members(hint) else None
        kwargs[key] = _rebuild(hint, value, default, f"{where}.{key}")
    return cls(**kwargs)
