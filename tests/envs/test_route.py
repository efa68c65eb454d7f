"""Routes round obstacles: shortest paths on the inflated scene, clearance, and the look-ahead point."""

import itertools
import math

import numpy as np
import pytest
import torch

from envs.tasks.obstacles import BoxObstacle, CylinderObstacle, ObstacleScene
from envs.tasks.route import (
    Route,
    RouteConfig,
    inflated_polygons,
    point_along,
    pursuit_point,
    segment_blocked,
)
from envs.tasks.sdf import scene_sdf

WALL = ObstacleScene(boxes=[BoxObstacle((2.0, 0.0), (0.15, 0.5))])


def clearance_along(path: np.ndarray, scene: ObstacleScene, samples: int = 400) -> float:
    """Smallest distance from the polyline to any obstacle (the scene's SDF, :func:`envs.tasks.sdf.scene_sdf`)."""
    t = np.linspace(0.0, 1.0, samples)[:, None]
    points = np.concatenate([a + t * (b - a) for a, b in itertools.pairwise(path)])  # (N, 2)
    params = torch.as_tensor(scene.to_params(), dtype=torch.float64)[None]
    sdf = scene_sdf(torch.as_tensor(points)[None], params, len(scene.boxes), len(scene.cylinders))
    return float(sdf.min())


def length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def test_free_goal_is_a_straight_line() -> None:
    route = Route(WALL, np.array([0.0, 3.0]))
    path = route.path(np.zeros(2))
    np.testing.assert_allclose(path, [[0.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(route.target(np.zeros(2)), [0.0, 1.0])  # lookahead 1 m along it


def test_wall_is_walked_round_with_the_clearance_and_the_shortest_way() -> None:
    cfg = RouteConfig(clearance_m=0.6)
    route = Route(WALL, np.array([4.0, 0.0]), cfg)
    path = route.path(np.zeros(2))
    assert len(path) == 4  # start, two corners of the grown wall, goal
    assert clearance_along(path, WALL) >= 0.6 - 1e-6
    # Hand-computed: corners at x = 2 -/+ 0.75, |y| = 1.1 (+1 mm); the path is symmetric so either side is shortest.
    corner = math.hypot(1.25, 1.1)
    assert length(path) == pytest.approx(2 * corner + 1.5, abs=5e-3)
    # The look-ahead point heads round the wall, not into it.
    target = route.target(np.zeros(2))
    assert abs(target[1]) > 0.5 and np.linalg.norm(target) == pytest.approx(1.0)


def test_mixed_scene_paths_keep_clear_of_every_obstacle() -> None:
    scene = ObstacleScene(
        boxes=[BoxObstacle((1.5, 0.6), (0.3, 0.2), yaw_rad=0.4), BoxObstacle((3.0, -1.0), (0.2, 1.0), yaw_rad=-0.3)],
        cylinders=[CylinderObstacle((1.2, -0.8), 0.25), CylinderObstacle((4.5, 0.5), 0.4)],
    )
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 20:
        goal = rng.uniform([4.0, -3.0], [7.0, 3.0])
        start = rng.uniform([-2.0, -2.0], [0.0, 2.0])
        if min(clearance_along(np.stack([p, p]), scene, 1) for p in (start, goal)) < 0.4:
            continue  # an end within the clearance: the path may (must) come closer there
        checked += 1
        route = Route(scene, goal, RouteConfig(clearance_m=0.4))
        path = route.path(start)
        np.testing.assert_allclose(path[0], start)
        np.testing.assert_allclose(path[-1], goal)
        assert clearance_along(path, scene) >= 0.4 - 1e-3
        assert length(path) >= np.linalg.norm(goal - start) - 1e-9


def test_a_robot_inside_the_clearance_leaves_without_crossing_the_wall() -> None:
    route = Route(WALL, np.array([4.0, 0.0]), RouteConfig(clearance_m=0.6))
    start = np.array([1.6, 0.05])  # 0.25 m in front of the wall, well inside its clearance
    path = route.path(start)
    assert len(path) > 2  # not straight through the wall
    assert clearance_along(path, WALL) > 0.2


def test_goal_within_the_clearance_is_still_reached() -> None:
    goal = np.array([2.45, 0.0])  # 0.3 m behind the wall
    path = Route(WALL, goal, RouteConfig(clearance_m=0.6)).path(np.zeros(2))
    np.testing.assert_allclose(path[-1], goal)
    assert len(path) > 2 and clearance_along(path, WALL) > 0.0


def test_segment_blocked_touching_is_not_blocking() -> None:
    square = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    assert segment_blocked(np.array([-2.0, 0.0]), np.array([2.0, 0.0]), square)
    assert not segment_blocked(np.array([-2.0, 1.0]), np.array([2.0, 1.0]), square)  # along an edge
    assert not segment_blocked(np.array([-2.0, 0.0]), np.array([0.0, 2.0]), square)  # through a corner
    assert not segment_blocked(np.array([-3.0, 0.0]), np.array([-2.0, 0.0]), square)  # short of it


def test_inflated_polygons_enclose_the_grown_obstacles() -> None:
    scene = ObstacleScene(cylinders=[CylinderObstacle((0.0, 0.0), 0.5)])
    (poly,) = inflated_polygons(scene, 0.2, cylinder_sides=6)
    edges = np.roll(poly, -1, axis=0) - poly
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1) / np.linalg.norm(edges, axis=1, keepdims=True)
    # Each side is tangent to the circle of radius 0.7 (counter-clockwise: the normals point outwards).
    np.testing.assert_allclose(np.sum(normals * poly, axis=1), 0.7, atol=1e-9)


def test_point_along_and_config_errors() -> None:
    path = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(point_along(path, 0.5), [0.5, 0.0])
    np.testing.assert_allclose(point_along(path, 2.0), [1.0, 1.0])
    np.testing.assert_allclose(point_along(path, 10.0), [1.0, 2.0])
    with pytest.raises(ValueError, match="lookahead_m"):
        RouteConfig(lookahead_m=0.0)
    with pytest.raises(ValueError, match="goal"):
        Route(WALL, np.array([np.nan, 0.0]))


def test_pursuit_point_keeps_the_target_between_the_floor_and_the_lookahead() -> None:
    path = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])  # 3 m: two legs
    np.testing.assert_allclose(pursuit_point(path, 1.5, 0.8), [1.0, 0.5])  # far goal: the lookahead
    short = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.2]])  # 1.2 m: shorter than the lookahead
    np.testing.assert_allclose(pursuit_point(short, 1.5, 0.8), [1.0, 0.2])  # the goal itself
    near = np.array([[0.9, 0.0], [1.0, 0.0], [1.0, 0.3]])  # 0.4 m: under the floor
    # 0.8 m along the path: 0.4 m past the goal on the last leg's line (the +y direction)
    np.testing.assert_allclose(pursuit_point(near, 1.5, 0.8), [1.0, 0.7])
    np.testing.assert_allclose(pursuit_point(near, 1.5, 0.0), [1.0, 0.3])  # no floor: the goal
    at_goal = np.array([[1.0, 0.3], [1.0, 0.3]])
    np.testing.assert_allclose(pursuit_point(at_goal, 1.5, 0.8), [1.0, 0.3])  # no direction: the goal
    with pytest.raises(ValueError, match="min_lookahead_m"):
        pursuit_point(path, 1.0, 1.5)
    with pytest.raises(ValueError, match="min_lookahead_m"):
        RouteConfig(lookahead_m=1.0, min_lookahead_m=1.2)


def test_route_target_past_a_near_goal_follows_the_last_leg() -> None:
    goal = np.array([3.0, 0.0])
    route = Route(WALL, goal, RouteConfig(lookahead_m=1.0, min_lookahead_m=0.8))
    start = np.array([2.7, 0.0])  # behind the wall, 0.3 m short of the goal: the last leg is the straight line
    np.testing.assert_allclose(route.target(start), [3.5, 0.0], atol=1e-9)
    far = Route(WALL, goal, RouteConfig(lookahead_m=1.0))
    np.testing.assert_allclose(far.target(start), goal)  # no floor: the goal itself
