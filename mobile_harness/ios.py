"""iOS over `xcrun` / `xcodebuild`: compile the .mlpackage, pick a simulator, run the XCTest
target (`mobile_harness/ios/EdgemodGoldenTests.swift`) that asserts the golden vectors.

As for Android: argv builders and output parsers are pure and tested here on recorded samples;
`XcodeDriver` runs them through an injected `runner`. Only a Mac with Xcode can execute them.

Paths reach the test process through xcodebuild's `TEST_RUNNER_` environment prefix (Xcode
strips the prefix and sets the variable in the test runner). A simulator shares the Mac's file
system, so absolute paths work there; on a physical device the files must be bundled as test
resources instead (docs/mobile.md).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from edgemod.console import activity
from edgemod.errors import EdgemodError
from edgemod.mobile_harness.android import Command

SCHEME = "EdgemodGolden"
TEST_CLASS = "EdgemodGoldenTests"
XCODE_HINT = "run this on a Mac with Xcode installed (`xcode-select --install`, then open Xcode once to accept its license)"


def compile_command(mlpackage: Path, out_dir: Path, xcrun: str = "xcrun") -> Command:
    """`coremlcompiler` writes OUT_DIR/<name>.mlmodelc, what the app ships and MLModel loads."""
    return Command([xcrun, "coremlcompiler", "compile", str(mlpackage), str(out_dir)], "compile the .mlpackage")


def list_simulators_command(xcrun: str = "xcrun") -> Command:
    return Command([xcrun, "simctl", "list", "devices", "--json"], "list simulators")


def test_command(destination: str, project: Path | None = None, workspace: Path | None = None,
                 scheme: str = SCHEME, xcodebuild: str = "xcodebuild") -> Command:
    where = (["-workspace", str(workspace)] if workspace else []) + (["-project", str(project)] if project else [])
    return Command([xcodebuild, "test", *where, "-scheme", scheme, "-destination", destination,
                    f"-only-testing:{TEST_CLASS}/{TEST_CLASS}/testGoldenVectors"], "run the golden-vector XCTest")


def test_environment(model: Path, golden: Path, compute_units: str = "cpuOnly") -> dict[str, str]:
    """Variables for xcodebuild; the test reads EDGEMOD_MODEL, EDGEMOD_GOLDEN, EDGEMOD_COMPUTE_UNITS."""
    return {"TEST_RUNNER_EDGEMOD_MODEL": str(model), "TEST_RUNNER_EDGEMOD_GOLDEN": str(golden),
            "TEST_RUNNER_EDGEMOD_COMPUTE_UNITS": compute_units}


def simulator_destination(device: dict) -> str:
    """By udid: two simulators may share a name across runtimes."""
    return f"platform=iOS Simulator,id={device['udid']}"


# ----------------------------------------------------------------------------------- parsing


def parse_simctl_devices(stdout: str) -> list[dict]:
    """`simctl list devices --json` -> [{name, udid, state, runtime, available}], iOS runtimes only."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as error:
        raise EdgemodError(f"`xcrun simctl list devices --json` printed no JSON ({error})",
                           "run it by hand; Xcode may need `sudo xcodebuild -runFirstLaunch`") from None
    devices = []
    for runtime, entries in data.get("devices", {}).items():
        version = runtime.rsplit(".", 1)[-1]  # com.apple.CoreSimulator.SimRuntime.iOS-17-2 -> iOS-17-2
        if not version.startswith("iOS"):
            continue
        for entry in entries:
            devices.append({"name": entry["name"], "udid": entry["udid"], "state": entry.get("state", "Unknown"),
                            "runtime": version.replace("-", " ", 1).replace("-", "."),
                            "available": entry.get("isAvailable", True)})
    return devices


def pick_simulator(devices: list[dict], name: str | None = None) -> dict:
    """The named simulator, else a booted iPhone, else the iPhone on the newest runtime."""
    usable = [d for d in devices if d["available"]]
    if name is not None:
        named = [d for d in usable if d["name"] == name]
        if not named:
            known = sorted({d["name"] for d in usable})
            raise EdgemodError(f"no available simulator named '{name}'",
                               "use one of: "
                               + (", ".join(known) or "none (install an iOS runtime in Xcode > Settings > Platforms)"))
        return max(named, key=_runtime_key)
    iphones = [d for d in usable if d["name"].startswith("iPhone")] or usable
    if not iphones:
        raise EdgemodError("no iOS simulator is available", "install an iOS runtime in Xcode > Settings > Platforms")
    booted = [d for d in iphones if d["state"] == "Booted"]
    return booted[0] if booted else max(iphones, key=_runtime_key)


def _runtime_key(device: dict) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", device["runtime"]))


_CASE = re.compile(r"Test Case '-\[(?:[\w]+\.)?(\w+) (\w+)\]' (passed|failed|skipped) \(([\d.]+) seconds\)")
_ERROR = re.compile(r"^(.*?):(\d+): error: -\[(?:[\w]+\.)?(\w+) (\w+)\] : (.*)$", re.MULTILINE)


def parse_xcodebuild_test(stdout: str) -> dict:
    """xcodebuild test output -> {succeeded, cases [{suite, test, status, seconds}], failures [{test, file, line, message}]}.

    `succeeded` is None when xcodebuild printed neither `** TEST SUCCEEDED **` nor `** TEST FAILED **`
    (it stopped before testing, e.g. a build error).
    """
    cases = [{"suite": m[1], "test": m[2], "status": m[3], "seconds": float(m[4])} for m in _CASE.finditer(stdout)]
    failures = [{"test": f"{m[3]}.{m[4]}", "file": m[1], "line": int(m[2]), "message": m[5].strip()}
                for m in _ERROR.finditer(stdout)]
    succeeded = True if "** TEST SUCCEEDED **" in stdout else False if "** TEST FAILED **" in stdout else None
    executed = re.findall(r"Executed (\d+) tests?, with (\d+) failures?", stdout)
    summary = {"executed": int(executed[-1][0]), "failed": int(executed[-1][1])} if executed else {}
    return {"succeeded": succeeded, "cases": cases, "failures": failures, **summary}


# ----------------------------------------------------------------------------------- driver


class XcodeDriver:
    """Runs xcrun/xcodebuild through `runner` (subprocess.run's signature; tests inject a fake)."""

    def __init__(self, xcrun: str = "xcrun", xcodebuild: str = "xcodebuild",
                 runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 which: Callable[[str], str | None] = shutil.which, system: Callable[[], str] = platform.system):
        self.xcrun, self.xcodebuild, self.runner, self.which, self.system = xcrun, xcodebuild, runner, which, system

    def check_tools(self) -> None:
        if self.system() != "Darwin":
            raise EdgemodError(f"iOS tests need macOS with Xcode (this is {self.system()})",
                               f"{XCODE_HINT}; use --dry-run here to print the commands")
        for tool in (self.xcrun, self.xcodebuild):
            if self.which(tool) is None:
                raise EdgemodError(f"'{tool}' not found on PATH", XCODE_HINT)

    def run(self, command: Command, env: dict[str, str] | None = None, check: bool = True) -> str:
        completed = self.runner(command.argv, capture_output=True, text=True, timeout=1800,
                                env={**os.environ, **env} if env else None)
        if check and completed.returncode != 0:
            log_tail = (completed.stderr or completed.stdout).strip()[-800:]
            raise EdgemodError(f"`{command}` failed ({completed.returncode}): {log_tail}",
                               "run the command by hand to see the full log")
        return completed.stdout + (completed.stderr or "")

    def simulators(self) -> list[dict]:
        return parse_simctl_devices(self.run(list_simulators_command(self.xcrun)))


def ios_plan(export_dir: Path, artifact: str, out_dir: Path, destination: str, project: Path | None = None,
             workspace: Path | None = None, compute_units: str = "cpuOnly",
             xcrun: str = "xcrun", xcodebuild: str = "xcodebuild") -> tuple[list[Command], dict[str, str]]:
    """Compile the artifact, then run the XCTest against the compiled model and its golden JSON."""
    from edgemod.mobile_harness.device_pipeline import artifact_record

    record = artifact_record(export_dir, artifact)
    if record["target"] != "coreml":
        raise EdgemodError(f"{artifact} targets {record['target']}; the iOS test runs Core ML models only",
                           "pick a coreml_* artifact (see `edgemod harness golden EXPORT_DIR`)")
    package = export_dir / record["file"]
    compiled = out_dir / f"{package.stem}.mlmodelc"
    env = test_environment(compiled.resolve(), (export_dir / record["golden"]["file"]).resolve(), compute_units)
    return [compile_command(package, out_dir, xcrun), test_command(destination, project, workspace, SCHEME, xcodebuild)], env


def ios_test(driver: XcodeDriver, export_dir: Path, artifact: str, out_dir: Path, simulator: str | None = None,
             project: Path | None = None, workspace: Path | None = None, compute_units: str = "cpuOnly") -> dict:
    """Compile, pick a simulator, run the XCTest; the parsed result (failed tests are a result, not an error)."""
    driver.check_tools()
    device = pick_simulator(driver.simulators(), simulator)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps, env = ios_plan(Path(export_dir), artifact, out_dir, simulator_destination(device), project, workspace,
                          compute_units, driver.xcrun, driver.xcodebuild)
    with activity(f"ios: {steps[0].purpose}"):
        driver.run(steps[0])
    with activity(f"ios: {steps[1].purpose} on {device['name']}"):
        output = driver.run(steps[1], env=env, check=False)
    result = parse_xcodebuild_test(output)
    if result["succeeded"] is None:
        raise EdgemodError(f"xcodebuild did not run the tests: {output.strip()[-800:]}",
                           f"open the project in Xcode and check the '{SCHEME}' scheme builds (docs/mobile.md)")
    return {"artifact": artifact, "simulator": device, **result,
            "commands": [str(s) for s in steps], "environment": env}


def describe_plan(steps: list[Command], env: dict[str, str]) -> list[str]:
    """Shell lines for --dry-run: the environment is written in front of the xcodebuild line."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return [str(steps[0]), f"{exports} {steps[1]}"]
