"""G1 planner guidance costs: the plan-frame integration recovers true paths; costs steer and script."""

import numpy as np
import pytest
import torch

from envs.planner.costs import (
    FEATURE_DIM,
    G1CostConfig,
    PlanFrameFeatures,
    body_feature_xy_idx,
    g1_joystick_cost,
    g1_obstacle_cost,
    g1_waypoint_cost,
    points_to_plan_frame,
    scene_params_to_plan_frame,
)
from envs.planner.state import NUM_TRACKED_BODIES, PLANNER_STATE_DIM, planner_state
from envs.tasks.obstacles import BoxObstacle, CylinderObstacle, ObstacleScene
from envs.tasks.sdf import scene_sdf
from policies.diffusion.guidance import CostSum
from robot.g1 import constants as C

DT = 0.02


def _yaw_quat(yaw: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=-1)


def _arc(steps: int, speed: float, side: float, yaw_rate: float, psi0: float = 0.7):
    """A root walking an exact arc (forward ``speed``, lateral ``side`` in its heading frame) with bodies fixed
    in the heading frame: world root/bodies and the planner states."""
    t = np.arange(steps) * DT
    yaw = psi0 + yaw_rate * t
    # d/dt p = R(yaw) [speed, side]; exact integral for constant yaw rate.
    x = (speed * (np.sin(yaw) - np.sin(psi0)) + side * (np.cos(yaw) - np.cos(psi0))) / yaw_rate
    y = (-speed * (np.cos(yaw) - np.cos(psi0)) + side * (np.sin(yaw) - np.sin(psi0))) / yaw_rate
    root = np.stack([x + 3.0, y - 2.0, np.full_like(x, 0.75)], axis=-1)
    c, s = np.cos(yaw), np.sin(yaw)
    v = np.stack([c * speed - s * side, s * speed + c * side, np.zeros_like(x)], axis=-1)
    rng = np.random.default_rng(0)
    offsets = rng.uniform(-0.4, 0.4, size=(NUM_TRACKED_BODIES, 3))  # heading frame, fixed
    bx = c[:, None] * offsets[:, 0] - s[:, None] * offsets[:, 1]
    by = s[:, None] * offsets[:, 0] + c[:, None] * offsets[:, 1]
    bz = np.broadcast_to(offsets[:, 2], (steps, NUM_TRACKED_BODIES))
    bodies = np.stack([bx, by, bz], axis=-1) + root[:, None, :]
    ang_body = np.stack([np.zeros_like(x), np.zeros_like(x), np.full_like(x, yaw_rate)], axis=-1)
    states = planner_state(root, _yaw_quat(yaw), v, ang_body, bodies, np.zeros_like(bodies))
    return root, yaw, bodies, states


@pytest.mark.parametrize(("speed", "side", "yaw_rate"), [(0.8, 0.0, 0.6), (0.3, -0.25, -1.0), (-0.5, 0.2, 0.3)])
def test_plan_frame_features_recover_the_true_paths(speed, side, yaw_rate):
    history, steps = 4, 20
    root, yaw, bodies, states = _arc(steps, speed, side, yaw_rate)
    assert states.shape == (steps, PLANNER_STATE_DIM)
    feats = PlanFrameFeatures(history, DT)(torch.tensor(states[None], dtype=torch.float64))[0].numpy()
    assert feats.shape == (steps, FEATURE_DIM)
    a = history - 1
    true_root = points_to_plan_frame(root[:, :2], root[a, :2], yaw[a])
    np.testing.assert_allclose(feats[:, :2], true_root, atol=2e-4)  # trapezoid rule on an arc, 0.4 s
    np.testing.assert_allclose(feats[:, 2], yaw - yaw[a], atol=1e-9)
    np.testing.assert_allclose(feats[a, :3], 0.0, atol=1e-12)
    for k, name in enumerate(C.TRACKED_BODIES):
        i, j = body_feature_xy_idx(name)
        true_body = points_to_plan_frame(bodies[:, k, :2], root[a, :2], yaw[a])
        np.testing.assert_allclose(feats[:, [i, j]], true_body, atol=2e-4)


def test_scene_in_plan_frame_keeps_distances():
    scene = ObstacleScene(
        boxes=[BoxObstacle(center_xy_m=(2.0, 1.0), half_extents_xy_m=(0.3, 0.6), yaw_rad=0.4)],
        cylinders=[CylinderObstacle(center_xy_m=(-1.0, 2.5), radius_m=0.3)],
    )
    world = scene.to_params(1, 2)
    root_xy, yaw = np.array([0.5, -0.7]), 1.1
    local = scene_params_to_plan_frame(world, 1, 2, root_xy, yaw)
    pts_world = np.random.default_rng(1).uniform(-3, 3, size=(50, 2))
    pts_local = points_to_plan_frame(pts_world, root_xy, yaw)
    d_world = scene_sdf(torch.tensor(pts_world), torch.tensor(world)[None].expand(50, -1), 1, 2)
    d_local = scene_sdf(torch.tensor(pts_local), torch.tensor(local)[None].expand(50, -1), 1, 2)
    torch.testing.assert_close(d_world, d_local, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="obstacle params"):
        scene_params_to_plan_frame(world[:-1], 1, 2, root_xy, yaw)


def test_costs_prefer_the_right_plans_and_script():
    history = 4
    cfg = G1CostConfig()
    _, _, _, fwd = _arc(20, 0.8, 0.0, 0.01)
    _, _, _, back = _arc(20, -0.8, 0.0, 0.01)
    x = torch.tensor(np.stack([fwd, back]), dtype=torch.float32)  # (2, H, S)
    joy = g1_joystick_cost(cfg)
    cmd = torch.tensor([[0.8, 0.0, 0.0]]).expand(2, -1)
    j = joy(x, cmd)
    # 1/2 sum_i (||v_i - v*||^2 + w (yaw_i - yaw*)^2) over the 20 steps: the forward arc matches the velocity exactly
    # and leaves only its 0.01 rad/s yaw rate; the backward one is 1.6 m/s off at every step.
    yaw_term = 0.5 * 20 * cfg.yaw_rate_weight * 0.01**2
    assert float(j[0]) == pytest.approx(yaw_term, rel=1e-4)
    assert float(j[1]) == pytest.approx(0.5 * 20 * 1.6**2 + yaw_term, rel=1e-4)
    way = g1_waypoint_cost(history, DT)
    goal = torch.tensor([[3.0, 0.0]]).expand(2, -1)  # ahead of the current heading
    w = way(x, goal)
    assert w[0] < w[1]
    obstacles = g1_obstacle_cost(cfg, history, DT)
    wall = ObstacleScene(boxes=[BoxObstacle(center_xy_m=(0.6, 0.0), half_extents_xy_m=(0.1, 2.0), yaw_rad=0.0)])
    params = torch.tensor(wall.to_params(1, 2), dtype=torch.float32)[None].expand(2, -1)
    o = obstacles(x, params)
    assert o[0] > o[1]  # walking forward runs into the wall
    total = CostSum([joy, way, obstacles], [1.0, 0.5, 0.1])
    scripted = torch.jit.script(total)
    p = torch.cat([cmd, goal, params], dim=1)
    torch.testing.assert_close(scripted(x, p), total(x, p))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(way(xg, goal).sum(), xg)
    assert grad[:, history:, 7].abs().sum() > 0  # the goal pulls on future forward velocities


def test_unknown_obstacle_body_is_named():
    with pytest.raises(ValueError, match="nose"):
        G1CostConfig(obstacle_bodies=("nose",), obstacle_body_radii_m=(0.1,))
    with pytest.raises(ValueError, match="equal lengths"):
        G1CostConfig(obstacle_bodies=("pelvis",), obstacle_body_radii_m=(0.1, 0.2))
