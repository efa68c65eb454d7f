"""The reference gait of the walking task: a swing-leg lift and a stride that travels at the command.

The walking reward's reference posture (humanoid-gym's reference-posture term) and a residual policy's base action
both read it: per-foot gait phases from the clock (left foot ``(t / period) mod 1``, right foot +0.5), a lift of the
swing leg (:data:`LIFT_MATRIX`) and, optionally, hip offsets that move each sole as the commanded body velocity
requires (:func:`stride_matrix`, from the nominal G1's sole Jacobians).
"""

from __future__ import annotations

import functools

import mujoco
import numpy as np
import torch

from robot.g1 import constants as C
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr

_LIFT_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_{j}_joint") for j in ("hip_pitch", "knee", "ankle_pitch")] for s in ("left", "right")]
)
"""(2, 3): hip pitch, knee, ankle pitch of the left and right leg."""
_LIFT_PATTERN = np.array([-1.0, 2.0, -1.0])
"""Reference swing offsets per unit lift: the thigh swings forward, the knee bends twice that, the foot stays level."""


def _lift_matrix() -> np.ndarray:
    """(2, 29): joint offsets per unit lift of the left (row 0) and right (row 1) swing leg."""
    m = np.zeros((2, C.NUM_JOINTS))
    for side in range(2):
        m[side, _LIFT_JOINTS[side]] = _LIFT_PATTERN
    return m


LIFT_MATRIX = _lift_matrix()
"""Joint offsets per unit lift of the left (row 0) and right (row 1) swing leg: hip pitch -1, knee 2, ankle -1."""


def stride_sweep(leg_phase: torch.Tensor, stance_fraction: float) -> torch.Tensor:
    """Where each foot is along its step, (N, 2) in [-1, 1]: -1 at touchdown (foot ahead), rising linearly to +1 at
    lift-off across the stance (the body travels over the planted foot), back to -1 across the swing (cosine)."""
    stance = 2.0 * leg_phase / stance_fraction - 1.0
    swing = torch.cos(torch.pi * torch.clamp((leg_phase - stance_fraction) / (1.0 - stance_fraction), 0.0, 1.0))
    return torch.where(leg_phase < stance_fraction, stance, swing)


_HIP_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_hip_{a}_joint") for a in ("pitch", "roll", "yaw")] for s in ("left", "right")]
)
_ANKLE_JOINTS = np.array(
    [[C.JOINT_NAMES.index(f"{s}_ankle_{a}_joint") for a in ("pitch", "roll")] for s in ("left", "right")]
)


@functools.lru_cache(maxsize=1)
def sole_kinematics() -> tuple[np.ndarray, np.ndarray]:
    """The sole sites of the nominal G1 at the default pose, in the pelvis frame: planar positions (2, 2) (left,
    right; x, y) and the Jacobians (2, 3, 3) of (x, y, yaw) with respect to that leg's hip pitch, roll and yaw."""
    model = build_g1_model()
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0  # pelvis at the origin, upright: the world frame is the pelvis frame
    data.qpos[joint_qpos_adr(model)] = C.DEFAULT_JOINT_POS_RAD
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    dofs = joint_dof_adr(model)
    pos, jac = np.zeros((2, 2)), np.zeros((2, 3, 3))
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for side, site in enumerate(C.FOOT_SITES):
        sid = model.site(site).id
        mujoco.mj_jacSite(model, data, jacp, jacr, sid)
        pos[side] = data.site_xpos[sid, :2]
        cols = dofs[_HIP_JOINTS[side]]
        jac[side] = np.stack([jacp[0, cols], jacp[1, cols], jacr[2, cols]])
    return pos, jac


def stride_matrix(gait_period_s: float, stance_fraction: float) -> np.ndarray:
    """Joint offsets at lift-off per unit command (vx m/s, vy m/s, yaw rate rad/s), (2 legs, 3, 29); the reference
    gait multiplies them by the command and :func:`stride_sweep`.

    Across a stance of ``T = stance_fraction * gait_period_s`` the pelvis moves at the command over the planted
    sole, so in the pelvis frame the sole at ``(x, y)`` moves by ``-T (vx - w y, vy + w x)`` and turns by ``-T w``
    (the outer foot takes the longer step in a turn): half of that ahead of its default place at touchdown, half
    behind at lift-off. Hip pitch, roll and yaw produce that motion to first order (the inverse of
    :func:`sole_kinematics`' Jacobian); ankle pitch and roll counter hip pitch and roll to keep the sole level."""
    half = 0.5 * stance_fraction * gait_period_s
    pos, jac = sole_kinematics()
    m = np.zeros((2, 3, C.NUM_JOINTS))
    for side in range(2):
        x, y = pos[side]
        sole = -half * np.array([[1.0, 0.0, -y], [0.0, 1.0, x], [0.0, 0.0, 1.0]])  # (x, y, yaw) per command
        hips = np.linalg.solve(jac[side], sole)  # (hip pitch, roll, yaw) per command
        m[side][:, _HIP_JOINTS[side]] = hips.T
        m[side][:, _ANKLE_JOINTS[side]] = -hips[:2].T
    return m


def swing_reference_rad(
    leg_phase: torch.Tensor,
    stance_fraction: float,
    lift_rad: float,
    lift_matrix: torch.Tensor,
    command: torch.Tensor | None = None,
    stride: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference joint offsets from the default pose (N, 29) at per-foot gait phases ``leg_phase`` (N, 2) (left,
    right). Lift: in stance a leg holds the default pose; across its swing hip pitch, knee and ankle pitch follow
    ``sin(pi s) * lift_rad`` times ``lift_matrix`` (:data:`LIFT_MATRIX`: thigh forward, knee bent twice that, sole
    level), s going 0 -> 1. Stride (optional): the velocity ``command`` (N, 3) times :func:`stride_sweep` times
    ``stride`` (2, 3, 29) (:func:`stride_matrix`), so that the reference travels at the command instead of stepping
    in place."""
    swing = torch.clamp((leg_phase - stance_fraction) / (1.0 - stance_fraction), 0.0, 1.0)
    lift = torch.sin(torch.pi * swing) * lift_rad  # (N, 2)
    ref = lift @ lift_matrix.to(lift.dtype)
    if command is not None and stride is not None:
        sweep = stride_sweep(leg_phase, stance_fraction).to(ref.dtype)  # (N, 2)
        cmd = command.to(ref.dtype)  # (N, 3)
        m = stride.to(ref.dtype)  # (2, 3, 29)
        ref = ref + (sweep[:, 0:1] * cmd) @ m[0] + (sweep[:, 1:2] * cmd) @ m[1]
    return ref


class SwingReference(torch.nn.Module):
    """The reference gait as policy actions (N, 29), read off the gait clock (sin, cos at ``clock_index``) and, with
    a ``stride`` (2, 3, 29) (:func:`stride_matrix`), the velocity command (at ``command_index``) of policy
    observations (N, O): a residual policy's actions are added to it. TorchScript-able, so an exported residual
    policy carries its reference; zero when ``lift_rad`` is 0 and there is no stride."""

    def __init__(
        self,
        stance_fraction: float,
        lift_rad: float,
        clock_index: int,
        command_index: int = 0,
        stride: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.stance_fraction = float(stance_fraction)
        self.lift_rad = float(lift_rad)
        self.clock_index = int(clock_index)
        self.command_index = int(command_index)
        m = np.zeros((2, 3, C.NUM_JOINTS)) if stride is None else np.asarray(stride, dtype=np.float64)
        self.register_buffer("inv_scale", torch.tensor((1.0 / C.ACTION_SCALE_RAD).tolist(), dtype=torch.float32))
        self.register_buffer("lift_matrix", torch.tensor(LIFT_MATRIX.tolist(), dtype=torch.float32))
        self.register_buffer("stride", torch.tensor(m.tolist(), dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Reference actions (N, 29) of policy observations (N, O)."""
        i = self.clock_index
        phase = torch.remainder(torch.atan2(obs[:, i], obs[:, i + 1]) / (2.0 * torch.pi), 1.0)
        leg = torch.remainder(phase[:, None] + torch.tensor([0.0, 0.5], dtype=obs.dtype, device=obs.device), 1.0)
        c = self.command_index
        cmd = obs[:, c : c + 3]
        ref = swing_reference_rad(leg, self.stance_fraction, self.lift_rad, self.lift_matrix, cmd, self.stride)
        return ref * self.inv_scale.to(obs.dtype)
