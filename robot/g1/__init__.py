"""Unitree G1 29-DoF: constants (one source of truth) and the MuJoCo model built from them."""

from robot.g1 import constants
from robot.g1.model import (
    G1ModelConfig,
    G1ModelMismatchError,
    build_g1_model,
    build_g1_spec,
    joint_name_differences,
    load_g1_spec,
)

__all__ = [
    "G1ModelConfig",
    "G1ModelMismatchError",
    "build_g1_model",
    "build_g1_spec",
    "constants",
    "joint_name_differences",
    "load_g1_spec",
]
