"""Does a model score posts higher for *naming* a group? Teacher and student, side by side, from a bench run.

`edgemod bench` rewrites every test post that names an identity group into each other group of its
axis (edgemod/identity_swaps.json) and records, per group, the mean violation-score shift
score(post) - mean score(rewrites) with its bootstrap interval, for the recipe's teacher and the fp32
student (`slices.<model>.counterfactual` in bench.json); the gate holds the student to
`budgets.slices.max_counterfactual_shift`. This prints that table. A shift near 0 beside a subgroup
AUC gap says the gap comes from the posts (or their labels), which no identity-invariance method moves.

    .venv/bin/python scripts/counterfactual_sensitivity.py runs/text-hate/bench [--min-items 30] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

MODELS = ("teacher", "fp32_student")


def shifts(bench_dir: Path, min_items: int) -> dict:
    """Model -> group -> shift, for groups named by at least `min_items` test posts."""
    from edgemod.errors import EdgemodError
    from edgemod.manifest import read_manifest

    slices = read_manifest(bench_dir, "bench").metrics.get("slices", {})
    out = {}
    for model in MODELS:
        entry = slices.get(model, {}).get("counterfactual")
        if entry is None:
            raise EdgemodError(f"{bench_dir}/bench.json has no counterfactual shifts for {model}",
                               "re-run `edgemod bench` on a text recipe's export (older benches lack them)")
        out[model] = ({g: v for g, v in entry["groups"].items() if v["items"] >= min_items} if "groups" in entry
                      else {"not_measured_because": entry["not_measured_because"]})
    return out


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    low, high = entry.get("mean_shift_interval") or (float("nan"), float("nan"))
    return f"{entry['mean_shift']:+.3f} [{low:+.3f}, {high:+.3f}] ({entry['mean_abs_shift']:.3f})"


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_dir", type=Path, help="an `edgemod bench` folder of a text recipe")
    parser.add_argument("--min-items", type=int, default=30, help="skip groups named by fewer test posts")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    results = shifts(args.bench_dir, args.min_items)
    teacher, student = results["teacher"], results["fp32_student"]
    table = Table("group", "posts", "teacher shift [95 %] (|shift|)", "student shift [95 %] (|shift|)",
                  title="violation score(post) - score(same post naming another group)")
    for group, entry in student.items():
        if group != "not_measured_because":
            table.add_row(group, str(entry["items"]), _cell(teacher.get(group)), _cell(entry))
    console = Console()
    console.print(table)
    if "not_measured_because" in teacher:
        console.print(f"teacher not measured: {teacher['not_measured_because']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
