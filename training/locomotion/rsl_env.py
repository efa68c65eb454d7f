"""The G1 walking env behind rsl-rl-lib's ``VecEnv`` interface, the PPO construction and the mirror function.

rsl-rl-lib 5.5.1 wants ``get_observations() -> TensorDict`` and ``step(actions) -> (obs, rewards,
dones, extras)`` with ``extras["time_outs"]`` (bootstrapped, not terminal) and ``extras["log"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rsl_rl.algorithms import PPO
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from envs.g1.observations import observation_mirror_map
from envs.locomotion.env import G1LocomotionEnv
from robot.g1 import constants as C

if TYPE_CHECKING:
    from training.locomotion.config import PPOConfig


RESIDUAL_EXCESS = "train/residual_excess"
"""Log key: mean over envs of the squared excess of the raw actions beyond the residual clip, summed over joints."""
RESIDUAL_BEYOND_CLIP = "train/residual_beyond_clip"
"""Log key: share of raw action entries beyond the residual clip."""


class RslLocomotionEnv(VecEnv):
    """Adapter of :class:`envs.locomotion.env.G1LocomotionEnv` to rsl-rl's VecEnv.

    Physics stays on the CPU (MuJoCo); observations, rewards and dones are handed to PPO on ``device`` (a GPU
    when the learner runs there) and actions come back to the CPU.

    ``action_joints`` (indices into the robot's joints) are the joints the policy drives; the others get action 0,
    i.e. their PD holds the default pose. The set must map onto itself under the left-right mirror. With a
    ``reference`` (observations -> robot actions, e.g. :class:`envs.locomotion.gait.SwingReference`) the policy's
    actions are residuals added to it, computed from the observation the policy acted on; ``residual_clip`` bounds them
    (action units; None: unbounded), so that a residual policy cannot cancel the reference gait. The clamp hides
    the policy's mean from the environment once it leaves the bound, so nothing pulls it back (measured on the
    committed R2 actor: 87-96 % of its mean leg actions beyond +-0.5, median |mean| 2.5, i.e. bang-bang residuals):
    ``excess_penalty`` (per second) subtracts ``excess_penalty * dt * sum_j max(|a_j| - clip, 0)^2`` of the raw
    sampled actions from the reward, a soft wall that keeps the mean where the environment can see it (the
    bounds loss of rl_games' PPO, here as a reward term since rsl-rl's loss is closed).
    """

    def __init__(
        self,
        env: G1LocomotionEnv,
        device: str = "cpu",
        action_joints: Sequence[int] | None = None,
        reference: torch.nn.Module | None = None,
        residual_clip: float | None = None,
        excess_penalty: float = 0.0,
    ) -> None:
        self.env = env
        self.reference = reference
        self.residual_clip = _clip_bound(residual_clip)
        if excess_penalty < 0.0:
            raise ValueError(f"excess_penalty: expected >= 0, got {excess_penalty}")
        self.excess_penalty = excess_penalty
        self.num_envs = env.num_envs
        ids = list(range(env.num_actions)) if action_joints is None else [int(i) for i in action_joints]
        if not ids or len(set(ids)) != len(ids) or not all(0 <= i < env.num_actions for i in ids):
            raise ValueError(f"action_joints: expected distinct joint indices in [0, {env.num_actions}), got {ids}")
        mirrored = [int(C.MIRROR_JOINT_INDEX[i]) for i in ids]
        if sorted(mirrored) != sorted(ids):
            raise ValueError(f"action_joints: {ids} is not closed under the left-right mirror (it maps to {mirrored})")
        self.action_joints = ids
        self.num_actions = len(ids)
        self.max_episode_length = env.max_episode_length
        self.device = device
        self.cfg = dataclasses.asdict(env.loco)
        perm, sign = observation_mirror_map(C.NUM_JOINTS, env.loco.env.obs)
        cperm, csign = env.critic_mirror_map()

        def on_device(index: Any, signs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.as_tensor(index, device=device), torch.as_tensor(signs, dtype=torch.float32, device=device)

        self.mirror = {"policy": on_device(perm, sign), "critic": on_device(cperm, csign)}
        self.action_mirror = on_device([ids.index(m) for m in mirrored], C.MIRROR_JOINT_SIGN[ids])

    @property
    def episode_length_buf(self) -> torch.Tensor:  # type: ignore[override]
        """Current episode lengths (N,)."""
        return torch.from_numpy(self.env.episode_length)

    def _tensordict(self, groups: dict[str, torch.Tensor]) -> TensorDict:
        return TensorDict(groups, batch_size=[self.num_envs]).to(self.device)

    def get_observations(self) -> TensorDict:
        """Observation groups "policy" and "critic"."""
        return self._tensordict(self.env.get_observations())

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One control step of every env; dones = terminated or timed out."""
        raw = actions.cpu()
        robot_actions = full_actions(raw.clamp(-self.residual_clip, self.residual_clip), self.action_joints)
        if self.reference is not None:
            robot_actions = robot_actions + self.reference(self.env.get_observations()["policy"])
        obs, reward, terminated, truncated, info = self.env.step(robot_actions)
        log = dict(info["log"])
        if self.excess_penalty > 0.0 and self.residual_clip != float("inf"):
            excess = torch.clamp(raw.abs() - self.residual_clip, min=0.0).square().sum(dim=-1)  # (N,)
            reward = reward - (self.excess_penalty * self.env.cfg.env.ctrl_dt_s) * excess.to(reward.dtype)
            log[RESIDUAL_EXCESS] = float(excess.mean())
        log[RESIDUAL_BEYOND_CLIP] = float((raw.abs() > self.residual_clip).float().mean())
        extras = {"time_outs": info["time_outs"].to(self.device), "log": log}
        return self._tensordict(obs), reward.to(self.device), (terminated | truncated).to(self.device), extras


def _clip_bound(residual_clip: float | None) -> float:
    """The residual bound as a float (None: unbounded); a clear error unless positive."""
    if residual_clip is None:
        return float("inf")
    if not residual_clip > 0.0:
        raise ValueError(f"residual_clip: expected > 0, got {residual_clip}")
    return float(residual_clip)


def full_actions(actions: torch.Tensor, action_joints: Sequence[int]) -> torch.Tensor:
    """Actions of the driven joints (N, len(action_joints)) as robot actions (N, 29), zero elsewhere."""
    if actions.shape[-1] == C.NUM_JOINTS and list(action_joints) == list(range(C.NUM_JOINTS)):
        return actions
    out = actions.new_zeros((*actions.shape[:-1], C.NUM_JOINTS))
    out[..., list(action_joints)] = actions
    return out


class FullActionActor(torch.nn.Module):
    """An actor for ``action_joints`` whose output is spread over all robot joints (zeros for the others) by a
    fixed selection matrix, plus the ``reference`` it is a residual on (if any; the residual clipped to
    ``residual_clip`` as in training), so that TorchScript and ONNX
    exports and every consumer see robot-wide actions."""

    def __init__(
        self,
        actor: torch.nn.Module,
        action_joints: Sequence[int],
        reference: torch.nn.Module | None = None,
        residual_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.actor = actor
        self.residual_clip = _clip_bound(residual_clip)
        self.reference = reference if reference is not None else _NoReference()
        select = np.zeros((len(action_joints), C.NUM_JOINTS), dtype=np.float32)
        select[np.arange(len(action_joints)), list(action_joints)] = 1.0
        self.register_buffer("select", torch.from_numpy(select))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Robot-wide actions (N, 29) of observations (N, O)."""
        return self.actor(obs).clamp(-self.residual_clip, self.residual_clip) @ self.select + self.reference(obs)


class _NoReference(torch.nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros((obs.shape[0], C.NUM_JOINTS), dtype=obs.dtype, device=obs.device)


def mirror_batch(
    env: RslLocomotionEnv, obs: TensorDict | None = None, actions: torch.Tensor | None = None
) -> tuple[TensorDict | None, torch.Tensor | None]:
    """rsl-rl symmetry function: the batch followed by its left-right mirror image (batch size doubles)."""
    obs_out = None
    if obs is not None:
        groups = {}
        for key in obs.keys():
            perm, sign = env.mirror[key]
            x = obs[key]
            groups[key] = torch.cat([x, x[:, perm] * sign], dim=0)
        obs_out = TensorDict(groups, batch_size=[obs.batch_size[0] * 2])
    actions_out = None
    if actions is not None:
        perm, sign = env.action_mirror
        actions_out = torch.cat([actions, actions[:, perm] * sign], dim=0)
    return obs_out, actions_out


def build_ppo(env: RslLocomotionEnv, cfg: PPOConfig) -> PPO:
    """rsl-rl's PPO with an MLP actor on "policy" and an asymmetric MLP critic on "critic"."""
    train_cfg: dict[str, Any] = {
        "num_steps_per_env": cfg.num_steps_per_env,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "multi_gpu": None,
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": cfg.num_learning_epochs,
            "num_mini_batches": cfg.num_mini_batches,
            "clip_param": cfg.clip_param,
            "gamma": cfg.gamma,
            "lam": cfg.lam,
            "value_loss_coef": cfg.value_loss_coef,
            "entropy_coef": cfg.entropy_coef,
            "learning_rate": cfg.learning_rate,
            "max_grad_norm": cfg.max_grad_norm,
            "schedule": "adaptive",
            "desired_kl": cfg.desired_kl,
            "symmetry_cfg": (
                {"data_augmentation_func": mirror_batch, "use_data_augmentation": True, "use_mirror_loss": False}
                if cfg.symmetry_augmentation
                else None
            ),
        },
        "actor": {
            "class_name": "MLPModel",
            "hidden_dims": list(cfg.actor_hidden_dims),
            "activation": cfg.activation,
            "obs_normalization": True,
            "distribution_cfg": {
                "class_name": "GaussianDistribution",
                "init_std": cfg.init_std,
                "std_range": (1e-6, cfg.max_action_std if cfg.max_action_std is not None else 1e6),
            },
        },
        "critic": {
            "class_name": "MLPModel",
            "hidden_dims": list(cfg.critic_hidden_dims),
            "activation": cfg.activation,
            "obs_normalization": True,
        },
    }
    return PPO.construct_algorithm(env.get_observations(), env, train_cfg, env.device)
