"""Exported policies as the deploy runtime runs them, and the exporters that write them.

- :mod:`~deploy.policies.base`: the interface the control loop drives (:class:`RuntimePolicy`:
  ``observe_state(state, command)`` then ``act(obs)``) and the feed-forward network behind the two backends;
- :mod:`~deploy.policies.metadata`: what an exported policy promises the robot (:class:`PolicyMetadata`, the
  ``policy.json`` format);
- :mod:`~deploy.policies.torchscript`, :mod:`~deploy.policies.onnx`: the two network backends;
- :mod:`~deploy.policies.planner`: a guided diffusion planner behind the same interface;
- :mod:`~deploy.policies.loader`: :func:`load_policy`, one table from a file's backend and format to its loader;
- :mod:`~deploy.policies.export`: TorchScript and ONNX export of a feed-forward network with its metadata.

Whether a policy fits the robot is the robot's check (:mod:`robot.compat`). Loading needs numpy, ``robot`` and
``envs`` (torch for TorchScript files, onnxruntime for ONNX ones); never ``policies`` or ``training``.
"""

from deploy.policies.base import RuntimePolicy
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata

__all__ = ["PolicyMetadata", "RuntimePolicy", "load_policy"]
