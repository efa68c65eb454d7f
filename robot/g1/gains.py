"""The G1's named gain sets: each (kp, kd) pair a policy may be trained with and the robot may be driven with.

- ``policy``: 10 Hz natural frequency per joint, what the walking policies are trained with;
- ``stand``: the same law at 30 Hz, stiff enough to hold the default pose without active balance (the loop's
  move-to-default and hold phases).

Both come from :mod:`robot.g1.constants`; an exported policy names the set its gains come from, and
:func:`robot.compat.policy_robot_differences` checks the numbers against this table.
"""

from __future__ import annotations

import numpy as np

from robot.g1 import constants as C

GAIN_PROFILES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "policy": (np.asarray(C.KP_NM_PER_RAD), np.asarray(C.KD_NMS_PER_RAD)),
    "stand": (np.asarray(C.STAND_KP_NM_PER_RAD), np.asarray(C.STAND_KD_NMS_PER_RAD)),
}
"""Name -> (kp (J,) Nm/rad, kd (J,) Nms/rad), joints in :data:`robot.g1.constants.JOINT_NAMES` order (read-only)."""
