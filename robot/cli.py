"""The front door of every Steer command: a user's mistake is one line and an exit code, not a traceback.

A missing file, a file of the wrong format or an option a config refuses raises an exception whose message says
what was expected and what was found (house rule: errors with context). :func:`run_cli` prints that message as
``error: <message>`` on stderr and returns exit code 2; ``--debug`` on the command line (or ``STEER_DEBUG=1`` in
the environment) re-raises it instead, with its full traceback. Bugs (any other exception) keep their traceback.

The commands' help comes from docstrings written for the documentation, with Sphinx roles (``:class:`x```) and
literals (````x````); :func:`plain_help` has tyro print them as plain text (``x``).

It lives in ``robot`` (the bottom layer) so that the training, deploy and benchmark commands all share it. It
imports tyro only inside :func:`plain_help`: the robot-side runtime has no tyro.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


class UserError(Exception):
    """Base of Steer's errors that the user fixes (a file, an option), not the code; :func:`run_cli` reports it in
    one line. Subclass it beside the built-in type the error is, e.g. ``class CheckpointError(UserError,
    RuntimeError)``."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,  # a config's __post_init__ refusing an option; also JSON that does not parse, a dataset's format
)
"""What :func:`run_cli` reports in one line: the errors Steer raises for a user's input."""

_ROLE = re.compile(r":(?:py:)?(?:class|func|mod|meth|attr|data|obj|exc|const|ref):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+[.)])\s|\s*--\w")
DEBUG_FLAG = "--debug"
DEBUG_ENV = "STEER_DEBUG"


def prog_name(argv0: str | None = None) -> str:
    """The command as the user typed it, for the usage line: ``python -m training.planner.train`` when run with
    ``-m`` (``sys.argv[0]`` is then the module's absolute path), else the script's name (``steer-train-planner``)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if argv0.endswith(".py") and spec is not None and spec.name:
        return f"python -m {spec.name.removesuffix('.__main__')}"
    return Path(argv0).name or "steer"


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup: ``:mod:`a.b``` -> ``a.b`` (``~a.b.c`` -> ``c``), ````--x```` ->
    ``--x``."""
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return _LITERAL.sub(r"\1", text)


def _unwrap(text: str) -> str:
    """Join the lines of each paragraph; a blank line, a list item (``- x``, ``1. x``) or an option (``--x``) starts
    a new line."""
    lines: list[str] = []
    for line in text.split("\n"):
        if lines and lines[-1].strip() and line.strip() and not _LIST_ITEM.match(line):
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
        else:
            lines.append(line)
    return "\n".join(lines)


def plain_help() -> None:
    """Have tyro's help show docstrings as :func:`plain_text` (idempotent).

    tyro has no public hook for help text: this wraps the two private functions every docstring passes through
    (the line joining of field docstrings and the description of a config class), version 1.0 as locked; the
    tests of ``robot.cli`` fail if a tyro release moves them. tyro keeps a docstring's line break before every
    line that starts with a digit or punctuation (a list, it guesses); only list items and paragraphs keep it here.
    """
    from tyro import _docstrings, _strings

    if getattr(_strings.remove_single_line_breaks, "_steer_plain", False):
        return
    join_lines, describe = _strings.remove_single_line_breaks, _docstrings.get_callable_description

    def plain_join(text: str) -> str:
        return join_lines(_unwrap(plain_text(text)))

    def plain_description(f: Callable[..., object]) -> str:
        return plain_text(describe(f))

    plain_join._steer_plain = True  # type: ignore[attr-defined]
    _strings.remove_single_line_breaks = plain_join
    _docstrings.get_callable_description = plain_description  # type: ignore[assignment]


def run_cli(
    run: Callable[[list[str], str], object],
    args: Sequence[str] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Call ``run(args, prog)`` (``args``: the command line without ``--debug``, default ``sys.argv[1:]``;
    ``prog``: :func:`prog_name`) and return its exit code: 0, or 2 after printing ``error: <message>`` to stderr
    when it raises one of :data:`USER_ERRORS` or ``errors`` (a command's own error types). With ``--debug`` in
    ``args`` or ``STEER_DEBUG=1`` the error propagates with its traceback. A tyro command's help is plain text
    (:func:`plain_help`)."""
    if "tyro" in sys.modules:  # imported by the command's module: argparse tools stay free of it
        plain_help()
    argv = list(sys.argv[1:] if args is None else args)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        run(argv, prog_name())
    except BrokenPipeError:  # `steer-run --help | head` closed stdout early: not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit flush fails silently
        return 1
    except USER_ERRORS + errors as error:
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message} ({DEBUG_FLAG} shows the traceback)", file=sys.stderr)
        return 2
    return 0
