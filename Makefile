# Steer: `make demo` and `make test` work on a fresh clone (they create .venv when missing).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.steer-installed

.PHONY: demo test lint bench format clean-venv venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,rl,onnx,video,safe-rl]'
	# The hardware extra (cyclonedds==0.10.2, the robot's version) builds against Debian's C library.
	bash .ci/install_cyclonedds.sh $(PY)
	# DSRL's environments; --no-deps because their metadata pins versions that conflict or do not build.
	$(PY) -m pip install -q --no-deps bullet-safety-gym==1.4.0 dsrl==0.1.0
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m training.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	# Cyclone DDS 0.10.2 for the Unitree DDS tests (a no-op when installed; says what is missing otherwise).
	bash .ci/install_cyclonedds.sh $(PY)
	$(PY) -m pytest -m "not hardware and not gpu" -q

bench: $(STAMP)
	$(PY) benchmarks/planner_latency.py --json outputs/bench/planner_latency.json
	$(PY) benchmarks/sim_throughput.py --json outputs/bench/sim_throughput.json
	$(PY) benchmarks/loop_timing.py --json outputs/bench/loop_timing.json
	$(PY) benchmarks/dds_roundtrip.py --json outputs/bench/dds_roundtrip.json
	$(PY) benchmarks/policy_backends.py --json outputs/bench/policy_backends.json

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
