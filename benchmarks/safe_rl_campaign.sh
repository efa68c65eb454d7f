#!/usr/bin/env bash
# The safe-RL benchmark on one dataset, as a ladder of resumable stages (one CPU thread):
#
#     benchmarks/safe_rl_campaign.sh DATASET RUN_ROOT [STEPS...]      (default steps: 25000 50000 100000)
#
# Every stage is a benchmarks/safe_rl_benchmark.py call on the same --run-root, so finished (algorithm, seed, steps)
# runs are reused and interrupted ones resume from their last checkpoint: kill this script at any time and start it
# again to continue. Order: the cheap baselines first, then FISOR and BCQ-Lag seed by seed, each step budget for all
# seeds before the next budget, so the table at every budget fills in as early as possible. FISOR trains its actor
# in bfloat16 (FISOR_PRECISION=fp32 for the reference precision). Each stage writes RUN_ROOT/table_<steps>.json
# when its last algorithm is done (a call whose runs are all finished only prints the table).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 DATASET RUN_ROOT [STEPS...]" >&2
    exit 2
fi
dataset=$1
root=$2
shift 2
if [[ $# -gt 0 ]]; then ladder=("$@"); else ladder=(25000 50000 100000); fi
precision=${FISOR_PRECISION:-bf16}
python=${PYTHON:-.venv/bin/python}
common=(--dataset "$dataset" --run-root "$root" --episodes 20 --cost-limit 10 --checkpoint-every 5000 --threads 1
    --fisor-precision "$precision")

mkdir -p "$root"
for steps in "${ladder[@]}"; do
    "$python" benchmarks/safe_rl_benchmark.py "${common[@]}" --steps "$steps" --algorithms bc_all bc_safe --seeds 0 1 2
    for seed in 0 1 2; do
        "$python" benchmarks/safe_rl_benchmark.py "${common[@]}" --steps "$steps" --algorithms fisor bcq_lag --seeds "$seed"
    done
    "$python" benchmarks/safe_rl_benchmark.py "${common[@]}" --steps "$steps" --seeds 0 1 2 \
        --json "$root/table_$steps.json"
done
