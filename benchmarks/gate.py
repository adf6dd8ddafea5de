"""`edgemod gate`: compare a bench run with the recipe's budgets and, optionally, with the last
released version's bench; pass (exit 0) or fail (exit 1), with JSON, Markdown, JUnit XML and HTML.

Budgets apply to the artifacts the recipe ships (its `export` list); float models exported only
as references are gated when a budget names them explicitly. Latency and speed budgets hold for a
device class and are checked only against a measurement of that class (`gate_devices`): host
classes by ratios from one interleaved run (absolute milliseconds on a shared machine are noise),
emulated ARM classes by instructions per inference. Every row names the class it was measured on.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from edgemod.benchmarks.device_class import describe
from edgemod.benchmarks.gate_check import Check
from edgemod.benchmarks.gate_devices import device_checks, measured_classes, regression_checks
from edgemod.benchmarks.integrity import integrity_of
from edgemod.errors import EdgemodError
from edgemod.fsutil import write_json_atomic, write_text_atomic
from edgemod.manifest import Manifest, file_ref, read_manifest, write_manifest
from edgemod.recipe import Recipe, apply_overrides, override_section, parse_recipe

STAGE = "gate"


def run(bench_dir: Path, out: Path, baseline: Path | None = None, overrides: list[str] | None = None,
        recipe_path: Path | None = None, console=None, device_results: list[Path] | None = None) -> dict:
    """Judge the bench run at `bench_dir` (plus phone reports, `device_results`) and write the gate to `out`."""
    bench_dir, out = Path(bench_dir), Path(out)
    bench = read_manifest(bench_dir, "bench")
    recipe = _recipe(bench, recipe_path, overrides or [])
    gate = _judge(bench, recipe, baseline, device_results)
    _write(gate, bench, bench_dir, recipe, out, baseline, device_results or [])
    _print(console, gate)
    return gate


def evaluate(bench_dir: Path, baseline: Path | None = None, overrides: list[str] | None = None,
             recipe_path: Path | None = None, budgets: dict | None = None,
             device_results: list[Path] | None = None) -> dict:
    """The gate `run` would write (`gate.json`), computed in memory: nothing is written.

    Args:
        budgets: judge with these budgets (a gate manifest's recipe records the ones its gate used)
            instead of the bench run's recipe, `recipe_path` and `overrides`.

    Deterministic for the same bench folder, export files, baseline and budgets: every check reads
    recorded measurements (host timings, ARM instruction counts) or hashes files as they are now.
    `edgemod publish` uses it to refuse a gate folder whose verdict was edited by hand.
    """
    bench_dir = Path(bench_dir)
    bench = read_manifest(bench_dir, "bench")
    recipe = _recipe(bench, recipe_path, overrides or [])
    if budgets is not None:
        recipe = parse_recipe({**recipe.model_dump(mode="json"), "budgets": budgets}, "recipe with the gate's budgets")
    return _judge(bench, recipe, baseline, device_results)


def _judge(bench: Manifest, recipe: Recipe, baseline: Path | None, device_results: list[Path] | None = None) -> dict:
    from edgemod.benchmarks.device_results import load_device_results

    results = {**bench.metrics, "devices": load_device_results(device_results)}
    shipped = _shipped(recipe, results)
    checks = [*_integrity_checks(bench, results), *_size_checks(recipe, results, shipped),
              *device_checks(recipe, results, shipped, _subjects), *_parity_checks(recipe, results, shipped),
              *_accuracy_checks(recipe, results, shipped),
              *_slice_checks(recipe, results), *_tasks_checks(recipe, results, shipped)]
    if baseline is not None:
        checks += _regression_checks(recipe, results, read_manifest(baseline, "bench").metrics, shipped)
    verdict = "pass" if all(c.passed for c in checks) else "fail"
    order = {"fail": 0, "warning": 1, "not measured": 2, "pass": 3}
    return {"verdict": verdict, "recipe": recipe.name, "baseline": str(baseline) if baseline else None,
            "measured_on": {name: describe(record) for name, record in measured_classes(results).items()},
            "checks": [{**asdict(c), "status": c.status} for c in sorted(checks, key=lambda c: order[c.status])]}


def _recipe(bench: Manifest, recipe_path: Path | None, overrides: list[str]) -> Recipe:
    recipe = parse_recipe(bench.recipe, "bench run")
    if recipe_path is not None:
        from edgemod.recipe import load_recipe

        recipe = recipe.model_copy(update={"budgets": load_recipe(recipe_path).budgets})
    for override in overrides:
        if override_section(override) != "budgets":
            raise EdgemodError(f"override '{override}' is not a budget", "the gate only takes budgets.* overrides")
    return parse_recipe(apply_overrides(recipe.model_dump(mode="json"), overrides), "recipe with overrides")


def _shipped(recipe: Recipe, results: dict) -> set[str]:
    names = {f"{s.target}_{s.scheme}" for s in recipe.export}
    return names or set(results["artifacts"])


def _integrity_checks(bench: Manifest, results: dict) -> list[Check]:
    """Files as they are now, not only as they were at bench time."""
    export_dir = Path(bench.details["export_run"])
    now = integrity_of(export_dir, read_manifest(export_dir, "export")) if (export_dir / "manifest.json").exists() \
        else {name: "export run missing" for name in results["artifacts"]}
    checks = []
    for name, status in results["integrity"].items():
        current = now.get(name, "missing")
        checks.append(Check("artifact integrity", name, current, "ok", status == "ok" and current == "ok",
                            f"at bench: {status}; now: {current}"))
    return checks


def _subjects(selector: str, results: dict, shipped: set[str]) -> list[str]:
    artifacts = results["artifacts"]
    if selector in artifacts:
        return [selector]
    chosen = [n for n, a in artifacts.items() if a["target"] == selector and n in shipped]
    if not chosen:
        raise EdgemodError(f"budget names '{selector}', which is neither an artifact nor a shipped target here",
                           f"use one of: {', '.join(sorted(artifacts))}, or a target (tflite, coreml, onnx)")
    return chosen


def _size_checks(recipe: Recipe, results: dict, shipped: set[str]) -> list[Check]:
    checks = []
    for selector, limit in recipe.budgets.size_mb.items():
        for name in _subjects(selector, results, shipped):
            size = results["artifacts"][name]["size_mb"]
            checks.append(Check("size (MB)", name, size, limit, size is not None and size <= limit))
    return checks


def _agreement(artifact: dict) -> tuple[float | None, str]:
    if artifact.get("measured"):
        interval = artifact.get("decision_agreement_interval")
        how = f", 95 % interval [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
        return 1.0 - artifact["decision_flip_rate"], f"measured on the test split ({artifact['decision_flips']} flips){how}"
    parity = artifact.get("export_parity") or {}
    return parity.get("decision_agreement"), artifact.get("parity_mode", artifact.get("not_measured_because", ""))


def _quantized(results: dict, shipped: set[str]) -> list[str]:
    return [n for n, a in results["artifacts"].items() if a["quantized"] and n in shipped]


def _parity_checks(recipe: Recipe, results: dict, shipped: set[str]) -> list[Check]:
    limit = recipe.budgets.parity.min_decision_agreement
    if limit is None:
        return []
    checks = []
    for name in _quantized(results, shipped):
        value, how = _agreement(results["artifacts"][name])
        checks.append(Check("decision agreement vs fp32", name, value, limit, value is not None and value >= limit, how))
    return checks


def _tasks_checks(recipe: Recipe, results: dict, shipped: set[str]) -> list[Check]:
    """Shipped Tasks-ready artifacts: MediaPipe Tasks on raw payloads agrees with edgemod's pipeline,
    and (text) keeps its macro-F1 on obfuscated spellings with no normalizer on the device."""
    agreement, drop_limit = recipe.budgets.parity.min_tasks_decision_agreement, recipe.budgets.slices.max_obfuscation_f1_drop
    checks = []
    for name in sorted(n for n in shipped if results["artifacts"].get(n, {}).get("target") == "mediapipe"):
        measured = results.get("tasks", {}).get(name)
        if agreement is not None:
            value = None if measured is None else measured["decision_agreement_vs_edgemod"]
            how = ("MediaPipe Tasks not run on this artifact" if measured is None
                   else f"{measured['disagreements']} of {measured['items']} test items differ")
            checks.append(Check("Tasks decision agreement vs edgemod pipeline", name, value, agreement,
                                value is not None and value >= agreement, how))
        if drop_limit is not None and measured is not None and "obfuscation" in measured:
            worst = measured["obfuscation"]["worst"]
            checks.append(Check("macro-F1 drop on obfuscated text through Tasks", f"{name} / {worst['style']}",
                                worst["macro_f1_drop"], drop_limit, worst["macro_f1_drop"] <= drop_limit))
    return checks


def _macro(results: dict, name: str, metric: str) -> float | None:
    source = results["reference"].get(name) or results["artifacts"].get(name, {})
    return (source.get("accuracy_at_thresholds") or {}).get(metric)


def _accuracy_checks(recipe: Recipe, results: dict, shipped: set[str]) -> list[Check]:
    budget, checks = recipe.budgets.accuracy, []
    student, teacher = _macro(results, "fp32_student", "macro_f1"), _macro(results, "teacher", "macro_f1")
    if budget.max_macro_f1_drop_vs_teacher is not None:
        drop = round(teacher - student, 6)
        checks.append(Check("macro-F1 drop vs teacher", "fp32_student", drop, budget.max_macro_f1_drop_vs_teacher,
                            drop <= budget.max_macro_f1_drop_vs_teacher, f"teacher {teacher}, student {student}"))
    if budget.min_macro_f1 is not None:
        for name in ["fp32_student", *(n for n in shipped if results["artifacts"].get(n, {}).get("measured"))]:
            value = _macro(results, name, "macro_f1")
            checks.append(Check("macro-F1 at thresholds", name, value, budget.min_macro_f1, value >= budget.min_macro_f1))
    if budget.max_auc_drop_int8 is not None:
        reference = _macro(results, "fp32_student", "macro_auroc")
        for name in _quantized(results, shipped):
            artifact = results["artifacts"][name]
            value = _macro(results, name, "macro_auroc")
            parity_drop = (artifact.get("export_parity") or {}).get("macro_auroc_drop")
            drop = round(reference - value, 6) if value is not None else parity_drop
            checks.append(Check("macro-AUROC drop vs fp32", name, drop, budget.max_auc_drop_int8,
                                drop is not None and drop <= budget.max_auc_drop_int8,
                                "" if value is not None else artifact.get("parity_mode", "")))
    return checks + _out_of_domain_checks(recipe, results)


def _out_of_domain_checks(recipe: Recipe, results: dict) -> list[Check]:
    limit = recipe.budgets.accuracy.min_out_of_domain_auroc_vs_teacher
    if limit is None:
        return []
    found = results.get("out_of_domain") or {}
    if not found:  # asked for, never measured: that fails, it does not pass by omission
        return [Check("out-of-domain AUROC vs teacher", "fp32_student", None, limit, False,
                      "no data.out_of_domain set was scored: add one to the recipe and re-run label")]
    return [Check("out-of-domain AUROC vs teacher", f"fp32_student / {source}", entry["student_auroc_vs_teacher"], limit,
                  entry["student_auroc_vs_teacher"] >= limit,
                  f"teacher {entry['teacher']['auroc']}, student {entry['fp32_student']['auroc']}")
            for source, entry in found.items()]


def _slice_checks(recipe: Recipe, results: dict) -> list[Check]:
    from edgemod.benchmarks.gate_slices import slice_checks

    return slice_checks(recipe, results)


def _regression_checks(recipe: Recipe, results: dict, previous: dict, shipped: set[str]) -> list[Check]:
    budget, checks = recipe.budgets.regression, []
    for name in sorted(shipped & set(previous["artifacts"]) & set(results["artifacts"])):
        now, before = results["artifacts"][name], previous["artifacts"][name]
        if now.get("size_mb") and before.get("size_mb"):
            growth = round(now["size_mb"] / before["size_mb"] - 1, 4)
            checks.append(Check("size increase vs baseline", name, growth, budget.max_size_increase,
                                growth <= budget.max_size_increase))
        f1_now, f1_before = _macro(results, name, "macro_f1"), _macro(previous, name, "macro_f1")
        if f1_now is not None and f1_before is not None:
            drop = round(f1_before - f1_now, 6)
            checks.append(Check("macro-F1 drop vs baseline", name, drop, budget.max_macro_f1_drop,
                                drop <= budget.max_macro_f1_drop))
        checks += regression_checks(recipe, results, previous, name)
    return checks


def _write(gate: dict, bench: Manifest, bench_dir: Path, recipe: Recipe, out: Path, baseline: Path | None,
           device_results: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "gate.json", gate)
    write_text_atomic(out / "gate.md", markdown(gate))
    write_text_atomic(out / "junit.xml", junit_xml(gate))
    files = ["gate.json", "gate.md", "junit.xml"]
    try:
        from edgemod.benchmarks.report import write_report
    except ImportError:  # the report module is optional for gating
        write_report = None
    if write_report is not None:
        write_report(bench_dir, gate, out / "report.html")
        files.append("report.html")
    manifest = Manifest(stage=STAGE, name=recipe.name, recipe=recipe.model_dump(mode="json"),
                        recipe_sha256=recipe.fingerprint(),
                        inputs={"bench": file_ref(bench_dir / "manifest.json"),
                                **{f"device_result:{i}": file_ref(p) for i, p in enumerate(device_results)}},
                        artifacts={f: file_ref(out / f, out) for f in files},
                        metrics={"verdict": gate["verdict"], "failed": sum(not c["passed"] for c in gate["checks"]),
                                 "checks": len(gate["checks"])},
                        # resolved, so `edgemod publish` can re-run the checks from any folder
                        details={"bench_run": str(bench_dir.resolve()),
                                 "baseline": str(Path(baseline).resolve()) if baseline else None,
                                 "device_results": [str(Path(p).resolve()) for p in device_results]})
    write_manifest(out, manifest)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(gate: dict) -> str:
    lines = [f"# Gate: {gate['recipe']} — **{gate['verdict'].upper()}**", ""]
    if gate["baseline"]:
        lines += [f"Baseline: `{gate['baseline']}`", ""]
    if gate.get("measured_on"):
        lines += ["Measured on:", *[f"- `{name}`: {how}" for name, how in gate["measured_on"].items()], ""]
    lines += ["| | check | subject | measured on | value | budget | detail |", "|---|---|---|---|---|---|---|"]
    for c in gate["checks"]:
        lines.append(f"| {ICONS[_status(c)]} | {c['name']} | {c['subject']} | {c.get('device') or ''} | "
                     f"{_fmt(c['value'])} | {_fmt(c['budget'])} | {c['detail']} |")
    return "\n".join(lines) + "\n"


ICONS = {"pass": "✅", "fail": "❌", "warning": "⚠️ warning", "not measured": "⏭ not measured"}


def _status(check: dict) -> str:
    return check.get("status") or ("pass" if check["passed"] else "fail")


def junit_xml(gate: dict) -> str:
    from xml.sax.saxutils import escape, quoteattr

    failures = sum(_status(c) == "fail" for c in gate["checks"])
    cases = []
    for c in gate["checks"]:
        on = f" on {c['device']}" if c.get("device") else ""
        name = quoteattr(f"{c['name']} [{c['subject']}]{on}")
        message = quoteattr(f"{_fmt(c['value'])} vs budget {_fmt(c['budget'])}")
        body = {"fail": f"<failure message={message}>{escape(c['detail'])}</failure>",
                "not measured": f"<skipped message={quoteattr('not measured: ' + c['detail'])}/>",
                "warning": f"<system-out>{escape('warning: ' + c['detail'])}</system-out>"}.get(_status(c), "")
        cases.append(f'  <testcase classname="edgemod.gate" name={name}>{body}</testcase>')
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name={quoteattr("edgemod gate " + gate["recipe"])} '
            f'tests="{len(gate["checks"])}" failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def _print(console, gate: dict) -> None:
    if console is None:
        return
    from rich.table import Table

    colour = "green" if gate["verdict"] == "pass" else "red"
    table = Table(title=f"gate {gate['recipe']}: [{colour}]{gate['verdict'].upper()}[/]")
    for column in ("", "check", "subject", "on", "value", "budget", "detail"):
        table.add_column(column)
    shown = {"pass": "[green]ok[/]", "fail": "[red]FAIL[/]", "warning": "[yellow]warn[/]", "not measured": "[dim]not measured[/]"}
    for c in gate["checks"]:
        table.add_row(shown[_status(c)], c["name"], c["subject"], c.get("device") or "", _fmt(c["value"]),
                      _fmt(c["budget"]), c["detail"])
    console.print(table)
