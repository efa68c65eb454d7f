"""Former home of the feed-forward policy export and loader, kept for importers outside ``deploy/``.

The code lives in :mod:`deploy.policies` (metadata, runtime backends, loader, export) and :mod:`robot.compat`
(whether a policy fits the robot). New code imports from there.
"""

from deploy.policies.base import RuntimePolicy as ExportedPolicy
from deploy.policies.export import build_mlp_policy, export_policy
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata

__all__ = ["ExportedPolicy", "PolicyMetadata", "build_mlp_policy", "export_policy", "load_policy"]
