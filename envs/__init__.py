"""Tasks and simulation: gymnasium G1 environments, observation builders, rewards and task costs.

Importing :mod:`envs.g1.env` (or ``gymnasium.make("envs.g1.env:Steer/G1-v0")``) registers the gymnasium ids
``Steer/G1-v0`` (joystick), ``Steer/G1Waypoint-v0`` and ``Steer/G1Obstacles-v0`` (50 Hz control, 20 s episodes).
The package itself imports nothing: the robot's runtime reads the observation functions of :mod:`envs.g1.observations`
without gymnasium or MuJoCo installed.
"""
