"""robot.cli: a user's mistake is one line on stderr and exit code 2; --debug or STEER_DEBUG=1 re-raises it."""

import sys

import pytest

from robot.cli import UserError, plain_help, plain_text, prog_name, run_cli


class CustomError(RuntimeError):
    pass


def _raise(error: BaseException):
    def run(args: list[str], prog: str) -> None:
        raise error

    return run


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError("data/x.h5: no such file"),
        ValueError("--backend: expected one of ['a', 'b'], got 'c'"),
        UserError("run/ckpt.pt: not a readable checkpoint"),
    ],
)
def test_a_user_error_is_one_line_and_exit_code_2(error, capsys, monkeypatch):
    monkeypatch.delenv("STEER_DEBUG", raising=False)
    assert run_cli(_raise(error), ["--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {error} (--debug")


def test_a_multiline_message_is_folded_into_one_line(capsys, monkeypatch):
    monkeypatch.delenv("STEER_DEBUG", raising=False)
    assert run_cli(_raise(ValueError("first\n  second")), []) == 2
    assert capsys.readouterr().err.startswith("error: first second (")


def test_debug_flag_or_env_reraises_and_the_flag_does_not_reach_the_parser(monkeypatch):
    seen: list[list[str]] = []

    def run(args: list[str], prog: str) -> None:
        seen.append(args)
        raise FileNotFoundError("missing")

    monkeypatch.delenv("STEER_DEBUG", raising=False)
    with pytest.raises(FileNotFoundError, match="missing"):
        run_cli(run, ["--steps", "3", "--debug"])
    assert seen == [["--steps", "3"]]
    monkeypatch.setenv("STEER_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        run_cli(run, [])


def test_a_command_names_its_own_errors_and_bugs_keep_their_traceback(capsys, monkeypatch):
    monkeypatch.delenv("STEER_DEBUG", raising=False)
    assert run_cli(_raise(CustomError("robot refused")), [], errors=(CustomError,)) == 2
    assert "error: robot refused" in capsys.readouterr().err
    with pytest.raises(KeyError):
        run_cli(_raise(KeyError("bug")), [])
    assert run_cli(lambda args, prog: None, []) == 0


def test_prog_name_is_what_the_user_typed(monkeypatch):
    assert prog_name("/venv/bin/steer-train-planner") == "steer-train-planner"

    class Spec:
        name = "training.planner.train"

    monkeypatch.setattr(sys.modules["__main__"], "__spec__", Spec(), raising=False)
    assert prog_name("/work/main/training/planner/train.py") == "python -m training.planner.train"


def test_plain_text_drops_roles_and_literals():
    text = "Run :mod:`policies.quantize` on ``planner.pt`` (:class:`~deploy.loop.ControlLoop`, ``--int8``)."
    assert plain_text(text) == "Run policies.quantize on planner.pt (ControlLoop, --int8)."


def test_tyro_help_is_plain_text_with_choices_and_the_given_program(capsys, monkeypatch):
    import dataclasses
    from typing import Literal

    import tyro
    from tyro import _docstrings, _strings

    # restored after the test: the rest of the session sees tyro as installed
    monkeypatch.setattr(_strings, "remove_single_line_breaks", _strings.remove_single_line_breaks)
    monkeypatch.setattr(_docstrings, "get_callable_description", _docstrings.get_callable_description)

    @dataclasses.dataclass
    class Inner:
        """Sampler of :class:`policies.diffusion.sampling.Sampler`."""

        steps: int = 2
        """Steps (``--steps``) of the sampler,
        30 by default in :func:`sample`."""

    @dataclasses.dataclass
    class Config:
        mode: Literal["x0", "classifier", "none"] = "x0"
        """Guidance of ``x0``:
        :mod:`policies.diffusion.guidance`."""
        inner: Inner = dataclasses.field(default_factory=Inner)

    plain_help()
    plain_help()  # idempotent
    with pytest.raises(SystemExit):
        tyro.cli(Config, args=["--help"], prog="steer-x")
    out = capsys.readouterr().out
    assert "usage: steer-x" in out and "{x0,classifier,none}" in out
    assert "Guidance of x0: policies.diffusion.guidance." in out
    assert "Steps (--steps) of the sampler, 30 by default in sample." in out
    assert "Sampler of policies.diffusion.sampling.Sampler." in out
    assert "``" not in out and ":class:" not in out
