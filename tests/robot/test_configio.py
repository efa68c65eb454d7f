"""robot.configio: union-typed config fields are tagged and come back as the config they held; untagged files of
the earlier layout still load; paths, tuples and lists of configs survive the round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import pytest

from robot.configio import TYPE_KEY, from_jsonable, to_jsonable


@dataclass
class Walk:
    speed_m_per_s: float = 1.0
    gait: tuple[float, float] = (0.5, 0.5)


@dataclass
class Reach:
    goal_xy_m: tuple[float, float] = (1.0, 0.0)
    tolerance_m: float = 0.2


@dataclass
class Twin:
    """Same fields as :class:`Reach`: an untagged object cannot tell them apart."""

    goal_xy_m: tuple[float, float] = (0.0, 0.0)
    tolerance_m: float = 0.1


@dataclass
class Box:
    size_m: float = 1.0


@dataclass
class Outer:
    task: Walk | Reach = field(default_factory=Walk)
    annotated: Union[Annotated[Walk, "walk"], Annotated[Reach, "reach"]] = field(default_factory=Walk)
    twin: Reach | Twin = field(default_factory=Reach)
    maybe: Optional[Walk] = None
    boxes: list[Box] = field(default_factory=list)
    sizes: tuple[int, ...] = (1, 2)
    path: Path = Path("runs/a")
    optional_path: Optional[Path] = None


@dataclass
class Renamed:
    """A config whose field was renamed: its migration rewrites the older JSON."""

    new_name: int = 0

    @staticmethod
    def migrate_json(data: dict[str, Any]) -> dict[str, Any]:
        if "old_name" in data:
            data["new_name"] = data.pop("old_name")
        return data


def _round_trip(obj: Any) -> Any:
    return from_jsonable(type(obj), json.loads(json.dumps(to_jsonable(obj))))


def test_union_fields_are_tagged_and_rebuilt_as_the_config_they_held():
    cfg = Outer(task=Reach(goal_xy_m=(2.0, 1.0)), annotated=Reach(), twin=Twin(tolerance_m=0.3), maybe=Walk(2.0))
    data = to_jsonable(cfg)
    assert data["task"][TYPE_KEY] == "Reach" and data["annotated"][TYPE_KEY] == "Reach"
    assert data["twin"][TYPE_KEY] == "Twin"
    assert TYPE_KEY not in data["maybe"]  # one config type (or None): nothing to choose, no tag
    back = _round_trip(cfg)
    assert back == cfg and isinstance(back.task, Reach) and isinstance(back.twin, Twin)


def test_paths_tuples_and_lists_of_configs_come_back_with_their_types():
    cfg = Outer(boxes=[Box(2.0), Box(3.0)], sizes=(4, 5, 6), optional_path=Path("w.pt"))
    back = _round_trip(cfg)
    assert back == cfg
    assert isinstance(back.boxes, list) and isinstance(back.boxes[0], Box)
    assert isinstance(back.path, Path) and isinstance(back.optional_path, Path)
    assert back.sizes == (4, 5, 6) and isinstance(back.task.gait, tuple)


def test_untagged_files_of_the_earlier_layout_load_by_their_fields():
    old = {"task": {"goal_xy_m": [3.0, 0.0]}, "annotated": {"speed_m_per_s": 0.5}, "twin": {"tolerance_m": 0.4}}
    cfg = from_jsonable(Outer, old)
    assert cfg.task == Reach(goal_xy_m=(3.0, 0.0))  # only Reach has goal_xy_m
    assert cfg.annotated == Walk(speed_m_per_s=0.5)
    assert cfg.twin == Reach(tolerance_m=0.4)  # fits both: the type of the field's default


def test_unknown_tags_and_fields_are_named():
    with pytest.raises(ValueError, match=r"config\.task: _type expected one of \['Walk', 'Reach'\], got 'Swim'"):
        from_jsonable(Outer, {"task": {TYPE_KEY: "Swim"}})
    with pytest.raises(ValueError, match=r"config\.task: the fields \['depth_m'\] fit none of"):
        from_jsonable(Outer, {"task": {"depth_m": 1.0}})
    with pytest.raises(ValueError, match=r"unknown fields \['depth_m'\] of Reach"):
        from_jsonable(Outer, {"task": {TYPE_KEY: "Reach", "depth_m": 1.0}})
    with pytest.raises(ValueError, match=r"_type expected 'Walk', got 'Reach'"):
        from_jsonable(Walk, {TYPE_KEY: "Reach"})


def test_a_config_can_migrate_its_older_json():
    assert from_jsonable(Renamed, {"old_name": 3}) == Renamed(new_name=3)
    assert from_jsonable(Renamed, {"new_name": 4}) == Renamed(new_name=4)
