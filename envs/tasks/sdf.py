"""Planar signed distance functions of vertical obstacles and the relaxed log barrier (torch, scriptable).

Obstacles are vertical prisms (boxes with a yaw, cylinders) standing on the floor, so the distance of a point
at a height within the obstacle is the 2-D distance in the ground plane. Negative inside.

Relaxed log barrier (Diffuse-CLoC, Huang et al. 2025), C1 at ``x = delta``:

    B(x) = -ln x                                             x >= delta
    B(x) = -ln delta + 1/2 (((x - 2 delta) / delta)^2 - 1)   x <  delta
"""

import torch

BOX_PARAMS = 6
"""Per box: center x, center y, half extent x, half extent y, yaw, active (1 or 0)."""
CYLINDER_PARAMS = 4
"""Per cylinder: center x, center y, radius, active (1 or 0)."""
FAR_M = 1.0e3
"""Distance reported for inactive obstacles."""


def box_sdf(p: torch.Tensor, center: torch.Tensor, half: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Signed distance from points p (..., 2) to yawed boxes (..., 2), (..., 2), (...) -> (...)."""
    c = torch.cos(yaw)
    s = torch.sin(yaw)
    d = p - center
    local_x = c * d[..., 0] + s * d[..., 1]
    local_y = -s * d[..., 0] + c * d[..., 1]
    qx = torch.abs(local_x) - half[..., 0]
    qy = torch.abs(local_y) - half[..., 1]
    ox = torch.clamp(qx, min=0.0)
    oy = torch.clamp(qy, min=0.0)
    # The floor inside sqrt keeps gradients finite on the faces; it shifts distances by < 1e-6 m.
    outside = torch.sqrt(ox * ox + oy * oy + 1e-12) - 1e-6
    inside = torch.clamp(torch.maximum(qx, qy), max=0.0)
    return torch.where((qx > 0.0) | (qy > 0.0), outside, inside)


def cylinder_sdf(p: torch.Tensor, center: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Signed distance from points p (..., 2) to vertical cylinders (..., 2), (...) -> (...)."""
    d = p - center
    return torch.sqrt((d * d).sum(dim=-1) + 1e-12) - radius


def relaxed_log_barrier(x: torch.Tensor, delta: float) -> torch.Tensor:
    """B(x) of the module docstring, elementwise."""
    log_branch = -torch.log(torch.clamp(x, min=delta))
    quad_branch = -torch.log(torch.full_like(x, delta)) + 0.5 * (((x - 2.0 * delta) / delta) ** 2 - 1.0)
    return torch.where(x >= delta, log_branch, quad_branch)


def scene_sdf(p: torch.Tensor, params: torch.Tensor, num_boxes: int, num_cylinders: int) -> torch.Tensor:
    """Distance to the nearest active obstacle: p (B, H, 2), params (B, P) -> (B, H).

    ``params`` holds ``num_boxes`` blocks of :data:`BOX_PARAMS` then ``num_cylinders`` blocks of
    :data:`CYLINDER_PARAMS`. With no active obstacle the distance is :data:`FAR_M`.
    """
    # TorchScript cannot read module globals: local copies of BOX_PARAMS, CYLINDER_PARAMS and FAR_M.
    nbp = 6
    ncp = 4
    far = 1.0e3
    best = torch.full(p.shape[:-1], far, dtype=p.dtype, device=p.device)  # (B, H)
    for k in range(num_boxes):
        blk = params[:, k * nbp : (k + 1) * nbp]  # (B, 6)
        dist = box_sdf(p, blk[:, None, 0:2], blk[:, None, 2:4], blk[:, None, 4])  # (B, H)
        best = torch.minimum(best, torch.where(blk[:, None, 5] > 0.5, dist, torch.full_like(dist, far)))
    offset = num_boxes * nbp
    for k in range(num_cylinders):
        blk = params[:, offset + k * ncp : offset + (k + 1) * ncp]  # (B, 4)
        dist = cylinder_sdf(p, blk[:, None, 0:2], blk[:, None, 2])  # (B, H)
        best = torch.minimum(best, torch.where(blk[:, None, 3] > 0.5, dist, torch.full_like(dist, far)))
    return best
