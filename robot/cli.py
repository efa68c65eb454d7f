"""The front door of every Steer command: a user's mistake is one line and an exit code, not a traceback.

A missing file, a file of the wrong format or an option a config refuses raises an exception whose message says
what was expected and what was found (house rule: errors with context). :func:`run_cli` prints that message as
``error: <message>`` on stderr and returns exit code 2; ``--debug`` on the command line (or ``STEER_DEBUG=1`` in
the environment) re-raises it instead, with its full traceback. Bugs (any other exception) keep their traceback.

It lives in ``robot`` (the bottom layer) so that the training, deploy and benchmark commands all share it.
"""

from __future__ import annotations

import os
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


def run_cli(
    run: Callable[[list[str], str], object],
    args: Sequence[str] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Call ``run(args, prog)`` (``args``: the command line without ``--debug``, default ``sys.argv[1:]``;
    ``prog``: :func:`prog_name`) and return its exit code: 0, or 2 after printing ``error: <message>`` to stderr
    when it raises one of :data:`USER_ERRORS` or ``errors`` (a command's own error types). With ``--debug`` in
    ``args`` or ``STEER_DEBUG=1`` the error propagates with its traceback."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        run(argv, prog_name())
    except USER_ERRORS + errors as error:
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message} ({DEBUG_FLAG} shows the traceback)", file=sys.stderr)
        return 2
    return 0
