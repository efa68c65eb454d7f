"""The shared runtime of exported planners: warm starts, and worlds whose episode has just begun start cold."""

import json

import torch

from deploy.export_planner import ExportPlannerConfig, main
from envs.planner.runtime import ExportedPlanner
from envs.planner.state import PLANNER_STATE_DIM
from robot.g1 import constants as C
from tests.training.helpers import tiny_planner_model


def test_fresh_rows_start_cold_and_the_others_stay_warm(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    pt, meta_path = main(ExportPlannerConfig(model=model, out=tmp_path / "p.pt", sampler_steps=2, rolling_start=1))
    meta = json.loads(meta_path.read_text())
    module = torch.jit.load(str(pt))
    planner = ExportedPlanner(module, meta, seed=3)
    B, S = 2, planner.state_dim
    states, actions = torch.randn(B, 4, PLANNER_STATE_DIM), torch.zeros(B, 4, C.NUM_JOINTS)
    params = torch.zeros(B, planner.param_dim)
    params[:, 0], params[:, 1] = 1.0, 0.5
    planner.plan(states, actions, params)  # cold: no previous plan
    prev = planner.prev.clone()
    gen_state = planner.gen.get_state()
    got = planner.plan(states, actions, params, fresh=torch.tensor([True, False]))

    noise = torch.randn(B, planner.window, planner.token_dim, generator=torch.Generator().set_state(gen_state))
    with torch.enable_grad():
        cold, _ = module(states[:1], actions[:1], params[:1], noise[:1], None)
        warm, _ = module(states[1:], actions[1:], params[1:], noise[1:], prev[1:])
        warm0, _ = module(states[:1], actions[:1], params[:1], noise[:1], prev[:1])
    torch.testing.assert_close(got[:1], cold.detach()[:, :, S:])
    torch.testing.assert_close(got[1:], warm.detach()[:, :, S:])
    assert not torch.allclose(cold.detach(), warm0.detach())  # a warm row 0 would have planned otherwise
    assert planner.prev.shape == prev.shape  # the merged tokens warm-start the next call
