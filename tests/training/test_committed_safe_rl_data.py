"""The DSRL-size datasets committed under data/safe_rl load, validate and match the provenance beside them."""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from envs.safe_rl.dsrl_data import DSRL_KEYS, arrays_sha256, read_dsrl

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "data" / "safe_rl").glob("*.hdf5"))


def test_there_is_a_committed_dataset():
    assert FILES, "data/safe_rl holds no DSRL dataset"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_committed_dataset_matches_its_provenance(path):
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["file"] == path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"]
    task = path.name.split("-v0-")[0]
    data = read_dsrl(path, task=task)
    assert len(data.rewards) == meta["transitions"]
    ends = np.flatnonzero(np.logical_or(data.terminals, data.timeouts))
    assert len(ends) == meta["trajectories"] == len(meta["episodes"])
    assert arrays_sha256(data) == meta["arrays_sha256"]  # the arrays themselves, compressed or not
    with h5py.File(path, "r") as handle:
        assert {handle[key].compression for key in DSRL_KEYS} == {"gzip" if meta["compression"] else None}
    assert path.with_suffix(".png").is_file()
