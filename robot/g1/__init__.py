"""Unitree G1 29-DoF: constants (one source of truth) and the MuJoCo model built from them.

The model builders are imported on first use (PEP 562), so ``from robot.g1 import constants`` does not import
MuJoCo: the runtime on the robot's computer reads the constants without it.
"""

from typing import Any

from robot.g1 import constants

_MODEL_NAMES = (
    "G1ModelConfig",
    "G1ModelMismatchError",
    "build_g1_model",
    "build_g1_spec",
    "joint_name_differences",
    "load_g1_spec",
)

__all__ = ["constants", *_MODEL_NAMES]


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        from robot.g1 import model

        return getattr(model, name)
    raise AttributeError(f"module 'robot.g1' has no attribute {name!r}")
