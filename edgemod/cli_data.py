"""`edgemod data ...`: list, show, validate and fetch the datasets of datasets.yaml.

Mounted by edgemod/cli.py as `app.add_typer(data_app, name="data")`. Exit codes: 0 ok, 1 the
dataset failed validation, 2 the command could not run (unknown name, unreachable host, ...).
Nothing here imports torch, so these commands start fast on any machine.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgemod.catalog import load_catalog
from edgemod.dataset_validation import validate_dataset
from edgemod.errors import EdgemodError

data_app = typer.Typer(help="Inspect, validate and fetch the datasets in datasets.yaml.", no_args_is_help=True)
console = Console()


def _fail(err: EdgemodError) -> None:
    console.print(f"[red]error:[/red] {escape(err.message)}", soft_wrap=True)
    if err.hint:
        console.print(f"[bold]fix:[/bold] {escape(err.hint)}", soft_wrap=True)
    raise typer.Exit(2)


def _row_count(name: str, catalog) -> str:
    """Rows of the file when it is reachable here; '-' otherwise (listing must not fail offline)."""
    from edgemod.catalog import read_entry

    try:
        return str(len(read_entry(name, catalog)))
    except EdgemodError:
        return "-"


@data_app.command("list")
def list_datasets() -> None:
    """List the datasets: task, rows (when the file is here), labels, license, evaluate flag."""
    try:
        catalog = load_catalog()
    except EdgemodError as err:
        _fail(err)
    table = Table("name", "task", "rows", "labels", "license", "evaluate")
    for name, entry in sorted(catalog.datasets.items()):
        evaluate = "yes" if entry.evaluate else "[yellow]no[/yellow]"
        table.add_row(name, entry.task, _row_count(name, catalog), ", ".join(entry.labels), entry.license, evaluate)
    console.print(table)


@data_app.command("show")
def show(name: str) -> None:
    """Show one dataset's catalog entry and its label distribution per split."""
    from edgemod.catalog import read_entry

    try:
        catalog = load_catalog()
        entry = catalog.entry(name)
    except EdgemodError as err:
        _fail(err)
    info = Table(show_header=False, title=name)
    for key, value in entry.model_dump(exclude={"name", "raw"}).items():
        info.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    if entry.raw:
        files = ", ".join(Path(raw.file).name for raw in entry.raw.files)
        info.add_row("raw", f"converter '{entry.raw.converter}' from {files}")
    try:
        frame = read_entry(name, catalog)
    except EdgemodError as err:
        info.add_row("file", f"[red]{err.message}[/red]")
        console.print(info)
        return
    info.add_row("resolved file", str(catalog.resolve(entry.file, dataset=name)))
    console.print(info)
    counts = frame.groupby("split", sort=False)["label"].value_counts()
    distribution: dict[str, dict[str, int]] = {}
    for (split, label), count in counts.items():
        distribution.setdefault(str(split), {})[str(label)] = int(count)
    _print_distribution(distribution, entry.labels)


def _print_distribution(distribution: dict[str, dict[str, int]], labels: list[str]) -> None:
    if not distribution:
        return
    extra = sorted({lab for counts in distribution.values() for lab in counts} - set(labels))
    table = Table("split", *labels, *extra, "total", title="label distribution")
    for split, counts in distribution.items():
        table.add_row(split, *(str(counts.get(lab, 0)) for lab in [*labels, *extra]), str(sum(counts.values())))
    console.print(table)


@data_app.command("validate")
def validate(
    name: str,
    json_path: Path | None = typer.Option(None, "--json", help="also write the report as JSON here"),
) -> None:
    """Check a dataset file: bad rows, duplicates, cross-split leakage, missing images, sha256.

    Exits 1 when the dataset has errors (duplicates are only warnings).
    """
    from edgemod.fsutil import write_json_atomic

    try:
        catalog = load_catalog()
        report = validate_dataset(name, catalog)
    except EdgemodError as err:
        _fail(err)
    if json_path:
        write_json_atomic(json_path, report.model_dump(mode="json"))
    _print_report(report, catalog.entry(name).labels)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report, labels: list[str]) -> None:
    status = "[green]ok[/green]" if report.ok else "[red]FAILED[/red]"
    table = Table(show_header=False, title=f"{report.name}: {status}")
    table.add_row("file", report.file or "-")
    table.add_row("sha256", f"{report.sha256 or '-'} ({_sha_state(report.sha256_ok)})")
    table.add_row("rows", str(report.rows))
    table.add_row("rows per split", ", ".join(f"{k}={v}" for k, v in report.rows_per_split.items()))
    for message in report.errors:
        table.add_row("[red]error[/red]", message)
    for message in report.warnings:
        table.add_row("[yellow]warning[/yellow]", message)
    console.print(table)
    _print_distribution(report.label_distribution, labels)


def _sha_state(ok: bool | None) -> str:
    return {True: "matches datasets.yaml", False: "DIFFERS from datasets.yaml", None: "not pinned"}[ok]


@data_app.command("fetch")
def fetch(
    name: str,
    dest: Path | None = typer.Option(None, "--dest", help="root folder to write under (default: download cache)"),
    timeout: float = typer.Option(60.0, help="seconds per HTTP request"),
) -> None:
    """Download a dataset's raw files from their public sources, verify them and convert."""
    from edgemod.dataset_converters import fetch_dataset

    try:
        with warnings.catch_warnings(record=True) as caught:  # shown once, in the console's style
            warnings.simplefilter("always")
            result = fetch_dataset(name, dest=dest, timeout=timeout)
    except EdgemodError as err:
        _fail(err)
    for path in result.downloaded:
        console.print(f"downloaded {path}")
    for path in result.reused:
        console.print(f"already present {path}")
    console.print(f"converted {result.path} (sha256 {result.sha256})")
    for warning in caught:
        console.print(f"[yellow]warning:[/yellow] {warning.message}", soft_wrap=True)
    if dest:
        console.print(f"to load it: export EDGEMOD_DATA_DIR={Path(dest).resolve()}")
