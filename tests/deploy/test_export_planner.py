"""Exporting a trained G1 planner with its gated task costs."""

import json

import pytest
import torch

from deploy.export_planner import ExportPlannerConfig, build_planner, load_planner_model, main
from envs.planner.state import PLANNER_STATE_DIM
from robot.g1 import constants as C
from tests.training.helpers import tiny_critic_file, tiny_planner_model


def test_export_carries_gated_costs_and_matches_eager(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    cfg = ExportPlannerConfig(model=model, out=tmp_path / "out" / "planner.pt", sampler_steps=2, guidance_scale=0.5)
    pt, meta_path = main(cfg)
    meta = json.loads(meta_path.read_text())
    assert [t["params"][0] for t in meta["cost_terms"]] == ["joystick_gate", "waypoint_gate", "obstacles_gate"]
    assert meta["extra"]["ctrl_dt_s"] == 0.02 and meta["guidance"]["scale"] == 0.5 and len(meta["sampler_steps"]) == 3
    scripted = torch.jit.load(str(pt))
    eager = build_planner(load_planner_model(model), cfg)
    B, P = 2, meta["cost_param_dim"]
    obs, act = torch.randn(B, 4, PLANNER_STATE_DIM), torch.zeros(B, 4, C.NUM_JOINTS)
    noise = torch.randn(B, 12, meta["token_dim"])
    params = torch.zeros(B, P)
    params[:, 0], params[:, 1] = 1.0, 0.8  # joystick on: 0.8 m/s forward
    plan_s, _ = scripted(obs, act, params, noise, None)
    plan_e, _ = eager(obs, act, params, noise, None)
    torch.testing.assert_close(plan_s, plan_e, atol=1e-5, rtol=1e-5)
    off, _ = scripted(obs, act, torch.zeros(B, P), noise, None)  # every gate closed = unguided
    unguided, _ = scripted(obs, act, None, noise, None)
    torch.testing.assert_close(off, unguided)
    assert not torch.allclose(plan_s, unguided)


def test_missing_and_foreign_model_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt: no planner model"):
        load_planner_model(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable planner model"):
        load_planner_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"expected a 'steer\.planner_model' file"):
        load_planner_model(tmp_path / "other.pt")
    model = tiny_planner_model(tmp_path / "m.pt")
    data = load_planner_model(model)
    config = data["planner_config"]
    data["planner_config"] = {**config, "denoiser": {**config["denoiser"], "width": 64}}
    with pytest.raises(ValueError, match="do not fit"):
        build_planner(data, ExportPlannerConfig(model=model))


def test_int8_export_plans_close_to_float_and_refuses_classifier_guidance(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    base = {"model": model, "sampler_steps": 2, "guidance_scale": 0.5}
    pt, meta_path = main(ExportPlannerConfig(**base, out=tmp_path / "int8" / "planner.pt", int8=True))
    meta = json.loads(meta_path.read_text())
    scripted = torch.jit.load(str(pt))
    quantized = build_planner(load_planner_model(model), ExportPlannerConfig(**base, int8=True))
    assert quantized.config.denoiser_int8
    assert not any(type(m) is torch.nn.Linear for m in quantized.diffusion.denoiser.modules())
    eager = build_planner(load_planner_model(model), ExportPlannerConfig(**base))
    assert not eager.config.denoiser_int8
    B, P = 2, meta["cost_param_dim"]
    obs, act = torch.randn(B, 4, PLANNER_STATE_DIM), torch.zeros(B, 4, C.NUM_JOINTS)
    noise = torch.randn(B, 12, meta["token_dim"])
    params = torch.zeros(B, P)
    params[:, 0], params[:, 1] = 1.0, 0.8
    plan_s, _ = scripted(obs, act, params, noise, None)  # guided: x0 guidance needs no gradient of the network
    plan_q, _ = quantized(obs, act, params, noise, None)
    plan_f, _ = eager(obs, act, params, noise, None)
    plan_s, plan_q, plan_f = plan_s.detach(), plan_q.detach(), plan_f.detach()
    torch.testing.assert_close(plan_s, plan_q, atol=1e-5, rtol=1e-5)  # the file runs the quantized network
    assert 0.0 < float((plan_q - plan_f).abs().mean()) < 0.05 * float(plan_f.abs().mean())  # quantized, and close
    with pytest.raises(ValueError, match="classifier"):
        build_planner(load_planner_model(model), ExportPlannerConfig(**base, guidance_mode="classifier", int8=True))


def test_feasibility_term_exports_with_its_gate_and_leaves_plans_alone_when_closed(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    base = {"model": model, "sampler_steps": 2, "guidance_scale": 0.5}
    critic = tiny_critic_file(tmp_path / "critic.pt")
    cfg = ExportPlannerConfig(  # threshold far below: the random critic's every value counts
        **base, out=tmp_path / "f" / "planner.pt", feasibility_critic=critic, feasibility_threshold=-100.0
    )
    pt, meta_path = main(cfg)
    meta = json.loads(meta_path.read_text())
    assert [t["params"][0] for t in meta["cost_terms"]][-1] == "feasibility_gate"
    assert meta["extra"]["feasibility"]["critic"] == str(critic) and "feasibility" in meta["extra"]["task_terms"]
    plain_pt, plain_meta = main(ExportPlannerConfig(**base, out=tmp_path / "p" / "planner.pt"))
    P = meta["cost_param_dim"]
    assert P == json.loads(plain_meta.read_text())["cost_param_dim"] + 1
    scripted, plain = torch.jit.load(str(pt)), torch.jit.load(str(plain_pt))
    eager = build_planner(load_planner_model(model), cfg)
    B = 3
    obs, act = torch.randn(B, 4, PLANNER_STATE_DIM), torch.zeros(B, 4, C.NUM_JOINTS)
    noise = torch.randn(B, 12, meta["token_dim"])
    params = torch.zeros(B, P)
    params[:, 0], params[:, 1] = 1.0, 0.8  # joystick on
    closed, _ = scripted(obs, act, params, noise, None)
    without, _ = plain(obs, act, params[:, :-1], noise, None)
    assert torch.equal(closed, without)  # gate 0: bit for bit the plan of the planner without the term
    all_closed, _ = scripted(obs, act, torch.zeros(B, P), noise, None)
    unguided, _ = scripted(obs, act, None, noise, None)
    assert torch.equal(all_closed, unguided)  # every gate 0: bit for bit the unguided plan
    params[:, -1] = 1.0
    opened_s, _ = scripted(obs, act, params, noise, None)
    opened_e, _ = eager(obs, act, params, noise, None)
    torch.testing.assert_close(opened_s, opened_e, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(opened_s, closed)
    action_cfg = ExportPlannerConfig(
        **base, out=tmp_path / "a" / "planner.pt", feasibility_critic=critic, feasibility_term="action",
        feasibility_threshold=-100.0,
    )  # fmt: skip
    pt_a, meta_a = main(action_cfg)
    assert json.loads(meta_a.read_text())["extra"]["feasibility"]["term"] == "action"
    acted_s, _ = torch.jit.load(str(pt_a))(obs, act, params, noise, None)
    acted_e, _ = build_planner(load_planner_model(model), action_cfg)(obs, act, params, noise, None)
    torch.testing.assert_close(acted_s, acted_e, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(acted_s, closed)
    with pytest.raises(ValueError, match="control period"):
        build_planner(
            load_planner_model(model),
            ExportPlannerConfig(**base, feasibility_critic=tiny_critic_file(tmp_path / "c2.pt", ctrl_dt_s=0.01)),
        )


def test_keepout_term_exports_with_the_region_as_its_parameters(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    base = {"model": model, "sampler_steps": 2, "guidance_scale": 0.5}
    critic = tiny_critic_file(tmp_path / "keepout.pt", keepout_radius_m=0.5)
    cfg = ExportPlannerConfig(
        **base, out=tmp_path / "k" / "planner.pt", keepout_critic=critic, keepout_threshold=-100.0, keepout_weight=2.0
    )
    pt, meta_path = main(cfg)
    meta = json.loads(meta_path.read_text())
    assert meta["cost_terms"][-1]["params"] == ["keepout_gate", "region_x", "region_y"]
    assert meta["extra"]["keepout"]["radius_m"] == 0.5 and meta["extra"]["keepout"]["weight"] == 2.0
    assert "keepout" in meta["extra"]["task_terms"]
    plain_pt, _ = main(ExportPlannerConfig(**base, out=tmp_path / "p" / "planner.pt"))
    scripted, plain = torch.jit.load(str(pt)), torch.jit.load(str(plain_pt))
    B, P = 3, meta["cost_param_dim"]
    obs, act = torch.randn(B, 4, PLANNER_STATE_DIM), torch.zeros(B, 4, C.NUM_JOINTS)
    noise = torch.randn(B, 12, meta["token_dim"])
    params = torch.zeros(B, P)
    params[:, 0], params[:, 1] = 1.0, 0.8  # joystick on
    params[:, -2:] = torch.tensor([1.0, 0.2])  # a region 1 m ahead, its gate closed
    closed, _ = scripted(obs, act, params, noise, None)
    without, _ = plain(obs, act, params[:, :-3], noise, None)
    assert torch.equal(closed, without)  # gate 0: bit for bit the plan without the term
    params[:, -3] = 1.0
    opened_s, _ = scripted(obs, act, params, noise, None)
    opened_e, _ = build_planner(load_planner_model(model), cfg)(obs, act, params, noise, None)
    torch.testing.assert_close(opened_s, opened_e, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(opened_s, closed)
    with pytest.raises(ValueError, match="not a keep-out critic"):
        build_planner(load_planner_model(model), ExportPlannerConfig(**base, keepout_critic=tiny_critic_file(
            tmp_path / "fall.pt")))  # fmt: skip
    with pytest.raises(ValueError, match="pass it as --keepout-critic"):
        build_planner(load_planner_model(model), ExportPlannerConfig(**base, feasibility_critic=critic))
