"""training.run_dir: one folder layout for every trainer, runs of the earlier layout still resume, and an exported
file finds its run's config.json."""

import json

from tests.training.test_planner_train import _cfg, _dataset
from training.checkpoint import load_checkpoint
from training.planner.train import PlannerTrainer
from training.run_dir import RunDir, run_config_of


def test_paths_and_start(tmp_path) -> None:
    run = RunDir(tmp_path / "r")
    assert run.last == tmp_path / "r" / "checkpoints" / "last.pt" and run.best.name == "best.pt"
    assert run.model("critic.pt") == tmp_path / "r" / "model" / "critic.pt"
    assert run.export("actor.pt") == tmp_path / "r" / "export" / "actor.pt"
    assert not run.has_checkpoint() and run.resume_checkpoint() == run.last
    run.start('{"a": 1}\n', ("step", "loss"))
    assert json.loads(run.config.read_text()) == {"a": 1} and run.metrics.read_text() == "step,loss\n"


def test_resume_finds_the_earlier_layouts_last_pt_and_prefers_the_new_one(tmp_path) -> None:
    run = RunDir(tmp_path)
    (tmp_path / "last.pt").write_bytes(b"old")
    assert run.has_checkpoint() and run.resume_checkpoint() == tmp_path / "last.pt"
    run.checkpoints.mkdir()
    run.last.write_bytes(b"new")
    assert run.resume_checkpoint() == run.last


def test_an_export_finds_its_runs_config(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    run.start("{}\n")
    run.export("actor.pt").parent.mkdir()
    assert run_config_of(run.export("actor.pt")) == run.config  # the run folder above export/
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "config.json").write_text("{}")
    assert run_config_of(assets / "policy.pt") == assets / "config.json"  # beside it (a committed assets folder)
    assert run_config_of(tmp_path / "nowhere" / "policy.pt") == tmp_path / "nowhere" / "config.json"


def test_a_planner_run_of_the_earlier_layout_resumes_and_continues_in_the_new_one(tmp_path) -> None:
    data = _dataset(tmp_path / "d.h5")
    PlannerTrainer(_cfg(data, tmp_path / "r", steps=2, vae_steps=0, latent=0, max_minutes=0.0)).run()  # 1 step
    run = RunDir(tmp_path / "r")
    run.last.rename(tmp_path / "r" / "last.pt")  # as runs before the shared layout kept it
    run.checkpoints.rmdir()
    resumed = PlannerTrainer(_cfg(data, tmp_path / "r", steps=2, vae_steps=0, latent=0, resume=True))
    assert resumed.step == 1
    resumed.run()
    assert load_checkpoint(run.last)["step"] == 2 and load_checkpoint(run.model("planner_model.pt"))["step"] == 2
