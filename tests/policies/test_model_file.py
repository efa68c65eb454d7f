"""Model files (JSON beside safetensors): the payload survives the round trip, and every broken pair is named."""

import json

import pytest
import torch

from policies.model_file import (
    ModelFileError,
    load_model_file,
    model_file_pair,
    read_model_payload,
    save_model_file,
)


def _payload() -> dict:
    gen = torch.Generator().manual_seed(0)
    return {
        "format": "steer.test",
        "step": 12,
        "ctrl_dt_s": 0.02,
        "config": {"width": 32, "attention": "full", "ranges": [0.8, 1.2], "none": None, "flag": True},
        "weights": {
            "net.0.weight": torch.randn(4, 3, generator=gen),
            "net.0.bias": torch.zeros(4, dtype=torch.float64),
        },
        "heads": [{"w": torch.arange(6, dtype=torch.int64).reshape(2, 3)}, {"w": torch.ones(2, dtype=torch.bool)}],
    }


def test_round_trip_keeps_every_tensor_and_value_and_the_json_is_readable(tmp_path):
    payload = _payload()
    written = save_model_file(tmp_path / "model" / "net.safetensors", payload)
    assert written == tmp_path / "model" / "net.json"
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["net.json", "net.safetensors"]
    assert all((tmp_path / "model" / n).stat().st_mode & 0o777 == 0o644 for n in ("net.json", "net.safetensors"))
    head = json.loads(written.read_text())
    assert head["payload"]["config"]["width"] == 32 and head["payload"]["weights"]["net.0.weight"] == {
        "$tensor": "weights/net.0.weight"
    }
    for name in ("net.json", "net.safetensors", "net.pt", "net"):  # either half, or the stem under another name
        loaded = load_model_file(tmp_path / "model" / name)
        assert {k: loaded[k] for k in ("format", "step", "ctrl_dt_s", "config")} == {
            k: payload[k] for k in ("format", "step", "ctrl_dt_s", "config")
        }
        for key, value in payload["weights"].items():
            assert torch.equal(loaded["weights"][key], value) and loaded["weights"][key].dtype == value.dtype
        assert torch.equal(loaded["heads"][0]["w"], payload["heads"][0]["w"])
        assert torch.equal(loaded["heads"][1]["w"], payload["heads"][1]["w"])


def test_a_pair_from_two_saves_a_missing_half_and_corrupt_halves_are_named(tmp_path):
    save_model_file(tmp_path / "a.safetensors", _payload())
    save_model_file(tmp_path / "b.safetensors", _payload())
    (tmp_path / "b.safetensors").replace(tmp_path / "a.safetensors")  # weights of another save beside a's JSON
    with pytest.raises(ModelFileError, match=r"a\.json: its weights file a\.safetensors comes from another save"):
        load_model_file(tmp_path / "a.json")
    (tmp_path / "a.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.safetensors: missing"):
        load_model_file(tmp_path / "a.json")
    save_model_file(tmp_path / "c.safetensors", _payload())
    (tmp_path / "c.safetensors").write_bytes(b"\x00\x01junk")
    with pytest.raises(ModelFileError, match=r"c\.safetensors: not a readable safetensors file"):
        load_model_file(tmp_path / "c.json")
    save_model_file(tmp_path / "d.safetensors", _payload())
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"d\.json: not readable JSON"):
        load_model_file(tmp_path / "d.safetensors")
    (tmp_path / "d.json").write_text('{"something": "else"}')
    with pytest.raises(ModelFileError, match="not a Steer model file"):
        load_model_file(tmp_path / "d.json")


def test_payloads_that_a_json_file_cannot_hold_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"state: key 0 is a int"):
        save_model_file(tmp_path / "m.safetensors", {"state": {0: torch.zeros(1)}})
    with pytest.raises(TypeError, match=r"x: object is neither a tensor nor JSON data"):
        save_model_file(tmp_path / "m.safetensors", {"x": object()})
    assert not list(tmp_path.iterdir())


def test_the_earlier_single_file_layout_still_reads_and_missing_files_say_how_to_make_one(tmp_path):
    torch.save({"format": "old", "w": torch.ones(2)}, tmp_path / "old.pt")
    assert model_file_pair(tmp_path / "old.pt") is None
    assert torch.equal(read_model_payload(tmp_path / "old.pt", "test model", "make one")["w"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt: no test model here \(make one\)"):
        read_model_payload(tmp_path / "nothing.pt", "test model", "make one")
    with pytest.raises(FileNotFoundError, match=r"nothing\.json: no test model here"):
        read_model_payload(tmp_path / "nothing.json", "test model", "make one")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable test model"):
        read_model_payload(tmp_path / "junk.pt", "test model", "make one")
