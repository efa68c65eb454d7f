"""Former home of the ONNX export and backend, kept for importers outside ``deploy/``.

The code lives in :mod:`deploy.policies.export` (``export_policy_onnx``) and :mod:`deploy.policies.onnx`
(:class:`~deploy.policies.onnx.OnnxPolicy`). New code imports from there.
"""

from deploy.policies.export import export_policy_onnx
from deploy.policies.onnx import OnnxPolicy

__all__ = ["OnnxPolicy", "export_policy_onnx"]
