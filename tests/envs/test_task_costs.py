"""Task costs: minima where they belong, gradients equal finite differences, scripting, SDF equals MuJoCo."""

import math

import mujoco
import numpy as np
import pytest
import torch

from envs.tasks import (
    BoxObstacle,
    CylinderObstacle,
    JoystickCost,
    JoystickCostConfig,
    JoystickTaskConfig,
    ObstacleCost,
    ObstacleCostConfig,
    ObstacleScene,
    WaypointCost,
    WaypointCostConfig,
    WaypointTaskConfig,
)
from envs.tasks.sdf import box_sdf, cylinder_sdf, relaxed_log_barrier, scene_sdf
from robot.g1.model import build_g1_spec

B, H, D = 3, 8, 6
SCENE = ObstacleScene(
    boxes=[BoxObstacle((1.5, 0.6), (0.3, 0.2), yaw_rad=0.4)],
    cylinders=[CylinderObstacle((1.2, -0.8), 0.25), CylinderObstacle((-1.5, 1.0), 0.3)],
)


def all_costs():
    return [
        (JoystickCost(JoystickCostConfig()), torch.tensor([[0.5, -0.2, 0.3]], dtype=torch.float64)),
        (WaypointCost(WaypointCostConfig()), torch.tensor([[2.0, 1.0]], dtype=torch.float64)),
        (ObstacleCost(ObstacleCostConfig()), torch.as_tensor(SCENE.to_params(), dtype=torch.float64)[None]),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_cost_interface_scripting_and_gradients(index):
    cost, params = all_costs()[index]
    assert params.shape[1] == cost.param_dim == len(cost.param_names)
    gen = torch.Generator().manual_seed(index)
    # Positions spread around the scene but kept away from the obstacles' surfaces and kinks.
    x = (torch.rand(B, H, D, generator=gen, dtype=torch.float64) - 0.5) * 1.0
    x[..., 0:2] += torch.tensor([0.0, -2.5], dtype=torch.float64)
    params = params.expand(B, -1).clone()
    out = cost(x, params)
    assert out.shape == (B,) and torch.all(torch.isfinite(out))
    scripted = torch.jit.script(cost)
    torch.testing.assert_close(scripted(x, params), out)
    assert scripted.param_dim == cost.param_dim and list(scripted.param_names) == cost.param_names
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: cost(t, params), (x,), eps=1e-6, atol=1e-5)


def test_joystick_minimum_at_command():
    cost = JoystickCost(JoystickCostConfig())
    cmd = torch.tensor([[0.5, -0.2, 0.3]], dtype=torch.float64)
    x = torch.zeros(1, H, D, dtype=torch.float64)
    x[..., 3:6] = cmd
    assert cost(x, cmd).item() == 0.0
    x_off = x.clone()
    x_off[..., 3] += 0.1
    assert cost(x_off, cmd).item() == pytest.approx(0.5 * H * 0.01)
    x_yaw = x.clone()
    x_yaw[..., 5] += 0.2
    assert cost(x_yaw, cmd).item() == pytest.approx(0.5 * H * 0.04)
    no_yaw = JoystickCost(JoystickCostConfig(yaw_rate_idx=-1))
    assert no_yaw(x_yaw, cmd).item() == 0.0
    # Gradient descent on the trajectory converges to the command.
    x = torch.zeros(1, H, D, dtype=torch.float64, requires_grad=True)
    for _ in range(50):
        (g,) = torch.autograd.grad(cost(x, cmd).sum(), x)
        x = (x - 0.5 * g).detach().requires_grad_(True)
    torch.testing.assert_close(x[0, :, 3:6], cmd.expand(H, 3))


def test_waypoint_minimum_at_goal_with_zero_velocity():
    cost = WaypointCost(WaypointCostConfig())
    goal = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    x = torch.zeros(1, H, D, dtype=torch.float64)
    x[..., 0:2] = goal
    assert cost(x, goal).item() == pytest.approx(0.0, abs=1e-12)
    moving = x.clone()
    moving[..., 3] = 0.3
    assert cost(moving, goal).item() > 0.5 * H * 0.09  # at the goal the blend asks for v = 0
    far = torch.zeros(1, H, D, dtype=torch.float64)
    assert cost(far, goal).item() == pytest.approx(H * (1 - np.exp(-2 * np.sqrt(5))) * 5.0, rel=1e-6)
    closer = far.clone()
    closer[..., 0:2] = 0.5 * goal
    assert cost(closer, goal) < cost(far, goal)


def test_barrier_is_c1_and_decreasing():
    delta = 0.05
    x = torch.tensor([delta - 1e-7, delta, delta + 1e-7], dtype=torch.float64, requires_grad=True)
    b = relaxed_log_barrier(x, delta)
    (g,) = torch.autograd.grad(b.sum(), x)
    assert b[0].item() == pytest.approx(b[2].item(), abs=1e-5)
    assert g[0].item() == pytest.approx(-1.0 / delta, rel=1e-4) and g[2].item() == pytest.approx(-1.0 / delta, rel=1e-4)
    xs = torch.linspace(-0.5, 2.0, 200, dtype=torch.float64)
    vals = relaxed_log_barrier(xs, delta)
    assert torch.all(torch.isfinite(vals)) and torch.all(vals[1:] < vals[:-1])


def test_barrier_activation_cuts_it_off_beyond_the_distance():
    scene = ObstacleScene(cylinders=[CylinderObstacle((0.0, 0.0), 0.5)])
    params = torch.as_tensor(scene.to_params(), dtype=torch.float64)[None]
    base = dict(num_boxes=0, num_cylinders=1, body_xy_idx=[(0, 1)], body_radii_m=[0.1])
    cut = ObstacleCost(ObstacleCostConfig(**base, activation_m=0.3))
    full = ObstacleCost(ObstacleCostConfig(**base))
    for clearance, expected in ((0.5, 0.0), (0.3, 0.0), (0.2, math.log(0.3 / 0.2)), (0.1, math.log(0.3 / 0.1))):
        x = torch.zeros(1, 1, 2, dtype=torch.float64)
        x[0, 0, 0] = 0.5 + 0.1 + clearance  # surface at 0.5, body radius 0.1
        assert cut(x, params).item() == pytest.approx(expected, abs=1e-6)
        # Inside the activation distance the cut barrier is the published one shifted by ln(a): same gradient.
        if clearance < 0.3:
            assert cut(x, params).item() == pytest.approx(full(x, params).item() + math.log(0.3), abs=1e-6)
    with pytest.raises(ValueError, match="activation_m"):
        ObstacleCostConfig(activation_m=0.04)


def test_obstacle_cost_prefers_clearance_and_ignores_inactive():
    cost = ObstacleCost(ObstacleCostConfig())
    params = torch.as_tensor(SCENE.to_params(), dtype=torch.float64)[None]
    near = torch.zeros(1, H, D, dtype=torch.float64)
    near[..., 0:2] = torch.tensor([1.2, -0.4], dtype=torch.float64)  # 0.15 m from the cylinder surface
    far = near.clone()
    far[..., 0:2] = torch.tensor([0.0, -2.5], dtype=torch.float64)
    assert cost(near, params) > cost(far, params)
    inactive = params.clone()
    inactive[:, 6 + 3] = 0.0  # switch the first cylinder off
    assert cost(near, inactive) < cost(near, params)
    with pytest.raises(ValueError, match="slots"):
        SCENE.to_params(num_boxes=0)
    padded = SCENE.to_params(num_boxes=2, num_cylinders=3)
    assert padded.shape == (2 * 6 + 3 * 4,) and padded[11] == 0.0


def test_sdf_matches_mujoco_geom_distance():
    spec = build_g1_spec()
    names = SCENE.add_to_spec(spec)
    probe_body = spec.worldbody.add_body()
    probe_body.name = "probe"
    probe_body.mocap = True
    probe = probe_body.add_geom()
    probe.name = "probe"
    probe.type = mujoco.mjtGeom.mjGEOM_SPHERE
    probe.size = (0.01, 0, 0)
    probe.contype = probe.conaffinity = 0
    model = spec.compile()
    data = mujoco.MjData(model)
    params = torch.as_tensor(SCENE.to_params(), dtype=torch.float64)[None]
    rng = np.random.default_rng(0)
    points = rng.uniform([-2.5, -2.0], [2.5, 2.0], size=(300, 2))
    fromto = np.zeros(6)
    checked = 0
    for p in points:
        data.mocap_pos[0] = (p[0], p[1], 0.5)
        mujoco.mj_forward(model, data)
        mj = min(
            mujoco.mj_geomDistance(model, data, model.geom("probe").id, model.geom(n).id, 10.0, fromto) for n in names
        )
        ours = scene_sdf(torch.as_tensor(p)[None, None], params, 1, 2).item()
        if ours < -0.0:  # MuJoCo reports penetration depth differently inside; compare outside points only
            continue
        assert mj + 0.01 == pytest.approx(ours, abs=1e-4)
        checked += 1
    assert checked > 250


def test_single_shape_sdfs_inside_and_outside():
    p = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.05, 0.0]], dtype=torch.float64)
    box = box_sdf(
        p,
        torch.zeros(2, dtype=torch.float64),
        torch.tensor([0.2, 0.1], dtype=torch.float64),
        torch.tensor(0.0, dtype=torch.float64),
    )
    torch.testing.assert_close(box, torch.tensor([-0.1, 0.8, -0.1], dtype=torch.float64), atol=2e-6, rtol=0)
    cyl = cylinder_sdf(p, torch.zeros(2, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    torch.testing.assert_close(cyl, torch.tensor([-0.5, 0.5, -0.45], dtype=torch.float64), atol=1e-5, rtol=0)


def test_obstacles_collide_with_the_robot_in_mujoco():
    scene = ObstacleScene(cylinders=[CylinderObstacle((0.12, 0.0), 0.1)])
    spec = build_g1_spec()
    scene.add_to_spec(spec)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    obstacle = model.geom("obstacle_cylinder_0").id
    hits = [c for c in data.contact[: data.ncon] if obstacle in (c.geom1, c.geom2)]
    assert hits, "robot geoms overlapping the cylinder must create contacts"


def test_sim_side_rewards_peak_where_costs_vanish():
    rng = np.random.default_rng(0)
    task = JoystickTaskConfig().build()
    planar = np.zeros((4, 6))
    params = task.sample_params(rng, planar)
    planar[:, 2] = 0.0
    planar[:, 3:5] = params[:, :2]
    planar[:, 5] = params[:, 2]
    perfect = task.reward(planar, params)
    np.testing.assert_allclose(perfect, 1.0 + task.cfg.yaw_weight)
    assert np.all(task.reward(planar + 0.3, params) < perfect)
    np.testing.assert_allclose(task.metrics(planar, params)["lin_vel_error_m_per_s"], 0.0, atol=1e-12)
    wp = WaypointTaskConfig().build()
    goals = wp.sample_params(rng, np.zeros((100, 6)))
    dist = np.linalg.norm(goals, axis=1)
    assert np.all((dist >= 1.0) & (dist <= 3.0))
    at_goal = np.zeros((100, 6))
    at_goal[:, :2] = goals
    assert np.all(wp.metrics(at_goal, goals)["goal_reached"] == 1.0)
    np.testing.assert_allclose(wp.command(at_goal, goals), 0.0, atol=1e-12)
