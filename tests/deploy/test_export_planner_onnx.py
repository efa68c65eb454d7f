"""ONNX export of the guided planner: numpy host + ONNX Runtime graphs against the TorchScript planner."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="needs the onnx extra")
pytest.importorskip("onnxscript", reason="needs the onnx extra")

from deploy.export import export_planner
from deploy.export_planner import ExportPlannerConfig, build_planner, load_planner_model, main
from deploy.export_planner_onnx import export_planner_onnx
from envs.planner.onnx import ONNX_PLANNER_FORMAT, PLANNER_FORMAT, OnnxPlanner, OnnxPlannerModel
from envs.planner.state import PLANNER_STATE_DIM
from robot.g1 import constants as C
from tests.training.helpers import tiny_planner_model

SETS = ["joystick", "joystick+waypoint+obstacles"]
TOL = 1e-4


def assert_parity(ours: np.ndarray, reference: np.ndarray) -> None:
    """Equal to ``TOL`` relative to the plan's scale: both sides compute in float32, whose rounding grows with the
    values, and barrier guidance pushes some plan entries to tens (measured: 2e-4 apart at a scale near 60, 1e-6
    at a scale near 2). A wrong graph or a missed term is off by O(1) of the scale."""
    scale = max(1.0, float(np.abs(reference).max()))
    assert np.abs(ours - reference).max() < TOL * scale, (np.abs(ours - reference).max(), scale)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny G1 planner (2 DDIM steps, rolling start 1, x0 guidance 0.5) as TorchScript and as ONNX."""
    folder = tmp_path_factory.mktemp("onnx_planner")
    model = tiny_planner_model(folder / "planner_model.pt")
    cfg = ExportPlannerConfig(model=model, sampler_steps=2, guidance_scale=0.5, rolling_start=1)
    planner = build_planner(load_planner_model(model), cfg)
    pt, _ = export_planner(planner, folder / "planner.pt")
    files = export_planner_onnx(planner, folder / "planner.onnx", {"robot": "test"}, int8=True, only_sets=SETS)
    return torch.jit.load(str(pt)), OnnxPlannerModel(files[0]), files


def inputs(B=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, 4, PLANNER_STATE_DIM, generator=gen)
    act = torch.randn(B, 4, C.NUM_JOINTS, generator=gen) * 0.3
    noise = torch.randn(B, 12, 4 + PLANNER_STATE_DIM, generator=gen)
    return obs, act, noise


def joystick(B, P, vx=0.8):
    params = torch.zeros(B, P)
    params[:, 0], params[:, 1] = 1.0, vx  # gate, forward command; waypoint and obstacle parameters all zero
    return params


def everything(B, P):
    params = joystick(B, P)
    params[:, 4:7] = torch.tensor([1.0, 1.5, 0.5])  # waypoint gate, goal
    params[:, 7] = 1.0  # obstacles gate; box 0 active, both cylinder slots zeroed (inactive, at the origin)
    params[:, 8:14] = torch.tensor([0.6, 0.1, 0.2, 0.3, 0.4, 1.0])
    return params


def torchscript(module, obs, act, params, noise, prev=None):
    with torch.enable_grad():
        plan, tokens = module(obs, act, params, noise, prev)
    return plan.detach().numpy(), tokens.detach().numpy()


def onnx(model, obs, act, params, noise, prev=None):
    p = None if params is None else params.numpy()
    return model.sample(obs.numpy(), act.numpy(), p, noise.numpy(), prev)


@pytest.mark.parametrize("guidance", ["none", "joystick", "everything", "gates_closed"])
def test_onnx_planner_matches_torchscript_cold_and_warm(exported, guidance):
    module, model, _ = exported
    obs, act, noise = inputs()
    P = model.param_dim
    params = {"none": None, "joystick": joystick(2, P), "everything": everything(2, P), "gates_closed": None}[guidance]
    if guidance == "gates_closed":
        params = torch.zeros(2, P)
    ts_plan, ts_tokens = torchscript(module, obs, act, params, noise)
    ox_plan, ox_tokens = onnx(model, obs, act, params, noise)
    assert_parity(ox_plan, ts_plan)
    assert_parity(ox_tokens, ts_tokens)
    _, _, noise2 = inputs(seed=1)
    warm_ts, _ = torchscript(module, obs, act, params, noise2, torch.from_numpy(ts_tokens))
    warm_ox, _ = onnx(model, obs, act, params, noise2, ox_tokens)
    assert_parity(warm_ox, warm_ts)
    cold_ox, _ = onnx(model, obs, act, params, noise2)
    assert np.abs(warm_ox - cold_ox).max() > 1e-3  # the warm start changed the plan, so it was compared
    if guidance in ("joystick", "everything"):
        unguided, _ = onnx(model, obs, act, None, noise)
        assert np.abs(ox_plan - unguided).max() > 1e-3  # guidance acted


def test_gradient_graphs_stay_finite_with_zeroed_parameters(exported):
    """A joystick-only call leaves the obstacle slots zeroed (a cylinder of radius 0 at the origin, where the plan
    starts): its graph does not evaluate them; the full graph keeps the distance's sqrt floor."""
    _, model, _ = exported
    x0 = np.zeros((1, model.window, model.token_dim), dtype=np.float32)
    for key, params in zip(SETS, (joystick(1, model.param_dim), everything(1, model.param_dim)), strict=True):
        grad = model.cost_grad(key, x0, params.numpy())
        assert np.isfinite(grad).all() and np.abs(grad).max() > 0.0
    assert model.active_set(joystick(1, model.param_dim).numpy()) == "joystick"
    assert model.active_set(np.zeros((1, model.param_dim), np.float32)) is None


def test_missing_cost_set_companion_files_and_mixups_are_refused(exported, tmp_path):
    _, model, files = exported
    obs, act, noise = inputs()
    params = joystick(2, model.param_dim)
    params[:, 4] = 1.0  # joystick + waypoint: not exported in this fixture
    with pytest.raises(ValueError, match=r"no cost-gradient graph for the terms 'joystick\+waypoint'"):
        onnx(model, obs, act, params, noise)
    for f in files:
        (tmp_path / f.name).write_bytes(f.read_bytes())
    main_file = tmp_path / files[0].name
    (tmp_path / "planner.encode.onnx").write_bytes((tmp_path / "planner.decode.onnx").read_bytes())
    with pytest.raises(ValueError, match="different exports"):
        OnnxPlannerModel(main_file)
    (tmp_path / "planner.encode.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="missing companion"):
        OnnxPlannerModel(main_file)
    with pytest.raises(ValueError, match="precision"):
        OnnxPlannerModel(files[0], precision="fp16")


def test_metadata_carries_tables_layout_and_extra(exported):
    _, model, _ = exported
    meta = model.meta
    assert meta["format"] == ONNX_PLANNER_FORMAT and meta["extra"] == {"robot": "test"}
    assert meta["sampler_steps"] == [19, 9, -1] and len(meta["abar_ext"]) == 21 and meta["abar_ext"][0] == 1.0
    assert meta["gated_terms"] == ["joystick", "waypoint", "obstacles"] and meta["cost_param_dim"] == model.param_dim
    assert set(meta["cost_graphs"]) == set(SETS) and "denoiser_int8" in meta["graphs"]


def test_int8_denoiser_plans_close_to_float(exported):
    _, model, files = exported
    int8 = OnnxPlannerModel(files[0], precision="int8")
    obs, act, noise = inputs(B=4, seed=3)
    params = joystick(4, model.param_dim)
    f32, _ = onnx(model, obs, act, params, noise)
    q8, _ = onnx(int8, obs, act, params, noise)
    err = np.abs(q8 - f32).mean()
    assert 0.0 < err < 0.05 * np.abs(f32).mean()


def test_onnx_planner_fresh_rows_start_cold(exported):
    _, model, _ = exported
    planner = OnnxPlanner(model, seed=3)
    obs, act, _ = inputs()
    params = joystick(2, model.param_dim).numpy()
    planner.plan(obs.numpy(), act.numpy(), params)
    prev = planner.prev.copy()
    state = planner.rng.bit_generator.state
    got = planner.plan(obs.numpy(), act.numpy(), params, fresh=np.array([True, False]))
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    noise = rng.standard_normal((2, model.window, model.token_dim), dtype=np.float32)
    cold, _ = model.sample(obs.numpy()[:1], act.numpy()[:1], params[:1], noise[:1])
    warm, _ = model.sample(obs.numpy()[1:], act.numpy()[1:], params[1:], noise[1:], prev[1:])
    S = model.state_dim
    np.testing.assert_allclose(got[:1], cold[:, :, S:], atol=1e-6)
    np.testing.assert_allclose(got[1:], warm[:, :, S:], atol=1e-6)


def test_classifier_guidance_is_refused(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    cfg = ExportPlannerConfig(model=model, sampler_steps=2, guidance_mode="classifier")
    with pytest.raises(ValueError, match="classifier guidance"):
        export_planner_onnx(build_planner(load_planner_model(model), cfg), tmp_path / "p.onnx")


@pytest.mark.slow
def test_export_planner_cli_writes_every_cost_set(tmp_path):
    model = tiny_planner_model(tmp_path / "planner_model.pt")
    main(ExportPlannerConfig(model=model, out=tmp_path / "planner.pt", sampler_steps=2, onnx=True))
    meta = json.loads((tmp_path / "planner.json").read_text())  # the TorchScript pair is unchanged
    assert meta["format"] == PLANNER_FORMAT
    onnx_model = OnnxPlannerModel(tmp_path / "planner.onnx")
    assert len(onnx_model.grads) == 7 and onnx_model.meta["extra"]["ctrl_dt_s"] == 0.02


def test_mirrored_action_head_exports_to_onnx_and_stays_equivariant(tmp_path):
    """The committed planner's kind of head (mirrored with the G1's maps) in both exports: ONNX equals TorchScript,
    and the executed action of the mirrored input is the mirror image of the action."""
    import dataclasses

    from envs.planner.state import planner_state_mirror_map
    from policies.diffusion.planner import DiffusionPlanner, PlannerConfig
    from robot.configio import from_jsonable, to_jsonable
    from training.planner.action_head import set_g1_mirror_maps

    path = tiny_planner_model(tmp_path / "planner_model.pt")
    model = load_planner_model(path)
    pc = from_jsonable(PlannerConfig, model["planner_config"], "tiny")
    pc = dataclasses.replace(pc, action_head_states=2, action_head_width=32, action_head_mirror=True)
    headed = DiffusionPlanner(pc)
    headed.load_weights(model["weights"], without_action_head=True)
    set_g1_mirror_maps(headed)
    torch.save({**model, "planner_config": to_jsonable(pc), "weights": headed.weights()}, path)
    planner = build_planner(load_planner_model(path), ExportPlannerConfig(model=path, sampler_steps=2))
    pt, _ = export_planner(planner, tmp_path / "planner.pt")
    files = export_planner_onnx(planner, tmp_path / "planner.onnx", {"robot": "test"}, only_sets=["joystick"])
    module, onnx_model = torch.jit.load(str(pt)), OnnxPlannerModel(files[0])
    obs, act, noise = inputs()
    params = joystick(2, onnx_model.param_dim, vx=0.0)  # a symmetric command: standing still
    ts_plan, _ = torchscript(module, obs, act, params, noise)
    assert_parity(onnx(onnx_model, obs, act, params, noise)[0], ts_plan)
    # Equivariance of the executed action alone: the head on a fixed plan, original and mirrored.
    perm, sign = planner_state_mirror_map()
    S = PLANNER_STATE_DIM
    plan = torch.from_numpy(ts_plan)

    def ms(x: torch.Tensor) -> torch.Tensor:
        return x[..., perm] * torch.as_tensor(sign, dtype=torch.float32)

    def ma(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(C.mirror_joint_values(x.numpy()).astype(np.float32))

    with torch.no_grad():
        a = planner._head_action(obs, act, plan)
        a_m = planner._head_action(ms(obs), ma(act), torch.cat([ms(plan[..., :S]), ma(plan[..., S:])], dim=-1))
    torch.testing.assert_close(a_m, ma(a), atol=1e-5, rtol=1e-5)
