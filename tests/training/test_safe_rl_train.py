"""training.safe_rl.train: the CLI on a tiny DSRL file, every algorithm, bit-identical resume, atomic and corrupt
checkpoints, the best-checkpoint wiring and resume's option checks."""

import io
import json
import re
from pathlib import Path

import pytest
import torch

from tests.training.helpers import FakeEnvFactory, run_python, tiny_algorithm, train_config, write_tiny_dataset
from training.safe_rl.checkpoint import CHECKPOINT_FORMAT, CheckpointError, EvalScore, load_checkpoint
from training.safe_rl.evaluate import EpisodeResult, EvalResult, load_algorithm
from training.safe_rl.train import train


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks gain nothing from threads, and on a busy 2-core machine spinning OpenMP threads cost 10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same(a, b, where: str = "") -> None:
    """Recursive exact equality of (nested) state dicts: tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def tb_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return set(acc.Tags()["scalars"]) | set(acc.Tags()["histograms"])


def test_cli_trains_fisor_on_a_tiny_dsrl_file(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    run = tmp_path / "run"
    tiny = ["--algorithm.critic-hidden", "16", "16", "--algorithm.actor-width", "16", "--algorithm.actor-blocks", "1"]
    tiny += ["--algorithm.time-features", "4", "--algorithm.time-hidden", "8", "--algorithm.num-candidates", "2"]
    tiny += ["--algorithm.batch-size", "32", "--algorithm.critic-batch-size", "16", "--algorithm.num-steps", "6"]
    args = ["--dataset", str(data), "--run-dir", str(run), "--checkpoint-every", "4", "--log-every", "2"]
    args += ["--eval-every", "0", "--no-progress", "algorithm:fisor", *tiny]
    result = run_python(["-m", "training.safe_rl.train", *args], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"run folder: {run} (step 6)" in result.stdout
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["algorithm_name"] == "fisor" and record["config"]["algorithm"]["actor_width"] == 16
    assert record["data"]["task"] == "BallRun" and record["data"]["num_transitions"] == 120
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 6
    assert not (run / "checkpoints" / "best.pt").exists()  # no evaluation, no best
    tags = tb_tags(run / "tb")
    assert {"train/actor_loss", "train/q_h", "train/v_h", "train/weight_mean", "train/actor_weights"} <= tags
    assert "timing/steps_per_s" in tags


@pytest.mark.parametrize("name", ["fisor", "bc_all", "bc_safe", "bcq_lag"])
def test_every_algorithm_trains_saves_and_loads(tmp_path, name) -> None:
    data = write_tiny_dataset(tmp_path)
    result = train(train_config(data, tmp_path / "run", name, num_steps=3))
    assert result.step == 3 and result.algorithm.name == name
    algorithm, payload = load_algorithm(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["data"]["task"] == "BallRun"
    assert_same(algorithm.policy.state_dict(), result.algorithm.policy.state_dict())
    action = algorithm.act(torch.zeros(1, 7), torch.Generator().manual_seed(0))
    assert action.shape == (1, 2) and bool((action.abs() <= 1).all())
    assert "train/actor_loss" in tb_tags(tmp_path / "run" / "tb")


def test_bc_safe_trains_only_on_the_episodes_under_its_limit(tmp_path) -> None:
    from envs.safe_rl import load_dsrl
    from training.safe_rl.algorithms import make_algorithm

    data = load_dsrl(path=write_tiny_dataset(tmp_path))  # 12 episodes of 10 steps; odd ones cost 5
    rows = {
        name: len(make_algorithm(tiny_algorithm(name, 1), 7, 2).prepare(data, None)["actions"])
        for name in ("bc_all", "bc_safe")
    }
    assert rows == {"bc_all": 120, "bc_safe": 60}


@pytest.mark.parametrize("name", ["fisor", "bcq_lag"])
def test_resume_after_an_interrupt_is_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch, name) -> None:
    data = write_tiny_dataset(tmp_path)
    factory = FakeEnvFactory()
    full = train(train_config(data, tmp_path / "full", name, eval_every=4), env_factory=factory)

    cls = type(full.algorithm)
    update = cls.update

    def crash_in_step_7(self, batch, step):
        if step == 6:
            raise KeyboardInterrupt  # killed mid-run, after last.pt of step 4
        return update(self, batch, step)

    monkeypatch.setattr(cls, "update", crash_in_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(train_config(data, tmp_path / "cut", name, eval_every=4), env_factory=factory)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 4

    resumed = train(train_config(data, tmp_path / "cut", name, eval_every=4, resume=True), env_factory=factory)
    assert resumed.step == full.step == 12
    assert_same(full.algorithm.state_dict(), resumed.algorithm.state_dict())  # policy, EMA, targets, optimisers
    assert resumed.evaluations == [e for e in full.evaluations if e.step > 4]
    assert resumed.best == full.best
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert_same(a["rng"], b["rng"])
    assert_same(a["algorithm"], b["algorithm"])


def test_resume_refuses_other_options_and_a_fresh_run_refuses_an_existing_folder(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    train(train_config(data, tmp_path / "run", "bc_all", num_steps=4))
    with pytest.raises(ValueError, match=r"seed: run has 0, now 1"):
        train(train_config(data, tmp_path / "run", "bc_all", num_steps=8, resume=True, seed=1))
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(train_config(data, tmp_path / "run", "bc_all", num_steps=8))
    with pytest.raises(ValueError, match="--dataset PATH or --task NAME"):
        train_config(None, tmp_path / "x")
    longer = train(train_config(data, tmp_path / "run", "bc_all", num_steps=8, resume=True))  # num_steps may grow
    assert longer.step == 8


def test_cli_resume_takes_the_runs_options_and_refuses_conflicting_ones(tmp_path) -> None:
    from robot.configio import TYPE_KEY
    from training.run_config import parse_cli
    from training.safe_rl.config import RESUME_MAY_CHANGE, TrainConfig, read_run_config

    data = write_tiny_dataset(tmp_path)
    first = train_config(data, tmp_path / "run", "bc_safe", num_steps=4, seed=3)
    train(first)

    def cli(*args: str) -> TrainConfig:
        return parse_cli(TrainConfig, run_config=read_run_config, may_change=RESUME_MAY_CHANGE, args=list(args))

    # tyro takes an algorithm's options after its subcommand; the subcommand starts from the run's values
    resumed = cli("--run-dir", str(tmp_path / "run"), "--resume", "algorithm:bc-safe", "--algorithm.num-steps", "8")
    assert resumed.algorithm_name == "bc_safe" and resumed.seed == 3 and resumed.algorithm.num_steps == 8
    assert resumed.algorithm.hidden == first.algorithm.hidden  # nothing retyped
    assert train(resumed).step == 8
    assert cli("--run-dir", str(tmp_path / "run"), "--resume") == resumed  # config.json records the new length
    with pytest.raises(ValueError, match=r"algorithm\.mode: run has 'safe', now 'all'"):
        cli("--run-dir", str(tmp_path / "run"), "--resume", "algorithm:bc-all")
    with pytest.raises(ValueError, match=r"seed: run has 3, now 0"):
        cli("--run-dir", str(tmp_path / "run"), "--resume", "--seed", "0")
    # a run folder written before union fields were tagged names its algorithm only by algorithm_name
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    del record["config"]["algorithm"][TYPE_KEY]
    (tmp_path / "run" / "config.json").write_text(json.dumps(record))
    assert read_run_config(tmp_path / "run") == resumed


def test_a_crash_while_writing_a_checkpoint_leaves_the_old_last_pt_intact(tmp_path, monkeypatch) -> None:
    data = write_tiny_dataset(tmp_path)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    real_save = torch.save
    seen: dict[str, bytes] = {}

    def save_then_crash(obj, handle, *args, **kwargs):
        if not last.exists():
            return real_save(obj, handle, *args, **kwargs)
        seen["before"] = last.read_bytes()
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # half a file, then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="No space left"):
        train(train_config(data, tmp_path / "run", "bc_all", num_steps=8))
    monkeypatch.undo()
    assert last.read_bytes() == seen["before"]
    assert load_checkpoint(last)["step"] == 4
    assert [p.name for p in last.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path) -> None:
    data = write_tiny_dataset(tmp_path)
    missing = tmp_path / "nothing" / "checkpoints" / "last.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        train(train_config(data, tmp_path / "nothing", "bc_all", resume=True))
    train(train_config(data, tmp_path / "run", "bc_all", num_steps=4))
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:300])  # truncated
    with pytest.raises(CheckpointError, match=rf"{last}: cannot read the checkpoint .*truncated or corrupt"):
        train(train_config(data, tmp_path / "run", "bc_all", num_steps=8, resume=True))
    last.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(last)):
        load_algorithm(last)
    torch.save({"format": "something else"}, last)
    with pytest.raises(CheckpointError, match=re.escape(f"expected a checkpoint of format {CHECKPOINT_FORMAT!r}")):
        load_checkpoint(last)


def test_best_pt_keeps_the_lowest_cost_then_the_highest_reward(tmp_path, monkeypatch) -> None:
    scripted = {2: (0.5, 2.0), 4: (0.3, 1.0), 6: (0.6, 1.0), 8: (0.9, 3.0), 10: (0.6, 1.0)}  # step: (reward, cost)

    def fake_evaluate(algorithm, task, config, env_factory=None):
        step = len(calls) * 2 + 2
        calls.append(step)
        reward, cost = scripted[step]
        return EvalResult(task.name, config.cost_limit, [EpisodeResult(0, 0, 0.0, 0.0, 1, reward, cost)])

    calls: list[int] = []
    monkeypatch.setattr("training.safe_rl.train.evaluate", fake_evaluate)
    data = write_tiny_dataset(tmp_path)
    result = train(train_config(data, tmp_path / "run", "bc_all", num_steps=10, eval_every=2), FakeEnvFactory())
    assert calls == [2, 4, 6, 8, 10]
    assert result.best == EvalScore(6, 0.6, 1.0)  # cost 1 beats 2 and 3; at cost 1, 0.6 beats 0.3; ties keep the first
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["step"] == 6 and best["best"] == {"step": 6, "normalized_reward": 0.6, "normalized_cost": 1.0}
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["best"]["step"] == 6
