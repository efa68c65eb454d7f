"""Dynamic int8 quantization of a denoiser's linear layers, for CPU inference.

Weights are stored as int8 with one scale per tensor; activations are quantized on the fly per call (PyTorch's
dynamic quantization: ``torch.ao.quantization.quantize_dynamic`` on ``nn.Linear``, the fbgemm kernels on x86 and
qnnpack on ARM). On the small matrices of a planner (tens of tokens, width 128) this halves a forward pass on one
CPU core. The quantized module has no gradients: it suits x0 guidance and unguided sampling, where the network is
evaluated without autograd, not classifier guidance, which differentiates through the network.
"""

import copy
import warnings

import torch
from torch import nn


def quantize_linear_int8(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (eval mode) whose ``nn.Linear`` layers run int8 dynamic quantization; scriptable."""
    module = copy.deepcopy(module).eval()
    engines = torch.backends.quantized.supported_engines
    if "fbgemm" not in engines and "qnnpack" not in engines:
        raise RuntimeError(f"int8 quantization needs the fbgemm or qnnpack engine; this torch has {engines}")
    with warnings.catch_warnings():
        # torch.ao's eager quantization API is deprecated in favour of torchao, whose int8 path targets
        # torch.compile rather than TorchScript, which the deploy runtime loads.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)
