#!/usr/bin/env bash
# The offline safe-RL campaign: one algorithm's step ladder for some seeds on one dataset, one CPU thread.
#
#     benchmarks/safe_rl_campaign.sh DATASET RUN_ROOT ALGORITHM SEED [SEED...]
#
# For each seed in turn, the algorithm's run is trained to each step count of its ladder and evaluated there
# (20 episodes, cost limit 10); the figures at every rung come from the same run's checkpoints, because a larger
# --steps continues the run (the learning-rate schedules do not depend on the budget). Each finished rung writes
# RUN_ROOT/<algo>_seed<k>/result_<steps>.json and a record with its commit, machine, dataset hash and command to
# RESULTS_DIR/<task>/<algo>_seed<k>_<steps>.json (default benchmarks/results/safe_rl/campaign), to be committed as
# it lands; `python benchmarks/safe_rl_table.py` assembles the table from those records. Every rung is a
# benchmarks/safe_rl_benchmark.py call on the same --run-root: kill this script at any time and start it again to
# continue from the last checkpoint (every 5,000 steps).
#
# The ladders are the largest step counts that fit about two and a half hours per run on one core of the project's
# 2-core VM at the reference batch (docs/results/safe-rl.md, "Compute per gradient step"): FISOR (bf16 actor,
# batch 2048, ~0.28 s a step) 30k, BCQ-Lag (batch 512, ~0.16 s) 50k, BC (batch 512, 5 ms) 100k. Override one with
# LADDER="10000 20000"; FISOR_PRECISION=fp32 trains FISOR's actor at the reference precision. Two cores: start two
# of these side by side on disjoint seeds or algorithms (e.g. under `taskset -c 0` and `taskset -c 1`), or give one
# run both with THREADS=2 (FISOR's bf16 step is about 1.6x faster on two threads than on one: a run that needs more
# than a sitting on one core, e.g. LADDER="20000 40000 60000", fits one on two).
#
# On a CUDA machine, the reference budget (FISOR's 1M steps at batch 2048, the ladder read from the same runs):
#     DEVICE=cuda LADDER="100000 250000 500000 1000000" benchmarks/safe_rl_campaign.sh DATASET RUN_ROOT fisor 0 1 2
set -euo pipefail

if [[ $# -lt 4 ]]; then
    echo "usage: $0 DATASET RUN_ROOT ALGORITHM SEED [SEED...]   (ALGORITHM: fisor bc_all bc_safe bcq_lag)" >&2
    exit 2
fi
dataset=$1
root=$2
algorithm=$3
shift 3
seeds=("$@")
case "$algorithm" in
    fisor) default_ladder="10000 20000 30000" ;;
    bcq_lag) default_ladder="10000 25000 50000" ;;
    bc_all | bc_safe) default_ladder="10000 25000 50000 100000" ;;
    *)
        echo "$0: unknown algorithm '$algorithm' (expected fisor, bc_all, bc_safe or bcq_lag)" >&2
        exit 2
        ;;
esac
read -r -a ladder <<<"${LADDER:-$default_ladder}"
python=${PYTHON:-.venv/bin/python}
results=${RESULTS_DIR:-benchmarks/results/safe_rl/campaign}

mkdir -p "$root"
for seed in "${seeds[@]}"; do
    for steps in "${ladder[@]}"; do
        "$python" benchmarks/safe_rl_benchmark.py --dataset "$dataset" --run-root "$root" --results-dir "$results" \
            --episodes 20 --cost-limit 10 --checkpoint-every 5000 --threads "${THREADS:-1}" \
            --fisor-precision "${FISOR_PRECISION:-bf16}" --algorithms "$algorithm" --seeds "$seed" --steps "$steps" \
            --device "${DEVICE:-cpu}"
    done
done
