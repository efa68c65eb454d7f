"""Run an ONNX-exported guided planner (``deploy.export_planner_onnx``) with numpy and ONNX Runtime, no torch.

The graphs are the planner's pure functions (denoiser, history encoder, plan read-out, one cost gradient per set
of active terms); this module is the sampling loop of :class:`policies.diffusion.model.Diffusion` and
:class:`policies.diffusion.planner.DiffusionPlanner` written again in numpy, step for step, so that on the same
noise it returns the TorchScript planner's plan (the tests hold them to 1e-4).

Per plan, with ``K`` sampler steps ``t_0 > ... > t_{K-1} > t_K = -1`` and ``abar(t)`` from the exported table:

- history tokens are held at their encoded values (inpainting, step -1); future tokens start from noise ``eps``
  (entry 0), or warm: the previous tokens shifted by one step, re-noised to entry ``w`` (rolling start),
  ``x = sqrt(abar_w) shifted + sqrt(1 - abar_w) eps``;
- each step ``x0 = to_x0(f(x, t))``; with x0 guidance (He et al. 2024, BeyondMimic)
  ``x0 <- x0 - lambda_i grad_x0 G(decode(x0), p)`` and ``eps = (x - sqrt(abar) x0) / sqrt(1 - abar)``;
  then the DDIM update (Song et al. 2021, eq. 12) or the ancestral DDPM one (Ho et al. 2020);
- a term takes part when its gate ``p[o_i]`` is non-zero in any row, which picks the gradient graph.

All arithmetic is float32, like the exported module's. Needs ``numpy`` and ``onnxruntime`` only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

PLANNER_FORMAT = "steer.planner"
"""Format tag of an exported planner's metadata (the ``.json`` beside ``planner.pt`` or ``planner.onnx``); defined
here, the lowest layer that reads exported planners, so that deploy and training share the one spelling."""
ONNX_PLANNER_FORMAT = "steer.planner.onnx"
"""Format tag of the metadata of an ONNX-exported planner (``deploy.export_planner_onnx``)."""
EMBEDDED_KEY = PLANNER_FORMAT
"""Key of the metadata JSON in the main ONNX file's ``metadata_props``."""
F32 = np.float32


def _session(data: bytes, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(f"ONNX planners need onnxruntime: pip install -e '.[runtime]' ({exc})") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def read_onnx_planner_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata embedded in an ONNX planner's main file (read by ONNX Runtime; no ``onnx`` package)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ONNX planner (export one with python -m deploy.export_planner --onnx)")
    props = _session(path.read_bytes(), 1).get_modelmeta().custom_metadata_map
    if EMBEDDED_KEY not in props:
        raise ValueError(f"{path}: not an ONNX planner (no {EMBEDDED_KEY!r} metadata)")
    meta = json.loads(props[EMBEDDED_KEY])
    if meta.get("format") != ONNX_PLANNER_FORMAT:
        raise ValueError(f"{path}: expected format {ONNX_PLANNER_FORMAT!r}, got {meta.get('format')!r}")
    return meta


class OnnxPlannerModel:
    """The loaded graphs and tables; :meth:`sample` is ``DiffusionPlanner.forward`` in numpy.

    Args:
        path: the main ``.onnx`` file; its companions are found beside it and checked against their SHA-256.
        precision: ``fp32`` or ``int8`` (the int8 denoiser, when the export wrote one).
        threads: ONNX Runtime intra-op threads (1: the 50 Hz loop's budget is one core).
    """

    def __init__(self, path: str | Path, precision: str = "fp32", threads: int = 1) -> None:
        path = Path(path)
        self.meta = meta = read_onnx_planner_metadata(path)
        self.path = path
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision: expected 'fp32' or 'int8', got {precision!r}")
        if precision == "int8" and "denoiser_int8" not in meta["graphs"]:
            raise ValueError(f"{path}: no int8 denoiser in this export (export it with --onnx-int8)")
        self.precision = precision

        def load(name: str) -> Any:
            entry = meta["graphs"][name]
            file = path.with_name(entry["file"])
            if not file.is_file():
                raise FileNotFoundError(f"{file}: missing companion graph of {path} (copy all {path.stem}.*.onnx)")
            data = file.read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(f"{file} does not belong to {path}: the files come from different exports")
            return _session(data, threads)

        self.denoiser = load("denoiser_int8") if precision == "int8" else _session(path.read_bytes(), threads)
        self.encode, self.decode = load("encode"), load("decode")
        self.grads = {key: load(name) for key, name in meta["cost_graphs"].items()}
        self.history, self.horizon = int(meta["history"]), int(meta["horizon"])
        self.state_dim, self.action_dim = int(meta["state_dim"]), int(meta["action_dim"])
        self.token_dim, self.window = int(meta["token_dim"]), self.history + self.horizon
        self.param_dim, self.rolling_start = int(meta["cost_param_dim"]), int(meta["rolling_start"])
        self.abar_ext = np.asarray(meta["abar_ext"], dtype=F32)  # (T + 1,), index t + 1
        self.steps = np.asarray(meta["sampler_steps"], dtype=np.int64)  # (K + 1,)
        self.scales = np.asarray(meta["guide_scales"], dtype=F32)  # (K,)
        self.prediction_type = str(meta["prediction_type"])
        s, g = meta["sampler"], meta["guidance"]
        self.kind, self.eta, self.beta_variance = str(s["kind"]), float(s["eta"]), bool(s["beta_variance"])
        self.clip_x0, self.clip_sample = float(s["clip_x0"]), float(s["clip_sample"])
        self.guided_x0 = g["mode"] == "x0" and bool(self.grads)
        self.max_grad_norm = float(g["max_grad_norm"])
        self.gate_terms = [
            (name, int(t["offset"])) for name, t in zip(meta["gated_terms"], meta["cost_terms"], strict=True)
        ]

    # ------------------------------------------------------------------------------------------------- maths
    def _abar(self, t: np.ndarray) -> np.ndarray:
        return self.abar_ext[t + 1][..., None]  # (B, H, 1)

    def _to_x0(self, pred: np.ndarray, x: np.ndarray, abar: np.ndarray) -> np.ndarray:
        a, s = np.sqrt(abar), np.sqrt(F32(1.0) - abar)
        if self.prediction_type == "epsilon":
            return (x - s * pred) / a
        if self.prediction_type == "x0":
            return pred
        return a * x - s * pred  # v

    def _to_eps(self, pred: np.ndarray, x: np.ndarray, abar: np.ndarray) -> np.ndarray:
        a, s = np.sqrt(abar), np.sqrt(F32(1.0) - abar)
        if self.prediction_type == "epsilon":
            return pred
        if self.prediction_type == "x0":
            return np.where(s > 0, (x - a * pred) / np.maximum(s, F32(1e-12)), F32(0.0))
        return s * x + a * pred  # v

    @staticmethod
    def _eps_from_x0(x0: np.ndarray, x: np.ndarray, abar: np.ndarray) -> np.ndarray:
        s = np.sqrt(F32(1.0) - abar)
        return np.where(s > 0, (x - np.sqrt(abar) * x0) / np.maximum(s, F32(1e-12)), F32(0.0))

    def _step(
        self, x: np.ndarray, x0: np.ndarray, eps: np.ndarray, ac: np.ndarray, an: np.ndarray, z: Any
    ) -> np.ndarray:
        """One DDIM or DDPM update (``policies.diffusion.sampling``)."""
        one = F32(1.0)
        if self.kind == "ddpm":
            one_minus_c = np.maximum(one - ac, F32(1e-12))
            beta = one - ac / an
            coef_x0 = np.sqrt(an) * beta / one_minus_c
            coef_xt = np.sqrt(one - beta) * (one - an) / one_minus_c
            var = np.maximum(beta if self.beta_variance else (one - an) / one_minus_c * beta, F32(1e-20))
            return coef_x0 * x0 + coef_xt * x + np.where(an < one, np.sqrt(var), F32(0.0)) * z
        ratio = np.where(ac < one, (one - an) / np.maximum(one - ac, F32(1e-12)), F32(0.0))
        sigma = F32(self.eta) * np.sqrt(np.maximum(ratio * (one - ac / an), F32(0.0)))
        return np.sqrt(an) * x0 + np.sqrt(np.maximum(one - an - sigma**2, F32(0.0))) * eps + sigma * z

    def active_set(self, params: np.ndarray | None) -> str | None:
        """Key of the gradient graph for ``params (B, P)``: the gated terms with a non-zero gate in any row, plus
        the ungated ones; None when nothing would be evaluated."""
        if params is None or not self.guided_x0:
            return None
        names = [name or f"t{i}" for i, (name, o) in enumerate(self.gate_terms) if name is None or params[:, o].any()]
        return "+".join(names) if names else None

    def cost_grad(self, key: str, x0: np.ndarray, params: np.ndarray) -> np.ndarray:
        """``grad_x0`` of the active terms' cost; the graphs take one sample, so rows run one by one."""
        session = self.grads.get(key)
        if session is None:
            raise ValueError(
                f"{self.path}: no cost-gradient graph for the terms {key!r} (exported: {sorted(self.grads)})"
            )
        rows = [session.run(None, {"x0": x0[b : b + 1], "params": params[b : b + 1]})[0] for b in range(len(x0))]
        grad = rows[0] if len(rows) == 1 else np.concatenate(rows)
        if self.max_grad_norm > 0.0:
            norm = np.maximum(np.sqrt((grad.reshape(len(grad), -1) ** 2).sum(1)), F32(1e-12))  # (B,)
            grad = grad * np.minimum(F32(self.max_grad_norm) / norm, F32(1.0))[:, None, None]
        return grad

    # ---------------------------------------------------------------------------------------------- sampling
    def sample(
        self,
        obs_history: np.ndarray,
        action_history: np.ndarray,
        cost_params: np.ndarray | None,
        noise: np.ndarray,
        prev_tokens: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(plan (B, Hf, S + A), tokens (B, H, D))`` as the TorchScript module returns them (see module doc).

        ``noise (B, H, D)`` is the start noise; ``rng`` draws the per-step noise of DDPM / DDIM with eta > 0.
        """
        obs = np.ascontiguousarray(obs_history, dtype=F32)
        act = np.ascontiguousarray(action_history, dtype=F32)
        B, Hh, H = obs.shape[0], self.history, self.window
        if obs.shape != (B, Hh, self.state_dim) or act.shape != (B, Hh, self.action_dim):
            raise ValueError(
                f"obs_history, action_history: expected (B, {Hh}, {self.state_dim}) and (B, {Hh}, "
                f"{self.action_dim}), got {obs.shape} and {act.shape}"
            )
        if not (np.isfinite(obs).all() and np.isfinite(act).all()):
            raise ValueError("obs_history/action_history: expected finite values, got NaN or inf")
        params = None if cost_params is None else np.ascontiguousarray(cost_params, dtype=F32)
        if params is not None and (params.shape != (B, self.param_dim) or not np.isfinite(params).all()):
            raise ValueError(
                f"cost_params: expected finite values of shape ({B}, {self.param_dim}), got {params.shape}"
            )
        eps = np.ascontiguousarray(noise, dtype=F32)
        history = self.encode.run(None, {"obs_history": obs, "action_history": act})[0]  # (B, Hh, D)
        K = len(self.steps) - 1
        start = np.zeros((B, H), dtype=np.int64)
        start[:, :Hh] = K
        x = eps
        if prev_tokens is not None and self.rolling_start > 0:
            prev = np.asarray(prev_tokens, dtype=F32)
            shifted = np.concatenate([prev[:, 1:], prev[:, -1:]], axis=1)  # (B, H, D)
            start[:, Hh:] = self.rolling_start
            abar = self._abar(self.steps[start])
            x = np.sqrt(abar) * shifted + np.sqrt(F32(1.0) - abar) * eps
        x = x.copy()
        x[:, :Hh] = history
        key = self.active_set(params)
        for i in range(int(start.min()), K):
            t_cur, t_next = self.steps[np.maximum(start, i)], self.steps[np.maximum(start, i + 1)]  # (B, H)
            ac, an = self._abar(t_cur), self._abar(t_next)  # (B, H, 1)
            pred = self.denoiser.run(None, {"x_t": x, "t": t_cur})[0]
            x0 = self._to_x0(pred, x, ac)
            touched = self.clip_x0 > 0.0
            if touched:
                x0 = np.clip(x0, -self.clip_x0, self.clip_x0)
            scale = self.scales[i]
            if params is not None and self.guided_x0 and scale > 0.0:
                if key is not None:  # with every gate closed the gradient is 0, as the exported module's
                    x0 = x0 - scale * self.cost_grad(key, np.ascontiguousarray(x0, dtype=F32), params)
                touched = True
            eps_hat = self._eps_from_x0(x0, x, ac) if touched else self._to_eps(pred, x, ac)
            stochastic = self.kind == "ddpm" or self.eta > 0.0
            z = (rng or np.random.default_rng()).standard_normal(x.shape, dtype=F32) if stochastic else F32(0.0)
            x_new = self._step(x, x0, eps_hat, ac, an, z)
            if self.clip_sample > 0.0:
                x_new = np.clip(x_new, -self.clip_sample, self.clip_sample)
            x = np.where((t_next != t_cur)[..., None], x_new, x).astype(F32)
            x[:, :Hh] = history
        plan = self.decode.run(
            None, {"future": np.ascontiguousarray(x[:, Hh:]), "obs_history": obs, "action_history": act}
        )
        return plan[0], x


class GatedPlannerRuntime:
    """What every planner runtime shares (TorchScript's :class:`envs.planner.runtime.ExportedPlanner`, ONNX's
    :class:`OnnxPlanner`): the gate offsets of its cost terms and a warm start to forget."""

    gates: dict[str, int]
    prev: Any

    def gate(self, term: str) -> int:
        """Offset of ``term``'s gate; a clear error when the export has no such gated term."""
        if term not in self.gates:
            raise ValueError(f"the planner has no gated {term!r} cost (export it with python -m deploy.export_planner)")
        return self.gates[term]

    def reset(self) -> None:
        """Forget the warm start."""
        self.prev = None


class OnnxPlanner(GatedPlannerRuntime):
    """:class:`envs.planner.runtime.ExportedPlanner` for ONNX planners: numpy in, numpy out, seeded noise, the
    previous plan as the warm start, rows whose episode has just begun planned cold."""

    def __init__(self, model: OnnxPlannerModel, seed: int = 0) -> None:
        self.model, self.meta = model, model.meta
        self.history, self.state_dim = model.history, model.state_dim
        self.action_dim, self.token_dim, self.window = model.action_dim, model.token_dim, model.window
        self.param_dim = model.param_dim
        self.rolling = model.rolling_start > 0
        self.gates = {name: offset for name, offset in model.gate_terms if name is not None}
        self.rng = np.random.default_rng(seed)
        self.prev: np.ndarray | None = None

    def plan(
        self, states: np.ndarray, actions: np.ndarray, params: np.ndarray | None, fresh: np.ndarray | None = None
    ) -> np.ndarray:
        """Planned actions ``(B, Hf, A)`` from ``states (B, Hh, S)``, ``actions (B, Hh, A)`` and ``params (B, P)``
        (None: unguided); ``fresh (B,)`` bool rows start cold. Row 0 of the plan is the action to execute now."""
        B = states.shape[0]
        noise = self.rng.standard_normal((B, self.window, self.token_dim), dtype=F32)
        prev = self.prev if self.rolling and self.prev is not None and self.prev.shape[0] == B else None
        plan, tokens = self.model.sample(states, actions, params, noise, prev, self.rng)
        if prev is not None and fresh is not None and bool(np.any(fresh)):
            cold = np.asarray(fresh, dtype=bool)
            p = None if params is None else np.asarray(params)[cold]
            plan[cold], tokens[cold] = self.model.sample(states[cold], actions[cold], p, noise[cold], None, self.rng)
        self.prev = tokens
        return plan[:, :, self.state_dim :]  # (B, Hf, A)
