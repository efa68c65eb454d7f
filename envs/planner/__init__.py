"""What the guided diffusion planner reads and writes, shared by training, evaluation and the robot's runtime.

- :mod:`envs.planner.state`: the planner state (root pose and velocity, bodies by forward kinematics, joints)
  built from a robot state, its names and normaliser layout;
- :mod:`envs.planner.dataset`: the HDF5 rollout files of the walking expert the planner learns from (format,
  checks, loaders);
- :mod:`envs.planner.runtime`: calling an exported TorchScript planner the way every runtime does (fresh noise per
  plan, warm start, cost gates);
- :mod:`envs.planner.onnx`: the ONNX Runtime export's sampling loop in numpy, and the planner file format tag;
- :mod:`envs.planner.costs`: the task costs (:mod:`envs.tasks`) applied to planner-state trajectories, the terms
  an export carries;
- :mod:`envs.planner.feasibility`: constraint signals on planner states and the guidance terms of a learned
  feasibility critic (FISOR's ``V_h`` / ``Q_h``).
"""
