"""The guided diffusion planner of the G1: ``collect`` and ``merge`` (expert rollouts as planner datasets),
``train`` and ``config`` (the planner and its presets), ``action_head`` (the head fitted on sampled plans),
``control``, ``estimated_state``, ``evaluate``, ``evaluate_sources`` and ``navigation`` (closed loop in MuJoCo from
ground truth or the estimator), and ``feasibility`` (FISOR's reachability critic on planner states)."""
