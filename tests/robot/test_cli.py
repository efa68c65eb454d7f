"""robot.cli: a user's mistake is one line on stderr and exit code 2; --debug or STEER_DEBUG=1 re-raises it."""

import sys

import pytest

from robot.cli import UserError, prog_name, run_cli


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
