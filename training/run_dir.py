"""One run-folder layout for every trainer: the walking expert, the planner, the feasibility critic, offline safe RL.

::

    RUN_DIR/
      config.json            the run's options (written atomically; ``--resume`` reads them back)
      metrics.csv            one row per logging step (the columns are each trainer's)
      tb/                    TensorBoard events
      checkpoints/last.pt    the full training state: ``--resume`` continues from it
      checkpoints/best.pt    the best evaluation so far (trainers that evaluate while training)
      model/                 the trained network alone, what exporters and other trainers read
                             as a JSON file beside a safetensors file (policies.model_file):
                             weights.* (walking expert), planner_model.*, critic.*, policy.* (safe RL)
      export/                deployable files (the walking expert's TorchScript actor and policy_meta.json)

Every file is written through :func:`robot.files.atomic_write`; checkpoints are plain data read back with
``weights_only=True`` (:mod:`training.checkpoint`), model files safetensors with JSON; model files of the earlier
layout (one ``.pt`` file) still load. Runs started before this layout kept ``last.pt`` and
the model file at the top of the folder: :meth:`RunDir.resume_checkpoint` still finds such a ``last.pt``, so they
resume (their next checkpoint goes to ``checkpoints/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from robot.files import atomic_write_text


@dataclass(frozen=True)
class RunDir:
    """The paths of one run folder (module docstring); creating it is :meth:`start`'s job."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        """``config.json``: the run's options."""
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        """``metrics.csv``: one row per logging step."""
        return self.root / "metrics.csv"

    @property
    def tb(self) -> Path:
        """``tb/``: TensorBoard events."""
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: full training states."""
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        """``checkpoints/last.pt``: where the trainer writes the latest state."""
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        """``checkpoints/best.pt``: the best evaluation so far."""
        return self.checkpoints / "best.pt"

    def model(self, name: str) -> Path:
        """``model/<name>``: the trained network alone."""
        return self.root / "model" / name

    def export(self, name: str) -> Path:
        """``export/<name>``: a deployable file."""
        return self.root / "export" / name

    def resume_checkpoint(self) -> Path:
        """The checkpoint ``--resume`` continues: ``checkpoints/last.pt``, or the ``last.pt`` a run of the earlier
        layout kept at the top of its folder; ``checkpoints/last.pt`` when neither exists (the loader then says the
        file is missing)."""
        legacy = self.root / "last.pt"
        return legacy if not self.last.is_file() and legacy.is_file() else self.last

    def has_checkpoint(self) -> bool:
        """Whether a run was already trained here (either layout)."""
        return self.resume_checkpoint().is_file()

    def start(self, config_json: str, metrics_header: Sequence[str] | None = None) -> None:
        """Create the folder, write ``config.json`` and, with ``metrics_header``, a ``metrics.csv`` holding it."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, config_json)
        if metrics_header is not None:
            atomic_write_text(self.metrics, ",".join(metrics_header) + "\n")


def run_config_of(exported: Path) -> Path:
    """The ``config.json`` of the run an exported file came from: beside it (a committed assets folder, or a run of
    the earlier layout), else in the run folder above its ``export/``; the beside path when neither exists."""
    exported = Path(exported)
    beside = exported.with_name("config.json")
    above = exported.parent.parent / "config.json"
    return above if not beside.is_file() and exported.parent.name == "export" and above.is_file() else beside
