"""The simulated Unitree G1 in MuJoCo.

- :mod:`envs.g1.env`: the single-robot gymnasium environment (importing it registers ``Steer/G1-v0`` and the
  waypoint / obstacle ids used by the throughput benchmark);
- :mod:`envs.g1.vec_env`: the batched CPU environment every trainer and evaluation runs (domain randomization,
  pushes, sensor model, latency);
- :mod:`envs.g1.observations`: the policy observation builders, shared with the robot's runtime (numpy and torch,
  no MuJoCo or gymnasium needed).

The package imports nothing itself, so the runtime can read the observations without the simulator installed.
"""
