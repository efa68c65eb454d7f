"""training.safe_rl.export: a policy file acts exactly as its checkpoint, is smaller, and bad files are refused."""

import pytest
import torch

from envs.safe_rl import get_task
from tests.training.helpers import FakeEnvFactory, train_config, write_tiny_dataset
from training.safe_rl.checkpoint import POLICY_FORMAT, CheckpointError, load_policy_or_checkpoint, save_policy
from training.safe_rl.config import EvalConfig
from training.safe_rl.evaluate import evaluate, load_algorithm
from training.safe_rl.export import cli, export_policy
from training.safe_rl.train import train


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["fisor", "bc_all", "bcq_lag"])
def test_the_policy_file_acts_as_its_checkpoint(tmp_path, name) -> None:
    data = write_tiny_dataset(tmp_path)
    train(train_config(data, tmp_path / "run", name, num_steps=3))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    out = export_policy(checkpoint, tmp_path / "policies" / f"{name}.pt")
    assert out.stat().st_size < checkpoint.stat().st_size  # no optimiser or RNG state
    payload = load_policy_or_checkpoint(out)
    assert payload["format"] == POLICY_FORMAT and payload["step"] == 3 and "optimizers" not in payload
    assert ("acting_parts" in payload) == (name == "fisor")  # FISOR keeps what acting reads: EMA actor, Q_h
    from_checkpoint, _ = load_algorithm(checkpoint)
    from_policy, _ = load_algorithm(out)
    ball, cfg = get_task("BallRun"), EvalConfig(episodes=2, seeds=(4,))
    a = evaluate(from_checkpoint, ball, cfg, FakeEnvFactory(length=4)).summary()
    b = evaluate(from_policy, ball, cfg, FakeEnvFactory(length=4)).summary()
    assert a == b
    obs = torch.randn(5, 7)
    same_draws = [torch.Generator().manual_seed(9) for _ in range(2)]
    assert torch.equal(from_checkpoint.act(obs, same_draws[0]), from_policy.act(obs, same_draws[1]))
    if name == "fisor":  # a file without a part acting reads is refused, not run with random weights
        del payload["policy"][next(k for k in payload["policy"] if k.startswith("actor_ema."))]
        save_policy(tmp_path / "broken.pt", payload)
        with pytest.raises(CheckpointError, match="missing keys of the acting parts"):
            load_algorithm(tmp_path / "broken.pt")


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys) -> None:
    data = write_tiny_dataset(tmp_path)
    train(train_config(data, tmp_path / "run", "bc_all", num_steps=2))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    out = tmp_path / "p.pt"
    assert cli(["--checkpoint", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "nope.pt: no checkpoint there" in capsys.readouterr().err and not out.exists()
    assert cli(["--checkpoint", str(checkpoint), "--out", str(checkpoint)]) == 2
    assert "the same file as --checkpoint" in capsys.readouterr().err
    # weights that do not fit the stored config (another network width) are refused on load
    policy = export_policy(checkpoint, out)
    payload = load_policy_or_checkpoint(policy)
    payload["config"]["algorithm"]["hidden"] = [8, 8]
    save_policy(tmp_path / "mismatch.pt", payload)
    with pytest.raises(CheckpointError, match="do not fit the bc_all config"):
        load_algorithm(tmp_path / "mismatch.pt")
    # a policy file is not a checkpoint to resume from
    torch.save({"format": POLICY_FORMAT, "step": 1}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"policy file lacks \['config', 'policy', 'data'\]"):
        load_policy_or_checkpoint(tmp_path / "partial.pt")
