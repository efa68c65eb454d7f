"""Tasks and simulation: gymnasium G1 environments, observation builders, rewards and task costs.

Importing ``envs`` registers the gymnasium ids ``Steer/G1-v0`` (joystick), ``Steer/G1Waypoint-v0`` and
``Steer/G1Obstacles-v0`` (50 Hz control, 20 s episodes).
"""

import gymnasium

_EPISODE_STEPS = 1000  # 20 s at 50 Hz
for _env_id, _task in (
    ("Steer/G1-v0", "joystick"),
    ("Steer/G1Waypoint-v0", "waypoint"),
    ("Steer/G1Obstacles-v0", "obstacles"),
):
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            id=_env_id, entry_point="envs.g1_env:G1Env", max_episode_steps=_EPISODE_STEPS, kwargs={"task": _task}
        )
