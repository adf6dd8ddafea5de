"""What reaches the user's terminal: edgemod's own lines, not the libraries' start-up chatter, unless
`edgemod --verbose` (or EDGEMOD_DEBUG=1) asks for it."""
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgemod.quiet import LIBRARY_SETTINGS, NATIVE_NOISE, START_UP_LOGGERS, debug_requested, quiet_process

NOISY_CLI = Path(__file__).resolve().parent / "noisy_cli.py"
LIBRARY_NOISE = ("LOAD REPORT", "XNNPACK", "_pytree", "oneDNN", "absl::InitializeLog", "Traceback")
# As TensorFlow 2.21 / LiteRT 2.3 write them to fd 2 on import and on the first interpreter.
CAPTURED_NATIVE_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796025106.751696   25107 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796025106.819506   25107 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available "
    "CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
    "I0000 00:00:1796025106.819506   25107 onednn.cc:1] oneDNN custom operations are on. You may see slightly different "
    "numerical results due to floating-point round-off errors from different computation orders.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]


def run_noisy_cli(*args: str, tmp_path: Path) -> str:
    # The user's terminal, not this test process: no debug flag and none of the settings quiet_process makes.
    env = {key: value for key, value in os.environ.items() if key != "EDGEMOD_DEBUG" and key not in LIBRARY_SETTINGS}
    done = subprocess.run([sys.executable, str(NOISY_CLI), *args, "noise", str(tmp_path / "bert")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout + done.stderr


def test_library_noise_stays_out_of_the_terminal_unless_verbose(tmp_path):
    quiet = run_noisy_cli(tmp_path=tmp_path)
    assert [noise for noise in LIBRARY_NOISE if noise in quiet] == [], quiet
    assert "a native error the user must see" in quiet and "noise: done" in quiet

    verbose = run_noisy_cli("--verbose", tmp_path=tmp_path)
    assert [noise for noise in ("LOAD REPORT", "XNNPACK", "_pytree") if noise not in verbose] == [], verbose
    assert "a native error the user must see" in verbose and "noise: done" in verbose


@pytest.mark.parametrize("line", CAPTURED_NATIVE_NOISE)
def test_known_native_noise_is_dropped(line):
    assert re.match(NATIVE_NOISE, line)


@pytest.mark.parametrize("line", [
    "E0000 00:00:1796025106.751696   25107 interpreter.cc:1] Failed to allocate tensors",
    "F0000 00:00:1796025106.751696   25107 check.cc:1] Check failed: size > 0",
    "ERROR: Didn't find op for builtin opcode 'ADD' version '9'",
    "Traceback (most recent call last):",
])
def test_native_errors_pass(line):
    assert not re.match(NATIVE_NOISE, line)


def test_quiet_process_filters_fd_2_and_gives_it_back(capfd, monkeypatch):
    for name, value in LIBRARY_SETTINGS.items():  # restored after the test
        monkeypatch.setenv(name, value)
    levels = {name: logging.getLogger(name).level for name in START_UP_LOGGERS}
    python_stderr = sys.stderr
    try:
        with quiet_process():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
            os.write(2, b"E0000 00:00:1.1 1 x.cc:1] kept\n")
            print("python line", file=sys.stderr)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert sys.stderr is python_stderr
    err = capfd.readouterr().err
    assert "kept" in err and "python line" in err and "XNNPACK" not in err


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("", False), ("0", False), ("1", True)])
def test_edgemod_debug_asks_for_the_libraries_output(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("EDGEMOD_DEBUG", raising=False)
    else:
        monkeypatch.setenv("EDGEMOD_DEBUG", value)
    assert debug_requested() is expected


def test_usage_errors_print_the_usage_not_a_traceback(capsys):
    from edgemod.cli import main

    assert main(["export"]) == 2
    assert "Missing argument 'train_run'" in capsys.readouterr().err
