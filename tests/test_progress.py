"""Progress that CI can see: plain lines on a stream that is not a terminal, a rich bar on one."""
from __future__ import annotations

import io
import logging
import re
import time

import pytest
from rich.console import Console

from edgemod.console import INTERVAL_VARIABLE, activity, duration, progress, track
from edgemod.errors import EdgemodError

PERIODIC = re.compile(r"^slow loop: (\d+)/6 items \(\d+%\), [\d.]+ items/s, ETA \d+s$")


def plain_console() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()  # not a terminal, like CI or `| tee`
    return Console(file=stream, width=200), stream


def test_slow_loop_prints_periodic_lines_with_counts_rate_and_eta(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.1")
    console, stream = plain_console()
    with progress("slow loop", 6, console) as bar:
        for _ in range(6):
            time.sleep(0.1)
            bar.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "slow loop: started, 0/6 items (0%)"
    periodic = [line for line in lines[1:-1] if PERIODIC.match(line)]
    assert len(periodic) >= 2, lines
    assert int(PERIODIC.match(periodic[-1]).group(1)) > int(PERIODIC.match(periodic[0]).group(1))
    assert re.fullmatch(r"slow loop: done, 6/6 items \(100%\) in \ds, [\d.]+ items/s", lines[-1])


def test_a_step_slower_than_the_interval_still_prints(monkeypatch):
    """The heartbeat thread reports while one step blocks (one long teacher call, one conversion)."""
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.05")
    console, stream = plain_console()
    for _ in track(range(2), "blocking", console, unit="calls"):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert sum(line.startswith("blocking: 0/2 calls") for line in lines) >= 3, lines
    assert lines[-1].startswith("blocking: done, 2/2 calls (100%)")


def test_activity_without_a_counter_prints_start_heartbeat_and_elapsed(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.05")
    console, stream = plain_console()
    with activity("export tflite int8 [static]", console):
        time.sleep(0.2)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "export tflite int8 [static]: started"  # brackets printed as they are, not as markup
    assert "export tflite int8 [static]: running for 0s" in lines
    assert lines[-1] == "export tflite int8 [static]: done in 0s"


def test_a_failure_prints_where_it_stopped(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "5")
    console, stream = plain_console()
    with pytest.raises(RuntimeError), progress("label x", 10, console) as bar:
        bar.advance(3)
        raise RuntimeError("teacher failed")
    assert stream.getvalue().splitlines()[-1].startswith("label x: stopped, 3/10 items (30%) in 0s")


def test_without_a_console_the_lines_go_to_the_log(monkeypatch, caplog):
    monkeypatch.setenv(INTERVAL_VARIABLE, "5")
    caplog.set_level(logging.INFO, logger="edgemod.console")
    with progress("train epoch 1/2", 4, None, unit="steps", completed=1) as bar:
        bar.advance(3, note="loss 0.1234")
    assert caplog.messages[0] == "train epoch 1/2: started, 1/4 steps (25%)"
    assert caplog.messages[-1].startswith("train epoch 1/2: done, 4/4 steps (100%) in 0s")
    assert caplog.messages[-1].endswith("loss 0.1234")


def test_disabled_progress_prints_nothing(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="edgemod.console")
    console, stream = plain_console()
    with progress("rank 1", 3, console, enabled=False) as bar, activity("rank 1 check", None, enabled=False):
        bar.advance(3)
    assert stream.getvalue() == "" and caplog.messages == []


def test_terminal_shows_a_rich_bar_and_no_plain_lines(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.01")
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, force_interactive=True, width=120)
    with progress("label minilm", 4, console) as bar:
        for _ in range(4):
            time.sleep(0.02)
            bar.advance(note="loss 0.5")
    with activity("convert", console):
        pass
    shown = stream.getvalue()
    assert "label minilm" in shown and "4/4" in shown and "items/s" in shown and "loss 0.5" in shown
    assert "started, 0/4" not in shown  # the bar, not the plain lines
    assert "convert: started" in shown and "convert: done in 0s" in shown


def test_a_bad_interval_setting_says_how_to_fix_it(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "soon")
    with pytest.raises(EdgemodError, match="EDGEMOD_PROGRESS_INTERVAL='soon'") as error, progress("x", 1):
        pass
    assert "set it to e.g. 5" in error.value.hint


def test_durations_read_like_a_clock():
    assert [duration(s) for s in (4.4, 115, 3600 + 125)] == ["4s", "1m55s", "1h02m"]
