"""The lock file and the venv agree with pyproject.toml: every range of the extras `make` installs is met by the
locked version, and the venv holds exactly the locked versions (docs/development.md)."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"


def locked_versions(text: str) -> dict[str, Version]:
    """``name==version`` lines of a lock file (comments and blanks skipped), by canonical name."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{LOCK.name}: expected 'name==version', got {line!r}")
        pins[canonicalize_name(name)] = Version(version)
    return pins


def make_extras() -> list[str]:
    """The extras the Makefile's venv installs (its EXTRAS variable)."""
    match = re.search(r"^EXTRAS\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile: expected an 'EXTRAS := a,b,c' line"
    return match.group(1).split(",")


def required() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in make_extras():
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def test_every_range_of_pyproject_is_met_by_the_lock():
    pins = locked_versions(LOCK.read_text())
    problems = []
    for req in required():
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name}: in pyproject.toml, missing from the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: pyproject.toml asks {req.specifier}, the lock has {version}")
    assert not problems, "run `make lock` (docs/development.md):\n" + "\n".join(problems)


def test_lock_lines_parse_and_name_each_package_once():
    names = [line.split("==")[0] for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert len(names) == len({canonicalize_name(n) for n in names}) > 50
    with pytest.raises(ValueError, match="expected 'name==version'"):
        locked_versions("numpy>=1.26\n")


def test_the_venv_holds_the_locked_versions():
    mismatched = []
    for name, version in locked_versions(LOCK.read_text()).items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            if name == "cyclonedds":
                continue  # built from source where Debian's C library can be installed; the DDS tests say so
            mismatched.append(f"{name}: locked {version}, not installed")
            continue
        if installed.public != version.public:  # torch's local "+cpu" label is the build, not the version
            mismatched.append(f"{name}: locked {version}, installed {installed}")
    assert not mismatched, "the venv drifted from the lock; run `make clean-venv venv`:\n" + "\n".join(mismatched)
