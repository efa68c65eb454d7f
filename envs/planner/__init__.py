"""What the guided diffusion planner reads and writes, shared by training, evaluation and the robot's runtime.

- :mod:`envs.planner.state`: the planner state (root pose and velocity, bodies by forward kinematics, joints)
  built from a robot state, its names and normaliser layout;
- :mod:`envs.planner.dataset`: the HDF5 rollout files of the walking expert the planner learns from (format,
  checks, loaders);
- :mod:`envs.planner.runtime`: the plan-to-action host code around an exported planner (history, command,
  cost gates);
- :mod:`envs.planner.onnx`: the same around the ONNX Runtime export, and the planner file format tag.
"""
