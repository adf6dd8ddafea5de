"""`edgemod run`: recipe in, verified release out. Runs label -> train -> export -> bench -> gate
-> publish, each in its own folder under the run folder. Every stage skips itself when its inputs'
hashes match a finished run, so a re-run does no work, an interrupted run resumes where it
stopped, and a budget change re-runs only the gate (and publish)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgemod.errors import EdgemodError, unknown_choice
from edgemod.recipe import load_recipe, override_section, split_overrides

STAGES = ("label", "train", "export", "bench", "gate", "publish")


@dataclass
class StageResult:
    stage: str
    seconds: float
    did_work: bool
    folder: Path
    summary: str = ""


@dataclass
class PipelineRun:
    recipe_path: Path
    out: Path
    overrides: list[str] = field(default_factory=list)
    registry: str | None = None
    results: list[StageResult] = field(default_factory=list)
    gate: dict | None = None
    release: str | None = None


def stage_range(start: str | None, until: str | None) -> list[str]:
    for name in (start, until):
        if name is not None and name not in STAGES:
            raise unknown_choice("stage", name, STAGES)
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    if first > last:
        raise EdgemodError(f"--from {start} comes after --until {until}", f"stages run in this order: {' -> '.join(STAGES)}")
    return list(STAGES[first:last + 1])


def run(recipe_path: Path, out: Path, overrides: list[str] | None = None, start: str | None = None,
        until: str | None = None, registry: str | None = None, console=None,
        on_stage: Callable[[str, str], None] | None = None) -> PipelineRun:
    """Run the stages from `start` to `until` (all by default) for the recipe at `recipe_path`."""
    state = PipelineRun(Path(recipe_path), Path(out), list(overrides or []), registry)
    recipe = load_recipe(recipe_path, state.overrides)  # fail fast on a broken recipe
    for stage in stage_range(start, until):
        if stage != "label":
            _needs_upstream(state, stage)
        if on_stage:
            on_stage(stage, "start")
        started = time.perf_counter()
        folder = state.out / stage
        before = _created_at(folder)
        summary = STAGE_RUNNERS[stage](state, recipe, folder, console)
        did_work = _created_at(folder) != before or stage == "gate"
        state.results.append(StageResult(stage, round(time.perf_counter() - started, 1), did_work, folder, summary or ""))
        if on_stage:
            on_stage(stage, "done")
        if stage == "gate" and state.gate and state.gate["verdict"] != "pass":
            break
    return state


def _needs_upstream(state: PipelineRun, stage: str) -> None:
    upstream = STAGES[STAGES.index(stage) - 1]
    if not (state.out / upstream / "manifest.json").exists():
        raise EdgemodError(f"cannot start at {stage}: {state.out / upstream} has no finished {upstream} run",
                           f"run from an earlier stage: `edgemod run {state.recipe_path} --from {upstream}`")


def _created_at(folder: Path) -> str | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    import json

    return json.loads(path.read_text()).get("created_at")


def _label(state, recipe, folder, console) -> str:
    from edgemod.training import label

    manifest = label.run(recipe, folder, console=console)
    return f"{manifest.metrics.get('items', '?')} items labelled"


def _train(state, recipe, folder, console) -> str:
    from edgemod.training import train

    training, _ = split_overrides(state.overrides)
    manifest = train.run(state.out / "label", folder, training, console=console)
    test = manifest.metrics.get("test", {})
    student, teacher = test.get("student", {}), test.get("teacher", {})
    return f"test macro-F1 student {student.get('macro_f1', '?')} vs teacher {teacher.get('macro_f1', '?')}"


def _export(state, recipe, folder, console) -> str:
    from edgemod.export import stage

    training, post_training = split_overrides(state.overrides)
    manifest = stage.run(state.out / "train", folder, post_training, console=console, recipe_path=state.recipe_path,
                         recipe_overrides=training)
    return f"{len(manifest.details['artifacts'])} artifacts"


def _bench(state, recipe, folder, console) -> str:
    from edgemod.benchmarks import bench

    manifest = bench.run(state.out / "export", folder, console=console)
    return f"{len(manifest.metrics['artifacts'])} artifacts benched in {manifest.metrics['seconds']} s"


def _gate(state, recipe, folder, console) -> str:
    from edgemod.benchmarks import gate

    budgets = [o for o in state.overrides if override_section(o) == "budgets"]
    state.gate = gate.run(state.out / "bench", folder, overrides=budgets, recipe_path=state.recipe_path, console=console)
    failed = [c for c in state.gate["checks"] if not c["passed"]]
    return f"{state.gate['verdict'].upper()} ({len(state.gate['checks']) - len(failed)}/{len(state.gate['checks'])} checks)"


def _publish(state, recipe, folder, console) -> str:
    from edgemod.pipeline_publish import publish_run

    state.release = publish_run(state, recipe, folder, console)
    return state.release or ""


STAGE_RUNNERS = {"label": _label, "train": _train, "export": _export, "bench": _bench, "gate": _gate,
                 "publish": _publish}


def write_run_report(run_dir: Path) -> Path:
    """One HTML page for a run folder: the gate's report plus stage timings, data and teacher vs student."""
    import json

    from edgemod.benchmarks.report import write_report

    run_dir = Path(run_dir)
    if not (run_dir / "bench" / "manifest.json").exists():
        raise EdgemodError(f"{run_dir} has no finished bench stage to report on",
                           f"run `edgemod run RECIPE --out {run_dir}` (at least up to bench) first")
    gate_file = run_dir / "gate" / "gate.json"
    gate = json.loads(gate_file.read_text()) if gate_file.exists() else None
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    pipeline = {"stages": record.get("stages", []), "items_by_role": _manifest_metric(run_dir / "label", "items_by_role"),
                "train": _teacher_vs_student(run_dir / "train")}
    return write_report(run_dir / "bench", gate, run_dir / "report.html", pipeline)


def _manifest_metric(folder: Path, key: str):
    import json

    path = folder / "manifest.json"
    return json.loads(path.read_text())["metrics"].get(key) if path.exists() else None


def _teacher_vs_student(train_dir: Path) -> dict:
    test = _manifest_metric(train_dir, "test") or {}
    out = {}
    for who in ("teacher", "student"):
        if who in test:
            out[who] = {"macro_f1": test[who].get("macro_f1"), "macro_auroc": test[who].get("macro_auroc"),
                        "parameters": _manifest_metric(train_dir, f"{who}_parameters")}
    return out


def record_run(state: PipelineRun) -> Path:
    """run.json: what each stage did this time, the verdict and where the release went."""
    from edgemod.fsutil import write_json_atomic

    return write_json_atomic(state.out / "run.json", {
        "recipe": str(state.recipe_path), "stages": [{"stage": r.stage, "seconds": r.seconds, "did_work": r.did_work,
                                                      "summary": r.summary} for r in state.results],
        "verdict": state.gate["verdict"] if state.gate else None, "release": state.release})
