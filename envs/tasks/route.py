"""Routes around obstacles for waypoint guidance: a visibility-graph shortest path and its look-ahead point.

The planner's horizon is short (16 steps of 0.02 s: about 0.3 m of walking), so a goal behind a wall puts the
waypoint pull and the obstacle barrier in a local minimum in front of the wall: the plan stops there. The usual
remedy in navigation stacks, and the one here, is a global route on the known obstacle map with the local planner
following it: every obstacle of an :class:`~envs.tasks.obstacles.ObstacleScene` is inflated by ``clearance_m``
into a convex polygon (boxes: the box grown by the clearance on each side; cylinders: a regular polygon around the
grown circle), the shortest path from the robot to the goal runs through the polygons' corners (visibility graph,
Dijkstra from the goal once per goal), and the waypoint cost is given the point ``lookahead_m`` along that path
(pure pursuit). The obstacle barrier stays on the plan: the route says where to go round, the barrier keeps the
planned body paths clear.

Numpy only; a :class:`Route` is built once per (scene, goal) and answers :meth:`Route.target` in microseconds.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from envs.tasks.obstacles import BoxObstacle, CylinderObstacle, ObstacleScene

_EPS = 1e-9


@dataclass
class RouteConfig:
    """How far the route keeps from obstacles and how far ahead the guidance looks."""

    clearance_m: float = 0.6
    """Distance added to every obstacle before routing (the root's path keeps at least this far from a box side,
    more at its corners)."""
    lookahead_m: float = 1.0
    """The waypoint handed to the planner lies this far along the route (the goal itself once closer)."""
    min_lookahead_m: float = 0.0
    """Floor on the waypoint's distance along the route: once the goal is closer than this, the waypoint lies
    this far along the route's last leg, past the goal (:func:`pursuit_point`); 0 keeps the goal itself."""
    cylinder_sides: int = 8
    """Sides of the polygon that stands for an inflated cylinder (it encloses the grown circle)."""

    def __post_init__(self) -> None:
        if self.clearance_m < 0.0 or self.lookahead_m <= 0.0:
            raise ValueError(
                f"clearance_m >= 0 and lookahead_m > 0 expected, got {self.clearance_m}, {self.lookahead_m}"
            )
        if not 0.0 <= self.min_lookahead_m <= self.lookahead_m:
            raise ValueError(
                f"min_lookahead_m: expected 0 <= min_lookahead_m <= lookahead_m ({self.lookahead_m}), "
                f"got {self.min_lookahead_m}"
            )
        if self.cylinder_sides < 3:
            raise ValueError(f"cylinder_sides: expected >= 3, got {self.cylinder_sides}")


def inflated_polygons(scene: ObstacleScene, clearance_m: float, cylinder_sides: int = 8) -> list[np.ndarray]:
    """Each obstacle grown by ``clearance_m`` as a convex polygon ``(K, 2)``, vertices counter-clockwise."""
    obstacles: list[BoxObstacle | CylinderObstacle] = [*scene.boxes, *scene.cylinders]
    return [obstacle_polygon(o, clearance_m, cylinder_sides) for o in obstacles]


def obstacle_polygon(
    obstacle: BoxObstacle | CylinderObstacle, clearance_m: float, cylinder_sides: int = 8
) -> np.ndarray:
    """One obstacle grown by ``clearance_m`` as a convex polygon ``(K, 2)``, vertices counter-clockwise (boxes: the
    box grown on each side; cylinders: a regular polygon that encloses the grown circle)."""
    if isinstance(obstacle, BoxObstacle):
        hx, hy = obstacle.half_extents_xy_m[0] + clearance_m, obstacle.half_extents_xy_m[1] + clearance_m
        local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
        c, s = math.cos(obstacle.yaw_rad), math.sin(obstacle.yaw_rad)
        return local @ np.array([[c, s], [-s, c]]) + np.asarray(obstacle.center_xy_m)
    k = cylinder_sides
    radius = (obstacle.radius_m + clearance_m) / math.cos(math.pi / k)
    a = 2.0 * math.pi * np.arange(k) / k
    return np.asarray(obstacle.center_xy_m) + radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def inside(point: np.ndarray, poly: np.ndarray) -> bool:
    """``point (2,)`` strictly inside the counter-clockwise convex ``poly (K, 2)``."""
    edges = np.roll(poly, -1, axis=0) - poly
    rel = point - poly
    return bool(np.all(edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0] > _EPS))


def segment_blocked(a: np.ndarray, b: np.ndarray, poly: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether the segment ``a -> b`` passes through the interior of the convex ``poly`` (counter-clockwise).

    Cyrus-Beck clipping against the polygon's half-planes; a segment that only touches the boundary (along an edge,
    through a corner) is not blocked, so routes may run along the inflated polygons.
    """
    d = b - a
    t_in, t_out = 0.0, 1.0
    for p, normal in zip(poly, _outward_normals(poly), strict=True):
        dist = float(normal @ (a - p))  # > 0: a outside this side
        rate = float(normal @ d)
        if abs(rate) < _EPS:
            if dist > -tol:  # parallel and outside (or on) this side
                return False
            continue
        t = -dist / rate
        if rate < 0.0:
            t_in = max(t_in, t)
        else:
            t_out = min(t_out, t)
        if t_in >= t_out:
            return False
    # The clipped part must reach the interior by more than the tolerance.
    seg_len = float(np.hypot(*d))
    return (t_out - t_in) * seg_len > tol and _depth(a + 0.5 * (t_in + t_out) * d, poly) > tol


def _outward_normals(poly: np.ndarray) -> np.ndarray:
    """Unit outward normals ``(K, 2)`` of the sides ``poly[k] -> poly[k + 1]`` of a counter-clockwise polygon."""
    edges = np.roll(poly, -1, axis=0) - poly
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), _EPS)


def _depth(point: np.ndarray, poly: np.ndarray) -> float:
    """How far ``point`` lies inside ``poly`` (negative outside)."""
    return float(-np.max(np.sum(_outward_normals(poly) * (point - poly), axis=1)))


class Route:
    """Shortest paths to one goal around one scene's inflated obstacles (module docstring)."""

    def __init__(self, scene: ObstacleScene, goal_xy: np.ndarray, cfg: RouteConfig | None = None) -> None:
        self.cfg = cfg or RouteConfig()
        self.goal = np.asarray(goal_xy, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(self.goal)):
            raise ValueError(f"goal: expected a finite (x, y), got {goal_xy}")
        self.obstacles: list[BoxObstacle | CylinderObstacle] = [*scene.boxes, *scene.cylinders]
        self.polys = inflated_polygons(scene, self.cfg.clearance_m, self.cfg.cylinder_sides)
        self._goal_polys = self.polygons_around(self.goal)
        # Corners pushed out a millimetre so that paths through them clear the polygon they belong to.
        nodes = []
        for poly in self.polys:
            centre = poly.mean(axis=0)
            for v in poly:
                out = v + 1e-3 * (v - centre) / max(float(np.linalg.norm(v - centre)), _EPS)
                if not any(inside(out, p) for p in self.polys):
                    nodes.append(out)
        self.nodes = np.array(nodes).reshape(-1, 2)
        self.cost_to_goal, self.next_node = self._dijkstra()

    def polygons_around(self, *points: np.ndarray) -> list[np.ndarray]:
        """The inflated polygons, each one that holds one of ``points`` grown by only as much as leaves every point
        on or outside its edge (a robot already closer than the clearance may leave, but not cross the obstacle;
        a goal within the clearance can be reached)."""
        out = []
        for obstacle, poly in zip(self.obstacles, self.polys, strict=True):
            if not any(inside(p, poly) for p in points):
                out.append(poly)
                continue
            lo, hi = -1.0, self.cfg.clearance_m  # bisect the largest growth that leaves the points outside
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                if any(inside(p, obstacle_polygon(obstacle, mid, self.cfg.cylinder_sides)) for p in points):
                    hi = mid
                else:
                    lo = mid
            out.append(obstacle_polygon(obstacle, lo - 1e-4, self.cfg.cylinder_sides))
        return out

    def _visible(self, a: np.ndarray, b: np.ndarray, polys: list[np.ndarray]) -> bool:
        return not any(segment_blocked(a, b, p) for p in polys)

    def _dijkstra(self) -> tuple[np.ndarray, np.ndarray]:
        """Cost from every node to the goal and the next node on its path (-1: straight to the goal)."""
        n = len(self.nodes)
        cost = np.full(n, np.inf)
        nxt = np.full(n, -2, dtype=np.int64)
        heap: list[tuple[float, int, int]] = []
        for i in range(n):
            if self._visible(self.nodes[i], self.goal, self._goal_polys):
                heapq.heappush(heap, (float(np.linalg.norm(self.goal - self.nodes[i])), i, -1))
        done = np.zeros(n, dtype=bool)
        while heap:
            c, i, via = heapq.heappop(heap)
            if done[i]:
                continue
            done[i], cost[i], nxt[i] = True, c, via
            for j in range(n):
                if not done[j] and self._visible(self.nodes[j], self.nodes[i], self.polys):
                    heapq.heappush(heap, (c + float(np.linalg.norm(self.nodes[i] - self.nodes[j])), j, i))
        return cost, nxt

    def path(self, start_xy: np.ndarray) -> np.ndarray:
        """The shortest route ``(M, 2)`` from ``start_xy`` to the goal, both ends included.

        An obstacle whose inflated polygon holds the start (the robot closer than the clearance) blocks the first
        leg only with the growth that leaves the start on its edge (:meth:`polygons_around`). With no route at all
        (the goal walled in), the straight line.
        """
        start = np.asarray(start_xy, dtype=np.float64).reshape(2)
        around = self.polygons_around(start)
        if self._visible(start, self.goal, self.polygons_around(start, self.goal)):
            return np.stack([start, self.goal])
        best, best_cost = -1, np.inf
        for i in range(len(self.nodes)):
            if np.isfinite(self.cost_to_goal[i]):
                c = float(np.linalg.norm(self.nodes[i] - start)) + self.cost_to_goal[i]
                if c < best_cost and self._visible(start, self.nodes[i], around):
                    best, best_cost = i, c
        if best < 0:
            return np.stack([start, self.goal])
        points = [start]
        i = best
        while i >= 0:
            points.append(self.nodes[i])
            i = int(self.next_node[i])
        points.append(self.goal)
        return np.stack(points)

    def target(self, start_xy: np.ndarray) -> np.ndarray:
        """The pure-pursuit point of :meth:`path` from ``start_xy`` (:func:`pursuit_point` with the config's
        ``lookahead_m`` and ``min_lookahead_m``)."""
        return pursuit_point(self.path(start_xy), self.cfg.lookahead_m, self.cfg.min_lookahead_m)


def pursuit_point(path: np.ndarray, lookahead_m: float, min_lookahead_m: float = 0.0) -> np.ndarray:
    """Pure-pursuit target on the polyline ``path (M, 2)`` (``path[0]`` the robot, ``path[-1]`` the goal): the
    point ``lookahead_m`` along it; when the path is shorter than ``min_lookahead_m``, the point that far along it
    with the last leg extended past the goal; the goal when shorter than ``lookahead_m`` otherwise.

    Why a floor. The waypoint cost pulls the plan with a force that grows with the target's distance (gradient
    ``2 (p - target)``): a far target makes the planner walk fast, and a target a few decimetres away asks for
    steps shorter than any the walking data hold, so the plan stops short of it. Keeping the target between
    ``min_lookahead_m`` and ``lookahead_m`` ahead holds the pull in the range the planner was fitted on, up to the
    goal. The caller declares arrival (a reach radius) and stops steering there, as the navigation trials do; a
    target past the goal is only ever a pull through it."""
    if not 0.0 <= min_lookahead_m <= lookahead_m:
        raise ValueError(f"expected 0 <= min_lookahead_m <= lookahead_m, got {min_lookahead_m}, {lookahead_m}")
    path = np.asarray(path, dtype=np.float64)
    legs = np.linalg.norm(np.diff(path, axis=0), axis=1)  # (M-1,)
    length = float(legs.sum())
    if length >= min_lookahead_m or min_lookahead_m == 0.0:
        return point_along(path, lookahead_m)
    nonzero = np.flatnonzero(legs > _EPS)
    if nonzero.size == 0:  # at the goal: no direction to pull in
        return path[-1].copy()
    k = int(nonzero[-1])
    direction = (path[k + 1] - path[k]) / legs[k]
    return path[-1] + (min_lookahead_m - length) * direction


def point_along(path: np.ndarray, distance_m: float) -> np.ndarray:
    """The point ``distance_m`` along the polyline ``path (M, 2)`` from its first point (its end if shorter)."""
    left = float(distance_m)
    for k in range(len(path) - 1):
        seg = path[k + 1] - path[k]
        length = float(np.linalg.norm(seg))
        if length >= left:
            return path[k] + (left / max(length, _EPS)) * seg
        left -= length
    return path[-1].copy()
