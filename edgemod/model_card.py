"""The model card of a release (Markdown), generated from the release manifest and the bench results.

Everything here is derived: the numbers are the ones the gate judged, and the limits section says
which checks were estimates rather than measurements, so a reader never has to trust prose.
"""
from __future__ import annotations

from typing import Any


def render_model_card(release: dict[str, Any], bench: dict[str, Any]) -> str:
    """Markdown model card: intended use, labels, data, metrics vs teacher, slices, gate, known limits."""
    sections = [_header(release), _intended_use(release), _labels(release), _platforms(release), _data(release),
                _metrics(release), _slices(bench), _gate(release), _limits(release, bench), _provenance(release)]
    return "\n\n".join(s for s in sections if s) + "\n"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _header(release: dict) -> str:
    teachers = ", ".join(f"{t.get('name') or t['kind']} ({t['kind']})" for t in release.get("teachers", [])) or "gold labels only"
    student = release.get("student", {})
    return (f"# Model card: {release['name']} {release['version']}\n\n"
            f"A {release.get('task', 'classification')} student (`{student.get('arch', '?')}`) distilled from {teachers}, "
            f"for {', '.join(release['platforms'])}. Published {release['created_at']} by {release['published_by']}; "
            f"gate **{release['gate']['verdict'].upper()}**.")


def _intended_use(release: dict) -> str:
    labels, benign = release["labels"], release["thresholds"].get("benign")
    harmful = [label for label in labels if label != benign]
    kind = "images" if release.get("task") == "image-classification" else "text"
    return ("## Intended use\n\n"
            f"- On-device screening of user {kind} for {', '.join(harmful)}"
            f"{f' (benign class: {benign})' if benign else ''}: warn or add friction before posting, prioritise "
            "items for human review, keep obviously benign content off the server path.\n"
            "- Decisions use the shipped per-class thresholds: a non-benign class fires when its score reaches its "
            "threshold; the highest firing class wins, else the benign class.\n"
            "- Not intended as the sole basis of enforcement against a person (suspensions, reports to authorities): "
            "pair it with server-side review. Not validated outside the data listed below (other languages, "
            "platforms, time periods).")


def _labels(release: dict) -> str:
    per_class = release["thresholds"].get("per_class", {})
    benign = release["thresholds"].get("benign")
    rows = [[label, "benign" if label == benign else "", (per_class.get(label) or {}).get("threshold"),
             (per_class.get(label) or {}).get("target_met_on_validation")] for label in release["labels"]]
    return (f"## Labels and thresholds\n\nThreshold policy: `{release['thresholds'].get('policy')}`.\n\n"
            + _table(["label", "role", "threshold", "target met on validation"], rows))


def _platforms(release: dict) -> str:
    rows = []
    for name, artifact in release["artifacts"].items():
        files = artifact.get("release_files", {})
        rows.append([artifact["platform"], name, artifact.get("scheme"), artifact.get("size_mb"),
                     files.get("model"), artifact.get("golden_items")])
    return "## Platforms\n\n" + _table(["platform", "artifact", "scheme", "size (MB)", "file", "golden vectors"], rows)


def _data(release: dict) -> str:
    data = release.get("data", {})
    lines = ["## Data", ""]
    for split in ("train", "validation", "test", "calibration"):
        if data.get(split):
            lines.append(f"- {split}: `{data[split]}`")
    if data.get("transfer"):
        lines.append(f"- transfer (unlabelled, teacher soft labels only): {', '.join(f'`{t}`' for t in data['transfer'])}")
    if data.get("max_items_per_split"):
        lines.append(f"- capped at {data['max_items_per_split']} items per split (a smoke-size run)")
    if release.get("data_sources"):
        rows = [[s["dataset"], ", ".join(s["roles"]), s["license"],
                 {True: "yes", False: "**no**", None: "not stated"}[s["ship_models"]] if s["trained_on"] else "(evaluation only)",
                 s["ship_note"] or "–"] for s in release["data_sources"]]
        lines += ["", "Sources and licences (datasets.yaml):", "",
                  _table(["dataset", "used as", "licence", "models may be redistributed", "conditions"], rows)]
    if release.get("weight_sources"):
        rows = [[w["part"], w["weights"], w["package"], w["license"]] for w in release["weight_sources"]]
        lines += ["", "Pretrained weights in the shipped model:", "", _table(["part", "weights", "package", "licence"], rows)]
    if release.get("teachers"):
        lines += ["", "Teachers only label the training data; none of their weights ship."]
    teachers = [[t.get("name"), t["kind"], t.get("weight"), t.get("identity")] for t in release.get("teachers", [])]
    if teachers:
        lines += ["", "Teachers:", "", _table(["name", "kind", "weight", "identity"], teachers)]
    backbones = [(who, weights) for who, weights in
                 [("student", release.get("student", {}).get("pretrained")),
                  *((f"teacher {t.get('name') or t['kind']}", t.get("pretrained")) for t in release.get("teachers", []))]
                 if weights]
    if backbones:
        rows = [[who, w["name"], f"{w['package']} {w['version']}", w["license"], f"`{(w.get('sha256') or '–')[:16]}`"]
                for who, w in backbones]
        lines += ["", "Pretrained weights:", "", _table(["model", "weights", "package", "licence", "sha256"], rows)]
    return "\n".join(lines)


def _metrics(release: dict) -> str:
    metrics = release["metrics"]
    rows = []
    for name in ("teacher", "fp32_student"):
        ref = metrics["reference"].get(name)
        if ref:
            rows.append([name, ref.get("macro_f1"), ref.get("accuracy"), ref.get("macro_auroc"), "", "", "measured"])
    for name, artifact in metrics["artifacts"].items():
        acc = artifact.get("accuracy_at_thresholds") or {}
        rows.append([name, acc.get("macro_f1"), acc.get("accuracy"), acc.get("macro_auroc"),
                     artifact.get("decision_agreement_vs_fp32"), artifact.get("p50_ms_1thread"), artifact.get("parity_mode")])
    n = (metrics["reference"].get("fp32_student") or {}).get("n")
    device = metrics.get("latency_device_class", "host")
    return (f"## Metrics vs teacher\n\nTest split{f' ({n} items)' if n else ''}, at the shipped thresholds. "
            f"Latency is p50 on the publishing machine's CPU, device class {device} (one thread), not on a phone."
            + _arm_note(metrics) + "\n\n"
            + _table(["model", "macro-F1", "accuracy", "macro-AUROC", "decision agreement vs fp32",
                      f"p50 ms ({device})", "how"], rows))


def _arm_note(metrics: dict) -> str:
    counts = [f"{name} {device} {count / 1e6:.2f} M" for name, artifact in metrics["artifacts"].items()
              for device, count in (artifact.get("arm_instructions_per_inference") or {}).items() if count]
    if not counts:
        return ""
    return (" Instructions per inference on emulated phone cores (qemu-aarch64, 1 thread; a cost proxy, not ms): "
            + "; ".join(counts) + ".")


def _slices(bench: dict) -> str:
    student = bench.get("slices", {}).get("fp32_student", {})
    parts = ["## Slices (fp32 student, test split)"]
    if student.get("by_source"):
        rows = [[s, v.get("items"), v.get("macro_f1"), v.get("violation_auc")] for s, v in student["by_source"].items()]
        parts.append("By source:\n\n" + _table(["source", "items", "macro-F1", "violation AUC"], rows))
    identity = student.get("identity")
    if identity:
        rows = [[g, v["items"], "yes" if v["gated"] else "no (too few items)", v.get("subgroup_auc"), v.get("bpsn_auc"),
                 v.get("bnsp_auc")] for g, v in identity["groups"].items()]
        parts.append(f"Identity terms (overall violation AUC {_fmt(identity.get('overall_auc'))}):\n\n"
                     + _table(["group", "items", "gated", "subgroup AUC", "BPSN AUC", "BNSP AUC"], rows))
    robustness = bench.get("robustness", {}).get("fp32_student")
    if robustness:
        rows = [[style, v["macro_f1"], v.get("decision_flip_rate_vs_clean")]
                for style, v in robustness.items() if isinstance(v, dict)]
        parts.append(f"Obfuscated text (clean macro-F1 {_fmt(robustness.get('clean_macro_f1'))}):\n\n"
                     + _table(["style", "macro-F1", "decisions flipped vs clean"], rows))
    return "\n\n".join(parts) if len(parts) > 1 else ""


def _gate(release: dict) -> str:
    gate = release["gate"]
    rows = [["ok" if c["passed"] else "FAIL", c["name"], c["subject"], c["value"], c["budget"]] for c in gate["checks"]]
    baseline = f" Baseline: `{gate['baseline']}`." if gate.get("baseline") else ""
    return f"## Gate: {gate['verdict'].upper()}\n\n{len(gate['checks'])} checks.{baseline}\n\n" + _table(
        ["", "check", "subject", "value", "budget"], rows)


def _limits(release: dict, bench: dict) -> str:
    lines = ["## Known limits", ""]
    estimates = [c for c in release["gate"]["checks"] if str(c.get("detail", "")).startswith("estimate")]
    for check in estimates:
        lines.append(f"- **Estimate, not measured:** {check['name']} for {check['subject']}: {check['detail']}.")
    unmeasured = [n for n, a in release["metrics"]["artifacts"].items() if not a.get("measured")]
    if unmeasured:
        lines.append(f"- Accuracy and latency of {', '.join(unmeasured)} were not measured in their runtime here; "
                     "run the mobile harness (golden vectors) on a device before relying on them.")
    identity = bench.get("slices", {}).get("fp32_student", {}).get("identity")
    if identity:
        small = [g for g, v in identity["groups"].items() if not v["gated"]]
        scored = {g: v["subgroup_auc"] for g, v in identity["groups"].items() if v.get("subgroup_auc") is not None}
        gated = {g: auc for g, auc in scored.items() if identity["groups"][g]["gated"]}
        if gated:  # small groups' AUCs are noise: naming one "weakest" would mislead
            worst = min(gated, key=gated.get)
            lines.append(f"- Weakest identity subgroup: {worst} (subgroup AUC {_fmt(gated[worst])} vs overall "
                         f"{_fmt(identity.get('overall_auc'))}).")
        if small:
            lines.append(f"- Too few test items to gate: {', '.join(small)}; their numbers are noisy.")
    robustness = bench.get("robustness", {}).get("fp32_student")
    if robustness:
        styles = {k: v["macro_f1"] for k, v in robustness.items() if isinstance(v, dict)}
        worst = min(styles, key=styles.get) if styles else None
        if worst and styles[worst] < robustness.get("clean_macro_f1", 0):
            lines.append(f"- Obfuscation hurts most with {worst}: macro-F1 {_fmt(styles[worst])} vs "
                         f"{_fmt(robustness.get('clean_macro_f1'))} clean.")
    lines += [f"- Not gated (no budget in the recipe): {what}." for what in _ungated(release.get("budgets", {}))]
    lines.append("- Latency figures come from the publishing machine's CPU; phone latency differs "
                 "(see the mobile harness).")
    return "\n".join(lines)


def _ungated(budgets: dict) -> list[str]:
    """Measured-but-unbudgeted properties: the gate's PASS says nothing about them."""
    unset = []
    slices, accuracy = budgets.get("slices", {}), budgets.get("accuracy", {})
    if slices.get("max_auc_drop_vs_teacher") is None:
        unset.append("identity-slice AUCs against the teacher (reported above, not judged)")
    if slices.get("max_counterfactual_shift") is None:
        unset.append("score shift when a post names another identity group (counterfactual)")
    if slices.get("max_obfuscation_f1_drop") is None:
        unset.append("macro-F1 drop on obfuscated text")
    devices = budgets.get("devices") or {}
    if not any(d.get("latency_ms") or d.get("min_quantized_speedup_vs_float") or d.get("min_speedup_vs_torch_eager")
               or d.get("max_instructions_m") for d in devices.values()):
        unset.append("latency and speed (no device class has a budget)")
    if all(accuracy.get(k) is None for k in ("min_macro_f1", "max_macro_f1_drop_vs_teacher")):
        unset.append("accuracy")
    return unset


def _provenance(release: dict) -> str:
    sources = release["sources"]
    commits = ", ".join(f"{k} `{(v or 'unknown')[:12]}`" for k, v in release["git_commit"].items())
    tools = ", ".join(f"{k} {v}" for k, v in sorted(release.get("tool_versions", {}).items()))
    return ("## Provenance\n\n"
            f"- git: {commits}\n- recipe sha256: `{sources['recipe_sha256'][:16]}`\n"
            f"- gate / bench / export manifests sha256: `{sources['gate']['manifest_sha256'][:16]}` / "
            f"`{sources['bench']['manifest_sha256'][:16]}` / `{sources['export']['manifest_sha256'][:16]}`\n"
            f"- tools: {tools}\n- every file's sha256 is in `release.json`, signed in `release.sig` (ed25519).")
