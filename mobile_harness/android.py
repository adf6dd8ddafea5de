"""Android over `adb`: LiteRT's `benchmark_model` on the phone's CPU, and the golden-vector
instrumented test (`mobile_harness/android/GoldenVectorsTest.kt`).

Nothing here can run without a phone, so the module is split the testable way: functions that
build argv lists (pure), functions that parse what the tools print (pure, tested on recorded
samples), and `AndroidDevice`, which runs the commands through an injected `runner`
(`subprocess.run` by default). `--dry-run` in the CLI prints the commands instead.

`benchmark_model` is the prebuilt LiteRT binary (android_aarch64_benchmark_model from the
LiteRT/TensorFlow nightly builds, or `bazel build -c opt --config=android_arm64
//tensorflow/lite/tools/benchmark:benchmark_model`); see docs/mobile.md.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edgemod.console import activity
from edgemod.errors import EdgemodError

REMOTE_DIR = "/data/local/tmp/edgemod"  # the shell user may write and execute here
REMOTE_BINARY = "/data/local/tmp/benchmark_model"
TEST_PACKAGE = "ai.edgemod.golden"
TEST_CLASS = "ai.edgemod.golden.GoldenVectorsTest"
INSTRUMENTATION_RUNNER = "androidx.test.runner.AndroidJUnitRunner"
ADB_HINT = ("install Android SDK platform-tools (https://developer.android.com/tools/releases/platform-tools) "
            "and put `adb` on PATH, or pass --adb /path/to/adb")


class BenchmarkOptions(BaseModel):
    """The `benchmark_model` flags edgemod sets; the rest keep LiteRT's defaults."""

    model_config = ConfigDict(extra="forbid")

    num_threads: int = Field(1, ge=1, le=16)
    use_xnnpack: bool = True
    num_runs: int = Field(50, ge=1)
    warmup_runs: int = Field(5, ge=0)
    enable_op_profiling: bool = False
    binary: str = REMOTE_BINARY


@dataclass
class Command:
    """One step: argv to run on this machine, and why (printed by --dry-run)."""

    argv: list[str]
    purpose: str

    def __str__(self) -> str:
        return shlex.join(self.argv)


def benchmark_flags(graph: str, options: BenchmarkOptions) -> list[str]:
    flags = [f"--graph={graph}", f"--num_threads={options.num_threads}",
             f"--use_xnnpack={str(options.use_xnnpack).lower()}",
             f"--num_runs={options.num_runs}", f"--warmup_runs={options.warmup_runs}"]
    if options.enable_op_profiling:
        flags.append("--enable_op_profiling=true")
    return flags


# ----------------------------------------------------------------------------------- parsing


def parse_adb_devices(stdout: str) -> list[dict]:
    """`adb devices -l` -> [{serial, state, model?, product?, transport_id?}]; daemon chatter skipped."""
    devices = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line or line.startswith(("*", "List of devices")):
            continue
        serial, _, rest = line.partition(" ") if "\t" not in line else line.partition("\t")
        fields = rest.split()
        if not fields:
            continue
        entry = {"serial": serial.strip(), "state": fields[0]}
        entry.update(f.split(":", 1) for f in fields[1:] if ":" in f)
        devices.append(entry)
    return devices


_TIMINGS = re.compile(r"Inference timings in us: Init: ([\d.e+]+), First inference: ([\d.e+]+), "
                      r"Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)")
_COUNT_LINE = re.compile(r"count=(\d+)(?: first=\S+)? curr=\S+.*")
_DELEGATED = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions")


def parse_benchmark_model(stdout: str, top: int = 10) -> dict:
    """Timings (microseconds) and, if profiled, the slowest ops from `benchmark_model`'s output.

    Returns:
        init_us, first_inference_us, warmup_avg_us, inference_avg_us, inference_std_us (and min,
        max, median, p5, p95 where this LiteRT prints them), runs, threads, model_size_mb, memory
        (MB), delegate partitions, and `top_ops` / `op_types` when --enable_op_profiling was on.

    Raises:
        EdgemodError: the output holds no timing summary (the run failed; the error names its tail).
    """
    text = "\n".join(_strip_log_prefix(line) for line in stdout.splitlines())
    timings = _TIMINGS.search(text)
    if timings is None:
        tail = "\n".join(stdout.strip().splitlines()[-5:])
        raise EdgemodError(f"benchmark_model printed no timing summary; its output ended with:\n{tail}",
                           "check --graph points at the pushed .tflite and the binary matches the phone's ABI (arm64)")
    init, first, warmup, average = (float(v) for v in timings.groups())
    result = {"init_us": init, "first_inference_us": first, "warmup_avg_us": warmup, "inference_avg_us": average}
    result.update(_regular_run_stats(text[: timings.start()]))
    result.update(_settings(text))
    if profile := _op_profile(text, top):
        result.update(profile)
    return result


def _strip_log_prefix(line: str) -> str:
    # `INFO: ` from the binary, `I tflite  : ` when read back from logcat.
    return re.sub(r"^(?:INFO|VERBOSE|WARNING|ERROR): |^[IWE] tflite\s*: ", "", line)


def _regular_run_stats(before_summary: str) -> dict:
    """The last `count=...` line before the summary is the timed run (the one before it: warm-up)."""
    lines = [line for line in before_summary.splitlines() if _COUNT_LINE.match(line.strip())]
    if not lines:
        return {}
    values = dict(pair.split("=", 1) for pair in lines[-1].split() if "=" in pair)
    stats = {"runs": int(values["count"])}
    for key in ("std", "min", "max", "median", "p5", "p95"):
        if key in values:
            stats[f"inference_{key}_us"] = float(values[key])
    return stats


def _settings(text: str) -> dict:
    out = {}
    patterns = {"threads": (r"#threads used for CPU inference: \[(\d+)\]|Num threads: \[(\d+)\]", int),
                "model_size_mb": (r"The input model file size \(MB\): ([\d.]+)", float),
                "init_session_ms": (r"Initialized session in ([\d.]+) ?ms", float)}
    for key, (pattern, cast) in patterns.items():
        if match := re.search(pattern, text):
            out[key] = cast(next(g for g in match.groups() if g is not None))
    memory = {}
    if match := re.search(r"Memory footprint delta from the start of the tool \(MB\): init=([\d.]+) overall=([\d.]+)", text):
        memory.update(delta_init_mb=float(match[1]), delta_overall_mb=float(match[2]))
    if match := re.search(r"Peak memory footprint \(MB\): init=([\d.]+) overall=([\d.]+)", text):
        memory.update(peak_init_mb=float(match[1]), peak_overall_mb=float(match[2]))
    if match := re.search(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([\d.]+)", text):
        memory["peak_overall_mb"] = float(match[1])
    if memory:
        out["memory"] = memory
    if match := _DELEGATED.search(text):
        out["delegate"] = {"name": match[3], "nodes_delegated": int(match[1]), "nodes_total": int(match[2]),
                           "partitions": int(match[4])}
    return out


def _op_profile(text: str, top: int) -> dict:
    marker = "Operator-wise Profiling Info for Regular Benchmark Runs:"
    if marker not in text:
        return {}
    section = text.split(marker, 1)[1]
    profile = {}
    if rows := _table(section, "Top by Computation Time"):
        profile["top_ops"] = [_op_row(r) for r in rows[:top]]
    if rows := _table(section, "Summary by node type"):
        profile["op_types"] = [_op_row(r) for r in rows]
    return profile


def _table(section: str, title: str) -> list[dict]:
    """Rows of one `=== title ===` table: header names from the [brackets], cells split on tabs
    (or on runs of 2+ spaces, as some builds print), ending at the first blank line."""
    lines = section.split(f" {title} ", 1)[-1].splitlines()[1:] if f" {title} " in section else []
    if not lines:
        return []
    columns = re.findall(r"\[([^\]]+)\]", lines[0])
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        cells = [c.strip() for c in (line.strip().split("\t") if "\t" in line.strip() else re.split(r"\s{2,}", line.strip()))]
        if len(cells) == len(columns):
            rows.append(dict(zip(columns, cells)))
    return rows


def _op_row(row: dict) -> dict:
    def number(key: str) -> float | None:
        value = row.get(key)
        return None if value is None else float(value.rstrip("%"))

    out = {"node_type": row.get("node type") or row.get("Node type"), "avg_ms": number("avg ms"),
           "percent": number("%") if "%" in row else number("avg %"),
           "times_called": int(float(row["times called"])) if "times called" in row else None}
    if "Name" in row:
        out["name"] = row["Name"]
    if "count" in row:
        out["count"] = int(row["count"])
    return out


def parse_instrument_output(stdout: str) -> dict:
    """`am instrument -w` (JUnit text) -> {passed, tests_run, failures, messages}."""
    if match := re.search(r"^OK \((\d+) tests?\)", stdout, re.MULTILINE):
        return {"passed": True, "tests_run": int(match[1]), "failures": 0, "messages": []}
    counts = re.search(r"Tests run: (\d+),\s+Failures: (\d+)", stdout)
    messages = re.findall(r"^(?:java\.lang\.AssertionError|junit\.framework\.\w+|\w+(?:\.\w+)*Exception): (.+)$",
                          stdout, re.MULTILINE)
    crashed = "INSTRUMENTATION_FAILED" in stdout or "Process crashed" in stdout
    if counts is None and not crashed and not messages:
        raise EdgemodError("could not read the instrumentation result", "run the printed `am instrument` command by hand")
    return {"passed": False, "tests_run": int(counts[1]) if counts else 0,
            "failures": int(counts[2]) if counts else 1,
            "messages": messages or (["instrumentation crashed or was not installed"] if crashed else [])}


# ----------------------------------------------------------------------------------- device


class AndroidDevice:
    """One phone over adb. `runner` has `subprocess.run`'s signature (tests inject a fake)."""

    def __init__(self, serial: str | None = None, adb: str = "adb",
                 runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 which: Callable[[str], str | None] = shutil.which):
        self.serial, self.adb, self.runner, self.which = serial, adb, runner, which

    # -- commands (pure)

    def prefix(self) -> list[str]:
        return [self.adb, *(["-s", self.serial] if self.serial else [])]

    def benchmark_plan(self, model: Path, golden: Path | None, options: BenchmarkOptions, out_dir: Path,
                       binary: Path | None = None) -> list[Command]:
        """Push model (+ golden, + binary), run benchmark_model into a file on the phone, pull it back."""
        remote_model, remote_log = f"{REMOTE_DIR}/{model.name}", f"{REMOTE_DIR}/{model.stem}.benchmark.txt"
        steps = [Command([*self.prefix(), "shell", "mkdir", "-p", REMOTE_DIR], "make the working folder"),
                 Command([*self.prefix(), "push", str(model), remote_model], "push the artifact")]
        if golden is not None:
            steps.append(Command([*self.prefix(), "push", str(golden), f"{REMOTE_DIR}/{golden.name}"],
                                 "push its golden vectors (read by the instrumented test)"))
        if binary is not None:
            steps += [Command([*self.prefix(), "push", str(binary), options.binary], "push LiteRT's benchmark_model"),
                      Command([*self.prefix(), "shell", "chmod", "755", options.binary], "make it executable")]
        run = shlex.join([options.binary, *benchmark_flags(remote_model, options)])
        steps += [Command([*self.prefix(), "shell", f"{run} > {remote_log} 2>&1"], "benchmark on the phone's CPU"),
                  Command([*self.prefix(), "pull", remote_log, str(out_dir / Path(remote_log).name)], "pull the output")]
        return steps

    def golden_test_plan(self, model: Path, golden: Path, threads: int = 1,
                         package: str = TEST_PACKAGE) -> list[Command]:
        """Push into the app's external files folder (apps cannot read /data/local/tmp) and run
        GoldenVectorsTest with the paths as instrumentation arguments."""
        remote = f"/sdcard/Android/data/{package}/files/edgemod"
        model_path, golden_path = f"{remote}/{model.name}", f"{remote}/{golden.name}"
        return [Command([*self.prefix(), "shell", "mkdir", "-p", remote], "make the app's folder"),
                Command([*self.prefix(), "push", str(model), model_path], "push the artifact"),
                Command([*self.prefix(), "push", str(golden), golden_path], "push its golden vectors"),
                Command([*self.prefix(), "shell", "am", "instrument", "-w", "-e", "class", TEST_CLASS,
                         "-e", "model", model_path, "-e", "golden", golden_path, "-e", "threads", str(threads),
                         f"{package}.test/{INSTRUMENTATION_RUNNER}"], "run the golden-vector test on the phone")]

    # -- execution

    def adb_path(self) -> str:
        found = self.which(self.adb)
        if found is None:
            raise EdgemodError(f"adb not found (looked for '{self.adb}' on PATH)", ADB_HINT)
        return found

    def run(self, argv: list[str]) -> str:
        """Run one command; stdout, or an error naming the command and its stderr."""
        completed = self.runner(argv, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise EdgemodError(f"`{shlex.join(argv)}` failed ({completed.returncode}): "
                               f"{(completed.stderr or completed.stdout).strip()[-500:]}",
                               "check the phone is unlocked, authorised (`adb devices`) and has space in /data/local/tmp")
        return completed.stdout

    def devices(self) -> list[dict]:
        self.adb_path()
        return parse_adb_devices(self.run([self.adb, "devices", "-l"]))

    def select(self) -> str:
        """The serial to use: the given one if attached and ready, else the only ready phone."""
        devices = self.devices()
        ready = [d["serial"] for d in devices if d["state"] == "device"]
        if self.serial is not None:
            state = next((d["state"] for d in devices if d["serial"] == self.serial), None)
            if state != "device":
                raise EdgemodError(f"phone {self.serial} is {state or 'not attached'}", _state_hint(state, ready))
            return self.serial
        if not ready:
            states = ", ".join(f"{d['serial']} ({d['state']})" for d in devices) or "none"
            raise EdgemodError(f"no Android device attached and ready (seen: {states})",
                               _state_hint(devices[0]["state"] if devices else None, ready))
        if len(ready) > 1:
            raise EdgemodError(f"{len(ready)} devices attached: {', '.join(ready)}", "pick one with --serial")
        self.serial = ready[0]
        return self.serial

    def model_name(self) -> str:
        return self.run([*self.prefix(), "shell", "getprop", "ro.product.model"]).strip()

    def execute(self, steps: list[Command]) -> list[str]:
        """Run the steps in order; each logs a start and an end line (a push or a benchmark takes minutes)."""
        outputs = []
        for step in steps:
            with activity(f"android: {step.purpose}"):
                outputs.append(self.run(step.argv))
        return outputs


def _state_hint(state: str | None, ready: list[str]) -> str:
    if state == "unauthorized":
        return "unlock the phone and accept the 'Allow USB debugging' prompt, then retry"
    if state == "offline":
        return "reconnect the cable or run `adb kill-server && adb start-server`"
    if ready:
        return f"ready devices: {', '.join(ready)}; pass one with --serial"
    return "connect a phone with USB debugging on (Settings > Developer options), or start an emulator"


# ----------------------------------------------------------------------------------- flows


def tflite_artifact(export_dir: Path, artifact: str) -> tuple[Path, Path]:
    """The .tflite file and golden JSON of an artifact; benchmark_model runs only LiteRT models."""
    from edgemod.mobile_harness.device_pipeline import artifact_record

    record = artifact_record(export_dir, artifact)
    if record["target"] == "mediapipe":
        raise EdgemodError(f"{artifact} is a Tasks-ready model: MediaPipe Tasks feeds it, not these templates",
                           "check it with `edgemod harness golden` (Tasks in Python) or `edgemod harness web`; "
                           "for on-phone speed bench the tflite_* artifact of the same scheme (the same network)")
    if record["target"] != "tflite":
        raise EdgemodError(f"{artifact} targets {record['target']}; benchmark_model runs .tflite files only",
                           "pick a tflite_* artifact (see `edgemod harness golden EXPORT_DIR`)")
    return export_dir / record["file"], export_dir / record["golden"]["file"]


def benchmark(device: AndroidDevice, export_dir: Path, artifact: str, options: BenchmarkOptions, out_dir: Path,
              binary: Path | None = None) -> dict:
    """Run benchmark_model for one artifact on the phone; the parsed result and the commands run."""
    model, golden = tflite_artifact(Path(export_dir), artifact)
    device.select()
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = device.benchmark_plan(model, golden, options, out_dir, binary)
    device.execute(steps)
    output = Path(steps[-1].argv[-1])
    return {"artifact": artifact, "device": {"serial": device.serial, "model": device.model_name()},
            "options": options.model_dump(), "output_file": str(output),
            "result": parse_benchmark_model(output.read_text(encoding="utf-8")),
            "commands": [str(s) for s in steps]}


def golden_test(device: AndroidDevice, export_dir: Path, artifact: str, threads: int = 1,
                package: str = TEST_PACKAGE) -> dict:
    """Run GoldenVectorsTest on the phone (the test APK must be installed: docs/mobile.md)."""
    model, golden = tflite_artifact(Path(export_dir), artifact)
    device.select()
    steps = device.golden_test_plan(model, golden, threads, package)
    outputs = device.execute(steps)
    return {"artifact": artifact, "device": {"serial": device.serial}, **parse_instrument_output(outputs[-1]),
            "commands": [str(s) for s in steps]}
