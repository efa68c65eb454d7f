"""The trainers' configs survive config.json: a walking run with any task config, the planner, its action head and
every safe-RL algorithm save and load back equal; the committed runs' config.json files (written before union
fields were tagged) still load."""

import dataclasses
import json
from pathlib import Path

import pytest

from envs.locomotion.config import LocomotionConfig
from envs.tasks import TASK_CONFIGS
from envs.tasks.obstacles import BoxObstacle, CylinderObstacle, ObstacleScene, ObstacleTaskConfig
from robot.configio import TYPE_KEY, from_jsonable, to_jsonable
from training.locomotion.train import TrainConfig
from training.planner.action_head import ActionHeadConfig
from training.planner.train import PlannerTrainConfig
from training.safe_rl.config import ALGORITHM_NAMES, algorithm_config
from training.safe_rl.config import TrainConfig as SafeTrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _saved_and_loaded(cfg):
    return from_jsonable(type(cfg), json.loads(json.dumps(to_jsonable(cfg))), "config.json")


def _walking(task) -> TrainConfig:
    env = LocomotionConfig()
    return TrainConfig(
        env=dataclasses.replace(env, env=dataclasses.replace(env.env, task=task)), init_from=Path("w.pt")
    )


@pytest.mark.parametrize("name", sorted(TASK_CONFIGS))
def test_a_walking_run_with_every_task_config_saves_and_loads(name):
    cfg = _walking(TASK_CONFIGS[name]())
    back = _saved_and_loaded(cfg)
    assert back == cfg and type(back.env.env.task) is TASK_CONFIGS[name]
    record = json.loads(json.dumps(to_jsonable(cfg)))
    assert record["env"]["env"]["task"][TYPE_KEY] == TASK_CONFIGS[name].__name__
    del record["env"]["env"]["task"][TYPE_KEY]  # as written before the tag: told apart by their fields
    assert from_jsonable(TrainConfig, record) == cfg


def test_an_obstacle_scene_comes_back_as_obstacles():
    scene = ObstacleScene(boxes=[BoxObstacle((1.0, 2.0), (0.3, 0.4), yaw_rad=0.5)], cylinders=[])
    scene.cylinders.append(CylinderObstacle((0.0, 3.0), 0.25))
    back = _saved_and_loaded(_walking(ObstacleTaskConfig(scene=scene, robot_radius_m=0.4)))
    assert back.env.env.task.scene == scene and isinstance(back.env.env.task.scene.boxes[0], BoxObstacle)


def test_planner_and_action_head_configs_save_and_load():
    cfg = PlannerTrainConfig(init_from=Path("first.pt"), vae_steps=0, steps=10)
    assert _saved_and_loaded(cfg) == cfg
    head = ActionHeadConfig(guidance_mode="x0", guidance_scale=10.0, sampler_steps=2, int8=True)
    assert _saved_and_loaded(head) == head


@pytest.mark.parametrize("name", ALGORITHM_NAMES)
def test_safe_rl_configs_of_every_algorithm_save_and_load(name):
    values = {"num_steps": 7, **({"mode": name[3:]} if name.startswith("bc_") else {})}
    cfg = SafeTrainConfig(algorithm=algorithm_config(name, values), task="BallRun", run_dir=Path("r"))
    back = _saved_and_loaded(cfg)
    assert back == cfg and back.algorithm_name == name


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("assets/g1_walk/config.json", TrainConfig),
        ("assets/g1_walk/checkpoint/config.json", TrainConfig),
        *[
            (str(p.relative_to(ROOT)), TrainConfig)
            for p in sorted((ROOT / "assets/g1_walk/history").glob("*.json"))
            if p.name.endswith("_config.json")
        ],
        ("assets/g1_planner/checkpoint/config.json", PlannerTrainConfig),
    ],
)
def test_committed_config_files_load(path, cls):
    data = json.loads((ROOT / path).read_text())
    cfg = from_jsonable(cls, data, path)
    assert json.loads(json.dumps(to_jsonable(cfg))) == _with_tags(data, to_jsonable(cfg))


def _with_tags(old, new):
    """``old`` (an untagged file) with the tags and the fields added since (defaults) that ``new`` carries."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _with_tags(old[k], v) if k in old else v for k, v in new.items()}
    return old
