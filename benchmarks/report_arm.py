"""The report's ARM cost table: instructions per inference of every TFLite artifact on emulated
phone cores, and whether the ARM kernels reproduce the x86 decisions on the golden items."""
from __future__ import annotations

import html

COUNT_NOTE = ("Instructions per steady inference, 1 thread, counted under qemu-aarch64 user mode with XNNPACK: "
              "a deterministic cost proxy for phone CPUs, not milliseconds.")


def arm_section_body(bench: dict) -> str:
    """HTML for the ARM part of the latency section (a note when the counts were not taken)."""
    arm = bench.get("arm") or {}
    if not arm.get("classes"):
        reason = arm.get("not_measured_because", "ARM emulation was not set up")
        advice = f"Not measured: {reason}. Run bash scripts/setup_arm.sh, then bench again."
        return f'<h3>ARM cost</h3><p class="note">{html.escape(advice)}</p>'
    rows = []
    for device, record in arm["classes"].items():
        artifacts = record.get("artifacts", {})
        for name, entry in artifacts.items():
            rows.append(_row(device, record, name, entry, artifacts))
    head = "".join(f"<th>{h}</th>" for h in ("device class", "artifact", "M instructions / inference",
                                             "float / this", "golden items", "decisions = x86", "max |Δscore|"))
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<h3>ARM cost (emulated)</h3><p class="small">{html.escape(COUNT_NOTE)}</p>{table}'


def _row(device: str, record: dict, name: str, entry: dict, artifacts: dict) -> str:
    count = entry.get("instructions_per_inference")
    twin = entry.get("float_twin")
    ratio = (artifacts.get(twin, {}).get("instructions_per_inference") or 0) / count if twin and count else None
    golden = entry.get("golden") or {}
    cells = [f"{device} ({record.get('cpu', '')})", name, f"{count / 1e6:.3f}" if count else entry.get("error", "—"),
             f"{ratio:.2f}" if ratio else "—", golden.get("items", "—"),
             "—" if not golden else ("yes" if golden["decision_mismatches"] == 0 else f"{golden['decision_mismatches']} differ"),
             f"{golden['max_abs_score_diff']:.2g}" if golden else "—"]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
