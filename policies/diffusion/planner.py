"""``DiffusionPlanner``: a guided diffusion policy over state-action windows (BeyondMimic / Diffuse-CLoC).

A window has ``Hh`` history steps and ``Hf`` future steps, one token per step. In sampler space a token is
``[normalised state (S), normalised action (A)]`` or, with the latent action autoencoder,
``[normalised state (S), normalised action latent (Z)]`` where the action is decoded from its latent with the
step's state as the condition (BeyondMimic v4 diffuses states plus action latents; only what is executed is
decoded). History tokens are inpainted (held clean, exactly equal to the observations); costs see the decoded
physical trajectory ``(B, H, S + A)`` so guidance gradients flow through the un-normalisation and the decoder.

Rolling (warm-started) denoising: the previous plan is shifted by one step, its last token repeated, and the
future tokens are re-noised to entry ``rolling_start`` of the K-step sequence, so a tick costs
``K - rolling_start`` network passes instead of K (BeyondMimic reports ~15 of 20).

Action head (optional, ``action_head_states > 0``): the executed action is not the first diffused action but an MLP
of the history (states and actions) and the first planned states and action, the inverse-dynamics read-out of
Decision Diffuser. It is trained after the denoiser on the planner's own guided samples
(``training.planner.action_head``), so it learns what the sampled plans mean, errors included; guidance still acts
on the plan, and through it on the action.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import torch
import tyro
from torch import nn

from policies.base import Policy
from policies.diffusion.denoisers.mlp import ResidualMLPConfig, ResidualMLPDenoiser
from policies.diffusion.denoisers.transformer import AttentionKind, TrajectoryTransformer, TrajectoryTransformerConfig
from policies.diffusion.guidance import CostSum
from policies.diffusion.model import Diffusion, DiffusionConfig
from policies.diffusion.quantize import quantize_linear_int8
from policies.diffusion.vae import LatentAutoencoder, VAEConfig
from policies.mirror import MirrorMaps
from policies.model_file import read_model_payload
from policies.normalizer import Normalizer

COSTS_PREFIX = "diffusion.costs."
SAMPLER_BUFFERS = ("diffusion.steps", "diffusion.guide_scales")
"""Buffers derived from the sampler and guidance settings, which may change after training."""


PLANNER_MODEL_FORMAT = "steer.planner_model"
"""``format`` of a trained planner's model file (config and weights; ``training.planner.train`` writes it)."""


def load_planner_model(path: Path) -> dict[str, Any]:
    """Read a planner model (``planner_model.safetensors`` with its ``.json``, or a ``planner_model.pt`` of the
    earlier layout; :mod:`policies.model_file`) with clear errors for missing, corrupt or foreign files."""
    data = read_model_payload(path, "planner model", "train one with `python -m training.planner.train`")
    if data.get("format") != PLANNER_MODEL_FORMAT:
        raise ValueError(f"{path}: expected a {PLANNER_MODEL_FORMAT!r} file")
    return data


def _settings_key(key: str) -> bool:
    return key.startswith(COSTS_PREFIX) or key in SAMPLER_BUFFERS


@dataclass
class TransformerDenoiserConfig:
    """A trajectory transformer over the window, one token per step (Diffuse-CLoC; BeyondMimic)."""

    num_layers: int = 2
    """transformer blocks"""
    num_heads: int = 4
    """attention heads (width must be an even multiple of them)"""
    width: int = 256
    """token width"""
    attention: AttentionKind = "full"
    """attention mask: full, causal or diffuse_cloc"""

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.num_heads < 1 or self.width < 1:
            raise ValueError(
                f"num_layers, num_heads and width: expected >= 1, got {self.num_layers}, {self.num_heads}, {self.width}"
            )

    @property
    def kind(self) -> str:
        """``"transformer"``: the denoiser's name in exported metadata."""
        return "transformer"


@dataclass
class MLPDenoiserConfig:
    """A residual MLP over the flattened window (the plain baseline of the denoiser ablations)."""

    width: int = 256
    """hidden width"""
    blocks: int = 3
    """residual blocks"""

    def __post_init__(self) -> None:
        if self.width < 1 or self.blocks < 1:
            raise ValueError(f"width and blocks: expected >= 1, got {self.width}, {self.blocks}")

    @property
    def kind(self) -> str:
        """``"mlp"``: the denoiser's name in exported metadata."""
        return "mlp"


PlannerDenoiser = Union[
    Annotated[TransformerDenoiserConfig, tyro.conf.subcommand("transformer")],
    Annotated[MLPDenoiserConfig, tyro.conf.subcommand("mlp")],
]
"""The planner's denoiser: one config per network, each with only its own options (on the command line a
subcommand, ``planner.denoiser:mlp --planner.denoiser.blocks 4``; in JSON tagged with the class name)."""

_FLAT_DENOISER_KEYS = ("num_layers", "num_heads", "width", "attention", "mlp_blocks")
"""Keys of the flat layout that older planner files used (``denoiser`` a name, its options beside it)."""


@dataclass
class PlannerConfig:
    """Shapes, denoiser and sampling of a diffusion planner."""

    state_dim: int = 4
    """S, planner state features per step"""
    action_dim: int = 2
    """A, action features per step"""
    history: int = 4
    """Hh, past steps inpainted from observations"""
    horizon: int = 16
    """Hf, future steps planned"""
    latent_dim: int = 0
    """Z of the per-step action latent (0 diffuses raw actions)"""
    vae_kl_weight: float = 1e-3
    """beta of the action autoencoder's KL term"""
    denoiser: PlannerDenoiser = field(default_factory=TransformerDenoiserConfig)
    """the network that predicts the clean window: a trajectory transformer or a residual MLP"""
    action_loss_steps: int = 8
    """train the action features only on the first this many future steps (BeyondMimic)"""
    action_loss_weight: float = 1.0
    """weight of each action feature's error relative to a state feature's (a window has far more state features
    than trained action features: 16 x S against 8 x A or 8 x Z)"""
    execute_steps: int = 1
    """actions returned as the chunk to execute"""
    action_head_states: int = 0
    """M: with M > 0 the executed action is the action head's, from the history and the first M planned states and
    the first planned action (needs execute_steps = 1); 0 executes the first diffused action"""
    action_head_width: int = 512
    """hidden width of the action head's MLP (3 hidden layers)"""
    action_head_mirror: bool = False
    """make the action head left-right equivariant: its action is the mean of the head on the input and the mirror
    image of the head on the mirrored input (:mod:`policies.mirror`; the robot's maps are set with
    :meth:`DiffusionPlanner.set_mirror_maps` and travel with the weights)"""
    rolling_start: int = 0
    """warm start entry in the K-step sequence (0 = cold start every call; K - rolling_start passes a tick)"""
    denoiser_int8: bool = False
    """inference: run the denoiser's linear layers in int8 (:meth:`DiffusionPlanner.quantize_for_inference`, done
    by the export and the action head's fit after the weights are loaded); training always uses float"""
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    """schedule, prediction type, sampler and guidance"""

    def __post_init__(self) -> None:
        for name in ("state_dim", "history", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.action_dim < 1 or self.latent_dim < 0:
            raise ValueError(f"expected action_dim >= 1 and latent_dim >= 0, got {self.action_dim}, {self.latent_dim}")
        if not isinstance(self.denoiser, (TransformerDenoiserConfig, MLPDenoiserConfig)):
            raise ValueError(
                "denoiser: expected a TransformerDenoiserConfig or an MLPDenoiserConfig, "
                f"got {type(self.denoiser).__name__}"
            )
        if not self.action_loss_weight > 0.0:
            raise ValueError(f"action_loss_weight: expected > 0, got {self.action_loss_weight}")
        if not 1 <= self.execute_steps <= self.horizon:
            raise ValueError(f"execute_steps: expected 1..horizon={self.horizon}, got {self.execute_steps}")
        if not 0 <= self.action_head_states <= self.horizon:
            raise ValueError(f"action_head_states: expected 0..horizon={self.horizon}, got {self.action_head_states}")
        if self.action_head_states > 0 and self.execute_steps != 1:
            raise ValueError("action_head_states > 0 decodes one action per call: expected execute_steps = 1")
        if self.action_head_width < 1:
            raise ValueError(f"action_head_width: expected >= 1, got {self.action_head_width}")
        if self.action_head_mirror and self.action_head_states == 0:
            raise ValueError("action_head_mirror: expected an action head (action_head_states > 0)")
        if not 0 <= self.rolling_start < self.diffusion.sampler.num_steps:
            raise ValueError(
                f"rolling_start: expected 0..{self.diffusion.sampler.num_steps - 1} (sampler steps - 1), "
                f"got {self.rolling_start}"
            )

    @staticmethod
    def migrate_json(data: dict[str, Any]) -> dict[str, Any]:
        """Read the flat layout of older planner files (``"denoiser": "transformer"`` with ``num_layers``,
        ``num_heads``, ``width``, ``attention`` and ``mlp_blocks`` beside it) as the typed denoiser config."""
        kind = data.get("denoiser", "transformer")
        if not isinstance(kind, str) and not any(k in data for k in _FLAT_DENOISER_KEYS):
            return data
        if not isinstance(kind, str):
            raise ValueError(f"planner config: a denoiser config and the flat keys {_FLAT_DENOISER_KEYS} together")
        flat = {k: data.pop(k) for k in _FLAT_DENOISER_KEYS if k in data}
        if kind == "transformer":
            keep = {k: flat[k] for k in ("num_layers", "num_heads", "width", "attention") if k in flat}
            data["denoiser"] = {"_type": TransformerDenoiserConfig.__name__, **keep}
        elif kind == "mlp":
            keep = {"width": flat["width"]} if "width" in flat else {}
            if "mlp_blocks" in flat:
                keep["blocks"] = flat["mlp_blocks"]
            data["denoiser"] = {"_type": MLPDenoiserConfig.__name__, **keep}
        else:
            raise ValueError(f"planner config: denoiser expected 'transformer' or 'mlp', got {kind!r}")
        return data

    @property
    def token_dim(self) -> int:
        """D, features of one sampler-space token."""
        return self.state_dim + (self.latent_dim if self.latent_dim > 0 else self.action_dim)

    @property
    def window(self) -> int:
        """H = Hh + Hf tokens."""
        return self.history + self.horizon


class PlanDecoder(nn.Module):
    """Sampler-space tokens ``(B, H, D)`` to physical ``[states, actions]`` ``(B, H, S + A)``."""

    state_dim: int
    action_dim: int
    latent_dim: int

    def __init__(self, config: PlannerConfig) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.latent_dim = config.state_dim, config.action_dim, config.latent_dim
        self.normalizer = Normalizer(config.state_dim + config.action_dim)
        self.latent_normalizer = Normalizer(max(config.latent_dim, 1))
        self.vae = None
        if config.latent_dim > 0:
            self.vae = LatentAutoencoder(
                VAEConfig(
                    input_dim=config.action_dim,
                    window=1,
                    cond_dim=config.state_dim,
                    latent_dim=config.latent_dim,
                    kl_weight=config.vae_kl_weight,
                )
            )

    def normalized_actions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised actions ``(B, H, A)`` of sampler-space tokens (decoding latents if any)."""
        S = self.state_dim
        vae = self.vae
        if vae is None:
            return tokens[..., S:]
        B, H = tokens.shape[0], tokens.shape[1]
        z = self.latent_normalizer.unnormalize(tokens[..., S:]).reshape(B * H, self.latent_dim)  # (B*H, Z)
        cond = tokens[..., :S].reshape(B * H, S)  # (B*H, S)
        return vae.decode(z, cond).reshape(B, H, self.action_dim)  # (B, H, A)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Physical trajectory ``(B, H, S + A)``."""
        norm = torch.cat([tokens[..., : self.state_dim], self.normalized_actions(tokens)], dim=-1)
        return self.normalizer.unnormalize(norm)


def with_sampling(
    config: PlannerConfig,
    guidance_mode: Optional[str] = None,
    guidance_scale: Optional[float] = None,
    sampler_steps: Optional[int] = None,
    rolling_start: Optional[int] = None,
    denoiser_int8: Optional[bool] = None,
) -> PlannerConfig:
    """``config`` with other sampler, guidance and inference settings (None keeps the config's); they need no
    retraining."""
    d = config.diffusion
    guidance, sampler = d.guidance, d.sampler
    if guidance_mode is not None:
        guidance = dataclasses.replace(guidance, mode=guidance_mode)
    if guidance_scale is not None:
        guidance = dataclasses.replace(guidance, scale=guidance_scale)
    if sampler_steps is not None:
        sampler = dataclasses.replace(sampler, num_steps=sampler_steps)
    diffusion = dataclasses.replace(d, guidance=guidance, sampler=sampler)
    rolling = config.rolling_start if rolling_start is None else rolling_start
    int8 = config.denoiser_int8 if denoiser_int8 is None else denoiser_int8
    return dataclasses.replace(config, diffusion=diffusion, rolling_start=rolling, denoiser_int8=int8)


class ActionHead(nn.Module):
    """MLP from normalised history states ``(B, Hh, S)`` and actions ``(B, Hh, A)``, the first M planned states
    ``(B, M, S)`` and the first planned action ``(B, A)`` to the normalised action to execute ``(B, A)``."""

    def __init__(self, config: PlannerConfig) -> None:
        super().__init__()
        S, A, Hh, M, W = (
            config.state_dim,
            config.action_dim,
            config.history,
            config.action_head_states,
            config.action_head_width,
        )
        self.net = nn.Sequential(
            nn.Linear(Hh * (S + A) + M * S + A, W),
            nn.GELU(),
            nn.Linear(W, W),
            nn.GELU(),
            nn.Linear(W, W),
            nn.GELU(),
            nn.Linear(W, A),
        )

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, plan_states: torch.Tensor, plan_action: torch.Tensor
    ) -> torch.Tensor:
        """Normalised action ``(B, A)``."""
        x = torch.cat([states.flatten(1), actions.flatten(1), plan_states.flatten(1), plan_action], dim=1)
        return self.net(x)


class DiffusionPlanner(Policy):
    """Normaliser, optional latent action autoencoder, denoiser, schedule, sampler and guidance."""

    __jit_unused_properties__ = ["decoder"]  # noqa: RUF012 - TorchScript reads this exact name
    history: int
    horizon: int
    state_dim: int
    action_dim: int
    execute_steps: int
    rolling_start: int
    head_states: int
    _prev_tokens: Optional[torch.Tensor]

    def __init__(self, config: PlannerConfig, costs: Optional[CostSum] = None) -> None:
        super().__init__()
        self.config = config
        self.history, self.horizon = config.history, config.horizon
        self.state_dim, self.action_dim = config.state_dim, config.action_dim
        self.execute_steps, self.rolling_start = config.execute_steps, config.rolling_start
        T = config.diffusion.schedule.num_train_steps
        net = config.denoiser
        if isinstance(net, TransformerDenoiserConfig):
            denoiser: nn.Module = TrajectoryTransformer(
                TrajectoryTransformerConfig(
                    state_dim=config.state_dim,
                    action_dim=config.token_dim - config.state_dim,
                    horizon=config.window,
                    num_train_steps=T,
                    num_layers=net.num_layers,
                    num_heads=net.num_heads,
                    width=net.width,
                    attention=net.attention,
                )
            )
        else:
            denoiser = ResidualMLPDenoiser(
                ResidualMLPConfig(
                    x_dim=config.token_dim,
                    horizon=config.window,
                    num_train_steps=T,
                    width=net.width,
                    num_blocks=net.blocks,
                    dropout=0.0,
                )
            )
        self.diffusion = Diffusion(config.diffusion, denoiser, costs=costs, decoder=PlanDecoder(config))
        self.head_states = config.action_head_states
        self.action_head = ActionHead(config) if config.action_head_states > 0 else None
        self.mirror = MirrorMaps(config.state_dim, config.action_dim) if config.action_head_mirror else None
        self._prev_tokens = None

    @property
    def decoder(self) -> PlanDecoder:
        """The sampler-space to physical map (owned by the diffusion model, which guides through it)."""
        return self.diffusion.decoder  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------------- data
    @torch.jit.unused
    def fit_normalizers(self, states: torch.Tensor, actions: torch.Tensor) -> None:
        """Fit the feature normaliser on training data ``states (..., S)``, ``actions (..., A)``."""
        self._check_window(states, actions, require_window=False)
        self.decoder.normalizer.fit(torch.cat([states, actions], dim=-1))

    @torch.jit.unused
    def fit_latent_normalizer(self, states: torch.Tensor, actions: torch.Tensor) -> None:
        """After the autoencoder is trained: fit the latent normaliser on encoded training actions."""
        with torch.no_grad():
            self.decoder.latent_normalizer.fit(self._raw_latents(states, actions).reshape(-1, self.config.latent_dim))

    @torch.jit.unused
    def _raw_latents(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        vae = self.decoder.vae
        if vae is None:
            raise RuntimeError("this planner has no latent autoencoder (latent_dim = 0)")
        norm = self.decoder.normalizer.normalize(torch.cat([states, actions], dim=-1))
        s, a = norm[..., : self.state_dim], norm[..., self.state_dim :]
        mu, _ = vae.encode(a.reshape(-1, 1, self.action_dim), s.reshape(-1, self.state_dim))  # (N, Z)
        return mu.reshape(*states.shape[:-1], self.config.latent_dim)

    @torch.jit.unused
    def tokens(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Sampler-space tokens ``(B, H, D)`` of physical ``states (B, H, S)`` and ``actions (B, H, A)``."""
        return self._to_tokens(states, actions)

    @torch.jit.unused
    def _check_window(self, states: torch.Tensor, actions: torch.Tensor, require_window: bool = True) -> None:
        S, A, H = self.state_dim, self.action_dim, self.config.window
        if states.shape[-1] != S or actions.shape[-1] != A or states.shape[:-1] != actions.shape[:-1]:
            raise ValueError(
                f"expected states (..., {S}) and actions (..., {A}) with equal leading shapes, "
                f"got {tuple(states.shape)} and {tuple(actions.shape)}"
            )
        if require_window and (states.dim() != 3 or states.shape[1] != H):
            raise ValueError(f"expected windows of shape (B, {H}, ·), got states {tuple(states.shape)}")
        if not (torch.isfinite(states).all() and torch.isfinite(actions).all()):
            raise ValueError("training batch: expected finite states and actions, got NaN or inf")

    @torch.jit.unused
    def weights(self) -> dict[str, torch.Tensor]:
        """The learned state (normalisers, autoencoder, denoiser, schedule) without the guidance costs' and the
        sampler's buffers, so a trained planner can be rebuilt with other costs and sampler settings
        (:meth:`load_weights`)."""
        return {k: v for k, v in self.state_dict().items() if not _settings_key(k)}

    @torch.jit.unused
    def load_weights(self, weights: dict[str, torch.Tensor], without_action_head: bool = False) -> None:
        """Load :meth:`weights` of a planner with the same networks; this planner keeps its own costs and sampler.
        ``without_action_head``: the weights come from the planner before its action head was trained (the head
        keeps its initialisation)."""
        own = {k: v for k, v in weights.items() if not _settings_key(k)}
        try:
            result = self.load_state_dict(own, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise ValueError(f"planner weights do not fit this config: {err}") from err
        missing = [
            k
            for k in result.missing_keys
            if not _settings_key(k) and not (without_action_head and k.startswith(("action_head.", "mirror.")))
        ]
        if missing or result.unexpected_keys:
            raise ValueError(f"planner weights do not fit: missing {missing}, unexpected {result.unexpected_keys}")

    @torch.jit.unused
    def quantize_for_inference(self) -> "DiffusionPlanner":
        """With ``config.denoiser_int8``, swap the denoiser for its int8 copy (:mod:`policies.diffusion.quantize`);
        call after loading the weights. The quantized network has no gradients, so classifier guidance (which
        differentiates through it) is refused. Returns self, in eval mode."""
        if self.config.denoiser_int8:
            if self.config.diffusion.guidance.mode == "classifier":
                raise ValueError("denoiser_int8: classifier guidance differentiates through the denoiser; use x0")
            self.diffusion.denoiser = quantize_linear_int8(self.diffusion.denoiser)
        return self.eval()

    # --------------------------------------------------------------------------------------------- training
    @torch.jit.unused
    def vae_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 1 (latent planners): the autoencoder's beta-VAE loss on the batch's actions."""
        vae = self.decoder.vae
        if vae is None:
            raise RuntimeError("this planner has no latent autoencoder (latent_dim = 0)")
        states, actions = batch["states"], batch["actions"]
        self._check_window(states, actions, require_window=False)
        norm = self.decoder.normalizer.normalize(torch.cat([states, actions], dim=-1))
        s = norm[..., : self.state_dim].reshape(-1, self.state_dim)
        a = norm[..., self.state_dim :].reshape(-1, 1, self.action_dim)
        return vae.loss(a, s, batch.get("vae_noise"))

    @torch.jit.unused
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Denoising loss on the future tokens; history tokens are clean context (as at inference).

        State features are trained on all future steps, action features on the first ``action_loss_steps`` with
        weight ``action_loss_weight`` (the mean divides by the total weight).
        ``batch``: ``states (B, H, S)``, ``actions (B, H, A)``, optional ``generator`` is not a tensor, so
        randomness comes from the global torch RNG or a ``seed`` entry (0-d long tensor).
        """
        states, actions = batch["states"], batch["actions"]
        self._check_window(states, actions)
        with torch.no_grad():
            x0 = self.tokens(states, actions)  # (B, H, D)
        gen = None
        if "seed" in batch:
            gen = torch.Generator(device=x0.device).manual_seed(int(batch["seed"]))
        weight = torch.zeros(1, self.config.window, x0.shape[-1], device=x0.device)  # (1, H, D)
        weight[:, self.history :, : self.state_dim] = 1.0
        end = self.history + min(self.config.action_loss_steps, self.horizon)
        weight[:, self.history : end, self.state_dim :] = self.config.action_loss_weight
        clean = torch.zeros(x0.shape[0], self.config.window, dtype=torch.bool, device=x0.device)
        clean[:, : self.history] = True
        per_sample = self.diffusion.loss(x0, element_weight=weight, generator=gen, clean_tokens=clean)
        loss = per_sample.mean()
        return loss, {"loss": float(loss.detach())}

    @torch.jit.unused
    def action_head_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE of the action head in normalised action units. ``batch``: history ``states (B, Hh, S)`` and
        ``actions (B, Hh, A)`` (as :meth:`forward` takes them), the planner's ``plan (B, >= M, S + A)`` sampled
        from that history (physical, as :meth:`forward` returns it) and the ``target`` action ``(B, A)``."""
        head = self.action_head
        if head is None:
            raise RuntimeError("this planner has no action head (action_head_states = 0)")
        pred = self._head_action(batch["states"], batch["actions"], batch["plan"])  # physical (B, A)
        err = (pred - batch["target"]) / self.decoder.normalizer.scale[self.state_dim :]
        loss = err.pow(2).mean()
        return loss, {"action_head_loss": float(loss.detach())}

    @torch.jit.unused
    def set_mirror_maps(
        self, state_perm: torch.Tensor, state_sign: torch.Tensor, action_perm: torch.Tensor, action_sign: torch.Tensor
    ) -> None:
        """The robot's left-right reflection of states and actions (:class:`policies.mirror.MirrorMaps`), for a
        planner with ``action_head_mirror``."""
        if self.mirror is None:
            raise RuntimeError("this planner's action head is not mirrored (action_head_mirror = False)")
        self.mirror.set(state_perm, state_sign, action_perm, action_sign)

    def _head_action(self, states: torch.Tensor, actions: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        """The action head's action (physical, ``(B, A)``) for history ``states``/``actions`` and a physical
        ``plan (B, Hf, S + A)``; with ``action_head_mirror`` the mean of the head and its mirror image,
        ``(f(x) + M f(M x)) / 2``, so that ``pi(M x) = M pi(x)`` exactly."""
        out = self._head_once(states, actions, plan)
        mirror = self.mirror
        if mirror is not None:
            S = self.state_dim
            plan_m = torch.cat([mirror.states(plan[..., :S]), mirror.actions(plan[..., S:])], dim=-1)
            out_m = self._head_once(mirror.states(states), mirror.actions(actions), plan_m)  # (B, A)
            out = 0.5 * (out + mirror.actions(out_m))
        return out

    def _head_once(self, states: torch.Tensor, actions: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        """The action head's MLP alone, physical in and out (:meth:`_head_action`)."""
        head = self.action_head
        assert head is not None
        S, M = self.state_dim, self.head_states
        norm = self.diffusion.decoder.normalizer
        hist = norm.normalize(torch.cat([states, actions], dim=-1))  # (B, Hh, S + A)
        future = norm.normalize(plan[:, :M])  # (B, M, S + A); M >= 1, so step 0 is the first planned action's
        out = head(hist[..., :S], hist[..., S:], future[..., :S], future[:, 0, S:])  # (B, A) normalised
        return out * norm.scale[S:] + norm.offset[S:]

    # -------------------------------------------------------------------------------------------- inference
    def forward(
        self,
        obs_history: torch.Tensor,
        action_history: torch.Tensor,
        cost_params: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        prev_tokens: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Plan once: ``(plan (B, Hf, S + A) physical, tokens (B, H, D) sampler space for the next warm start)``.

        Args:
            obs_history: ``(B, Hh, S)`` the last Hh planner states, oldest first (the last is the current one).
            action_history: ``(B, Hh, A)`` the actions executed at those steps.
            cost_params: ``(B, P)`` guidance parameters (None: unguided).
            noise: ``(B, H, D)`` standard normal noise for the start (drawn when None).
            prev_tokens: the previous call's tokens; with ``rolling_start > 0`` the plan is warm-started.
        """
        B, Hh, H = obs_history.shape[0], self.history, self.history + self.horizon
        if obs_history.dim() != 3 or obs_history.shape[1] != Hh or obs_history.shape[2] != self.state_dim:
            raise ValueError(
                "obs_history: expected (B, "
                + str(Hh)
                + ", "
                + str(self.state_dim)
                + "), got "
                + str(list(obs_history.shape))
            )
        if list(action_history.shape) != [B, Hh, self.action_dim]:
            raise ValueError(
                "action_history: expected " + str([B, Hh, self.action_dim]) + ", got " + str(list(action_history.shape))
            )
        if not bool(torch.isfinite(obs_history).all()) or not bool(torch.isfinite(action_history).all()):
            raise ValueError("obs_history/action_history: expected finite values, got NaN or inf")
        history = self._to_tokens(obs_history, action_history)  # (B, Hh, D)
        D = history.shape[-1]
        eps = noise if noise is not None else torch.randn(B, H, D, device=obs_history.device)
        K = self.diffusion.steps.shape[0] - 1
        start = torch.zeros(B, H, dtype=torch.long, device=obs_history.device)
        start[:, :Hh] = K
        x_init = eps
        if prev_tokens is not None and self.rolling_start > 0:
            shifted = torch.cat([prev_tokens[:, 1:], prev_tokens[:, -1:]], dim=1)  # (B, H, D)
            start[:, Hh:] = self.rolling_start
            x_init = self.diffusion.renoise(shifted, start, eps)
        known = torch.zeros(B, H, D, dtype=torch.bool, device=obs_history.device)
        known[:, :Hh] = True
        values = torch.cat([history, torch.zeros(B, self.horizon, D, device=obs_history.device)], dim=1)
        tokens = self.diffusion.sample(
            x_init, cost_params=cost_params, known_mask=known, known_values=values, start_index=start
        )
        plan = self.diffusion.decoder(tokens[:, Hh:])  # (B, Hf, S + A)
        if self.action_head is not None:
            with torch.no_grad():
                action = self._head_action(obs_history, action_history, plan.detach())  # (B, A): a_t
            S = self.state_dim
            first = torch.cat([plan[:, :1, :S], action[:, None]], dim=-1)
            plan = torch.cat([first, plan[:, 1:]], dim=1)
        return plan, tokens

    def _to_tokens(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Physical ``states (B, Hh, S)``, ``actions (B, Hh, A)`` to sampler-space tokens ``(B, Hh, D)``."""
        decoder = self.diffusion.decoder
        norm = decoder.normalizer.normalize(torch.cat([states, actions], dim=-1))  # (B, Hh, S+A)
        vae = decoder.vae
        if vae is None:
            return norm
        B, Hh, S = states.shape[0], states.shape[1], self.state_dim
        s = norm[..., :S]
        mu, _ = vae.encode(norm[..., S:].reshape(B * Hh, 1, self.action_dim), s.reshape(B * Hh, S))  # (B*Hh, Z)
        z = decoder.latent_normalizer.normalize(mu.reshape(B, Hh, mu.shape[-1]))
        return torch.cat([s, z], dim=-1)

    @torch.jit.unused
    def act(  # type: ignore[override]
        self,
        obs_history: torch.Tensor,
        cost_params: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        action_history: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> dict[str, torch.Tensor]:
        """Plan and return ``plan_states (B, Hf, S)``, ``plan_actions (B, Hf, A)``, ``action_chunk``.

        ``action_history`` defaults to the normaliser's mean action (the deploy loop passes the executed
        ones). Warm starts come from the previous call when ``rolling_start > 0``; :meth:`reset` forgets it.
        """
        B = obs_history.shape[0]
        if action_history is None:
            action_history = self.decoder.normalizer.offset[self.state_dim :].expand(B, self.history, self.action_dim)
        if noise is None and generator is not None:
            noise = torch.randn(B, self.config.window, self.config.token_dim, generator=generator)
        prev = self._prev_tokens if self._prev_tokens is not None and self._prev_tokens.shape[0] == B else None
        plan, tokens = self(obs_history, action_history, cost_params, noise, prev)
        self._prev_tokens = tokens.detach()
        actions = plan[..., self.state_dim :]
        return {
            "plan_states": plan[..., : self.state_dim],
            "plan_actions": actions,
            "action_chunk": actions[:, : self.execute_steps],
        }

    def reset(self) -> None:
        """Forget the warm start."""
        self._prev_tokens = None
