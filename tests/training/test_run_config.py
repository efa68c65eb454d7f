"""training.run_config: --preset picks a named config, --resume takes the run's own config.json and refuses options
that conflict with it (one line: field, the run's value, the given one), for any trainer's config."""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from robot.configio import to_jsonable
from training.run_config import check_resume, parse_cli, read_config_json, resume_conflicts

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Inner:
    lr: float = 1e-3
    """learning rate"""
    threads: int = 2
    """threads"""


@dataclass
class Run:
    run_dir: Path = Path("runs/x")
    """run folder"""
    resume: bool = False
    """continue"""
    steps: int = 10
    """steps"""
    seed: int = 0
    """seed"""
    inner: Inner = field(default_factory=Inner)
    """inner"""


MAY_CHANGE = ("run_dir", "resume", "steps", "inner.threads")
PRESETS = {"fast": lambda: Run(steps=3, inner=Inner(lr=1e-2))}


def _parse(args):
    return parse_cli(
        Run,
        run_config=lambda run_dir: read_config_json(Run, run_dir / "config.json"),
        may_change=MAY_CHANGE,
        presets=PRESETS,
        args=args,
    )


def _run_folder(tmp_path: Path, cfg: Run) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(to_jsonable(cfg)))
    return tmp_path


def test_presets_are_chosen_by_name_and_options_override_them():
    assert _parse([]) == Run()
    assert _parse(["--preset", "fast"]) == Run(steps=3, inner=Inner(lr=1e-2))
    assert _parse(["--preset=fast", "--steps", "5", "--seed", "2"]) == Run(steps=5, seed=2, inner=Inner(lr=1e-2))
    with pytest.raises(ValueError, match=r"--preset: expected one of \['fast'\], got 'slow'"):
        _parse(["--preset", "slow"])


def test_resume_takes_the_runs_options_and_refuses_conflicting_ones(tmp_path):
    folder = _run_folder(tmp_path, Run(run_dir=Path("elsewhere"), seed=7, inner=Inner(lr=0.5)))
    resumed = _parse(["--run-dir", str(folder), "--resume"])
    assert resumed == Run(run_dir=folder, resume=True, seed=7, inner=Inner(lr=0.5))
    longer = _parse([f"--run-dir={folder}", "--resume", "--steps", "20", "--inner.threads", "1", "--seed", "7"])
    assert longer.steps == 20 and longer.inner.threads == 1 and longer.seed == 7  # agreeing options are fine
    with pytest.raises(ValueError, match=r"cannot resume with different options: inner\.lr: run has 0\.5, now 0\.1; "):
        _parse(["--run-dir", str(folder), "--resume", "--inner.lr", "0.1", "--seed", "3"])
    with pytest.raises(ValueError, match=r"seed: run has 7, now 3"):
        _parse(["--run-dir", str(folder), "--resume", "--seed", "3"])
    with pytest.raises(ValueError, match="leave it out"):
        _parse(["--run-dir", str(folder), "--resume", "--preset", "fast"])
    with pytest.raises(FileNotFoundError, match=r"nothing[/\\]config\.json: no run config here"):
        _parse(["--run-dir", str(tmp_path / "nothing"), "--resume"])
    assert _parse(["--run-dir", str(folder), "--resume", "--no-resume"]) == Run(run_dir=folder)  # the last flag wins


def test_conflicts_list_every_field_with_both_values():
    run, given = Run(seed=1, inner=Inner(lr=0.1, threads=4)), Run(seed=2, steps=99, inner=Inner(lr=0.2))
    assert resume_conflicts(run, given, MAY_CHANGE) == ["inner.lr: run has 0.1, now 0.2", "seed: run has 1, now 2"]
    check_resume(run, Run(seed=1, steps=3, inner=Inner(lr=0.1)), MAY_CHANGE, "x")
    with pytest.raises(ValueError, match=r"^x: cannot resume with different options: seed: run has 1, now 2"):
        check_resume(run, Run(seed=2, inner=Inner(lr=0.1)), MAY_CHANGE, "x")


def test_the_walking_trainer_resumes_the_committed_expert_with_its_own_options(tmp_path):
    from training.locomotion import train
    from training.locomotion.config import RESUME_MAY_CHANGE, read_run_config

    folder = tmp_path / "g1_walk"
    folder.mkdir()
    (folder / "config.json").write_text((ROOT / "assets/g1_walk/checkpoint/config.json").read_text())
    committed = read_run_config(folder)

    def cli(*args):
        return parse_cli(
            train.TrainConfig,
            run_config=read_run_config,
            may_change=RESUME_MAY_CHANGE,
            args=["--run-dir", str(folder), *args],
        )

    cfg = cli("--resume", "--iterations", "4000", "--env.num-threads", "2", "--ppo.init-std", "0.25")
    assert cfg.iterations == 4000 and cfg.env.num_threads == 2 and cfg.run_dir == folder and cfg.resume
    assert cfg.env == committed.env.__class__(**{**vars(committed.env), "num_threads": 2})
    assert cfg.ppo == committed.ppo and cfg.env.rewards.contact == 5.0  # nothing retyped
    with pytest.raises(ValueError, match=r"env\.rewards\.contact: run has 5\.0, now 1\.0"):
        cli("--resume", "--env.rewards.contact", "1.0")
    # a config built in code is held to the same rule by the trainer, before it builds anything
    with pytest.raises(ValueError, match=r"config\.json: cannot resume with different options: seed: run has 0, now 1"):
        train.Trainer(train.TrainConfig(**{**vars(cfg), "seed": 1}))


def test_the_planner_trainer_resumes_the_committed_planner_with_its_own_options(tmp_path):
    from training.planner import train
    from training.planner.config import RESUME_MAY_CHANGE, read_run_config

    folder = tmp_path / "g1_planner"
    folder.mkdir()
    (folder / "config.json").write_text((ROOT / "assets/g1_planner/checkpoint/config.json").read_text())

    def cli(*args):
        return parse_cli(
            train.PlannerTrainConfig,
            run_config=read_run_config,
            may_change=RESUME_MAY_CHANGE,
            args=["--run-dir", str(folder), "--resume", *args],
        )

    cfg = cli("--torch-threads", "2", "--max-minutes", "30")
    assert cfg.planner == read_run_config(folder).planner and cfg.lr == 1.5e-4 and cfg.steps == 2500
    with pytest.raises(ValueError, match=r"lr: run has 0\.00015, now 0\.0003; steps: run has 2500, now 3000"):
        cli("--lr", "3e-4", "--steps", "3000")
    narrow = dataclasses.replace(cfg.planner.denoiser, width=64)
    other = train.PlannerTrainConfig(**{**vars(cfg), "planner": dataclasses.replace(cfg.planner, denoiser=narrow)})
    with pytest.raises(ValueError, match=r"planner\.denoiser\.width: run has 128, now 64"):
        train.PlannerTrainer(other)  # before it reads the data
