"""A guided diffusion planner as the control loop's policy: joystick-steered G1 walking from a planner.

    python -m deploy.run --policy assets/g1_planner/planner.pt     # TorchScript
    python -m deploy.run --policy assets/g1_planner/planner.onnx   # ONNX Runtime + numpy (deploy.export_planner --onnx)

The exported planner (``python -m deploy.export_planner``) carries the robot metadata of the expert whose data it
learned from (joint order, gains, default pose, action scale, control period), so the loop checks and drives it
like any exported policy. Each tick the loop hands it the robot state and the joystick command
(:meth:`deploy.policies.base.RuntimePolicy.observe_state`); the policy turns the state into the planner state by
forward kinematics (:class:`envs.planner.state.PlannerStateEstimator`), keeps the last ``Hh`` states and the ``Hh``
actions before the current one, sets the joystick cost's parameters from the command and plans; the first planned
action is executed. The previous plan warm-starts the next one when the export has ``rolling_start > 0``.

The planner state needs the base position and linear velocity. A real G1 publishes neither: ``deploy.run``
attaches the base-state estimator of :mod:`robot.estimation` to the robot (a contact-aided Kalman filter on the IMU
and the joint encoders, fed every state sample), which fills them in; the simulator does the same unless asked
for its ground truth (``--state-source oracle``). Without them, or when a plan fails, ``act`` returns NaN and the
loop's safety state machine enters damping with the reason logged; an estimator that reports itself invalid damps
the loop too (:mod:`deploy.safety_fsm`).
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from deploy.policies.base import RuntimePolicy
from deploy.policies.metadata import PLANNER_FORMAT, PolicyMetadata
from envs.planner.onnx import OnnxPlanner, OnnxPlannerModel
from envs.planner.state import PlannerStateEstimator
from robot.files import read_metadata_beside
from robot.messages import RobotState

LOG = logging.getLogger("steer.deploy.planner_policy")  # the name from before the move: log filters use it


class PlannerPolicy(RuntimePolicy):
    """``act`` = the first action of a joystick-guided plan from the last ``Hh`` observed states."""

    def __init__(
        self,
        module: Any,
        planner_meta: dict[str, Any],
        metadata: PolicyMetadata,
        path: Path | None = None,
        seed: int = 0,
        estimator: PlannerStateEstimator | None = None,
    ) -> None:
        super().__init__(metadata, path)
        self.module = module
        if isinstance(module, OnnxPlannerModel):
            self.planner: Any = OnnxPlanner(module, seed)
        else:  # a TorchScript module
            from envs.planner.runtime import ExportedPlanner

            self.planner = ExportedPlanner(module, planner_meta, seed)
        self.history, self.state_dim = self.planner.history, self.planner.state_dim
        self.joystick_offset = self.planner.gate("joystick")
        self.estimator = estimator or PlannerStateEstimator()
        self.reset()

    def reset(self) -> None:
        """Forget the history and the warm start (the loop left POLICY)."""
        self._states: deque[np.ndarray] = deque(maxlen=self.history)
        self._actions: deque[np.ndarray] = deque(maxlen=self.history)
        self._command = np.zeros(3)
        self.planner.reset()
        self._problem: str | None = None

    def observe_state(self, state: RobotState, command: np.ndarray) -> None:
        """The planner state of this tick from the robot state, and the joystick command."""
        self._problem = None
        if state.base_pos_m.shape != (3,) or state.base_lin_vel_m_per_s.shape != (3,):
            self._problem = "the robot state has no base position/velocity (needs the simulator or a state estimator)"
            return
        try:
            s = self.estimator(
                state.base_pos_m,
                state.imu_quat_wxyz,
                state.base_lin_vel_m_per_s,
                state.imu_gyro_rad_per_s,
                state.joint_pos_rad,
                state.joint_vel_rad_per_s,
            )
        except ValueError as exc:
            self._problem = f"planner state: {exc}"
            return
        if not self._states:  # a fresh start repeats the first state; no actions were taken before it
            self._states.extend([s] * self.history)
            self._actions.extend([np.zeros(self.metadata.num_joints)] * self.history)
        else:
            self._states.append(s)
        self._command = np.asarray(command, dtype=np.float64)

    def warmup(self, calls: int = 3) -> None:
        """Plan a few times from the default standing state (TorchScript optimises during its first calls)."""
        s = np.zeros(self.state_dim)
        for _ in range(calls):
            self.plan(np.stack([s] * self.history), np.zeros((self.history, self.metadata.num_joints)), np.zeros(3))
        self.planner.reset()

    def plan(self, states: np.ndarray, actions: np.ndarray, command: np.ndarray) -> np.ndarray:
        """Planned actions ``(Hf, J)`` from ``states (Hh, S)``, the actions before them ``(Hh, J)`` and the command."""
        params = np.zeros((1, self.planner.param_dim), dtype=np.float32)
        o = self.joystick_offset
        params[0, o] = 1.0
        params[0, o + 1 : o + 4] = command
        batch = (states[None].astype(np.float32), actions[None].astype(np.float32), params)
        if isinstance(self.planner, OnnxPlanner):
            return self.planner.plan(*batch)[0].astype(np.float64)
        import torch

        chunk = self.planner.plan(*(torch.from_numpy(a) for a in batch))
        return chunk[0].numpy().astype(np.float64)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action of this tick (``obs``, the expert's observation, is not used); NaN when it cannot plan."""
        if self._problem is not None or len(self._states) < self.history:
            reason = self._problem or "no robot state observed before act"
            LOG.error("planner policy: %s", reason)
            return np.full(self.metadata.num_joints, np.nan)
        try:
            chunk = self.plan(np.stack(self._states), np.stack(self._actions), self._command)
        except (RuntimeError, ValueError) as exc:
            LOG.error("planner policy: planning failed: %s", exc)
            return np.full(self.metadata.num_joints, np.nan)
        a = np.clip(chunk[0], -self._clip, self._clip)
        self._actions.append(a)
        return a


def load_planner_policy(path: str | Path, seed: int = 0, precision: str = "fp32") -> PlannerPolicy:
    """Load an exported G1 planner that carries its expert's robot metadata: TorchScript (``.pt`` + ``.json``) or
    ONNX (``.onnx`` and its companion graphs; ``precision`` fp32 or int8)."""
    path = Path(path)
    module: Any
    if path.suffix == ".onnx":
        module = OnnxPlannerModel(path, precision)
        meta = module.meta
    else:
        import torch

        meta = read_metadata_beside(path, PLANNER_FORMAT)
        module = torch.jit.load(str(path), map_location="cpu").eval()
    robot = meta.get("extra", {}).get("policy_metadata")
    if not isinstance(robot, dict):
        raise ValueError(
            f"{path.with_suffix('.json')}: no robot metadata (extra.policy_metadata); export it with "
            "python -m deploy.export_planner --robot-metadata <the expert's deploy .json>"
        )
    return PlannerPolicy(module, meta, PolicyMetadata.from_dict(robot), path, seed)
