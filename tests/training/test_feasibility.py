"""The G1 planner's feasibility critic: constraint signals, the HJ backup on planner transitions, the guidance term."""

import copy
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from envs.planner.dataset import PlannerDataset, write_planner_dataset
from envs.planner.feasibility import (
    ConstraintConfig,
    FeasibilityCost,
    KeepOutCost,
    constraint_signal,
    fall_signal,
    joint_limit_signal,
    keepout_signal,
    region_offset,
    up_z,
)
from envs.planner.state import PLANNER_STATE_DIM, planner_state_names
from policies.feasibility import (
    FeasibilityCritic,
    FeasibilityCriticConfig,
    StateFeasibility,
    load_feasibility_critic,
)
from robot.g1 import constants as C
from training.planner.config import FeasibilityTrainConfig
from training.planner.feasibility import RegionSampling, cli, transitions

NAMES = planner_state_names()
HEIGHT = NAMES.index("root_height")


def upright(height: float | np.ndarray) -> np.ndarray:
    """Planner states ``(*height.shape, S)`` of an upright pelvis at ``height`` (everything else zero)."""
    s = np.zeros((*np.shape(height), PLANNER_STATE_DIM), dtype=np.float32)
    s[..., HEIGHT] = height
    s[..., NAMES.index("root_rot6d_xx")] = 1.0
    s[..., NAMES.index("root_rot6d_yy")] = 1.0
    return s


def test_signals_are_negative_inside_and_positive_past_each_constraint():
    cfg = ConstraintConfig()
    standing = upright(C.DEFAULT_BASE_HEIGHT_M)
    assert up_z(standing) == pytest.approx(1.0) and fall_signal(standing, cfg) == -1.0
    assert fall_signal(upright(cfg.fall_height_m), cfg) == pytest.approx(0.0, abs=1e-6)
    assert fall_signal(upright(cfg.fall_height_m - 0.05), cfg) == pytest.approx(0.5, abs=1e-5)
    tilted = standing.copy()  # 70 deg about x: up_z = cos 70 deg = 0.34 < 0.5
    c, s = np.cos(np.radians(70)), np.sin(np.radians(70))
    tilted[NAMES.index("root_rot6d_yy")], tilted[NAMES.index("root_rot6d_yz")] = c, s
    assert up_z(tilted) == pytest.approx(c, abs=1e-6) and fall_signal(tilted, cfg) > 0.5
    q = C.DEFAULT_JOINT_POS_RAD.copy()
    assert joint_limit_signal(q, cfg) == -1.0
    q[3] = C.JOINT_UPPER_RAD[3]  # a knee at the end of its range
    assert joint_limit_signal(q, cfg) == 1.0
    assert constraint_signal(standing, q, cfg) == -1.0  # joint limits count only when asked
    assert constraint_signal(standing, q, ConstraintConfig(joint_limits=True)) == 1.0
    with pytest.raises(ValueError, match="planner states"):
        fall_signal(np.zeros(5), cfg)


def _episodes(heights: np.ndarray, fell_at: list[int]) -> dict[str, np.ndarray]:
    e, t = heights.shape
    return {
        "state": upright(heights),
        "joint_pos": np.broadcast_to(C.DEFAULT_JOINT_POS_RAD.astype(np.float32), (e, t, C.NUM_JOINTS)).copy(),
        "action": np.zeros((e, t, C.NUM_JOINTS), np.float32),
        "fell_at": np.array(fell_at, np.int32),
    }


def test_transitions_run_to_the_last_recorded_state_and_end_at_the_fall():
    heights = np.full((2, 6), 0.75)
    heights[1, 3] = 0.6  # the state before the fall; steps after it repeat it
    tr = transitions(_episodes(heights, [6, 3]), np.array([0, 1]), ConstraintConfig())
    assert len(tr) == 5 + 4  # stood: t -> t + 1 for t < 5; fell at 3: t < 3, plus the transition that fell
    assert tr.ended.tolist() == [0] * 5 + [0, 0, 0, 1]
    assert tr.steps_to_fall.tolist() == [-1] * 5 + [3, 2, 1, 0]
    assert tr.next_states[7, HEIGHT] == pytest.approx(0.6) and tr.states[8, HEIGHT] == pytest.approx(0.6)


def test_chunked_transitions_span_k_steps_take_their_worst_signal_and_end_where_a_chunk_reaches_the_fall():
    heights = np.full((2, 6), 0.75)
    heights[0, 2] = 0.4  # a violation inside a standing episode (the fall line is 0.45 m)
    arrays = _episodes(heights, [6, 3])
    arrays["action"][:] = np.arange(6, dtype=np.float32)[None, :, None]  # action value = its step
    tr = transitions(arrays, np.array([0, 1]), ConstraintConfig(), chunk=3)
    # stood: chunks t..t+2 with s_{t+3} recorded: t < 3; fell at 3: t <= 3, the chunks from t = 1 reach the fall
    assert len(tr) == 3 + 4
    assert tr.ended.tolist() == [0, 0, 0, 0, 1, 1, 1]  # stood, then fell
    assert tr.actions.shape == (7, 3 * C.NUM_JOINTS)
    steps = tr.actions.reshape(7, 3, C.NUM_JOINTS)[:, :, 0].tolist()
    assert steps[:3] == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert steps[3:] == [[0, 1, 2], [1, 2, 3], [2, 3, 3], [3, 3, 3]]  # past the fall: the action that fell
    assert tr.next_states[0, HEIGHT] == pytest.approx(0.75) and tr.h[0] > 0 and tr.h[2] > 0 and tr.h[3] < 0
    h_one = transitions(arrays, np.array([0]), ConstraintConfig()).h
    assert tr.h[0] == pytest.approx(float(h_one[:3].max()))
    with pytest.raises(ValueError, match="chunk: expected >= 1"):
        transitions(arrays, np.array([0]), ConstraintConfig(), chunk=0)


def _fit_critic(tr, cfg: FeasibilityCriticConfig) -> FeasibilityCritic:
    """A critic of ``cfg`` fitted on the transitions ``tr`` (1,500 Adam steps, batches of 256, fixed seeds)."""
    critic = FeasibilityCritic(PLANNER_STATE_DIM, C.NUM_JOINTS, cfg)
    critic.fit_normalizer(tr.states)
    opt = torch.optim.Adam([*critic.value.parameters(), *critic.q.parameters()], lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(1500):
        loss, _ = critic.loss(tr.batch(torch.randint(len(tr), (256,), generator=gen)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        critic.update_target()
    return critic


def test_a_chunk_critic_tells_a_held_wrong_reaction_from_the_recorded_one():
    """From the same state a chunk of action 0 stands and a chunk of action 1 starts a fall 20 steps later: Q_h of
    the falling chunk is the exact K-step backup along the way down (> 0), of the standing chunk near the safe value,
    and V_h of the state is the better chunk's (feasible)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g, k = 0.98, 4
    arrays, branch, _ = _branching_set()
    cfg = ConstraintConfig()
    tr = transitions(arrays, np.arange(16), cfg, chunk=k)
    critic = _fit_critic(tr, FeasibilityCriticConfig(hidden=(64, 64), discount=g, polyak=0.05, action_chunk=k))
    stand, sink = torch.zeros(1, k * C.NUM_JOINTS), torch.zeros(1, k * C.NUM_JOINTS)
    sink[0, 0] = 1.0  # the branch action first, as recorded
    with torch.no_grad():
        s = torch.from_numpy(branch)
        q_stand, q_sink = critic.q(s, stand).max(dim=0).values, critic.q(s, sink).max(dim=0).values
        v = critic.value(s)
    # the exact backup over chunks of k steps along the way down: the chunk from step 20 holds the action that fell
    # (its next value is h_end = 1), the ones from 16, 12, ..., 0 back up from the state k steps on
    h = constraint_signal(arrays["state"][8].astype(np.float64), arrays["joint_pos"][8].astype(np.float64), cfg)
    gk = g**k
    nxt = (1 - gk) * h[20] + gk * max(h[20], 1.0)
    for t in range(16, -1, -k):
        worst = h[t : t + k].max()
        nxt = (1 - gk) * worst + gk * max(worst, nxt)
    assert nxt > 0.2  # the falling chunk is infeasible
    assert float(q_sink) == pytest.approx(nxt, abs=0.15)
    assert float(q_stand) < -0.8 and float(v) < -0.8


def _branching_set() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Episodes that stand at 0.75 m with action 0, and episodes that leave that state with action 1 and sink
    over 20 steps to a fall: from 0.75 m a recorded action keeps the robot up; on the way down none does.
    Returns the arrays, the branch state (1, S) and the 20 states of the way down (20, S)."""
    t = 30
    stand = np.full((8, t), 0.75)
    sink = np.full((8, t), 0.75)
    down = np.linspace(0.74, 0.5, 20)
    sink[:, 1:21] = down
    sink[:, 21:] = down[-1]
    arrays = _episodes(np.concatenate([stand, sink]), [t] * 8 + [20] * 8)
    arrays["action"][8:, 0, 0] = 1.0  # the branch: action 1 from 0.75 m starts the fall
    vz = NAMES.index("root_lin_vel_z")
    arrays["state"][8:, 1:, vz] = -0.6  # sinking
    way_down = upright(down)
    way_down[:, vz] = -0.6
    return arrays, upright(np.array([0.75])), way_down


def test_hj_backup_converges_to_the_known_feasible_set():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = 0.95
    arrays, branch, way_down = _branching_set()
    cfg = ConstraintConfig()
    tr = transitions(arrays, np.arange(16), cfg)
    critic = _fit_critic(tr, FeasibilityCriticConfig(hidden=(64, 64), discount=g, polyak=0.05))
    with torch.no_grad():
        v_branch = float(critic.value(torch.from_numpy(branch))[0])
        v_down = critic.value(torch.from_numpy(way_down)).numpy()
    # The exact backup along the way down: the last state's action fell (V = h_end = 1 after it).
    h = constraint_signal(way_down.astype(np.float64), arrays["joint_pos"][0, :20].astype(np.float64), cfg)
    exact, nxt = np.zeros(20), 1.0
    for k in range(19, -1, -1):
        exact[k] = nxt = (1 - g) * h[k] + g * max(h[k], nxt)
    assert v_branch < -0.8  # standing is recorded from there: feasible, near the safe value -1
    np.testing.assert_allclose(v_down, exact, atol=0.15)
    clear = np.abs(exact) > 0.15
    np.testing.assert_array_equal(v_down[clear] > 0, exact[clear] > 0)  # the same feasible set
    assert (exact > 0).sum() >= 10 and (exact < 0).sum() >= 3  # both sides of the boundary on the way down


def test_guidance_gradient_matches_finite_differences():
    torch.manual_seed(1)
    value = StateFeasibility(PLANNER_STATE_DIM, (32, 32)).double()
    value.normalizer.fit(torch.randn(256, PLANNER_STATE_DIM, dtype=torch.float64))
    cost = FeasibilityCost(value, history=2, threshold=-10.0)  # every state past the threshold: smooth everywhere
    x = torch.randn(2, 5, PLANNER_STATE_DIM + C.NUM_JOINTS, dtype=torch.float64, requires_grad=True)
    params = torch.zeros(2, 0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: cost(x, params), (x,), eps=1e-6, atol=1e-5)
    grad = torch.autograd.grad(cost(x, params).sum(), x)[0]
    assert grad[:, :2].abs().max() == 0.0 and grad[:, :, PLANNER_STATE_DIM:].abs().max() == 0.0  # history, actions
    assert grad[:, 2:, :PLANNER_STATE_DIM].abs().max() > 0.0


def _action_term(seed: int, chunk: int, steps: int):
    """A random double-precision ``Q_h`` of ``chunk`` actions behind the action term (history 2, threshold far
    below every value, so smooth everywhere), a plan ``x (2, steps, S + A)``, no params, and the term's gradient in
    ``x`` after checking it against finite differences."""
    from envs.planner.feasibility import FeasibleActionCost
    from policies.feasibility import StateActionFeasibility
    from policies.normalizer import Normalizer

    torch.manual_seed(seed)
    norm = Normalizer(PLANNER_STATE_DIM)
    norm.fit(torch.randn(256, PLANNER_STATE_DIM))
    cfg = FeasibilityCriticConfig(hidden=(32, 32), action_chunk=chunk)
    q = StateActionFeasibility(norm, C.NUM_JOINTS, cfg).double()
    cost = FeasibleActionCost(q, history=2, threshold=-10.0)
    x = torch.randn(2, steps, PLANNER_STATE_DIM + C.NUM_JOINTS, dtype=torch.float64, requires_grad=True)
    params = torch.zeros(2, 0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: cost(x, params), (x,), eps=1e-6, atol=1e-5)
    grad = torch.autograd.grad(cost(x, params).sum(), x)[0]
    return q, cost, x, params, grad


def test_action_term_gradient_matches_finite_differences_and_reads_the_measured_state():
    _, _, _, _, grad = _action_term(seed=2, chunk=1, steps=5)
    S = PLANNER_STATE_DIM
    assert grad[:, 1, :S].abs().max() > 0 and grad[:, 2, S:].abs().max() > 0  # s_t (last history), a_t
    grad[:, 1, :S] = 0.0
    grad[:, 2, S:] = 0.0
    assert grad.abs().max() == 0.0  # nothing else


def test_a_chunk_action_term_reads_the_plans_first_k_actions():
    from envs.planner.feasibility import FeasibleActionCost

    q, cost, x, params, grad = _action_term(seed=3, chunk=3, steps=6)
    S = PLANNER_STATE_DIM
    assert grad[:, 1, :S].abs().max() > 0 and all(grad[:, k, S:].abs().max() > 0 for k in (2, 3, 4))
    grad[:, 1, :S] = 0.0
    grad[:, 2:5, S:] = 0.0
    assert grad.abs().max() == 0.0  # the measured state and the plan's first three actions, nothing else
    scripted = torch.jit.script(FeasibleActionCost(copy.deepcopy(q).float(), history=2, threshold=-10.0))
    torch.testing.assert_close(scripted(x.detach().float(), params.float()), cost(x.detach(), params).float())
    with pytest.raises(ValueError, match="shorter than the critic's action chunk"):
        cost(x[:, :4], params)


def _train_cli(tmp_path, data, *extra):
    return cli(
        ["--data", *map(str, data), "--run-dir", str(tmp_path / "run"), "--steps", "40", "--batch-size", "64",
         "--eval-every", "20", "--save-every", "20", "--critic.hidden", "32", "32", *extra]
    )  # fmt: skip


def _dataset(tmp_path, name, arrays):
    full = {
        **arrays,
        "root_pos": np.zeros((*arrays["state"].shape[:2], 3), np.float32),
        "root_quat": np.tile(np.array([1, 0, 0, 0], np.float32), (*arrays["state"].shape[:2], 1)),
        "joint_vel": np.zeros_like(arrays["joint_pos"]),
        "expert_action": arrays["action"],
        "command": np.zeros((*arrays["state"].shape[:2], 3), np.float32),
        "phase": np.zeros(arrays["state"].shape[:2], np.float32),
        "mirrored": np.zeros(arrays["state"].shape[0], bool),
    }
    return write_planner_dataset(tmp_path / name, PlannerDataset(full, 0.02, {}))


def test_trainer_writes_a_critic_resumes_and_reports(tmp_path, capsys):
    arrays, feasible, _ = _branching_set()
    data = _dataset(tmp_path, "falls.h5", arrays)
    assert _train_cli(tmp_path, [data]) == 0
    assert "classed feasible" in capsys.readouterr().out
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["step"] == 40 and report["states_before_a_fall"] > 0
    assert [b["time_before_fall_s"][0] for b in report["by_time_before_fall"]] == [0.0, 0.2, 0.5, 1.0, 2.0]
    value, meta = load_feasibility_critic(run / "model" / "critic.pt")
    assert meta["state_dim"] == PLANNER_STATE_DIM and value(torch.from_numpy(feasible)).shape == (1,)
    from policies.feasibility import load_feasibility_q

    q = load_feasibility_q(run / "model" / "critic.pt")
    assert q(torch.from_numpy(feasible), torch.zeros(1, C.NUM_JOINTS)).shape == (2, 1)
    assert _train_cli(tmp_path, [data], "--resume", "--steps", "60") == 0
    assert json.loads((run / "report.json").read_text())["step"] == 60
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3  # steps 20, 40, 60: no duplicate rows
    assert _train_cli(tmp_path, [data], "--resume", "--lr", "0.1") == 2
    assert "cannot resume with different options: lr" in capsys.readouterr().err


def test_trainer_refuses_data_without_falls_and_loader_names_bad_files(tmp_path, capsys):
    arrays, _, _ = _branching_set()
    arrays["fell_at"][:] = arrays["state"].shape[1]
    data = _dataset(tmp_path, "stood.h5", arrays)
    assert _train_cli(tmp_path, [data]) == 2
    assert "no episode ends in a fall" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no feasibility critic"):
        load_feasibility_critic(tmp_path / "none.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"expected a 'steer\.feasibility_critic' v1 file"):
        load_feasibility_critic(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable feasibility critic"):
        load_feasibility_critic(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="at least one planner dataset"):
        FeasibilityTrainConfig(data=())


def test_preset_is_the_committed_critics_recipe():
    from robot.configio import from_jsonable
    from training.planner.config import FEASIBILITY_PRESETS as PRESETS

    root = Path(__file__).resolve().parents[2]
    committed = json.loads((root / "assets" / "g1_feasibility" / "config.json").read_text())
    committed["run_dir"] = "runs/g1_feasibility"
    assert PRESETS["g1-feasibility"]() == from_jsonable(FeasibilityTrainConfig, committed, "config.json")


def test_keepout_signal_reads_the_region_offset_in_the_heading_frame():
    cfg = ConstraintConfig(keepout_radius_m=0.5, keepout_margin_m=0.25)
    # a robot at (1, 1) facing +y sees a centre at (1, 3) 2 m straight ahead
    np.testing.assert_allclose(
        region_offset(np.array([1.0, 3.0]), np.array([1.0, 1.0]), np.pi / 2), [2.0, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(
        region_offset(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.pi / 2), [0.0, 1.0], atol=1e-12
    )
    h = keepout_signal(np.array([[2.0, 0.0], [0.5, 0.0], [0.375, 0.0], [0.0, 0.0]]), cfg)
    np.testing.assert_allclose(h, [-1.0, 0.0, 0.5, 1.0])
    standing = upright(C.DEFAULT_BASE_HEIGHT_M)
    assert constraint_signal(standing, C.DEFAULT_JOINT_POS_RAD, cfg, np.array([0.0, 0.1])) == 1.0
    with pytest.raises(ValueError, match="needs the region offsets"):
        constraint_signal(standing, C.DEFAULT_JOINT_POS_RAD, cfg)
    with pytest.raises(ValueError, match="no keep-out region"):
        keepout_signal(np.zeros(2), ConstraintConfig())
    with pytest.raises(ValueError, match="keepout_radius_m"):
        ConstraintConfig(keepout_radius_m=-1.0)


def _walks(steps: int = 60) -> dict[str, np.ndarray]:
    """Two standing-height episodes walking at 1 m/s: along +x facing +x, and along a 0.3 rad heading."""
    arrays = _episodes(np.full((2, steps), 0.75), [steps, steps])
    t = np.arange(steps) * 0.02
    yaw = np.array([0.0, 0.3])
    pos = np.zeros((2, steps, 3), np.float32)
    pos[..., 0], pos[..., 1], pos[..., 2] = np.cos(yaw)[:, None] * t, np.sin(yaw)[:, None] * t, 0.75
    arrays["root_pos"] = pos
    quat = np.stack([np.cos(yaw / 2), np.zeros(2), np.zeros(2), np.sin(yaw / 2)], axis=1).astype(np.float32)
    arrays["root_quat"] = np.broadcast_to(quat[:, None, :], (2, steps, 4)).copy()
    return arrays


def test_keepout_transitions_see_one_world_region_from_both_ends_and_count_entries():
    arrays = _walks()
    cfg = ConstraintConfig(keepout_radius_m=0.3)
    tr = transitions(arrays, np.array([0, 1]), cfg, chunk=2, regions=RegionSampling(25, 0.5, seed=4))
    S = PLANNER_STATE_DIM
    assert tr.states.shape == (2 * 58, S + 2) and tr.next_states.shape == tr.states.shape
    e = np.repeat([0, 1], 58)
    t = np.tile(np.arange(58), 2)
    xy, yaw = arrays["root_pos"][..., :2].astype(np.float64), np.array([0.0, 0.3])[e]

    def world(offset: torch.Tensor, step: np.ndarray) -> np.ndarray:  # heading-frame offset back to the world
        ox, oy = offset[:, 0].double().numpy(), offset[:, 1].double().numpy()
        c, s = np.cos(yaw), np.sin(yaw)
        return xy[e, step] + np.stack([c * ox - s * oy, s * ox + c * oy], axis=1)

    centre = world(tr.states[:, S:], t)
    np.testing.assert_allclose(world(tr.next_states[:, S:], t + 2), centre, atol=1e-5)  # one centre per row
    assert len(np.unique(centre.round(4), axis=0)) == len(centre)  # each row draws its own
    dist = np.linalg.norm(xy[e[:, None], t[:, None] + np.arange(3)] - centre[:, None], axis=-1)  # (N, 3)
    inside_chunk = (dist[:, :2] < 0.3).any(axis=1)
    np.testing.assert_array_equal(tr.h.numpy() > 0, inside_chunk)  # h: the chunk's worst step, keep-out included
    assert 0 < inside_chunk.sum() < len(inside_chunk)  # both sides of the boundary
    entry = tr.steps_to_fall.numpy()
    for i in range(len(t)):
        ahead = np.linalg.norm(xy[e[i], t[i] :] - centre[i], axis=-1) < 0.3
        expected = int(ahead.argmax()) if ahead.any() else -1
        assert entry[i] == expected
    with pytest.raises(ValueError, match="needs a RegionSampling"):
        transitions(arrays, np.array([0]), cfg)
    far = transitions(arrays, np.array([0, 1]), cfg, regions=RegionSampling(25, 0.5, seed=4, far_fraction=1.0))
    dist = far.states[:, S:].norm(dim=1)  # every region drawn anywhere within 6 m of the pelvis
    assert float(dist.max()) <= 6.0 and float(dist.max()) > 3.0 and float(dist.min()) < 1.0


def test_keepout_term_reads_the_region_along_the_predicted_path_and_its_gradient_is_exact():
    class Ahead(torch.nn.Module):  # V = 0.5 - |offset|: the critic of a disc of radius 0.5, exact
        def forward(self, states: torch.Tensor) -> torch.Tensor:
            return 0.5 - states[:, -2:].norm(dim=-1)

    S, dt = PLANNER_STATE_DIM, 0.02
    x = torch.zeros(1, 6, S + C.NUM_JOINTS, dtype=torch.float64)
    x[:, :, NAMES.index("root_lin_vel_x")] = 5.0  # 0.1 m per step straight ahead
    cost = KeepOutCost(Ahead(), history=2, ctrl_dt_s=dt)
    assert cost.param_names == ["region_x", "region_y"]
    # the plan reaches x = 0.1, 0.2, 0.3, 0.4 at its four future steps; a centre at (0.6, 0) is within 0.5 of the
    # last three: 0.5 - (0.4, 0.3, 0.2) summed
    near = cost(x, torch.tensor([[0.6, 0.0]], dtype=torch.float64))
    assert float(near) == pytest.approx(0.1 + 0.2 + 0.3, abs=1e-9)
    assert float(cost(x, torch.tensor([[0.0, 3.0]], dtype=torch.float64))) == 0.0  # far to the left: no cost
    near_sighted = KeepOutCost(Ahead(), history=2, ctrl_dt_s=dt, max_offset_m=0.2)  # beyond 0.2 m: read at 0.2 m
    assert float(near_sighted(x, torch.tensor([[0.0, 3.0]], dtype=torch.float64))) == pytest.approx(4 * 0.3)
    torch.manual_seed(4)
    value = StateFeasibility(S + 2, (16, 16)).double()
    value.normalizer.fit(torch.randn(128, S + 2, dtype=torch.float64))
    smooth = KeepOutCost(value, history=2, ctrl_dt_s=dt, threshold=-10.0)
    x = torch.randn(2, 5, S + C.NUM_JOINTS, dtype=torch.float64, requires_grad=True)
    params = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(smooth, (x, params), eps=1e-6, atol=1e-5)
    scripted = torch.jit.script(KeepOutCost(copy.deepcopy(value).float(), history=2, ctrl_dt_s=dt, threshold=-10.0))
    torch.testing.assert_close(
        scripted(x.detach().float(), params.detach().float()), smooth(x, params).float().detach()
    )


def test_trainer_fits_a_keepout_critic_on_data_without_falls(tmp_path, capsys):
    arrays = _walks(80)
    arrays["fell_at"][:] = 80
    data = _dataset(tmp_path, "walks.h5", arrays)
    with h5py_file(data) as f:  # the walks' own poses (the helper writes the origin)
        f["root_pos"][...] = arrays["root_pos"]
        f["root_quat"][...] = arrays["root_quat"]
    assert _train_cli(tmp_path, [data], "--constraints.keepout-radius-m", "0.3", "--val-fraction", "0.5") == 0
    value, meta = load_feasibility_critic(tmp_path / "run" / "model" / "critic.safetensors")
    assert meta["state_dim"] == PLANNER_STATE_DIM + 2 and meta["constraints"]["keepout_radius_m"] == 0.3
    assert meta["keepout_range_m"] == 6.0  # the far draws' radius, by default
    assert value(torch.zeros(3, PLANNER_STATE_DIM + 2)).shape == (3,)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["states_before_a_fall"] > 0  # here: states before a keep-out entry


def h5py_file(path: Path) -> h5py.File:
    """``path`` open for writing in place."""
    return h5py.File(path, "r+")
