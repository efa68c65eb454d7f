"""Typed options of the offline safe-RL training and evaluation CLIs (tyro reads the field docstrings as help).

The algorithm is a tyro subcommand whose options are that algorithm's own config dataclass (next to its model in
``policies``)::

    python -m training.safe_rl.train --dataset data/BallRun-v0-80-940.hdf5 algorithm:fisor --algorithm.num-steps 1000
    python -m training.safe_rl.train --task CarCircle algorithm:bc-safe --algorithm.cost-limit 10
    python -m training.safe_rl.train --preset bcq-lag-ballrun-small          # a committed benchmark configuration
    python -m training.safe_rl.train --run-dir runs/<run> --resume           # the run's options from its config.json
"""

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import tyro

from policies.baselines import BCConfig, BCQLagConfig
from policies.fisor import FISORConfig
from robot.configio import TYPE_KEY, from_jsonable, to_jsonable

AlgorithmConfig = Union[
    Annotated[FISORConfig, tyro.conf.subcommand("fisor", description="FISOR: feasibility-guided diffusion policy")],
    Annotated[
        BCConfig,
        tyro.conf.subcommand("bc_all", default=BCConfig(mode="all"), description="BC-All: clone every episode"),
    ],
    Annotated[
        BCConfig,
        tyro.conf.subcommand(
            "bc_safe",
            default=BCConfig(mode="safe"),
            description="BC-Safe: clone the episodes with cost <= --algorithm.cost-limit",
        ),
    ],
    Annotated[BCQLagConfig, tyro.conf.subcommand("bcq_lag", description="BCQ-Lagrangian")],
]

ALGORITHM_NAMES = ("fisor", "bc_all", "bc_safe", "bcq_lag")
ALGORITHM_CLASSES = {"fisor": FISORConfig, "bc_all": BCConfig, "bc_safe": BCConfig, "bcq_lag": BCQLagConfig}
"""The config class of each algorithm name."""


def algorithm_name(config: FISORConfig | BCConfig | BCQLagConfig) -> str:
    """``fisor``, ``bc_all``, ``bc_safe`` or ``bcq_lag``: BC's data mode decides between the two BC variants."""
    if isinstance(config, FISORConfig):
        return "fisor"
    if isinstance(config, BCConfig):
        return f"bc_{config.mode}"
    if isinstance(config, BCQLagConfig):
        return "bcq_lag"
    raise TypeError(f"algorithm config: expected FISORConfig, BCConfig or BCQLagConfig, got {type(config).__name__}")


def algorithm_config(name: str, values: dict[str, Any]) -> FISORConfig | BCConfig | BCQLagConfig:
    """Rebuild an algorithm config from its name and ``asdict`` values (JSON lists become tuples again)."""
    if name not in ALGORITHM_NAMES:
        raise ValueError(f"algorithm: expected one of {ALGORITHM_NAMES}, got {name!r}")
    return from_jsonable(ALGORITHM_CLASSES[name], values, f"algorithm {name}")


@dataclass
class EvalConfig:
    """How a policy is scored in the real environment (FISOR's protocol: 20 episodes x 3 seeds, limit 10)."""

    episodes: int = 20
    """episodes per seed"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """environment seeds (the first reset of each seed's environment; the policy's sampling generator too)"""
    cost_limit: float = 10.0
    """cost limit of the normalized cost C / limit (FISOR uses 10 for every task)"""

    def __post_init__(self) -> None:
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"episodes: expected an integer >= 1, got {self.episodes!r}")
        if len(self.seeds) == 0:
            raise ValueError("seeds: expected at least one seed, got none")
        if not self.cost_limit > 0:
            raise ValueError(f"cost_limit: expected > 0, got {self.cost_limit}")


@dataclass
class TrainConfig:
    """Train an offline safe-RL policy on a DSRL dataset; one run folder holds config.json, tb/ and checkpoints/."""

    algorithm: AlgorithmConfig = field(default_factory=FISORConfig)
    """the algorithm and its hyperparameters (steps and batch size are the algorithm's num_steps / batch_size)"""
    dataset: Optional[Path] = None
    """DSRL HDF5 file; without it the file of --task is looked up in --dataset-dir"""
    task: Optional[str] = None
    """DSRL task (BallRun, OfflineCarCircle-v0, ...): reward scale, normalized score and evaluation environment;
    default: read from the dataset file name (<Task>-v0-<MaxCost>-<NumTraj>.hdf5)"""
    dataset_dir: Optional[Path] = None
    """folder searched by task name (default $DSRL_DATASET_DIR, else ~/.dsrl/datasets)"""
    seed: int = 0
    """seed of the initialisation, the batch sampler and the training noise"""
    run_dir: Optional[Path] = None
    """run folder; default <runs-root>/<stamp>_<algorithm>_<task>"""
    runs_root: Path = Path("runs")
    """where new run folders are made when --run-dir is not given"""
    resume: bool = False
    """continue the run in --run-dir from checkpoints/last.pt with the options of its config.json (options given
    with it must agree, except the data's path, periods, progress and a larger num_steps)"""
    checkpoint_every: int = 10_000
    """steps between writes of checkpoints/last.pt (also written at the last step)"""
    log_every: int = 1_000
    """steps between TensorBoard points (metrics averaged over the interval)"""
    eval_every: int = 50_000
    """steps between evaluations in the environment (0: never); skipped when no environment is available"""
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(episodes=5, seeds=(0,)))
    """periodic evaluation; checkpoints/best.pt keeps the lowest normalized cost, then highest reward"""
    device: str = "cpu"
    """torch device of the networks and the data (cpu, cuda)"""
    progress: bool = True
    """show a progress bar with rate and ETA"""

    def __post_init__(self) -> None:
        if self.dataset is None and self.task is None:
            raise ValueError("dataset: expected --dataset PATH or --task NAME to find the data, got neither")
        if self.resume and self.run_dir is None:
            raise ValueError("resume: expected --run-dir, the run folder to continue, got none")
        for name in ("checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every: expected an integer >= 0 (0 disables), got {self.eval_every!r}")

    @property
    def algorithm_name(self) -> str:
        """``fisor``, ``bc_all``, ``bc_safe`` or ``bcq_lag``."""
        return algorithm_name(self.algorithm)


#: options that may differ between a run and its ``--resume`` without changing the trained parameters
RESUME_MAY_CHANGE = (
    "resume",
    "progress",
    "run_dir",
    "runs_root",
    "dataset",  # the data itself is checked by its fingerprint
    "dataset_dir",
    "checkpoint_every",
    "log_every",
    "eval_every",
    "eval.episodes",
    "eval.seeds",
    "eval.cost_limit",
    "algorithm.num_steps",
)


def config_record(config: TrainConfig) -> dict[str, Any]:
    """The run's options as stored in config.json and in checkpoints (``algorithm_name`` added)."""
    record = to_jsonable(config)
    record["algorithm_name"] = config.algorithm_name
    return json.loads(json.dumps(record))


def config_from_record(record: dict[str, Any], where: str = "config") -> TrainConfig:
    """The :class:`TrainConfig` of a :func:`config_record` (config.json's ``config``, a checkpoint's ``config``);
    records written before union fields were tagged name their algorithm by ``algorithm_name``."""
    values = dict(record)
    name = values.pop("algorithm_name", None)
    algorithm = values.get("algorithm")
    if name in ALGORITHM_CLASSES and isinstance(algorithm, dict) and TYPE_KEY not in algorithm:
        values["algorithm"] = {TYPE_KEY: ALGORITHM_CLASSES[name].__name__, **algorithm}
    return from_jsonable(TrainConfig, values, where)


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config a run folder was started with (``config.json``'s ``config``)."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run config here; --resume continues a run folder this trainer made")
    return config_from_record(json.loads(path.read_text())["config"], str(path))


def bcq_lag_ballrun_small() -> TrainConfig:
    """BCQ-Lagrangian as OSRL's BCQ-L (PID multiplier, cost target bootstrapped through episode ends): 5,000 steps
    on the small generated BallRun file (``python -m training.safe_rl.collect --task BallRun --preset small --seed 0
    --out-dir runs/bcql/data``), evaluated every 5,000 steps on 20 episodes of env seed 0 at cost limit 10: the
    committed comparison in ``benchmarks/results/safe_rl`` (and its benchmark row's algorithm settings)."""
    return TrainConfig(
        algorithm=BCQLagConfig(cost_limit=10.0, episode_len=100, num_steps=5000),
        dataset=Path("runs/bcql/data/BallRun-v0-80-112.hdf5"),
        seed=0,
        run_dir=Path("runs/bcql/osrl_seed0"),
        log_every=250,
        eval_every=5000,
        eval=EvalConfig(episodes=20, seeds=(0,), cost_limit=10.0),
    )


def bcq_lag_ballrun_small_grad_mask() -> TrainConfig:
    """:func:`bcq_lag_ballrun_small` with Steer's earlier BCQ-Lagrangian: Adam ascent on the multiplier and the
    cost target stopped at time-outs (the other row of that comparison)."""
    base = bcq_lag_ballrun_small()
    assert isinstance(base.algorithm, BCQLagConfig)
    algorithm = dataclasses.replace(base.algorithm, multiplier_update="gradient", cost_target_mask=True)
    return dataclasses.replace(base, algorithm=algorithm, run_dir=Path("runs/bcql/grad_mask_seed0"))


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "bcq-lag-ballrun-small": bcq_lag_ballrun_small,
    "bcq-lag-ballrun-small-grad-mask": bcq_lag_ballrun_small_grad_mask,
}
"""``--preset`` names: one per committed safe-RL benchmark configuration."""
