"""Export a guided diffusion planner to ONNX: forward-only graphs, with the sampling loop left to the host.

ONNX has no autograd, so the guided loop cannot be one graph. The planner is split into pure functions, each a
forward-only ONNX graph exported with ``torch.onnx.export(..., dynamo=True)`` (``torch.export``, not the legacy
TorchScript-based exporter), and the DDIM/DDPM steps, the rolling warm start, the inpainting and the gates are a
few lines of numpy in :mod:`envs.planner.onnx`:

=====================  =========================================================================================
``planner.onnx``       the denoiser ``f(x_t (B, H, D), t (B, H) int64) -> (B, H, D)``; its ``metadata_props``
                       hold everything else (schedule table, step sequence, guidance scales, cost layout,
                       robot metadata, the companion files and their SHA-256)
``.encode.onnx``       history ``(B, Hh, S)``, ``(B, Hh, A)`` -> sampler-space tokens ``(B, Hh, D)``
``.decode.onnx``       future tokens ``(B, Hf, D)`` and the history -> physical plan ``(B, Hf, S + A)`` (decoder,
                       un-normalisation and the action head)
``.grad.<set>.onnx``   ``grad_x0 sum_i w_i g_i G_i(decode(x0), p_i)`` for one set of active gated terms,
                       ``x0 (1, H, D)``, ``params (1, P)`` -> ``(1, H, D)``; one graph per non-empty set
``.denoiser_int8``     optional: the denoiser with int8 weights (ONNX Runtime dynamic quantization)
=====================  =========================================================================================

The cost gradient is traced with ``make_fx(torch.func.grad(cost))`` into a graph of plain aten operations and
exported from there (the functorch transform itself does not pass ``torch.export``). A graph per set of active
terms instead of one masked graph: a term whose gate is 0 is then not evaluated at all, exactly as
:class:`policies.diffusion.guidance.Gated` skips it, so an unused term with zeroed parameters (an obstacle slot at
the origin) cannot put NaN into the gradient through ``0 * inf``. The graphs are exported without onnxscript's
optimiser, which folded the ``+ 1e-12`` floor of ``sqrt(d^2 + 1e-12)`` (the obstacle distance) away and so turned
a zero distance into a NaN gradient; ONNX Runtime optimises the graph when it loads it.

Only what the numpy host reproduces exports: x0 guidance or none (classifier guidance differentiates through the
denoiser; it stays TorchScript), unconditional denoisers, any prediction type, DDIM or DDPM. Needs the ``onnx``
extra (``onnx``, ``onnxruntime``, ``onnxscript``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import itertools
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deploy.export import planner_metadata
from envs.planner.onnx import EMBEDDED_KEY, ONNX_PLANNER_FORMAT
from policies.diffusion.guidance import CostSum, Gated
from policies.diffusion.planner import DiffusionPlanner
from robot.files import atomic_write

ONNX_PLANNER_VERSION = 1
ONNX_OPSET = 18


def _require_onnx() -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch.onnx.export(dynamo=True) needs it
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx extra: pip install -e '.[onnx]' ({exc})") from exc
    return onnx


class _Denoiser(nn.Module):
    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x_t, t, None, None)  # (B, H, D)


class _Encode(nn.Module):
    def __init__(self, planner: DiffusionPlanner) -> None:
        super().__init__()
        self.planner = planner

    def forward(self, obs_history: torch.Tensor, action_history: torch.Tensor) -> torch.Tensor:
        return self.planner._to_tokens(obs_history, action_history)  # (B, Hh, D)


class _Decode(nn.Module):
    """Future tokens ``(B, Hf, D)`` to the plan ``(B, Hf, S + A)`` exactly as ``DiffusionPlanner.forward`` ends."""

    def __init__(self, planner: DiffusionPlanner) -> None:
        super().__init__()
        self.planner = planner

    def forward(self, future: torch.Tensor, obs_history: torch.Tensor, action_history: torch.Tensor) -> torch.Tensor:
        p = self.planner
        plan = p.diffusion.decoder(future)  # (B, Hf, S + A)
        if p.action_head is None:
            return plan
        action = p._head_action(obs_history, action_history, plan)  # (B, A)
        first = torch.cat([plan[:, :1, : p.state_dim], action[:, None]], dim=-1)  # (B, 1, S + A)
        return torch.cat([first, plan[:, 1:]], dim=1)


class ActiveCost(nn.Module):
    """``G(x0, p) = sum_{i in active} w_i g_i G_i(decode(x0), p_i)``, summed over the batch (a scalar).

    ``g_i = p[o_i]`` is term i's gate (1 for a term without one); terms outside ``active`` are not evaluated.
    """

    def __init__(self, costs: CostSum, decoder: nn.Module, active: list[int]) -> None:
        super().__init__()
        self.costs, self.decoder, self.active = costs, decoder, list(active)

    def forward(self, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        x = self.decoder(x0)  # (B, H, S + A)
        total = x0.new_zeros(())
        for i in self.active:
            o, n = self.costs.offsets[i], self.costs.sizes[i]
            term, p = self.costs.terms[i], params[:, o : o + n]
            weight = self.costs.weights[i]
            if isinstance(term, Gated):
                total = total + (weight * p[:, 0] * term.inner(x, p[:, 1:])).sum()
            else:
                total = total + (weight * term(x, p)).sum()
        return total


def gated_term_names(costs: CostSum) -> list[str | None]:
    """Per term: its gate's task name (``joystick`` for ``joystick_gate``), None for a term without a gate."""
    return [str(t.param_names[0]).removesuffix("_gate") if isinstance(t, Gated) else None for t in costs.terms]


def cost_sets(costs: CostSum) -> list[list[int]]:
    """Every set of active terms a runtime can meet: each non-empty subset of the gated terms, plus the terms
    without a gate, which are always on."""
    names = gated_term_names(costs)
    gated = [i for i, n in enumerate(names) if n is not None]
    always = [i for i, n in enumerate(names) if n is None]
    subsets = [list(c) for r in range(1, len(gated) + 1) for c in itertools.combinations(gated, r)]
    if always:
        subsets = [always] + [sorted(always + s) for s in subsets]
    return subsets


def set_key(costs: CostSum, active: list[int]) -> str:
    """File and metadata key of a set of active terms, e.g. ``joystick+obstacles`` (``t<i>`` for ungated terms)."""
    names = gated_term_names(costs)
    return "+".join(names[i] or f"t{i}" for i in active)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], out: str, batch: bool) -> Any:
    """``torch.onnx.export`` through ``torch.export``; ``batch``: the first axis of every input is dynamic.

    The networks (``batch``) go through onnxscript's optimiser, which folds the weights' transposes into
    initializers (ONNX Runtime's quantizer only quantizes initializer weights); the gradient graphs do not (module
    docstring)."""
    dynamic = tuple({0: torch.export.Dim("batch", min=1)} for _ in args) if batch else None
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" notices
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=names,
            output_names=[out],
            dynamic_shapes=dynamic,
            opset_version=ONNX_OPSET,
            optimize=batch,
            verbose=False,
        )
    quiet.setLevel(level)
    return program.model_proto


def _grad_graph(cost: ActiveCost, x0: torch.Tensor, params: torch.Tensor) -> nn.Module:
    """``make_fx(torch.func.grad(cost))`` on one sample: a graph of aten operations with no autograd left."""
    from torch.fx.experimental.proxy_tensor import make_fx

    return make_fx(torch.func.grad(cost), tracing_mode="real")(x0, params)


def check_exportable(planner: DiffusionPlanner) -> None:
    """Refuse what the numpy host of :mod:`envs.planner.onnx` does not reproduce, with what to do instead."""
    d = planner.diffusion
    if d.guidance_mode == "classifier" and len(d.costs.terms) > 0:
        raise ValueError(
            "ONNX export: classifier guidance differentiates through the denoiser; export with --guidance-mode x0 "
            "or use the TorchScript file"
        )
    if planner.config.denoiser_int8:
        raise ValueError("ONNX export: expected the float denoiser (int8 is ONNX Runtime's, --onnx-int8)")


def _quantize_int8(model: Any, folder: Path) -> Any:
    """ONNX Runtime dynamic int8 quantization of the MatMul weights (per-tensor scales, as torch.ao's)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = folder / "fp32.onnx", folder / "int8.onnx"
    onnx.save(model, str(src))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing" notice
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    return onnx.load(str(dst))


def export_planner_onnx(
    planner: DiffusionPlanner,
    path: str | Path,
    extra_metadata: dict[str, Any] | None = None,
    int8: bool = False,
    only_sets: list[str] | None = None,
) -> list[Path]:
    """Write ``path`` (``.onnx``, the denoiser with the metadata) and its companion graphs beside it; returns the
    files written (each atomically; the main file last, so a complete main file means complete companions).

    ``only_sets`` keeps the gradient graphs of these sets of active terms (keys such as ``joystick+obstacles``;
    None: every set). A runtime asked for a set the file lacks refuses the call and names the set.
    """
    onnx = _require_onnx()
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"export path: expected a file name ending in .onnx, got {path}")
    check_exportable(planner)
    p = copy.deepcopy(planner).eval()
    for param in p.parameters():
        param.requires_grad_(False)
    cfg, d = p.config, p.diffusion
    B, Hh, H, S, A, D, P = 2, cfg.history, cfg.window, cfg.state_dim, cfg.action_dim, cfg.token_dim, d.costs.param_dim
    gen = torch.Generator().manual_seed(0)
    obs, act = torch.randn(B, Hh, S, generator=gen), torch.randn(B, Hh, A, generator=gen)
    x, t = torch.randn(B, H, D, generator=gen), torch.randint(-1, d.schedule.num_train_steps, (B, H), generator=gen)
    graphs: dict[str, Any] = {
        "encode": _export(_Encode(p), (obs, act), ["obs_history", "action_history"], "tokens", True),
        "decode": _export(_Decode(p), (x[:, Hh:], obs, act), ["future", "obs_history", "action_history"], "plan", True),
    }
    denoiser = _export(_Denoiser(d.denoiser), (x, t), ["x_t", "t"], "prediction", True)
    sets: dict[str, str] = {}
    if d.guidance_mode == "x0":
        for active in cost_sets(d.costs):
            key = set_key(d.costs, active)
            if only_sets is not None and key not in only_sets:
                continue
            gm = _grad_graph(ActiveCost(d.costs, d.decoder, active), x[:1], torch.zeros(1, P))
            graphs[f"grad.{key}"] = _export(gm, (x[:1], torch.zeros(1, P)), ["x0", "params"], "grad", False)
            sets[key] = f"grad.{key}"
    if int8:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            graphs["denoiser_int8"] = _quantize_int8(denoiser, Path(tmp))
    written, files = [], {}
    for name, model in graphs.items():
        out = path.with_name(f"{path.stem}.{name}.onnx")
        data = model.SerializeToString()
        atomic_write(out, lambda tmp, data=data: Path(tmp).write_bytes(data))
        files[name] = {"file": out.name, "sha256": hashlib.sha256(data).hexdigest()}
        written.append(out)
    meta = onnx_planner_metadata(p, files, sets, extra_metadata)
    entry = denoiser.metadata_props.add()
    entry.key, entry.value = EMBEDDED_KEY, json.dumps(meta)
    onnx.checker.check_model(denoiser)
    atomic_write(path, lambda tmp: onnx.save(denoiser, str(tmp)))
    return [path, *written]


def onnx_planner_metadata(
    planner: DiffusionPlanner,
    files: dict[str, dict[str, str]],
    cost_graphs: dict[str, str],
    extra_metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """The TorchScript export's metadata plus the tables and graphs the numpy host needs."""
    d = planner.diffusion
    meta = planner_metadata(planner)
    meta.update(
        {
            "format": ONNX_PLANNER_FORMAT,
            "onnx_version": ONNX_PLANNER_VERSION,
            "abar_ext": [float(v) for v in d.schedule.abar_ext.tolist()],
            "guide_scales": [float(v) for v in d.guide_scales.tolist()],
            "gated_terms": gated_term_names(d.costs),
            "graphs": files,
            "cost_graphs": cost_graphs,
            "extra": extra_metadata or {},
        }
    )
    meta["sampler"] = {
        "kind": d.sampler_kind,
        "eta": d.eta,
        "clip_x0": d.clip_x0,
        "clip_sample": d.clip_sample,
        "beta_variance": d.beta_variance,
    }
    meta["guidance"] = {**meta["guidance"], "mode": d.guidance_mode, "max_grad_norm": d.max_grad_norm}
    return meta
