"""How a stage talks to the person running it: the CLI's rich console, or the log when there is none.

Long work reports through one helper, whatever runs it: `progress` (a counted loop), `track` (the
same around an iterable) and `activity` (work with no counter, such as one conversion or one emulator
call). On a terminal they draw a rich bar or spinner. Anywhere else (CI, `| tee`, a background job,
the log of a library call) they print plain lines: one at the start, one every
EDGEMOD_PROGRESS_INTERVAL seconds (30 by default) from a heartbeat thread, so a step that blocks for
minutes still shows, and one at the end. Rich flushes after every line and log handlers after every
record, so CI logs show each line at once.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

from edgemod.errors import EdgemodError

log = logging.getLogger(__name__)
INTERVAL_VARIABLE = "EDGEMOD_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0
T = TypeVar("T")


def say(console, message: str) -> None:
    """Show a progress or status line.

    Args:
        console: the CLI's `rich.console.Console`; None when a stage runs as a library (tests,
            notebooks) or on a torchrun rank other than 0, where the line goes to the log instead.
        message: the line, with rich markup (`[green]...[/]`); the log gets it without the markup.
    """
    if console is not None:
        console.print(message)
        return
    log.info(Text.from_markup(message).plain)


def progress_interval() -> float:
    """Seconds between plain progress lines: EDGEMOD_PROGRESS_INTERVAL, or 30."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise EdgemodError(f"{INTERVAL_VARIABLE}={raw!r} is not a positive number of seconds",
                           f"set it to e.g. 5, or unset it for the default of {DEFAULT_INTERVAL_S:g} s")
    return seconds


class Tracker:
    """One counted piece of work in progress; `advance` it as work gets done."""

    def __init__(self, bar: Progress, unit: str):
        self._bar, self.unit = bar, unit
        self._id = bar.tasks[0].id

    def advance(self, n: float = 1, note: str | None = None) -> None:
        """Count `n` more units done; `note` replaces the short text shown beside the counts (a loss)."""
        self._bar.update(self._id, advance=n, **({} if note is None else {"note": note}))

    @property
    def task(self) -> Task:
        return self._bar.tasks[0]

    def line(self, ending: str | None = None) -> str:
        """The plain status line; `ending` ('done', 'stopped') makes it the last one, with the elapsed time."""
        task, counts = self.task, _counts(self.task, self.unit)
        head = counts if ending is None else f"{ending}, {counts} in {duration(task.elapsed or 0)}"
        parts = (f"{task.description}: {head}", _speed_and_eta(task, self.unit, average=ending is not None),
                 task.fields.get("note"))
        return ", ".join(part for part in parts if part)


@contextmanager
def progress(label: str, total: float | None, console=None, unit: str = "items", completed: float = 0,
             enabled: bool = True) -> Iterator[Tracker]:
    """Report a counted loop: a rich bar on a terminal, plain lines with done/total, rate and ETA elsewhere.

    Args:
        label: what runs, e.g. `label minilm-sms`; it starts every plain line.
        total: units to do (None: unknown, so no percentage or ETA).
        console: the CLI's rich console; None writes the plain lines to the log.
        unit: what is counted, e.g. `items`, `steps`.
        completed: units already done (a resumed run); the rate counts only the new ones.
        enabled: False shows nothing (a torchrun rank other than 0).

    Yields:
        The `Tracker` to `advance`.
    """
    interval = progress_interval()  # a bad setting fails before the work starts
    live = enabled and _is_terminal(console)
    columns = (TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
               _SpeedColumn(unit), TextColumn("{task.fields[note]}", markup=False))
    # 4 redraws a second: light beside the latency loops it may wrap
    with Progress(*columns, console=console, disable=not live, refresh_per_second=4) as bar:
        bar.add_task(label, total=total, completed=completed, note="", resumed_at=completed)
        tracker = Tracker(bar, unit)
        if live or not enabled:
            yield tracker
            return
        first = f"{label}: started, {_counts(tracker.task, unit)}"
        with _plain_reports(console, interval, tracker.line, tracker.line, first):
            yield tracker


def track(items: Iterable[T], label: str, console=None, total: float | None = None, unit: str = "items",
          enabled: bool = True) -> Iterator[T]:
    """`items`, reported by `progress` (one unit per item; `total` defaults to `len(items)`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    with progress(label, total, console, unit, enabled=enabled) as tracker:
        for item in items:
            yield item
            tracker.advance()


@contextmanager
def activity(label: str, console=None, enabled: bool = True) -> Iterator[None]:
    """Report work with no counter that can take minutes (a conversion, one emulator call).

    A line when it starts and one with the elapsed time when it ends; between them a spinner on a
    terminal, elsewhere a line every `progress_interval()` seconds saying it still runs. `console`
    and `enabled` as in `progress`.
    """
    interval, started = progress_interval(), time.monotonic()
    if not enabled:
        yield
        return

    def line(state: str = "running") -> str:
        since = {"running": "for", "done": "in", "stopped": "after"}[state]
        return f"{label}: {state} {since} {duration(time.monotonic() - started)}"

    if not _is_terminal(console):
        with _plain_reports(console, interval, line, line, first=f"{label}: started"):
            yield
        return
    _plain(console, f"{label}: started")
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), console=console, transient=True,
                  refresh_per_second=4) as bar:
        bar.add_task(label, total=None)
        try:
            yield
        except BaseException:
            _plain(console, line("stopped"))
            raise
    _plain(console, line("done"))


def duration(seconds: float) -> str:
    """`42s`, `1m55s`, `2h03m`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


@contextmanager
def _plain_reports(console, interval: float, current: Callable[[], str], last: Callable[[str], str],
                   first: str) -> Iterator[None]:
    """Plain lines: `first` now, `current()` every `interval` seconds from a heartbeat thread (the
    work may block far longer than that), then `last('done')` or `last('stopped')`."""
    _plain(console, first)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(stop, interval, lambda: _plain(console, current())),
                            name="edgemod-progress", daemon=True)
    beat.start()
    try:
        yield
    except BaseException:
        _plain(console, last("stopped"))
        raise
    finally:
        stop.set()
        beat.join()
    _plain(console, last("done"))


def _heartbeat(stop: threading.Event, interval: float, report: Callable[[], None]) -> None:
    while not stop.wait(interval):
        report()


def _plain(console, line: str) -> None:
    """One unstyled line (labels may hold brackets); rich flushes the stream after each print."""
    if console is None:
        log.info(line)
    else:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _is_terminal(console) -> bool:
    return console is not None and console.is_interactive


def _counts(task: Task, unit: str) -> str:
    if not task.total:
        return f"{task.completed:.0f} {unit}"
    return f"{task.completed:.0f}/{task.total:.0f} {unit} ({task.percentage:.0f}%)"


def _speed_and_eta(task: Task, unit: str, average: bool = False) -> str:
    """`38.2 items/s, ETA 1m55s`: rich's estimate over the last 30 s, or the average since the start
    when it has none (a step slower than that window) or `average` is asked; empty before any rate."""
    done = task.completed - task.fields.get("resumed_at", 0)
    rate = None if average else task.speed
    if not rate and done > 0 and task.elapsed:
        rate = done / task.elapsed
    if not rate:
        return ""
    shown = f"{rate:.{2 if rate < 10 else 1}f} {unit}/s"  # slow steps (a teacher's) keep two digits
    if average or not task.total:
        return shown
    return f"{shown}, ETA {duration(max(task.total - task.completed, 0) / rate)}"


class _SpeedColumn(ProgressColumn):
    """Rate and ETA on the terminal, computed as in the plain lines."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        return Text(_speed_and_eta(task, self.unit) or f"- {self.unit}/s", style="progress.remaining")
