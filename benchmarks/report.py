"""One self-contained HTML page for a bench run: gate verdict, headline numbers, latency, PR curves,
confusion matrices, calibration, parity and slices.

Plots are PNGs embedded as base64 and the CSS is inline, so the page can travel with a published
artifact or a review comment and open offline; nothing on it loads from the network or runs script.
Every number comes from the bench folder: an artifact that was not measured shows why, never a guess.
This module writes the HTML; `report_metrics` reads and computes the numbers, `plots` draws the figures.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from edgemod.benchmarks.device_class import describe
from edgemod.benchmarks.plots import calibration_plot, confusion_plot, latency_plot, pr_plot
from edgemod.benchmarks.report_arm import arm_section_body
from edgemod.benchmarks.report_metrics import (
    BenchRun,
    decisions,
    gold,
    load_run,
    multilabel_counts,
    p50,
    quantized_measured,
    scored,
    worst_group,
)
from edgemod.fsutil import write_text_atomic

EAGER = "torch_eager_fp32"  # the latency row bench measures for the fp32 student
TITLES = {"gate": "Gate", "headline": "Headline", "latency": "Latency", "pr": "Precision-recall per class",
          "confusion": "Confusion matrices at the shipped thresholds", "calibration": "Calibration",
          "parity": "Parity vs the fp32 student", "by_source": "Slices by source",
          "identity": "Identity groups", "robustness": "Robustness to obfuscation",
          "out_of_domain": "Out of domain (labels neither model trained on)",
          "run": "Run: stages, data, teacher vs student"}
DASH = "\u2014"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
 max-width:1360px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:24px;margin:8px 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;
 padding-bottom:4px} h3{font-size:15px;margin:14px 0 6px}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
.meta dt{color:#57606a} .meta dd{margin:0}
.small{font-size:12px;color:#57606a} .note{color:#57606a;font-style:italic;margin:6px 0}
.banner{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:600;margin:12px 0;color:#fff}
.banner.pass{background:#1a7f37} .banner.fail{background:#cf222e} .banner.none{background:#6e7781}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px} th,td{border:1px solid #d0d7de;
 padding:4px 8px;text-align:left;vertical-align:top} th{background:#f6f8fa} tbody tr:nth-child(even){background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.failed td{background:#ffebe9} tr.passed td:first-child{color:#1a7f37} tr.failed td:first-child{color:#cf222e;font-weight:600}
tr.unmeasured td{background:#fff8c5} tr.broken td{background:#ffebe9} tr.ref td{background:#f6f8fa}
tr.ungated td{color:#8c959f} td.worst{background:#ffcecb !important;font-weight:600}
.tables{display:flex;flex-wrap:wrap;gap:0 24px} .tables table{font-size:12px}
.tables td,.tables th{padding:3px 6px} .tables th{max-width:62px} .nowrap{white-space:nowrap} \
img{max-width:100%;height:auto;display:block;margin:6px 0}
code{font-size:12px;background:#f6f8fa;padding:1px 4px;border-radius:4px}
"""




def write_report(bench_dir: Path, gate: dict | None, out: Path, pipeline: dict | None = None) -> Path:
    """Render the bench run in `bench_dir` (and the gate result, if any) as one HTML page.

    Args:
        bench_dir: a finished `edgemod bench` folder (manifest.json, bench.json, scores.parquet,
            latency_samples.json; the last two are optional and their plots are skipped without them).
        gate: `{"verdict", "baseline", "checks": [...]}` from the gate, or None when not gated.
        out: where to write the page; written atomically (temp file beside it, then rename).
        pipeline: for a whole `edgemod run`: {"stages": [{stage, seconds, did_work, summary}],
            "items_by_role": {role: n}, "train": {student/teacher test metrics, parameters}}.

    Returns:
        `out`.
    """
    run = load_run(Path(bench_dir))
    write_text_atomic(out, _page(run, gate, pipeline))
    return Path(out)



# ---------------------------------------------------------------- page and small HTML helpers

def _page(run: BenchRun, gate: dict | None, pipeline: dict | None = None) -> str:
    sections = [_header(run, gate), _gate_section(gate), _run_section(pipeline), _headline_section(run),
                _latency_section(run),
                _pr_section(run), _confusion_section(run), _calibration_section(run), _parity_section(run),
                _source_section(run), _identity_section(run), _out_of_domain_section(run), _robustness_section(run),
                _footer(run)]
    title = f"{run.recipe.get('name', run.manifest.get('name', 'bench'))} \u2014 {_verdict_word(gate)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(s for s in sections if s) + "\n</body>\n</html>\n")


def _run_section(pipeline: dict | None) -> str:
    if not pipeline:
        return ""
    stages = _table(["stage", "seconds", "work", "result"],
                    [("", "".join([_cell(st["stage"], cls=""), _cell(st["seconds"], 1),
                                   _cell("ran" if st["did_work"] else "up to date", cls=""), _cell(st["summary"], cls="")]))
                     for st in pipeline.get("stages", [])])
    data = _table(["role", "items"], [("", _cell(role, cls="") + _cell(n, 0))
                                      for role, n in pipeline.get("items_by_role", {}).items()])
    train = pipeline.get("train") or {}
    rows = [("", _cell(who, cls="") + _cell(m.get("macro_f1")) + _cell(m.get("macro_auroc")) + _cell(m.get("parameters"), 0))
            for who, m in train.items()]
    versus = _table(["model (argmax, test)", "macro-F1", "macro AUROC", "parameters"], rows) if rows else ""
    return _section("run", "<h3>Stages</h3>" + stages + "<h3>Data</h3>" + data + "<h3>Teacher vs student</h3>" + versus)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    """A number for a table cell; None (not measured) stays a dash rather than becoming 0."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return _e(value)


def _cell(value: Any, digits: int = 3, cls: str = "num") -> str:
    return f'<td class="{cls}">{_num(value, digits)}</td>'


def _table(headers: list[str], rows: list[tuple[str, str]]) -> str:
    """`rows` are (row class, already-escaped cells HTML)."""
    head = "".join(f"<th>{_e(h).replace('_', '_<wbr>')}</th>" for h in headers)
    body = "\n".join(f'<tr class="{cls}">{cells}</tr>' for cls, cells in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _section(key: str, body: str, intro: str = "") -> str:
    intro_html = f'<p class="small">{intro}</p>\n' if intro else ""
    return f'<section id="{key}">\n<h2>{_e(TITLES[key])}</h2>\n{intro_html}{body}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


# ---------------------------------------------------------------- header and gate

def _verdict_word(gate: dict | None) -> str:
    return "not gated" if not gate else str(gate.get("verdict", "unknown")).upper()


def _header(run: BenchRun, gate: dict | None) -> str:
    recipe, name = run.recipe, run.recipe.get("name", run.manifest.get("name", "bench"))
    commit = str(run.manifest.get("git_commit") or DASH)
    meta = [("task", recipe.get("task", DASH) + (" (multi-label)" if run.multi_label else "")),
            ("labels", _labels_text(run)), ("thresholds", _thresholds_text(run.thresholds)),
            ("student / teachers", _models_text(recipe)), ("budgets", _budgets_text(recipe.get("budgets", {}))),
            ("created", run.manifest.get("created_at", DASH)), ("git commit", commit[:12]),
            ("platform", run.manifest.get("platform", DASH))]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    tools = " \u00b7 ".join(f"{k} {v}" for k, v in run.manifest.get("tool_versions", {}).items())
    return (f"<header>\n<h1>{_e(name)} \u2014 {_e(_verdict_word(gate))}</h1>\n<dl class=\"meta\">{rows}</dl>\n"
            f'<p class="small">tools: {_e(tools or DASH)}</p>\n</header>')


def _labels_text(run: BenchRun) -> str:
    benign = run.thresholds.get("benign")
    return ", ".join(f"{label} (benign)" if label == benign else label for label in run.labels)


def _thresholds_text(thresholds: dict) -> str:
    cuts = ", ".join(f"{label} \u2265 {v['threshold']:.4g}" for label, v in thresholds.get("per_class", {}).items())
    return f"policy {thresholds.get('policy', DASH)}" + (f"; {cuts}" if cuts else "; argmax")


def _models_text(recipe: dict) -> str:
    student = recipe.get("student", {}).get("arch", DASH)
    teachers = ", ".join(f"{t.get('name') or t.get('path')} ({t.get('kind')})" for t in recipe.get("teachers", []))
    return f"{student} / {teachers or DASH}"


def _budgets_text(budgets: dict) -> str:
    flat = [f"{group}.{k}={v}" for group, values in budgets.items() if isinstance(values, dict)
            for k, v in values.items() if v is not None]
    return ", ".join(flat) or "none"


def _gate_section(gate: dict | None) -> str:
    if not gate:
        return _section("gate", '<div class="banner none">NOT GATED \u2014 no gate result was given</div>')
    checks = gate.get("checks", [])
    failed = sum(not c.get("passed") for c in checks)
    verdict = str(gate.get("verdict", "unknown")).lower()
    summary = f"{failed} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks passed"
    baseline = f" (baseline: {gate['baseline']})" if gate.get("baseline") else ""
    banner_class = "pass" if verdict == "pass" else "fail"
    banner = f'<div class="banner {banner_class}">{_e(verdict.upper())} \u2014 {_e(summary + baseline)}</div>'
    return _section("gate", banner + "\n" + _checks_table(checks))


def _checks_table(checks: list[dict]) -> str:
    # failed checks first: they are what a reviewer must act on; sorted() keeps the gate's order otherwise
    ordered = sorted(checks, key=lambda c: bool(c.get("passed")))
    rows = [("passed" if c.get("passed") else "failed",
             f"<td>{_e(_status_word(c))}</td><td>{_e(c.get('name', ''))}</td>"
             f"<td>{_e(c.get('subject', ''))}</td><td>{_e(c.get('device', ''))}</td>"
             f"{_cell(_plain(c.get('value')))}{_cell(_plain(c.get('budget')))}"
             f"<td>{_e(c.get('detail', ''))}</td>") for c in ordered]
    headers = ["result", "check", "subject", "measured on", "value", "budget", "detail"]
    return _table(headers, rows) if rows else _note("The gate ran no checks.")


def _status_word(check: dict) -> str:
    status = check.get("status") or ("pass" if check.get("passed") else "fail")
    return "FAIL" if status == "fail" else status


def _plain(value: Any) -> Any:
    """Gate values keep their precision (budgets like 0.005 must not round to 0.01)."""
    return f"{value:.6g}" if isinstance(value, float) else value


# ---------------------------------------------------------------- headline

def _headline_section(run: BenchRun) -> str:
    ref = run.bench.get("reference", {})
    rows = [("ref", _reference_row(run, "fp32_student", ref.get("fp32_student", {}), EAGER)),
            ("ref", _reference_row(run, "teacher", ref.get("teacher", {}), None))]
    for name, art in run.artifacts.items():
        rows.append(_artifact_headline(run, name, art))
    host = run.bench.get("device", {}).get("class", "host")
    headers = ["model", "size MB", "macro-F1 @thr", "macro AUROC", "flips vs fp32", f"p50 1 thread ms ({host})",
               f"p50 2 threads ms ({host})", f"cold start ms ({host})", "peak RSS MB"]
    intro = ("Accuracy on the test split at the shipped thresholds; flips = items whose decision differs from the "
             f"fp32 student; the fp32 student's latency is torch eager. Times were measured on device class {host} "
             "(the bench machine, not a phone).")
    return _section("headline", _table(headers, rows), _e(intro))


def _reference_row(run: BenchRun, name: str, ref: dict, latency_name: str | None) -> str:
    acc = ref.get("accuracy_at_thresholds", {})
    flips = "reference" if name == "fp32_student" else DASH
    return (f"<td>{_e(name)}</td>{_cell(None)}{_cell(acc.get('macro_f1'))}{_cell(acc.get('macro_auroc'))}"
            f'<td class="num">{flips}</td>{_cell(p50(run, latency_name, "1_thread"), 3)}'
            f"{_cell(p50(run, latency_name, '2_thread'), 3)}{_cell(None)}{_cell(None)}")


def _artifact_headline(run: BenchRun, name: str, art: dict) -> tuple[str, str]:
    size = _cell(art.get("size_mb"), 2)
    if not art.get("measured"):
        reason = art.get("not_measured_because") or art.get("integrity") or "not measured"
        extra = " (export-time estimate in Parity)" if art.get("export_parity") and art.get("integrity") == "ok" else ""
        return ("unmeasured" if art.get("integrity") == "ok" else "broken",
                f"<td>{_e(name)}</td>{size}<td colspan=\"7\">not measured: {_e(reason)}{_e(extra)}</td>")
    acc, mem = art.get("accuracy_at_thresholds", {}), art.get("memory", {})
    return ("", f"<td>{_e(name)}</td>{size}{_cell(acc.get('macro_f1'))}{_cell(acc.get('macro_auroc'))}"
                f"{_cell(art.get('decision_flips'))}{_cell(p50(run, name, '1_thread'), 3)}"
                f"{_cell(p50(run, name, '2_thread'), 3)}{_cell(art.get('cold_start_ms'), 1)}"
                f"{_cell(mem.get('peak_rss_mb'), 1)}")


# ---------------------------------------------------------------- latency

def _latency_section(run: BenchRun) -> str:
    names = [n for n in [EAGER, *run.artifacts] if n in run.samples]
    if not names:
        return _section("latency", _note("No latency samples in this bench folder (latency_samples.json)."))
    body = latency_plot(run, names) + "\n" + _latency_table(run)
    device = run.bench.get("device")
    where = describe(device) if device else run.manifest.get("platform", "the bench machine")
    intro = _e(f"Batch 1, after warm-up, measured on device class {where} (not a phone). "
               "Boxes: quartiles; whiskers: 1st-99th percentile; log scale.")
    return _section("latency", body + arm_section_body(run.bench), intro)


def _latency_table(run: BenchRun) -> str:
    rows = []
    for name, stats in run.bench.get("latency", {}).items():
        cells = f"<td>{_e(name)}</td>"
        for threads in ("1_thread", "2_thread"):
            s = stats.get(threads, {})
            cells += "".join(_cell(s.get(k), 3) for k in ("p50_ms", "p90_ms", "p99_ms", "p50_pass_spread"))
        rows.append(("", cells))
    headers = ["model"] + [f"{t} {k}" for t in ("1t", "2t") for k in ("p50", "p90", "p99", "p50 spread")]
    return _table(headers, rows) + _note("p50 spread: relative difference between the per-pass medians; "
                                         "a large spread means the machine was noisy.")


# ---------------------------------------------------------------- scores-based plots

def _unplotted_note(run: BenchRun) -> str:
    skipped = [f"{n} ({a.get('not_measured_because') or a.get('integrity')})"
               for n, a in run.artifacts.items() if not a.get("measured")]
    return _note("Not plotted, not measured here: " + "; ".join(skipped)) if skipped else ""


def _no_scores(key: str) -> str:
    return _section(key, _note("No scores in this bench folder (scores.parquet), so nothing to plot."))


def _pr_section(run: BenchRun) -> str:
    models = scored(run, ["fp32_student", "teacher", *quantized_measured(run)])
    if not models:
        return _no_scores("pr")
    benign = None if run.multi_label else run.thresholds.get("benign")
    classes = [label for label in run.labels if label != benign]
    intro = _e("One-vs-rest on the test split; AP in the legend. The star marks the shipped threshold on the "
               "fp32 student's curve. fp32 exports match the fp32 student, so only quantized artifacts are drawn.")
    return _section("pr", pr_plot(run, models, classes) + _unplotted_note(run), intro)


def _confusion_section(run: BenchRun) -> str:
    models = scored(run, ["fp32_student", *quantized_measured(run)])
    if not models:
        return _no_scores("confusion")
    decided = decisions(run, models)
    if run.multi_label:
        body = _multilabel_confusion(run, decided)
    else:
        body = confusion_plot(run, decided)
    intro = _e("Counts per class (gold vs decision) at the shipped thresholds." if run.multi_label else
               "Rows: gold label; columns: decision at the shipped thresholds (what the app would do). "
               "Colour is the share of the row.")
    return _section("confusion", body + _unplotted_note(run), intro)


def _multilabel_confusion(run: BenchRun, decided_by_model: dict[str, np.ndarray]) -> str:
    # multi-label decisions are a 0/1 matrix, so one 2x2 per class (one-vs-rest) replaces the n x n matrix
    gold_labels, rows = gold(run), []
    for name, decided in decided_by_model.items():
        for i, label in enumerate(run.labels):
            counts = multilabel_counts(gold_labels, decided, i)
            rows.append(("", f"<td>{_e(name)}</td><td>{_e(label)}</td>" + "".join(_cell(int(c)) for c in counts)))
    return _note("Multi-label: one 2x2 per class.") + _table(["model", "class", "TP", "FP", "FN", "TN"], rows)


def _calibration_section(run: BenchRun) -> str:
    models = scored(run, ["fp32_student", "teacher"])
    if not models:
        return _no_scores("calibration")
    what = ("every (item, class) score vs whether the class is gold" if run.multi_label
            else "top-class confidence vs whether that class is the gold label")
    intro = _e(f"10 equal-width bins; {what}. ECE = expected calibration error (lower is better).")
    return _section("calibration", calibration_plot(run, models), intro)


# ---------------------------------------------------------------- parity and slices

def _parity_section(run: BenchRun) -> str:
    if not run.artifacts:
        return _section("parity", _note("This bench run lists no artifacts."))
    ref_auroc = run.bench.get("reference", {}).get("fp32_student", {}).get("accuracy_at_thresholds", {}).get("macro_auroc")
    rows = [_parity_row(name, art, ref_auroc) for name, art in run.artifacts.items()]
    headers = ["artifact", "target / scheme", "file check", "how", "items", "decision flips", "flip rate",
               "macro AUROC drop"]
    intro = _e("Measured here: the artifact ran in its own runtime on the test split. Estimated: the export "
               "stage's check of the same weights in another runtime, on its own items; see the text for which.")
    return _section("parity", _table(headers, rows), intro)


def _parity_row(name: str, art: dict, ref_auroc: float | None) -> tuple[str, str]:
    lead = (f"<td>{_e(name)}</td><td class=\"nowrap\">{_e(art.get('target', ''))} / {_e(art.get('scheme', ''))}</td>"
            f"<td>{_e(art.get('integrity', DASH))}</td>")
    if art.get("measured"):
        acc = art.get("accuracy_at_thresholds", {})
        drop = ref_auroc - acc["macro_auroc"] if ref_auroc is not None and acc.get("macro_auroc") is not None else None
        return ("", lead + f"<td>measured here</td>{_cell(acc.get('n'))}{_cell(art.get('decision_flips'))}"
                           f"{_cell(art.get('decision_flip_rate'), 4)}{_cell(_tidy(drop), 5)}")
    parity = art.get("export_parity") or {}
    if art.get("integrity") != "ok" or not parity:
        # a missing or changed file: the export-time numbers describe a different file, so none are shown
        reason = art.get("not_measured_because") or art.get("integrity")
        return ("broken", lead + f'<td colspan="5">not measured: {_e(reason)}</td>')
    agreement = parity.get("decision_agreement")
    rate = 1.0 - agreement if agreement is not None else None
    mode = art.get("parity_mode") or "export-time check"
    how = mode if mode.startswith("estimate") else f"estimated: {mode}"
    return ("unmeasured", lead + f"<td>{_e(how)}</td>{_cell(parity.get('items'))}{_cell(parity.get('decision_flips'))}"
                                 f"{_cell(rate, 4)}{_cell(_tidy(parity.get('macro_auroc_drop')), 5)}")


def _tidy(value: float | None) -> float | None:
    """Round away float noise so a zero drop prints 0.00000, not -0.00000."""
    return None if value is None else round(float(value), 5) + 0.0


def _source_section(run: BenchRun) -> str:
    rows = []
    for model, slices in run.bench.get("slices", {}).items():
        for source, s in slices.get("by_source", {}).items():
            rows.append((source, model, s))
    if not rows:
        return ""
    rows.sort(key=lambda r: r[0])  # group by source so models compare within one source
    cells = [("", f"<td>{_e(src)}</td><td>{_e(model)}</td>{_cell(s.get('items'))}{_cell(s.get('macro_f1'))}"
                  f"{_cell(s.get('violation_auc'))}") for src, model, s in rows]
    intro = _e("Violation AUC: 1 - p(benign) (or the top score) as one 'violating' score vs gold non-benign.")
    return _section("by_source", _table(["source", "model", "items", "macro-F1 @thr", "violation AUC"], cells), intro)


IDENTITY_METRICS = (("subgroup_auc", "Subgroup AUC"), ("bpsn_auc", "BPSN AUC (benign mentions vs other violations)"),
                    ("bnsp_auc", "BNSP AUC (violating mentions vs other benign)"))


def _identity_section(run: BenchRun) -> str:
    models = {m: s["identity"] for m, s in run.bench.get("slices", {}).items() if s.get("identity", {}).get("groups")}
    if not models:
        return ""
    tables = "".join(f"<div><h3>{_e(title)}</h3>{_identity_table(models, key)}</div>" for key, title in IDENTITY_METRICS)
    overall = ", ".join(f"{m} {_num(v.get('overall_auc'))}" for m, v in models.items())
    method = ((run.recipe.get("distill") or {}).get("fairness") or {}).get("method", "none")
    before = (" unmitigated_student is the same student trained without it, on the same run."
              if any(m == "unmitigated_student" for m in models) else "")
    intro = _e(f"Jigsaw unintended-bias AUCs per identity mentioned. Overall AUC: {overall}. Red: the worst gated "
               f"group per model; grey rows have too few items to be gated. Under each AUC: its 95 % bootstrap "
               f"interval (test items resampled); the gate compares the student with the teacher per slice. "
               f"Fairness mitigation of the shipped student (distill.fairness.method): {method}.{before}")
    return _section("identity", f'<div class="tables">{tables}</div>', intro)


def _out_of_domain_section(run: BenchRun) -> str:
    found = run.bench.get("out_of_domain") or {}
    rows = [("", f"<td>{_e(source)}</td><td>{_e(model)}</td>{_cell(entry.get('items'))}"
                 f"{_cell(entry[model].get('auroc'), 3)}{_cell(entry[model].get('macro_f1'), 3)}")
            for source, entry in found.items() for model in ("teacher", "unmitigated_student", "fp32_student")
            if model in entry]
    if not rows:
        return ""
    intro = _e("Violating vs not on sets from other sources: AUROC of 1 - p(benign); macro-F1 of the teacher's "
               "argmax and of the students at the shipped thresholds.")
    return _section("out_of_domain", _table(["set", "model", "items", "AUROC", "macro-F1"], rows), intro)


def _identity_table(models: dict, key: str) -> str:
    groups = list(next(iter(models.values()))["groups"])
    worst = {m: worst_group(v["groups"], key) for m, v in models.items()}
    rows = []
    for group in groups:
        first = next(iter(models.values()))["groups"][group]
        cells = f"<td>{_e(group)}</td>{_cell(first.get('items'))}"
        for model, identity in models.items():
            entry = identity["groups"].get(group, {})
            cells += _interval_cell(entry.get(key), entry.get(f"{key}_interval"), worst[model] == group)
        rows.append(("" if first.get("gated", True) else "ungated", cells))
    return _table(["group", "items", *models], rows)


def _interval_cell(value, interval, worst: bool) -> str:
    """An AUC with its bootstrap interval underneath, when the bench measured one."""
    below = f'<br><span class="small">[{_num(interval[0])}, {_num(interval[1])}]</span>' if interval else ""
    return f'<td class="{"num worst" if worst else "num"}">{_num(value, 3)}{below}</td>'


def _robustness_section(run: BenchRun) -> str:
    robustness = run.bench.get("robustness") or {}
    if not robustness:
        return ""
    models = list(robustness)
    styles = [k for k in next(iter(robustness.values())) if k != "clean_macro_f1"]
    rows = [("ref", "<td>clean</td>" + "".join(_cell(robustness[m].get("clean_macro_f1")) for m in models))]
    for style in styles:
        cells = "".join(_robust_cell(robustness[m].get(style, {})) for m in models)
        rows.append(("", f"<td>{_e(style)}</td>{cells}"))
    intro = _e("Macro-F1 on the test texts rewritten in each obfuscation style; in brackets, the share of "
               "decisions that changed vs the clean text.")
    return _section("robustness", _table(["style", *models], rows), intro)


def _robust_cell(entry: dict) -> str:
    f1, flips = entry.get("macro_f1"), entry.get("decision_flip_rate_vs_clean")
    return f'<td class="num">{_num(f1)} <span class="small">({_num(flips)})</span></td>'


def _footer(run: BenchRun) -> str:
    seconds = run.bench.get("seconds")
    export_run = run.manifest.get("details", {}).get("export_run", DASH)
    return (f'<footer><p class="small">bench took {_num(seconds, 1)} s; export run {_e(export_run)}; '
            f"recipe sha256 {_e(str(run.manifest.get('recipe_sha256', DASH))[:16])}</p></footer>")
