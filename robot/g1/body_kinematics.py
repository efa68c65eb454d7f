"""Forward kinematics of the whole G1 tree in numpy: world positions and velocities of bodies' centres of mass.

The planner state needs, every control tick, where the tracked bodies' centres of mass are and how fast they move
(MuJoCo's ``xipos`` and the linear part of ``mj_objectVelocity(mjOBJ_BODY)``, world frame) from the base pose and
twist plus the 29 joint readings. The floating base is at ``p_0`` with orientation ``R_0``, linear velocity
``v_0`` (world) and angular velocity ``w_b`` (base frame). Link ``k`` is placed at ``p_k`` with orientation
``R^link_k`` in its parent and turns by ``q_k`` about its unit hinge axis ``a_k`` (link frame) at its origin, so
with homogeneous transforms

    G_0 = [[R_0, 0], [0, 1]],   G_k = [[R^link_k Rot(a_k, q_k), p_k], [0, 1]],
    P_k = G_0 G_1 ... G_k = [[R_k, o_k - p_0], [0, 1]],

the centre of mass of link ``k`` is ``c_k = o_k + R_k m_k`` (``m_k`` in the link frame) and its hinge axis in the
world is ``e_k = R_k a_k``. The velocity of the centre of mass ``c`` of body ``i`` sums the base twist and every
joint on the way from the base (Siciliano et al., "Robotics: Modelling, Planning and Control", 2009, section 3.1):

    v_c = v_0 + sum_{k <= i} w_k x (c - o_k),    w_0 = R_0 w_b (at o_0 = p_0),   w_k = dq_k e_k,

and ``sum_k w_k x r_k`` is the axial vector of ``M - M^T`` with ``M = sum_k w_k r_k^T`` (one batched product).
The tree is cut into the base-to-leaf chains that reach the requested bodies (for the tracked bodies: both legs,
and both arms through the waist, which is evaluated twice), shorter chains are padded with fixed identity links,
and the prefix products ``P_k`` of all chains come from a Hillis-Steele scan: ``ceil(log2 N)`` batched products
for chains of ``N`` transforms (4 for the G1's 11) instead of one product per link. A body without a hinge (a
fixed link of a user model) does not turn.

The numbers are read once, from :mod:`robot.g1.links` (no MuJoCo needed: the robot-side runtime) or from a
compiled model (:meth:`BodyKinematics.from_model`, e.g. a randomised or user model); a test checks both against
MuJoCo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.g1 import constants as C
from robot.g1.kinematics import quat_to_matrix, skew
from robot.g1.links import LINKS, joint_axis

_AXIAL = np.zeros((9, 3))
"""``M.reshape(9) @ _AXIAL`` is the axial vector of ``M - M^T``: ``(M_yz - M_zy, M_zx - M_xz, M_xy - M_yx)``."""
for _i, (_a, _b) in enumerate(((1, 2), (2, 0), (0, 1))):
    _AXIAL[3 * _a + _b, _i], _AXIAL[3 * _b + _a, _i] = 1.0, -1.0


@dataclass(frozen=True)
class BodyFrame:
    """One body of the kinematic tree as :class:`BodyKinematics` needs it."""

    name: str
    """Body name."""
    parent: str | None
    """Parent body name; None for the floating base."""
    joint: str | None
    """Hinge joint between parent and this body (one of ``C.JOINT_NAMES``); None for the base or a fixed body."""
    pos_m: np.ndarray
    """(3,) body origin in the parent frame."""
    rot: np.ndarray
    """(3, 3) body orientation in the parent frame."""
    axis: np.ndarray
    """(3,) unit hinge axis in the body frame (zeros without a joint)."""
    com_m: np.ndarray
    """(3,) centre of mass in the body frame."""


class BodyKinematics:
    """Centres of mass of ``bodies`` and their world velocities from base pose/twist and joints (module docstring)."""

    def __init__(self, frames: Sequence[BodyFrame], bodies: Sequence[str] = C.TRACKED_BODIES) -> None:
        """``frames``: the tree, one entry per body (one root with ``parent`` None); ``bodies``: the bodies to
        report, in order (not the root)."""
        by_name = {f.name: f for f in frames}
        chains, self._chain_ids, steps = _chains(by_name, bodies)
        self.bodies = tuple(bodies)
        self._step_ids = steps + 1  # step 0 of every chain is the floating base
        n_chains, n_steps = len(chains), 1 + max(len(ch) for ch in chains)
        pos, rot = np.zeros((n_chains, n_steps, 3)), np.broadcast_to(np.eye(3), (n_chains, n_steps, 3, 3)).copy()
        axes, com = np.zeros((n_chains, n_steps, 3)), np.zeros((n_chains, n_steps, 3))
        self._joint_ids = np.zeros((n_chains, n_steps), dtype=np.intp)  # any joint where the axis is zero
        for c, chain in enumerate(chains):
            for k, name in enumerate(chain, start=1):
                f = by_name[name]
                pos[c, k], rot[c, k], com[c, k] = f.pos_m, f.rot, f.com_m
                if f.joint is not None:
                    axes[c, k] = np.asarray(f.axis, dtype=np.float64) / np.linalg.norm(f.axis)
                    self._joint_ids[c, k] = C.joint_index(f.joint)
        # G_k = [[A_k, p_k], [0, 1]] = t0 + sin q_k t1 + cos q_k t2 by Rodrigues' formula
        # A_k = R^link_k Rot(a_k, q_k) = R^link + sin q R^link K + (1 - cos q) R^link K^2, K = [a_k]_x
        k1 = skew(axes)
        self._t0, self._t1, self._t2 = (np.zeros((n_chains, n_steps, 4, 4)) for _ in range(3))
        self._t0[..., :3, :3], self._t0[..., :3, 3], self._t0[..., 3, 3] = rot + rot @ k1 @ k1, pos, 1.0
        self._t1[..., :3, :3], self._t2[..., :3, :3] = rot @ k1, -rot @ k1 @ k1
        self._t0[:, 0, :3, :3] = 0.0  # the base's rotation is set per call
        # P_k [m_k, a_k; 1, 0] = [c_k - p_0, e_k] (R_k a_k = R_{k-1} R^link a_k: Rot(a, q) a = a)
        self._com_axis = np.zeros((n_chains, n_steps, 4, 2))
        self._com_axis[..., :3, 0], self._com_axis[..., 3, 0], self._com_axis[..., :3, 1] = com, 1.0, axes
        # joints at or above each requested body (step 0, the base, always)
        self._above = (np.arange(n_steps) <= self._step_ids[:, None])[..., None].astype(np.float64)  # (K, N, 1)

    @classmethod
    def from_links(cls, bodies: Sequence[str] = C.TRACKED_BODIES) -> BodyKinematics:
        """From the link table of :mod:`robot.g1.links` (what :func:`robot.g1.model.build_g1_model` compiles)."""
        frames = [
            BodyFrame(
                link.name,
                link.parent,
                link.joint,
                np.array(link.pos_m, dtype=np.float64),
                quat_to_matrix(np.array(link.quat_wxyz)),
                np.array(joint_axis(link.joint) if link.joint else (0.0, 0.0, 0.0)),
                np.array(link.com_m, dtype=np.float64),
            )
            for link in LINKS
        ]
        return cls(frames, bodies)

    @classmethod
    def from_model(cls, model: Any, bodies: Sequence[str] = C.TRACKED_BODIES) -> BodyKinematics:
        """From a compiled ``mujoco.MjModel`` (read by attribute, so this module never imports MuJoCo).

        Reads the subtree of the root body ``C.ROOT_BODY`` (which carries the free joint): body placements, centres
        of mass (``body_ipos``, so a randomised model's are used) and hinge axes. Each body has at most one joint, a
        hinge at its origin named in ``C.JOINT_NAMES``.
        """
        root = model.body(C.ROOT_BODY).id
        frames = []
        for b in range(model.nbody):
            body = model.body(b)
            if b != root and not _descends_from(model, b, root):
                continue
            num, adr = int(model.body_jntnum[b]), int(model.body_jntadr[b])
            joint, axis = None, np.zeros(3)
            if b != root and num > 0:
                jnt = model.joint(adr)
                if num > 1 or jnt.name not in C.JOINT_NAMES or np.any(jnt.pos != 0.0):
                    raise ValueError(
                        f"body {body.name!r}: expected one G1 hinge at the body origin, got {num} joint(s), first "
                        f"{jnt.name!r} at {jnt.pos}"
                    )
                joint, axis = jnt.name, np.array(jnt.axis, dtype=np.float64)
            parent = None if b == root else model.body(int(model.body_parentid[b])).name
            frames.append(
                BodyFrame(
                    body.name,
                    parent,
                    joint,
                    np.array(body.pos, dtype=np.float64),
                    quat_to_matrix(np.array(body.quat, dtype=np.float64)),
                    axis,
                    np.array(body.ipos, dtype=np.float64),
                )
            )
        return cls(frames, bodies)

    def __call__(
        self,
        base_pos_m: np.ndarray,
        base_quat_wxyz: np.ndarray,
        base_lin_vel_world_m_per_s: np.ndarray,
        base_ang_vel_body_rad_per_s: np.ndarray,
        joint_pos_rad: np.ndarray,
        joint_vel_rad_per_s: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """World centres of mass ``(K, 3)`` (m) and their world linear velocities ``(K, 3)`` (m/s) of ONE robot.

        Shapes (3,), (4,), (3,), (3,), (J,), (J,), joints in SDK motor order; the quaternion need not be unit.
        """
        q = np.asarray(joint_pos_rad, dtype=np.float64)[self._joint_ids]  # (C, N)
        dq = np.asarray(joint_vel_rad_per_s, dtype=np.float64)[self._joint_ids]  # (C, N)
        frames = self._t0 + np.sin(q)[..., None, None] * self._t1 + np.cos(q)[..., None, None] * self._t2  # G_k
        base_rot = _quat_to_matrix(base_quat_wxyz)
        frames[:, 0, :3, :3] = base_rot  # G_0 = [[R_0, 0], [0, 1]]: positions relative to p_0
        step = 1
        while step < frames.shape[1]:  # Hillis-Steele prefix products: P_k = G_0 G_1 ... G_k in log2(N) steps
            frames[:, step:] = frames[:, :-step] @ frames[:, step:]
            step *= 2
        com_axis = frames @ self._com_axis  # (C, N, 4, 2): [c_k - p_0, e_k]
        c, k = self._chain_ids, self._step_ids
        rel = com_axis[c, k, :3, 0]  # (K, 3): c_i - p_0
        twist = com_axis[..., :3, 1] * dq[..., None]  # (C, N, 3): dq_k e_k
        twist[:, 0] = base_rot @ np.asarray(base_ang_vel_body_rad_per_s, dtype=np.float64)  # w_0 at o_0 = p_0
        lever = rel[:, None, :] - frames[c, :, :3, 3]  # (K, N, 3): c_i - o_k
        # sum_k w_k x r_k is the axial vector of M - M^T with M = sum_k w_k r_k^T
        m = np.swapaxes(twist[c] * self._above, -1, -2) @ lever  # (K, 3, 3)
        vel = base_lin_vel_world_m_per_s + m.reshape(-1, 9) @ _AXIAL
        return base_pos_m + rel, vel


def _chains(
    by_name: dict[str, BodyFrame], bodies: Sequence[str]
) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    """The root-to-leaf chains (root excluded) that reach ``bodies``, and each body's chain and step in it."""
    roots = [n for n, f in by_name.items() if f.parent is None]
    if len(roots) != 1:
        raise ValueError(f"expected one root body (parent None), got {roots}")
    paths = []
    for body in bodies:
        if body not in by_name or body == roots[0]:
            raise ValueError(f"body {body!r}: expected a non-root body of the tree, one of {sorted(by_name)}")
        path = [body]
        while by_name[path[-1]].parent is not None:
            if by_name[path[-1]].parent not in by_name or len(path) > len(by_name):
                raise ValueError(f"body {path[-1]!r}: parent {by_name[path[-1]].parent!r} missing or in a cycle")
            path.append(by_name[path[-1]].parent)
        paths.append(tuple(path[-2::-1]))  # base to body, root excluded
    chains = list(dict.fromkeys(p for p in paths if not any(len(o) > len(p) and o[: len(p)] == p for o in paths)))
    chain_ids = np.array([next(c for c, ch in enumerate(chains) if ch[: len(p)] == p) for p in paths])
    return chains, chain_ids, np.array([len(p) - 1 for p in paths])


def _quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of ONE quaternion (w, x, y, z), normalised: :func:`robot.g1.kinematics.quat_to_matrix`
    on Python floats, a fraction of its time for a single quaternion."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64).tolist()
    n = 1.0 / math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w * n, x * n, y * n, z * n
    flat = [
        *(1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        *(2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        *(2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    ]
    return np.array(flat).reshape(3, 3)


def _descends_from(model: Any, body: int, root: int) -> bool:
    """Whether ``body`` lies in the subtree of ``root`` (world is body 0 and its own parent)."""
    while body != 0:
        body = int(model.body_parentid[body])
        if body == root:
            return True
    return False
