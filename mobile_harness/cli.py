"""`edgemod harness ...`: run artifacts the way phones do, and drive real phones.

Mounted by edgemod/cli.py with `app.add_typer(harness_app, name="harness")`. As everywhere in
the CLI, commands only parse flags, build the config and call the module that does the work;
user errors are EdgemodError (edgemod.cli.main prints the problem and the fix).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

harness_app = typer.Typer(help="Check artifacts as a phone runs them: golden vectors, live streams, real devices.",
                          no_args_is_help=True)
console = Console(stderr=True)
if not console.is_terminal:  # logs and CI: wide enough that result tables are not truncated
    console.width = max(console.width, 140)

ExportDir = Annotated[Path, typer.Argument(help="folder written by `edgemod export`")]
ArtifactOption = Annotated[str, typer.Option("--artifact", "-a", help="artifact name, e.g. tflite_int8_dynamic")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the commands instead of running them")]
SerialOption = Annotated[str | None, typer.Option(help="adb serial; default: the only attached phone")]
AdbOption = Annotated[str, typer.Option(help="adb executable")]


class Parallelism(str, Enum):
    instances = "instances"
    intra_op = "intra_op"


class DropPolicy(str, Enum):
    drop_oldest = "drop_oldest"
    drop_new = "drop_new"


class ComputeUnits(str, Enum):
    cpuOnly = "cpuOnly"
    cpuAndGPU = "cpuAndGPU"
    cpuAndNeuralEngine = "cpuAndNeuralEngine"
    all = "all"


ReportOption = Annotated[Path | None, typer.Option("--report", help="also write the full report as JSON here")]


@harness_app.command("golden")
def golden(
    export_dir: ExportDir,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", "-a", help="repeatable; default: all")] = None,
    threads: Annotated[int, typer.Option(min=1, help="runtime threads, as the app sets them")] = 1,
    report: ReportOption = None,
) -> None:
    """Replay the golden vectors from raw payloads, as a phone would; exit code 1 on failure.

    Rebuilds every item's inputs with the export folder's own tokenizer / preprocess.json, runs
    the artifact in its runtime and compares inputs, scores and decisions.
    """
    from edgemod.mobile_harness.golden_check import check_export

    results = check_export(export_dir, artifact, threads)
    _golden_table(results, threads)
    _write(report, results)
    if any(r["passed"] is False for r in results):
        raise typer.Exit(1)


@harness_app.command("stream")
def stream(
    export_dir: ExportDir,
    artifact: ArtifactOption,
    rate: Annotated[float, typer.Option(help="messages/s (text) or frames/s (images)")] = 20.0,
    seconds: float = 5.0,
    threads: Annotated[int, typer.Option(help="thread budget")] = 1,
    parallelism: Annotated[Parallelism, typer.Option(help="instances: THREADS interpreters x 1 thread; "
                                                          "intra_op: 1 interpreter x THREADS threads")] = Parallelism.instances,
    max_queue: int = 32,
    drop_policy: Annotated[DropPolicy, typer.Option(
        help="drop_oldest keeps frames fresh; drop_new keeps order")] = DropPolicy.drop_oldest,
    budget_ms: Annotated[float, typer.Option(help="keeps up = no drops and p95 queueing delay below this")] = 50.0,
    payloads: Annotated[Path | None, typer.Option(help="file with one text or image path per line; "
                                                          "default: the golden payloads")] = None,
    report: ReportOption = None,
) -> None:
    """Replay a live feed in real time through the artifact; exit code 1 if it does not keep up."""
    from edgemod.mobile_harness.stream import StreamConfig, replay

    config = StreamConfig(rate=rate, seconds=seconds, threads=threads, parallelism=parallelism.value,
                          max_queue=max_queue, drop_policy=drop_policy.value, budget_ms=budget_ms)
    items = [line for line in payloads.read_text(encoding="utf-8").splitlines() if line.strip()] if payloads else None
    result = replay(export_dir, artifact, config, items)
    _stream_table(result)
    _write(report, result)
    if not result["keeps_up"]:
        raise typer.Exit(1)


def _echo_plan(steps) -> None:
    """--dry-run: each command a device run would execute, with why."""
    for step in steps:
        typer.echo(f"# {step.purpose}\n{step}")


def _echo_android_plan(export_dir: Path, artifact: str, plan) -> None:
    """--dry-run of an adb command: `plan(model, golden_file)` gives its steps for the artifact's files."""
    from edgemod.mobile_harness.android import tflite_artifact

    _echo_plan(plan(*tflite_artifact(export_dir, artifact)))


@harness_app.command("android-bench")
def android_bench(
    export_dir: ExportDir,
    artifact: ArtifactOption,
    serial: SerialOption = None,
    threads: int = 1,
    runs: int = 50,
    warmup_runs: int = 5,
    xnnpack: Annotated[bool, typer.Option("--xnnpack/--no-xnnpack")] = True,
    profile: Annotated[bool, typer.Option("--profile", help="--enable_op_profiling: slowest ops")] = False,
    binary: Annotated[Path | None, typer.Option(help="local benchmark_model to push (else it must be on the phone)")] = None,
    out: Annotated[Path, typer.Option(help="where the pulled output goes")] = Path("device-results/android"),
    adb: AdbOption = "adb",
    dry_run: DryRun = False,
    report: ReportOption = None,
) -> None:
    """LiteRT's benchmark_model on a phone's CPU over adb (push, run, pull, parse)."""
    from edgemod.mobile_harness.android import AndroidDevice, BenchmarkOptions, benchmark

    options = BenchmarkOptions(num_threads=threads, num_runs=runs, warmup_runs=warmup_runs, use_xnnpack=xnnpack,
                               enable_op_profiling=profile)
    device = AndroidDevice(serial, adb=adb)
    if dry_run:
        return _echo_android_plan(export_dir, artifact,
                                  lambda model, golden: device.benchmark_plan(model, golden, options, out, binary))
    result = benchmark(device, export_dir, artifact, options, out, binary)
    _bench_table(result)
    _write(report, result)


@harness_app.command("android-golden")
def android_golden(
    export_dir: ExportDir,
    artifact: ArtifactOption,
    serial: SerialOption = None,
    threads: int = 1,
    package: Annotated[str, typer.Option(help="applicationId of the app holding GoldenVectorsTest")] = "ai.edgemod.golden",
    adb: AdbOption = "adb",
    dry_run: DryRun = False,
) -> None:
    """Run the GoldenVectorsTest instrumented test on a phone; exit code 1 if it fails."""
    from edgemod.mobile_harness.android import AndroidDevice, golden_test

    device = AndroidDevice(serial, adb=adb)
    if dry_run:
        return _echo_android_plan(export_dir, artifact,
                                  lambda model, golden: device.golden_test_plan(model, golden, threads, package))
    result = golden_test(device, export_dir, artifact, threads, package)
    status = "[green]passed[/]" if result["passed"] else "[red]FAILED[/]"
    console.print(f"{artifact} on {result['device']['serial']}: {status} ({result['tests_run']} test(s))")
    for message in result["messages"]:
        console.print(f"  {message}")
    if not result["passed"]:
        raise typer.Exit(1)


@harness_app.command("ios-test")
def ios_test(
    export_dir: ExportDir,
    artifact: ArtifactOption,
    simulator: Annotated[str | None, typer.Option(
        help="simulator name, e.g. 'iPhone 15'; default: booted or newest iPhone")] = None,
    project: Annotated[Path | None, typer.Option(help=".xcodeproj holding the EdgemodGolden scheme")] = None,
    workspace: Annotated[Path | None, typer.Option(help=".xcworkspace, instead of --project")] = None,
    compute_units: Annotated[ComputeUnits, typer.Option(help="MLModelConfiguration.computeUnits")] = ComputeUnits.cpuOnly,
    out: Annotated[Path, typer.Option(help="where the compiled .mlmodelc goes")] = Path("device-results/ios"),
    dry_run: DryRun = False,
) -> None:
    """Compile the .mlpackage and run the EdgemodGoldenTests XCTest on a simulator (macOS + Xcode)."""
    from edgemod.mobile_harness import ios

    if dry_run:
        destination = f"platform=iOS Simulator,name={simulator or 'iPhone 15'}"
        steps, env = ios.ios_plan(export_dir, artifact, out, destination, project, workspace, compute_units.value)
        typer.echo("\n".join(ios.describe_plan(steps, env)))
        return
    result = ios.ios_test(ios.XcodeDriver(), export_dir, artifact, out, simulator, project, workspace,
                          compute_units.value)
    status = "[green]passed[/]" if result["succeeded"] else "[red]FAILED[/]"
    console.print(f"{artifact} on {result['simulator']['name']} ({result['simulator']['runtime']}): {status}")
    for failure in result["failures"]:
        console.print(f"  {failure['file']}:{failure['line']}: {failure['message']}")
    if not result["succeeded"]:
        raise typer.Exit(1)


@harness_app.command("web")
def web(
    folder: Annotated[Path, typer.Argument(help="web folder (tasks.json; `edgemod pull ... --platform web`) "
                                                "or export folder with mediapipe artifacts")],
    screenshot: Annotated[Path | None, typer.Option(help="PNG of the page showing one golden item")] = None,
    chromium: Annotated[Path, typer.Option(help="Chromium executable")] = Path("/usr/bin/chromium"),
    serve: Annotated[bool, typer.Option("--serve", help="only serve the page on localhost until Ctrl-C")] = False,
    port: Annotated[int, typer.Option(help="port for --serve")] = 8000,
    report: ReportOption = None,
) -> None:
    """The golden vectors through MediaPipe Tasks in headless Chromium (mobile_harness/web); exit code 1 on a mismatch."""
    from edgemod.mobile_harness import web_check

    with web_check.web_folder_for(folder) as web_folder:
        if serve:
            return _serve(web_folder, port)
        result = web_check.check_web(web_folder, chromium, screenshot)
    _web_table(result)
    _write(report, result)
    if not result["passed"]:
        raise typer.Exit(1)


def _serve(web_folder: Path, port: int) -> None:
    import threading

    from edgemod.mobile_harness import web_check

    web_check.read_tasks(web_folder)
    with web_check.serve(web_folder, port) as url:
        console.print(f"serving {web_folder}: open {url} (Ctrl-C stops)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


# ----------------------------------------------------------------------------------- printing


def _golden_table(results: list[dict], threads: int) -> None:
    from rich.table import Table

    table = Table(title=f"golden vectors from raw payloads ({threads} thread{'s' if threads > 1 else ''})")
    for column in ("artifact", "items", "inputs", "max |Δscore|", "tolerance", "decisions", "result"):
        table.add_column(column, justify="left" if column in ("artifact", "result") else "right")
    for r in results:
        inputs = "-" if "inputs_match" not in r else ("match" if r["inputs_match"] else
                                                      f"[red]{len(r['input_mismatches']) + len(r['payload_errors'])} differ[/]")
        worst = r.get("max_abs_score_diff")
        decisions = "-" if worst is None else ("ok" if not r["decision_mismatches"] else
                                               f"[red]{len(r['decision_mismatches'])} flipped[/]")
        verdict = {True: "[green]passed[/]", False: "[red]FAILED[/]", None: "[yellow]skipped[/]"}[r["passed"]]
        table.add_row(r["artifact"], str(r["items"]), inputs, "-" if worst is None else f"{worst:.6f}",
                      f"{r['tolerance']:g}", decisions, verdict)
    console.print(table)
    for r in results:
        for line in _notes(r):
            console.print(f"  {r['artifact']}: {line}")


def _notes(r: dict) -> list[str]:
    notes = []
    if r.get("error"):
        notes.append(f"[red]{r['error']}[/] (fix: {r.get('hint')})")
    if r["changed_files"]:
        notes.append(f"[red]files differ from the manifest:[/] {', '.join(r['changed_files'])}")
    for m in r.get("input_mismatches", [])[:3]:
        notes.append(f"inputs of {m['key']}: {m['input']} " + (f"{m['differing_positions']} positions differ"
                     if "differing_positions" in m else m.get("reason") or f"max |Δ| {m.get('float_max_abs_diff')}"))
    for e in r.get("payload_errors", [])[:3]:
        notes.append(f"payload of {e['key']}: {e['error']}")
    if r["skipped"]:
        notes.append(f"[yellow]{r['skipped']}[/]")
    return notes


def _stream_table(result: dict) -> None:
    from rich.table import Table

    c = result["config"]
    table = Table(title=f"{result['artifact']}: {c['rate']:g}/s for {c['seconds']:g} s, {result['workers']} worker(s) "
                        f"x {result['threads_per_worker']} thread(s), queue {c['max_queue']} ({c['drop_policy']})")
    for column in ("", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right" if column else "left")
    for name in ("queueing_delay", "end_to_end_latency", "service_time"):
        row = result[name]
        table.add_row(name.replace("_", " "), *("-" if row[k] is None else f"{row[k]:.2f}"
                                               for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    console.print(table)
    verdict = "[green]keeps up[/]" if result["keeps_up"] else "[red]does not keep up[/]"
    console.print(f"{verdict}: {result['completed']}/{result['produced']} done, {result['dropped']} dropped, "
                  f"{result['achieved_throughput']:g}/s achieved, peak queue {result['peak_queue']}, "
                  f"budget p95 queueing < {c['budget_ms']:g} ms")


def _bench_table(result: dict) -> None:
    r = result["result"]
    console.print(f"{result['artifact']} on {result['device']['model']} ({result['device']['serial']}): "
                  f"init {r['init_us'] / 1e3:.1f} ms, first {r['first_inference_us'] / 1e3:.2f} ms, "
                  f"avg {r['inference_avg_us'] / 1e3:.3f} ms"
                  + (f" ± {r['inference_std_us'] / 1e3:.3f}" if "inference_std_us" in r else ""))
    if delegate := r.get("delegate"):
        console.print(f"  {delegate['name']}: {delegate['nodes_delegated']}/{delegate['nodes_total']} nodes, "
                      f"{delegate['partitions']} partition(s)")
    for op in r.get("top_ops", [])[:5]:
        console.print(f"  {op['avg_ms']:.3f} ms {op['percent']:.1f}%  {op['node_type']}")


def _web_table(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"golden vectors in MediaPipe Tasks, Chromium {result['chromium']} ({result['task']})")
    for column in ("artifact", "items", "agree", "mismatches", "near threshold", "max |Δscore|", "tolerance"):
        table.add_column(column, justify="left" if column == "artifact" else "right")
    for name, r in result["artifacts"].items():
        flipped = sum(item["flipped"] for item in r["near_threshold"])
        table.add_row(name, str(r["items"]), str(r["agree"]), f"[red]{len(r['mismatches'])}[/]" if r["mismatches"] else "0",
                      f"{len(r['near_threshold'])} ({flipped} flipped)", f"{r['max_abs_score_diff']:.6f}", f"{r['tolerance']:g}")
    console.print(table)
    for name, r in result["artifacts"].items():
        for m in r["mismatches"][:5]:
            console.print(f"  {name}: [red]{m['key']}[/] page {m.get('error') or m['decision']}, "
                          f"expected {m['expected_decision']} (margin {m['margin']})")
        for error in r["page_errors"][:3]:
            console.print(f"  {name}: page console: {error}")
    if result["screenshot"]:
        console.print(f"screenshot: {result['screenshot']}")


def _write(path: Path | None, data) -> None:
    if path is not None:
        from edgemod.fsutil import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
        console.print(f"report: {path}")
