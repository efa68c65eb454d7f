"""Offline safe RL on DSRL data: the task table, the HDF5 reader/validator/writer and data-side transforms."""

from envs.safe_rl.dsrl_data import (
    DSRL_KEYS,
    DSRLData,
    DSRLDataError,
    arrays_sha256,
    dataset_dir,
    dsrl_file_name,
    find_dsrl_file,
    load_dsrl,
    make_dsrl_env,
    read_dsrl,
    read_with_dsrl_package,
    validate_arrays,
    write_dsrl,
)
from envs.safe_rl.preprocess import (
    episode_bounds,
    episode_sums,
    filter_safe_episodes,
    fisor_transitions,
    select_episodes,
    transitions,
)
from envs.safe_rl.tasks import BULLET_COST_LIMITS, DSRL_TASKS, DSRLTask, canonical_task_name, get_task

__all__ = [
    "BULLET_COST_LIMITS",
    "DSRL_KEYS",
    "DSRL_TASKS",
    "DSRLData",
    "DSRLDataError",
    "DSRLTask",
    "arrays_sha256",
    "canonical_task_name",
    "dataset_dir",
    "dsrl_file_name",
    "episode_bounds",
    "episode_sums",
    "filter_safe_episodes",
    "find_dsrl_file",
    "fisor_transitions",
    "get_task",
    "load_dsrl",
    "make_dsrl_env",
    "read_dsrl",
    "read_with_dsrl_package",
    "select_episodes",
    "transitions",
    "validate_arrays",
    "write_dsrl",
]
