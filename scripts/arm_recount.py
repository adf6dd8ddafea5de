"""Count a bench's TFLite artifacts on the emulated ARM cores again, and compare with the bench.

    .venv/bin/python scripts/arm_recount.py runs/text-hate/bench [--json]

The bench's instruction counts are meant to be deterministic; this is the check: a second,
independent emulator run per artifact and class, its count beside the bench's, the relative
difference, and whether the golden items' ARM decisions still equal the x86 ones.
Exit 1 when any count differs by more than --tolerance (default 0.01 %) or any decision differs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_dir", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="relative (default 1e-4 = 0.01 %%)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = parser.parse_args(argv)

    from rich.console import Console

    from edgemod.benchmarks.arm_bench import arm_results
    from edgemod.export.student import load_trained_student
    from edgemod.manifest import read_manifest

    bench = read_manifest(args.bench_dir, "bench")
    export_dir = Path(bench.details["export_run"])
    before = bench.metrics.get("arm", {}).get("classes", {})
    if not before:
        print(f"{args.bench_dir}: the bench has no ARM counts ({bench.metrics.get('arm')})", file=sys.stderr)
        return 2
    student = load_trained_student(export_dir, stage="export")
    artifacts = read_manifest(export_dir, "export").details["artifacts"]
    again = arm_results(student, export_dir, {n: artifacts[n] for c in before.values() for n in c["artifacts"]},
                        Console(stderr=True))
    rows = _compare(before, again["classes"])
    ok = all(r["relative_difference"] <= args.tolerance and r["decisions_identical"] for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "rows": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['class']:10} {r['artifact']:28} bench {r['bench']:>14,} again {r['again']:>14,} "
                  f"diff {r['relative_difference']:.2e}  decisions = x86: {r['decisions_identical']}")
    return 0 if ok else 1


def _compare(before: dict, again: dict) -> list[dict]:
    rows = []
    for device, record in before.items():
        for name, entry in record["artifacts"].items():
            recount = again[device]["artifacts"][name]
            first, second = entry.get("instructions_per_inference"), recount.get("instructions_per_inference")
            rows.append({"class": device, "artifact": name, "bench": first, "again": second,
                         "relative_difference": abs(first - second) / first if first and second else float("inf"),
                         "decisions_identical": bool(recount.get("golden", {}).get("decisions_identical"))})
    return rows


if __name__ == "__main__":
    sys.exit(main())
