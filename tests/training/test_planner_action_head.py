"""training.planner.action_head: the head is fitted on the planner's own guided samples and exports with it."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from deploy.export_planner import ExportPlannerConfig
from deploy.export_planner import main as export_main
from envs.planner.state import planner_state_mirror_map
from policies.diffusion.planner import DiffusionPlanner, load_planner_model
from robot.g1 import constants as C
from tests.training.helpers import tiny_planner_model, write_random_planner_dataset
from training.checkpoint import load_checkpoint
from training.planner.action_head import (
    ActionHeadConfig,
    fit,
    g1_costs,
    head_config,
    sample_plans,
    task_params,
)


def _learnable_dataset(path):
    """Random episodes whose expert action is a function of the current state (which the head sees)."""
    from envs.planner.dataset import load_planner_dataset, write_planner_dataset

    write_random_planner_dataset(path, episodes=8, steps=30)
    data = load_planner_dataset(path)
    arrays = {k: np.asarray(v) for k, v in data.arrays.items()}
    # (g(s) + M g(M s)) with g(s) = 0.8 s[:29] and M the G1's mirror maps: a function the equivariant head can fit
    perm, sign = planner_state_mirror_map()
    g = 0.8 * arrays["state"][..., :29]
    g_m = 0.8 * (arrays["state"][..., perm] * sign)[..., :29]
    arrays["expert_action"] = (g + C.mirror_joint_values(g_m)).astype(np.float32)
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
    # the head is made left-right equivariant with the G1's maps, which travel with the weights
    assert model["planner_config"]["action_head_mirror"] is True
    perm, sign = planner_state_mirror_map()
    assert torch.equal(model["weights"]["mirror.state_perm"], torch.as_tensor(perm))
    assert torch.equal(model["weights"]["mirror.state_sign"], torch.as_tensor(sign, dtype=torch.float32))
    assert torch.equal(
        model["weights"]["mirror.action_sign"], torch.tensor(np.array(C.MIRROR_JOINT_SIGN), dtype=torch.float32)
    )
    assert json.loads((cfg.out_dir / "head_metrics.json").read_text())["settings"]["states"] == 2
    pt, meta_path = export_main(ExportPlannerConfig(model=cfg.out_dir / "planner_model.pt", out=tmp_path / "p.pt"))
    meta = json.loads(meta_path.read_text())
    assert meta["action_head_states"] == 2
    module = torch.jit.load(str(pt))
    plan, _ = module(torch.zeros(3, 4, 91), torch.zeros(3, 4, 29), None, torch.randn(3, 12, meta["token_dim"]), None)
    assert plan.shape == (3, 8, 91 + 29) and torch.isfinite(plan).all()
    # the head learns from the diffusion model's plans (first action included), not from its own output
    cache = load_checkpoint(cfg.out_dir / "head_windows.pt")
    pc = dataclasses.replace(
        head_config(load_planner_model(cfg.model), cfg), action_head_states=0, action_head_mirror=False
    )
    plain = DiffusionPlanner(pc, g1_costs(pc.history, 0.02))
    plain.load_weights(load_planner_model(cfg.model)["weights"])
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


def test_sampled_tasks_use_the_exports_cost_layout_and_ask_for_what_the_expert_did():
    """Joystick windows carry their recorded command; waypoint windows a goal where the root really was later,
    in the plan frame of the window's current root (x ahead)."""
    from deploy.export_planner import g1_cost_sum

    costs = g1_costs(4, 0.02)
    assert costs.param_layout() == g1_cost_sum(ExportPlannerConfig(), 4, 0.02).param_layout()
    E, T, n = 3, 400, 4000
    t = np.arange(T) * 0.02
    heading = np.array([0.3, -2.0, 1.2])  # each episode walks straight at 0.5 m/s along its heading
    root_pos = np.zeros((E, T, 3))
    root_pos[..., 0] = 1.0 + 0.5 * t * np.cos(heading)[:, None]
    root_pos[..., 1] = -2.0 + 0.5 * t * np.sin(heading)[:, None]
    root_quat = np.zeros((E, T, 4))
    root_quat[..., 0], root_quat[..., 3] = np.cos(heading / 2)[:, None], np.sin(heading / 2)[:, None]
    arrays = {"root_pos": root_pos, "root_quat": root_quat, "ctrl_dt_s": 0.02}
    rng = np.random.default_rng(0)
    w = {
        "episode": torch.as_tensor(rng.integers(0, E, n)),
        "step": torch.as_tensor(rng.integers(4, T - 1, n)),
        "command": torch.tensor([[0.5, -0.2, 0.3]]).repeat(n, 1),
    }
    cfg = ActionHeadConfig(task_mix=(0.6, 0.4), lookahead_s=(1.0, 3.0))
    params = task_params(costs, w, arrays, cfg, seed=0)
    joystick, waypoint = params[:, 0] == 1, params[:, 4] == 1
    assert abs(float(joystick.float().mean()) - 0.6) < 0.03
    assert bool((joystick ^ waypoint).all()) and float(params[:, 7:].abs().sum()) == 0.0  # no obstacles
    torch.testing.assert_close(params[joystick, 1:4], w["command"][joystick])
    goal = params[waypoint, 5:7].double()
    assert float(goal[:, 1].abs().max()) < 1e-5  # straight ahead of a root walking straight
    end = (w["step"][waypoint] + 50) >= T - 1  # goals cut at the episode's end are nearer
    ahead = goal[~end, 0]
    assert float(ahead.min()) >= 0.5 - 1e-4 and float(ahead.max()) <= 1.5 + 1e-4  # 1-3 s at 0.5 m/s
    with pytest.raises(ValueError, match="task_mix"):
        ActionHeadConfig(task_mix=(1.0,))


def test_history_velocity_noise_shifts_every_linear_velocity_by_one_vector():
    from envs.planner.state import PLANNER_STATE_DIM, linear_velocity_columns
    from training.planner.action_head import add_velocity_noise

    states = torch.randn(2000, 4, PLANNER_STATE_DIM)
    assert add_velocity_noise(states, 0.0, seed=0) is states
    noisy = add_velocity_noise(states, 0.04, seed=0)
    diff = noisy - states  # (n, Hh, S)
    cols = torch.as_tensor(linear_velocity_columns())  # (1 + K, 3)
    shift = diff[:, :, cols]  # (n, Hh, 1 + K, 3)
    torch.testing.assert_close(shift, shift[:, :, :1].expand_as(shift))  # the same vector on every body
    others = torch.ones(PLANNER_STATE_DIM, dtype=torch.bool)
    others[cols.flatten()] = False
    assert torch.equal(diff[:, :, others], torch.zeros_like(diff[:, :, others]))  # positions, tilt, rates untouched
    # per-window std uniform in [0, 0.04]: overall std sqrt(0.04^2 / 3) = 0.023; steps independent
    assert float(shift[:, :, 0].std()) == pytest.approx(0.04 / 3**0.5, rel=0.05)
    assert float(torch.corrcoef(shift[:, :2, 0, 0].T)[0, 1]) == pytest.approx(0.0, abs=0.06)
    assert torch.equal(add_velocity_noise(states, 0.04, seed=0), noisy)  # seeded
    with pytest.raises(ValueError, match="history_velocity_noise_m_per_s"):
        ActionHeadConfig(history_velocity_noise_m_per_s=-0.1)
