"""Run configs on the command line: named presets, and ``--resume`` that takes a run's own ``config.json``.

The trainers (walking expert, planner, action head, offline safe RL) share this front end::

    python -m training.locomotion.train --preset g1-walk --run-dir runs/my_walk
    python -m training.locomotion.train --run-dir runs/my_walk --resume --iterations 4000

``--preset NAME`` starts from a named config (the recipe of a committed artefact) instead of the defaults; every
option given with it overrides that field. ``--resume`` starts from ``RUN_DIR/config.json`` instead, so nothing
needs retyping; an option given with it must agree with the run, except the trainer's ``may_change`` fields (run
length, checkpoint and evaluation periods, threads: what does not change the trained parameters). A conflict is
refused with an error naming each field, the run's value and the given one. The trainers hold a resumed config to
the same rule (:func:`check_resume`), so code that builds configs directly cannot resume a run with other options.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import tyro

from robot.cli import run_cli
from robot.configio import from_jsonable, to_jsonable

T = TypeVar("T")


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _may_change(key: str, may_change: Collection[str]) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in may_change)


def resume_conflicts(run: Any, given: Any, may_change: Collection[str]) -> list[str]:
    """``"field: run has X, now Y"`` for every field (dotted name) where config ``given`` differs from the run's
    config ``run``, except fields named in ``may_change`` (a name also covers the fields below it)."""
    old = flatten(json.loads(json.dumps(to_jsonable(run))))
    new = flatten(json.loads(json.dumps(to_jsonable(given))))
    return [
        f"{key}: run has {old.get(key)!r}, now {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if not _may_change(key, may_change) and old.get(key) != new.get(key)
    ]


def check_resume(run: Any, given: Any, may_change: Collection[str], where: str | Path) -> None:
    """Raise a ``ValueError`` listing the :func:`resume_conflicts` of resuming run ``run`` with config ``given``."""
    conflicts = resume_conflicts(run, given, may_change)
    if conflicts:
        raise ValueError(
            f"{where}: cannot resume with different options: {'; '.join(conflicts)} (leave them out to keep the "
            "run's, or start a new run, e.g. with --init-from)"
        )


def read_config_json(cls: type[T], path: Path, key: str | None = None) -> T:
    """The config ``cls`` in JSON file ``path`` (under ``key`` when the file holds more than the config)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run config here; --resume continues a run folder this trainer made")
    data = json.loads(path.read_text())
    if key is not None:
        data = data[key]
    return from_jsonable(cls, data, str(path))


def _scan(args: Sequence[str]) -> tuple[list[str], str | None, Path | None, bool]:
    """``args`` without ``--preset NAME``, and the preset, run folder and resume flag they give (the last wins)."""
    rest: list[str] = []
    preset, run_dir, resume = None, None, False
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        takes_value = name in ("--preset", "--run-dir", "--run_dir")
        if takes_value and not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        if name == "--preset":
            preset = value
        else:
            rest.extend([arg] if eq or not takes_value else [arg, value])
        if name in ("--run-dir", "--run_dir"):
            run_dir = Path(value)
        elif arg == "--resume":
            resume = True
        elif arg == "--no-resume":
            resume = False
        i += 1
    return rest, preset, run_dir, resume


def _help(description: str, presets: Mapping[str, Callable[[], Any]], may_change: Collection[str] | None) -> str:
    lines = [description.strip()]
    if presets:
        lines.append(f"--preset NAME: start from a named recipe instead of the defaults ({', '.join(presets)}).")
    if may_change is not None:
        lines.append(
            "--resume: the options of RUN_DIR/config.json; options given with it must agree with the run, except "
            f"{', '.join(sorted(may_change))}."
        )
    return "\n".join(lines)


def parse_cli(
    cls: type[T],
    *,
    run_config: Callable[[Path], T] | None = None,
    may_change: Collection[str] = (),
    presets: Mapping[str, Callable[[], T]] | None = None,
    description: str = "",
    args: Sequence[str] | None = None,
    prog: str | None = None,
) -> T:
    """``tyro.cli(cls)`` with ``--preset NAME`` (``presets``) and ``--resume`` from the run's own config
    (``run_config(run_dir)``; None: a config without ``--resume``), as the module docstring says; a conflict or
    an unknown preset raises a ``ValueError`` (one line in :func:`robot.cli.run_cli`). ``prog``: the command in
    the usage line (default ``sys.argv[0]``)."""
    presets = dict(presets or {})
    rest, preset, run_dir, resume = _scan(sys.argv[1:] if args is None else list(args))
    resume = resume and run_config is not None
    base: T | None = None
    if resume:
        if preset is not None:
            raise ValueError("--preset: a resumed run takes its options from its config.json; leave it out")
        if run_dir is None:
            run_dir = next(f.default for f in dataclasses.fields(cls) if f.name == "run_dir")  # type: ignore[arg-type]
        if run_dir is not None and run_config is not None:
            base = dataclasses.replace(run_config(run_dir), run_dir=run_dir, resume=True)  # type: ignore[type-var]
    elif preset is not None:
        name = preset.replace("_", "-")
        if name not in presets:
            raise ValueError(f"--preset: expected one of {sorted(presets)}, got {preset!r}")
        base = presets[name]()
    usage = _help(description, presets, None if run_config is None else may_change)
    cfg = tyro.cli(cls, args=rest, default=base, description=usage, prog=prog)
    if resume and base is not None:
        check_resume(base, cfg, may_change, Path(run_dir or ".") / "config.json")
    return cfg


def trainer_cli(
    cls: type[T],
    main: Callable[[T], object],
    args: Sequence[str] | None,
    *,
    run_config: Callable[[Path], T],
    may_change: Collection[str],
    presets: Mapping[str, Callable[[], T]],
    description: str,
) -> int:
    """A trainer's command: :func:`parse_cli` (presets, ``--resume``) into ``main``, through
    :func:`robot.cli.run_cli` (a user's mistake is one line and exit code 2; ``--debug``: traceback)."""
    return run_cli(
        lambda argv, prog: main(
            parse_cli(
                cls,
                run_config=run_config,
                may_change=may_change,
                presets=presets,
                description=description,
                args=argv,
                prog=prog,
            )
        ),
        args,
    )
