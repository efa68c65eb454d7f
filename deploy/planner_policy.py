"""Former home of the planner policy, kept for importers outside ``deploy/``.

The code lives in :mod:`deploy.policies.planner`. New code imports from there.
"""

from deploy.policies.planner import PlannerPolicy, load_planner_policy

__all__ = ["PlannerPolicy", "load_planner_policy"]
