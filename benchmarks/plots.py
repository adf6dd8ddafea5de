"""The bench report's figures, drawn with matplotlib's object API on an Agg canvas (no pyplot
state, no display) and returned as inline PNG `<img>` tags, so the page stays one offline file."""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from edgemod.benchmarks.report_metrics import (
    BenchRun,
    confidence,
    confusion,
    gold,
    one_vs_rest,
    pr_curve,
    probs,
    reliability,
    threshold_point,
)

ARTIFACT_COLOURS = ("#e36209", "#1a7f37", "#8250df", "#bf3989", "#9a6700", "#0598bc")


def line_style(name: str, index: int = 0) -> dict:
    """fp32 student blue and bold, teacher grey dashed, artifacts in colours that differ from both."""
    if name == "fp32_student":
        return {"color": "#0969da", "linewidth": 2.0}
    if name == "teacher":
        return {"color": "#6e7781", "linewidth": 1.5, "linestyle": "--"}
    return {"color": ARTIFACT_COLOURS[index % len(ARTIFACT_COLOURS)], "linewidth": 1.2, "alpha": 0.9}


def _png(fig, alt: str) -> str:
    """The figure as an inline PNG <img>; Agg canvas so no display or pyplot state is involved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">'


def _figure(n_panels: int, width: float = 4.3, height: float = 3.6, max_cols: int = 3):
    from matplotlib.figure import Figure

    cols = max(1, min(max_cols, n_panels))
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


# ---------------------------------------------------------------- latency

def latency_plot(run: BenchRun, names: list[str]) -> str:
    """Box plots of the per-call latency samples of `names`, 1 and 2 threads side by side."""
    fig, axes = _figure(2, width=6.0, height=0.4 * len(names) + 1.2, max_cols=2)
    axes[1].sharex(axes[0])  # one scale for both thread counts so they compare by eye
    for ax, threads in zip(axes, ("1", "2")):
        data = [np.asarray(run.samples[n].get(threads, []) or [np.nan], dtype=float) for n in names]
        ax.boxplot(data, orientation="horizontal", whis=(1, 99), widths=0.6,
                   flierprops={"markersize": 2, "alpha": 0.4}, medianprops={"color": "#cf222e"})
        ax.set_yticks(range(1, len(names) + 1), names if threads == "1" else [""] * len(names))
        _plain_log_axis(ax)
        ax.set_xlabel("ms per call")
        ax.set_title(f"{threads} thread{'s' if threads != '1' else ''}")
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.invert_yaxis()
    return _png(fig, "latency distribution per model, 1 and 2 threads")


def _plain_log_axis(ax) -> None:
    """Log scale labelled 0.1, 0.2, 0.5, 1 ... (matplotlib's default 3x10^-1 minor labels overlap)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([m * 10.0 ** e for e in range(-3, 5) for m in (1, 2, 5)]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


# ---------------------------------------------------------------- precision-recall

def pr_plot(run: BenchRun, models: list[str], classes: list[str]) -> str:
    """One precision-recall panel per class in `classes`, a curve per model."""
    fig, axes = _figure(len(classes))
    gold_labels = gold(run)
    for ax, label in zip(axes, classes):
        _pr_panel(ax, run, models, gold_labels, label)
    return _png(fig, "precision-recall curves per class")


def _pr_panel(ax, run: BenchRun, models: list[str], gold_labels: np.ndarray, label: str) -> None:
    i = run.labels.index(label)
    positive = one_vs_rest(run, gold_labels, i)
    ax.set_title(label)
    if positive.sum() == 0:
        ax.text(0.5, 0.5, "no positives in test", ha="center", transform=ax.transAxes)
        return
    for k, name in enumerate(models):
        precision, recall, ap = pr_curve(positive, probs(run, name)[:, i])
        ax.plot(recall, precision, **line_style(name, k - 2), label=f"{name} AP {ap:.3f}")
    point = threshold_point(run, positive, label, i)
    if point is not None:
        threshold, precision, recall = point
        ax.plot([recall], [precision], marker="*", markersize=14, color="#cf222e", linestyle="none",
                label=f"threshold {threshold:.3g}: P {precision:.2f} R {recall:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


# ---------------------------------------------------------------- confusion

def confusion_plot(run: BenchRun, decisions: dict[str, np.ndarray]) -> str:
    """One gold-vs-decision heat map per model, coloured by the share of the row."""
    gold_labels = gold(run)
    n = len(run.labels)
    fig, axes = _figure(len(decisions), width=0.55 * n + 1.9, height=0.5 * n + 1.6)
    for ax, (name, decided) in zip(axes, decisions.items()):
        matrix = confusion(gold_labels, decided, n)
        _heatmap(ax, matrix, run.labels)
        ax.set_title(f"{name}\naccuracy {np.trace(matrix) / max(matrix.sum(), 1):.3f}", fontsize=10)
    return _png(fig, "confusion matrices at the shipped thresholds")


def _heatmap(ax, matrix: np.ndarray, labels: list[str]) -> None:
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (r, c), count in np.ndenumerate(matrix):
        ax.text(c, r, str(count), ha="center", va="center", fontsize=9,
                color="white" if share[r, c] > 0.6 else "black")
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("decision")
    ax.set_ylabel("gold")


# ---------------------------------------------------------------- calibration

def calibration_plot(run: BenchRun, models: list[str]) -> str:
    """A reliability diagram (accuracy vs confidence, ECE in the legend) over a histogram of items per bin."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 5.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="#8c959f", linestyle=":", label="perfect calibration")
    for name in models:
        _reliability_lines(top, bottom, name, *confidence(run, name))
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.set(xlabel="confidence", ylabel="items")
    return _png(fig, "reliability diagram")


def _reliability_lines(top, bottom, name: str, confidence_values: np.ndarray, correct: np.ndarray) -> None:
    bins = reliability(confidence_values, correct)
    style = line_style(name)
    top.plot(bins.mean_confidence, bins.accuracy, marker="o", **style, label=f"{name} ECE {bins.ece:.3f}")
    offset = -0.02 if name == "fp32_student" else 0.02  # side by side so both histograms stay visible
    bottom.bar(bins.edges[:-1] + 0.05 + offset, bins.counts, width=0.04, color=style["color"], alpha=0.8)
