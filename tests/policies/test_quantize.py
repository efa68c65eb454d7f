"""Int8 dynamic quantization of a denoiser's linear layers."""

import torch
from torch import nn

from policies.diffusion.denoisers.transformer import TrajectoryTransformer, TrajectoryTransformerConfig
from policies.diffusion.quantize import quantize_linear_int8


def test_quantized_transformer_is_close_scriptable_and_leaves_the_original_alone():
    torch.manual_seed(0)
    net = TrajectoryTransformer(TrajectoryTransformerConfig(state_dim=6, action_dim=3, horizon=8, width=32)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    q = quantize_linear_int8(net)
    assert not any(type(m) is nn.Linear for m in q.modules())
    assert any(type(m) is nn.Linear for m in net.modules())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    x, t = torch.randn(4, 8, 9), torch.randint(0, 100, (4, 8))
    with torch.no_grad():
        ref, out = net(x, t), q(x, t)
        scripted = torch.jit.script(q)(x, t)
    err = (out - ref).abs().mean() / ref.abs().mean()
    assert 0.0 < float(err) < 0.05
    torch.testing.assert_close(scripted, out)
