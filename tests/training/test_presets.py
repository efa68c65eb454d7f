"""Every --preset equals the config committed beside its artefact (the walking expert, the planner, its action head, the
feasibility critic (tests/training/test_feasibility.py), the safe-RL benchmark configurations), and every preset is a
valid config that survives config.json.

The comparisons skip what is legitimately particular to the committed run: where it lived (``run_dir``), paths to
the weights it started from that are not committed (``init_from``), and the wall-clock budget of the session that
ran it (``max_minutes``). Fields added to the configs after a file was written are not in it; they take their
defaults, which keep the earlier behaviour."""

import json
import subprocess
from pathlib import Path

import pytest

from policies.diffusion.planner import PlannerConfig
from robot.configio import from_jsonable, to_jsonable
from training.checkpoint import load_checkpoint
from training.locomotion.config import PRESETS as WALK_PRESETS
from training.locomotion.config import TrainConfig
from training.planner.config import FEASIBILITY_PRESETS, HEAD_PRESETS, PlannerTrainConfig
from training.planner.config import PRESETS as PLANNER_PRESETS
from training.run_config import flatten
from training.run_dir import RunDir
from training.safe_rl.config import PRESETS as SAFE_RL_PRESETS

ROOT = Path(__file__).resolve().parents[2]
ALL_PRESETS = {**WALK_PRESETS, **PLANNER_PRESETS, **HEAD_PRESETS, **FEASIBILITY_PRESETS, **SAFE_RL_PRESETS}


def _json(obj) -> dict:
    return json.loads(json.dumps(to_jsonable(obj)))


def _current_layout(committed: dict) -> dict:
    """A committed config in today's layout: planner configs written before the denoiser became a typed choice
    hold its options flat beside its name, which ``PlannerConfig.migrate_json`` rewrites (as every loader does)."""
    out = dict(committed)
    if isinstance(out.get("planner"), dict):
        out["planner"] = PlannerConfig.migrate_json(dict(out["planner"]))
    elif "denoiser" in out and "state_dim" in out:
        out = PlannerConfig.migrate_json(out)
    return out


def differences(preset, committed: dict, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Fields (dotted) of the committed record whose preset value differs, except ``skip``."""
    mine, theirs = flatten(_json(preset)), flatten(_current_layout(committed))
    return {k: (mine.get(k), v) for k, v in theirs.items() if k not in skip and mine.get(k) != v}


@pytest.mark.parametrize("name", sorted(ALL_PRESETS))
def test_every_preset_is_a_valid_config_that_survives_config_json(name):
    cfg = ALL_PRESETS[name]()
    assert from_jsonable(type(cfg), _json(cfg), name) == cfg


@pytest.mark.parametrize("path", ["assets/g1_walk/config.json", "assets/g1_walk/checkpoint/config.json"])
def test_g1_walk_is_the_committed_walking_experts_config(path):
    committed = json.loads((ROOT / path).read_text())
    # init_from: phase S9's weights, not committed (docs/results/walking-expert.md tells the lineage)
    assert differences(WALK_PRESETS["g1-walk"](), committed, skip=("run_dir", "init_from")) == {}
    assert isinstance(from_jsonable(TrainConfig, committed), TrainConfig)


def test_g1_planner_is_the_committed_planners_config():
    committed = json.loads((ROOT / "assets/g1_planner/checkpoint/config.json").read_text())
    preset = PLANNER_PRESETS["g1-planner"]()
    # init_from: the run started from the first network, then at the path where the fine-tune now lies
    assert differences(preset, committed, skip=("init_from", "max_minutes")) == {}
    model = load_checkpoint(ROOT / "assets/g1_planner/checkpoint/planner_model.pt")
    assert differences(preset.planner, model["planner_config"]) == {}
    assert preset.data == Path(model["data"])


def test_g1_planner_base_is_the_first_networks_config():
    """The first network's files left the tree when the fine-tune replaced them; git keeps them."""
    try:
        text = subprocess.run(
            ["git", "show", "652d34c:assets/g1_planner/checkpoint/config.json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the first network's commit is not in this checkout's history")
    committed = json.loads(text)
    assert differences(PLANNER_PRESETS["g1-planner-base"](), committed, skip=("run_dir",)) == {}
    assert isinstance(from_jsonable(PlannerTrainConfig, committed), PlannerTrainConfig)


def test_g1_planner_head_is_the_committed_heads_config():
    from training.planner.action_head import head_config

    head = HEAD_PRESETS["g1-planner-head"]()
    metrics = json.loads((ROOT / "assets/g1_planner/head/head_metrics.json").read_text())["settings"]
    # the same run's planner file; the committed head was fitted before the shared run layout put it under model/
    # and before model files became safetensors with JSON (a planner_model.pt then)
    assert head.model == RunDir(Path(metrics["model"]).parent).model("planner_model.safetensors")
    assert Path(metrics["model"]).name == "planner_model.pt"
    for key in (
        "data",
        "states",
        "task_mix",
        "lookahead_s",
        "windows",
        "val_windows",
        "seed",
        "history_velocity_noise_m_per_s",
    ):
        assert _json(head)[key] == metrics[key], key
    committed = load_checkpoint(ROOT / "assets/g1_planner/head/planner_model.pt")["planner_config"]
    fine_tune = {"planner_config": to_jsonable(PLANNER_PRESETS["g1-planner"]().planner)}
    assert differences(head_config(fine_tune, head), committed) == {}  # head size, sampler, guidance, int8
    assert committed["diffusion"]["sampler"] == metrics["sampler"] and committed["denoiser_int8"] is head.int8


@pytest.mark.parametrize(
    ("name", "run"), [("bcq-lag-ballrun-small", "osrl"), ("bcq-lag-ballrun-small-grad-mask", "grad_mask")]
)
def test_safe_rl_presets_are_the_committed_benchmark_configurations(name, run):
    results = ROOT / "benchmarks/results/safe_rl"
    variants = json.loads((results / "bcq_lag_variants_ballrun_small_seed0.json").read_text())
    preset = SAFE_RL_PRESETS[name]()
    assert _json(preset.algorithm) == variants["runs"][run]["algorithm"]
    assert preset.algorithm.num_steps == variants["steps"]
    assert variants["eval"] == f"{preset.eval.episodes} episodes, env seed {preset.eval.seeds[0]}, cost limit 10"
    assert preset.eval.cost_limit == 10.0 and preset.eval.seeds == (0,)
    assert Path(variants["dataset"].split(" ")[0]).name == preset.dataset.name


def test_the_bcq_lag_preset_is_what_the_benchmark_trains():
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks.safe_rl_benchmark import algorithm_config
    from envs.safe_rl import get_task

    row = json.loads((ROOT / "benchmarks/results/safe_rl/bcq_lag_benchmark_new_seed0.json").read_text())["options"]
    preset = SAFE_RL_PRESETS["bcq-lag-ballrun-small"]()
    built = algorithm_config("bcq_lag", get_task("BallRun"), row["steps"], row["batch_size"], row["cost_limit"], False)
    assert built == preset.algorithm
    assert Path(row["dataset"]).name == preset.dataset.name and row["episodes"] == preset.eval.episodes
