"""The offline safe-RL campaign's table, assembled from the committed per-run records.

    python benchmarks/safe_rl_table.py [--results-dir benchmarks/results/safe_rl/campaign] [--markdown] [--json PATH]

Every (task, algorithm, seed, steps) run of ``benchmarks/safe_rl_campaign.sh`` writes one record
(``<task>/<algo>_seed<k>_<steps>.json``: DSRL normalized reward and cost on 20 episodes at cost limit 10, its
commit, machine, dataset hash and command). This prints, per task and step count, each algorithm's mean ± std over
the seeds recorded (population std of the per-seed means), how many of the planned seeds are in, and FISOR's
published row beside it (Zheng et al., ICLR 2024, Table 1: 1e6 steps on DSRL's official data). A cell with fewer
seeds than planned is marked ``(k/3 seeds)``: a half-finished campaign prints as it stands.
"""

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python benchmarks/safe_rl_table.py`

from benchmarks._common import run_benchmark, write_json
from benchmarks.safe_rl_benchmark import PUBLISHED
from training.safe_rl.evaluate import mean_std

ALGORITHMS = ("fisor", "bc_all", "bc_safe", "bcq_lag")
NAMES = {"fisor": "FISOR", "bc_all": "BC-All", "bc_safe": "BC-Safe", "bcq_lag": "BCQ-Lag"}
PLANNED_SEEDS = 3
DEFAULT_DIR = Path(__file__).resolve().parent / "results" / "safe_rl" / "campaign"


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every run record under ``results_dir`` (``<task>/<algo>_seed<k>_<steps>.json``)."""
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no campaign records there")
    records = []
    for path in sorted(results_dir.glob("*/*_seed*_*.json")):
        record = json.loads(path.read_text())
        missing = {"task", "algorithm", "seed", "steps", "normalized_reward", "normalized_cost"} - set(record)
        if missing:
            raise ValueError(f"{path}: not a campaign record (lacks {sorted(missing)})")
        records.append(record)
    return records


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, steps, algorithm): mean ± std over seeds, the seeds in, hours per run."""
    cells: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cells[(r["task"], int(r["steps"]), r["algorithm"])].append(r)
    rows = []
    order = {name: i for i, name in enumerate(ALGORITHMS)}
    for (task, steps, name), runs in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        reward = mean_std([r["normalized_reward"] for r in runs])
        cost = mean_std([r["normalized_cost"] for r in runs])
        rows.append(
            {
                "task": task,
                "steps": steps,
                "algorithm": name,
                "seeds": sorted(int(r["seed"]) for r in runs),
                "normalized_reward": reward[0],
                "normalized_reward_std": reward[1],
                "normalized_cost": cost[0],
                "normalized_cost_std": cost[1],
                "safe": cost[0] <= 1.0,
                "published": PUBLISHED.get(task, {}).get(name),
            }
        )
    return rows


def format_rows(rows: list[dict[str, Any]], markdown: bool) -> str:
    """The table, plain or Markdown."""
    head = ["task", "steps", "algorithm", "seeds", "normalized reward", "normalized cost", "safe", "published r / c"]
    lines = []
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    else:
        lines.append(
            f"{head[0]:<10} {head[1]:>7}  {head[2]:<8} {head[3]:<12} {head[4]:>18} {head[5]:>16}  {head[6]:<4}"
        )
    for r in rows:
        seeds = ", ".join(str(s) for s in r["seeds"])
        if len(r["seeds"]) < PLANNED_SEEDS:
            seeds += f" ({len(r['seeds'])}/{PLANNED_SEEDS} seeds)"
        reward = f"{r['normalized_reward']:.3f} ± {r['normalized_reward_std']:.3f}"
        cost = f"{r['normalized_cost']:.2f} ± {r['normalized_cost_std']:.2f}"
        published = "" if r["published"] is None else f"{r['published'][0]:.2f} / {r['published'][1]:.2f}"
        safe = "yes" if r["safe"] else "no"
        if markdown:
            cells = [r["task"], f"{r['steps']:,}", NAMES[r["algorithm"]], seeds, reward, cost, safe, published]
            lines.append("| " + " | ".join(cells) + " |")
        else:
            lines.append(
                f"{r['task']:<10} {r['steps']:>7}  {NAMES[r['algorithm']]:<8} {seeds:<12} {reward:>18} {cost:>16}  "
                f"{safe:<4} {published}"
            )
    return "\n".join(lines)


@dataclass(kw_only=True)
class Args:
    """Options of this benchmark (module docstring)."""

    results_dir: Path = DEFAULT_DIR
    """campaign records (<task>/*.json)"""
    markdown: bool = False
    """print a Markdown table"""
    json: Optional[Path] = None
    """also write the rows here"""


def main(args: Args) -> int:
    try:
        rows = summarise(load_records(args.results_dir))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_rows(rows, args.markdown))
    print(
        "published: FISOR's Table 1 (1e6 steps, batch 2048, DSRL's official data, limit 10); the campaign trains "
        "10k-100k steps on generated data: not the same experiment."
    )
    if args.json is not None:
        write_json(args.json, {"results_dir": str(args.results_dir), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, Args, __doc__))
