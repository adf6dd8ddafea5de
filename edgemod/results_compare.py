"""Comparisons of training variants on one recipe (`edgemod results compare`), e.g. fixed teacher
labels against multi-view labels against the gold-only twin: one JSON per comparison under
`results/comparisons/`, rendered into the README's generated block after the recipe tables.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from edgemod.errors import EdgemodError

COMPARISONS = "comparisons"


RowExtras = Callable[[Path, dict], dict]  # (train folder, its recipe) -> more fields of the variant's row


def collect(title: str, variants: list[str], extras: RowExtras | None = None) -> dict:
    """`variants` are NAME=RUN_DIR, each run folder holding `label/` and `train/` (as `edgemod run`
    writes them); a train run that also trained its gold-only twin (distill.compare_gold_only) adds
    a row `NAME, gold labels only`. `extras` adds fields to each variant's own row (the CLI passes
    the benchmarks' identity-slice summary)."""
    rows = []
    for variant in variants:
        name, sep, folder = variant.rpartition("=")  # a name may hold "=" (K=4), a path rarely does
        if not sep or not name or not folder:
            raise EdgemodError(f"variant '{variant}' is not NAME=RUN_DIR", "e.g. 'views K=4=runs/vw-k4'")
        rows += _rows(name, Path(folder), extras)
    return {"title": title, "variants": rows}


def _rows(name: str, run: Path, extras: RowExtras | None) -> list[dict]:
    train, label = (_manifest(run / stage) for stage in ("train", "label"))
    metrics, recipe = train["metrics"], train["recipe"]
    folder = run / "train"
    views = (recipe.get("views") or {}).get("per_image", 0)
    confidence = label["metrics"].get("teacher_confidence", {})
    row = {"name": name, "train_dir": folder.as_posix(), "views_per_image": views,
           "teacher_test_macro_f1": metrics["test"]["teacher"]["macro_f1"],
           "teacher_entropy": {role: c["mean_entropy"] for role, c in confidence.items()},
           "label_seconds": label["metrics"].get("seconds"),
           **_student(metrics["test"]), "train_seconds": metrics["train_seconds"],
           "epochs_run": len(metrics["history"]), "quantization_aware": bool(metrics.get("quantization_aware"))}
    row.update(extras(folder, recipe) if extras else {})
    rows = [row]
    if gold := metrics.get("gold_only"):
        rows.append({"name": f"{name}, gold labels only", "train_dir": folder.as_posix(), "views_per_image": 0,
                     "teacher_test_macro_f1": None, "teacher_entropy": {}, "label_seconds": None,
                     **_student(gold["test"]), "train_seconds": gold["train_seconds"],
                     "epochs_run": len(gold["history"]), "quantization_aware": False})
    return rows


def _student(test: dict) -> dict:
    per_class = {label: round(entry["f1"], 4) for label, entry in test["student"].get("per_class", {}).items()}
    return {"test_macro_f1_argmax": test["student"]["macro_f1"],
            "test_macro_f1_at_thresholds": test["student_at_thresholds"]["macro_f1"], "test_f1_per_class": per_class}


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        raise EdgemodError(f"no manifest at {path}", "give a run folder holding label/ and train/ (edgemod run writes them)")
    return json.loads(path.read_text())


def write(comparison: dict, path: Path) -> None:
    from edgemod.fsutil import write_json_atomic

    write_json_atomic(Path(path), comparison)


def readme_tables(results_dir: Path) -> list[str]:
    return [_table(json.loads(p.read_text()), p) for p in sorted((Path(results_dir) / COMPARISONS).glob("*.json"))]


def _table(comparison: dict, path: Path) -> str:
    rows = comparison["variants"]
    classes = list(dict.fromkeys(label for row in rows for label in row["test_f1_per_class"]))
    slices = any("identity_slices_vs_teacher" in row for row in rows)
    lines = [f"\n### {comparison['title']} (from `{path.parent.parent.name}/{path.parent.name}/{path.name}`)\n",
             "| variant | views per image | teacher entropy train / validation | student test macro-F1, argmax | "
             "at thresholds | " + " | ".join(f"F1 {c}" for c in classes) + " | epochs | train s |"
             + (" identity slices failing vs teacher (worst); OOD AUROC vs teacher |" if slices else ""),
             "|---|---|---|---|---|" + "---|" * len(classes) + "---|---|" + ("---|" if slices else "")]
    for row in rows:
        entropy = row["teacher_entropy"]
        shown = " / ".join(f"{entropy[r]:.3f}" for r in ("train", "validation") if r in entropy) or "–"
        if "view" in entropy:
            shown += f" (views {entropy['view']:.3f})"
        cells = [row["name"], str(row["views_per_image"] or "–"), shown, f"{row['test_macro_f1_argmax']:.4f}",
                 f"{row['test_macro_f1_at_thresholds']:.4f}",
                 *(f"{row['test_f1_per_class'].get(c, float('nan')):.4f}" for c in classes),
                 str(row["epochs_run"]), f"{row['train_seconds']:.0f}"]
        if slices:
            cells.append(_slices_cell(row.get("identity_slices_vs_teacher")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _slices_cell(summary: dict | None) -> str:
    """README cell: 'failing/checked (worst gap, slice); OOD ratio'."""
    if not summary:
        return "–"
    where = f" {summary['worst_slice']}" if summary["worst_slice"] else ""
    text = f"{summary['failing']}/{summary['checked']} (worst {summary['worst']:+.3f}{where})"
    ratio = summary.get("out_of_domain_auroc_vs_teacher")
    return text + (f"; OOD {100 * ratio:.1f} %" if ratio is not None else "")

