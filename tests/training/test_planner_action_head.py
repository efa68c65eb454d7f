"""training.planner.action_head: the head is fitted on the planner's own guided samples and exports with it."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from deploy.export_planner import ExportPlannerConfig
from deploy.export_planner import main as export_main
from policies.diffusion.planner import DiffusionPlanner
from tests.training.helpers import tiny_planner_model, write_random_planner_dataset
from training.checkpoint import load_checkpoint
from training.planner.action_head import (
    ActionHeadConfig,
    fit,
    g1_costs,
    head_config,
    load_model_file,
    sample_plans,
    task_params,
)


def _learnable_dataset(path):
    """Random episodes whose expert action is a function of the current state (which the head sees)."""
    from envs.planner_dataset import load_planner_dataset, write_planner_dataset

    write_random_planner_dataset(path, episodes=8, steps=30)
    data = load_planner_dataset(path)
    arrays = {k: np.asarray(v) for k, v in data.arrays.items()}
    arrays["expert_action"] = 0.8 * arrays["state"][..., :29]
    path.unlink()
    return write_planner_dataset(path, type(data)(arrays, data.ctrl_dt_s, {"test": True}))


def _cfg(tmp_path, **kw) -> ActionHeadConfig:
    data = _learnable_dataset(tmp_path / "d.h5")
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    base = {"windows": 512, "val_windows": 64, "steps": 300, "batch_size": 32, "width": 32, "torch_threads": 1}
    return ActionHeadConfig(model=model, data=data, out_dir=tmp_path / "head", sampler_steps=2, **{**base, **kw})


def test_fit_writes_a_planner_with_its_head_that_exports_and_plans(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    metrics = fit(cfg)
    assert set(metrics) >= {"val_leg_rmse_head", "val_leg_rmse_planner_first_action", "settings"}
    # the head learns the action from the history; the random planner's first action knows nothing of it
    assert metrics["val_leg_rmse_head"] < metrics["val_leg_rmse_planner_first_action"]
    model = load_checkpoint(cfg.out_dir / "planner_model.pt")
    assert model["planner_config"]["action_head_states"] == 2
    assert model["planner_config"]["diffusion"]["sampler"]["num_steps"] == 2  # the settings it was fitted for
    assert any(k.startswith("action_head.") for k in model["weights"])
    assert json.loads((cfg.out_dir / "head_metrics.json").read_text())["settings"]["states"] == 2
    pt, meta_path = export_main(ExportPlannerConfig(model=cfg.out_dir / "planner_model.pt", out=tmp_path / "p.pt"))
    meta = json.loads(meta_path.read_text())
    assert meta["action_head_states"] == 2
    module = torch.jit.load(str(pt))
    plan, _ = module(torch.zeros(3, 4, 91), torch.zeros(3, 4, 29), None, torch.randn(3, 12, meta["token_dim"]), None)
    assert plan.shape == (3, 8, 91 + 29) and torch.isfinite(plan).all()
    # the head learns from the diffusion model's plans (first action included), not from its own output
    cache = load_checkpoint(cfg.out_dir / "head_windows.pt")
    pc = dataclasses.replace(head_config(load_model_file(cfg.model), cfg), action_head_states=0)
    plain = DiffusionPlanner(pc, g1_costs(pc.history, 0.02))
    plain.load_weights(load_model_file(cfg.model)["weights"])
    val = cache["val"]
    torch.testing.assert_close(sample_plans(plain.eval(), val, 2, cfg.seed + 4, "check"), val["plan"])
    # a rerun with the same settings reuses the sampled windows and gives the same head
    fit(cfg)
    assert "reusing the sampled windows" in capsys.readouterr().out
    again = load_checkpoint(cfg.out_dir / "planner_model.pt")
    assert all(torch.equal(v, again["weights"][k]) for k, v in model["weights"].items())


def test_errors_name_the_problem(tmp_path):
    cfg = _cfg(tmp_path, steps=5)
    fit(cfg)
    with pytest.raises(ValueError, match="already has an action head"):
        fit(ActionHeadConfig(**{**cfg.__dict__, "model": cfg.out_dir / "planner_model.pt"}))
    with pytest.raises(FileNotFoundError, match="no planner model"):
        fit(ActionHeadConfig(**{**cfg.__dict__, "model": tmp_path / "missing.pt"}))
    with pytest.raises(ValueError, match="action_key"):
        ActionHeadConfig(action_key="actions")


def test_sampled_tasks_use_the_exports_cost_layout_and_follow_the_mix(tmp_path):
    from deploy.export_planner import g1_cost_sum

    costs = g1_costs(4, 0.02)
    assert costs.param_layout() == g1_cost_sum(ExportPlannerConfig(), 4, 0.02).param_layout()
    command = torch.tensor([[0.5, -0.2, 0.3]]).repeat(4000, 1)
    cfg = ActionHeadConfig(task_mix=(0.4, 0.3, 0.2, 0.1), goal_distance_m=(1.0, 4.0))
    params = task_params(costs, command, cfg, seed=0)
    joystick, waypoint, obstacles = params[:, 0] == 1, params[:, 4] == 1, params[:, 7] == 1
    unguided = ~(joystick | waypoint)
    for share, mask in ((0.4, joystick), (0.5, waypoint), (0.2, obstacles), (0.1, unguided)):
        assert abs(float(mask.float().mean()) - share) < 0.03
    assert not (joystick & waypoint).any() and bool((waypoint[obstacles]).all())
    torch.testing.assert_close(params[joystick, 1:4], command[joystick])
    dist = params[waypoint, 5:7].norm(dim=1)
    assert float(dist.min()) >= 1.0 and float(dist.max()) <= 4.0
    # the wall sits halfway to the goal, across the path, active; the cylinders stay inactive
    torch.testing.assert_close(params[obstacles, 8:10], 0.5 * params[obstacles, 5:7])
    assert bool((params[obstacles, 13] == 1).all()) and bool((params[:, 17] == 0).all())
    assert float(params[unguided].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="task_mix"):
        ActionHeadConfig(task_mix=(1.0, 0.0, 0.0))
