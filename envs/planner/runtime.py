"""Calling an exported planner (``python -m deploy.export_planner``) the way every runtime does.

The closed-loop evaluation, the deploy loop's planner policy and the latency benchmark all plan the same way:
fresh standard-normal noise for each plan from a seeded generator, the previous plan's tokens as the warm start
when the export has ``rolling_start > 0``, and autograd switched on (also inside an inference-mode block), because
the guided sampling loop takes the cost gradient inside the TorchScript module. Cost terms sit behind gates whose
offsets the export's metadata lists (``cost_terms``).
"""

from __future__ import annotations

from typing import Any

import torch

from envs.planner.onnx import GatedPlannerRuntime


def gate_offsets(cost_terms: list[dict[str, Any]]) -> dict[str, int]:
    """Offset of each task term's gate in the cost parameters, by term (``joystick``, ``waypoint``, ``obstacles``),
    from a cost layout: an export's ``meta["cost_terms"]`` or ``CostSum.param_layout()``."""
    return {t["params"][0].removesuffix("_gate"): int(t["offset"]) for t in cost_terms}


class ExportedPlanner(GatedPlannerRuntime):
    """An exported planner module with its metadata (see module docstring); ``reset()`` drops the warm start."""

    def __init__(self, module: Any, meta: dict[str, Any], seed: int = 0) -> None:
        self.module, self.meta = module, meta
        self.history, self.state_dim = int(meta["history"]), int(meta["state_dim"])
        self.action_dim, self.token_dim = int(meta["action_dim"]), int(meta["token_dim"])
        self.window = self.history + int(meta["horizon"])
        self.param_dim = int(meta["cost_param_dim"])
        self.rolling = int(meta["rolling_start"]) > 0
        self.gates = gate_offsets(meta["cost_terms"])
        self.gen = torch.Generator().manual_seed(seed)
        self.prev: torch.Tensor | None = None

    def plan(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        params: torch.Tensor | None,
        fresh: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Planned actions ``(B, Hf, A)`` from the last ``states (B, Hh, S)``, the actions before them
        ``(B, Hh, A)`` and the cost parameters ``(B, P)`` (None: unguided). Row 0 is the action to execute now.

        ``fresh (B,)`` bool marks rows whose episode has just begun: with rolling starts their previous plan
        belongs to the episode before, so they start cold while the other rows stay warm.
        """
        noise = torch.randn(states.shape[0], self.window, self.token_dim, generator=self.gen)
        prev = self.prev if self.rolling else None
        if prev is not None and prev.shape[0] != states.shape[0]:
            prev = None  # the batch changed: nothing to warm-start from
        with torch.inference_mode(False), torch.enable_grad():
            plan, tokens = self.module(states, actions, params, noise, prev)
            plan, tokens = plan.detach(), tokens.detach()
            if prev is not None and fresh is not None and bool(fresh.any()):
                # The fresh rows again, cold (their warm plans above are discarded: resets are rare).
                cold = fresh.to(torch.bool)
                p = None if params is None else params[cold]
                cold_plan, cold_tokens = self.module(states[cold], actions[cold], p, noise[cold], None)
                plan[cold], tokens[cold] = cold_plan.detach(), cold_tokens.detach()
        self.prev = tokens
        return plan[:, :, self.state_dim :]  # (B, Hf, A)
