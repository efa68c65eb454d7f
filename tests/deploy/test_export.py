"""Exported planners match eager, run with torch.jit.load alone, and carry complete metadata."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from deploy.export import export_planner, load_exported
from tests.policies.test_planner import make_planner


@pytest.mark.parametrize(("latent_dim", "denoiser"), [(0, "transformer"), (3, "mlp")])
@pytest.mark.parametrize("mode", ["x0", "classifier"])
def test_exported_matches_eager_guided_unguided_and_rolling(tmp_path, latent_dim, denoiser, mode) -> None:
    planner, states, actions = make_planner(latent_dim, denoiser, mode=mode, rolling_start=4)
    pt, meta = export_planner(planner, tmp_path / "planner.pt", extra_metadata={"robot": "test"})
    loaded, metadata = load_exported(pt)
    gen = torch.Generator().manual_seed(4)
    obs, act = states[:3, :4], actions[:3, :4]
    noise = torch.randn(3, 12, planner.config.token_dim, generator=gen)
    goal = torch.tensor([[1.0, 2.0]]).expand(3, 2)
    for params in (goal, None):
        eager_plan, eager_tokens = planner(obs, act, params, noise)
        plan, tokens = loaded(obs, act, params, noise, None)
        torch.testing.assert_close(plan, eager_plan, atol=1e-5, rtol=0)
        warm_eager, _ = planner(obs, act, params, noise, eager_tokens)
        warm, _ = loaded(obs, act, params, noise, tokens)
        torch.testing.assert_close(warm, warm_eager, atol=1e-5, rtol=0)
    assert metadata["extra"] == {"robot": "test"}
    assert metadata["cost_param_dim"] == 2 and metadata["cost_terms"][0]["params"] == ["goal_0", "goal_1"]
    assert metadata["sampler_steps"] == planner.diffusion.steps.tolist()
    assert metadata["guidance"]["mode"] == mode
    assert json.loads(meta.read_text()) == metadata


def test_exported_file_runs_without_any_steer_import(tmp_path) -> None:
    planner, states, actions = make_planner(3, mode="classifier")
    pt, _ = export_planner(planner, tmp_path / "p.pt")
    torch.save({"obs": states[:2, :4], "act": actions[:2, :4]}, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"policies", "envs", "robot", "training", "deploy"}}:
                    raise ImportError("project import attempted: " + name)
        sys.meta_path.insert(0, Block())
        import torch
        m = torch.jit.load({str(pt)!r})
        x = torch.load({str(tmp_path / "inputs.pt")!r}, weights_only=True)
        plan, tokens = m(x["obs"], x["act"], torch.zeros(2, 2), None, None)
        assert plan.shape == (2, 8, 6) and torch.isfinite(plan).all()
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_missing_files_and_bad_path(tmp_path) -> None:
    planner, _, _ = make_planner()
    with pytest.raises(ValueError, match=r"ending in \.pt"):
        export_planner(planner, tmp_path / "planner.onnx")
    pt, meta = export_planner(planner, tmp_path / "planner.pt")
    meta.unlink()
    with pytest.raises(FileNotFoundError, match=r"planner\.json to exist"):
        load_exported(pt)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
