"""The commands of pyproject.toml's [project.scripts]: each names a callable that parses the command line, and the
CLI index lists it beside its ``python -m`` module."""

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize(("name", "target"), sorted(SCRIPTS.items()))
def test_every_command_is_a_callable_that_takes_the_command_line(name, target):
    module, _, attr = target.partition(":")
    entry = getattr(importlib.import_module(module), attr)
    params = list(inspect.signature(entry).parameters.values())
    assert all(p.default is None for p in params), f"{name}: {target} must run with no arguments (argv from sys)"
    assert f"| `{name}` | `python -m {module}` |" in (ROOT / "docs" / "reference" / "cli.md").read_text()


def test_the_commands_of_the_cli_index_are_installed_ones():
    assert {"steer-train-planner", "steer-run", "steer-export-planner", "steer-train-safe-rl"} <= set(SCRIPTS)
