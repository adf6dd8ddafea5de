"""MediaPipe Tasks in a browser: the golden vectors through mobile_harness/web in headless Chromium.

A web app runs a Tasks-ready artifact (export target `mediapipe`) in `@mediapipe/tasks-text` or
`@mediapipe/tasks-vision` (WebAssembly, CPU): Tasks tokenizes the raw text, or decodes and resizes
the image, itself, and the app applies the shipped thresholds. This module serves the page, its
pinned node_modules and a web folder from one localhost server, drives the page with
`web/golden_check.mjs` (playwright-core) and compares the page's decisions with the golden ones.

A web folder is what `edgemod pull NAME@VER --platform web` writes; `web_folder_from_export`
lays one out from an export folder:

    tasks.json        {"schema": "edgemod.tasks/1", "name", "version", "task": "text"|"image", "labels",
                       "thresholds": "thresholds.json", "artifacts": [{"name", "model", "golden"}],
                       "image": {"crop_pct"} (images only: the centre crop an app passes as region of interest)}
    thresholds.json
    mediapipe/model_*.tflite
    mediapipe/golden/mediapipe_*.json
"""
from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from edgemod.console import activity
from edgemod.errors import EdgemodError
from edgemod.registry.release import TASKS_SCHEMA, tasks_index

WEB_DIR = Path(__file__).resolve().parent / "web"
RELEASE_ROUTE = "/release/"  # where the server mounts the web folder; the page's default ?release=
NODE_PACKAGES = ("@mediapipe/tasks-text", "@mediapipe/tasks-vision", "playwright-core")
NPM_CI = "npm ci --prefix mobile_harness/web"
BROWSER_TIMEOUT_S = 600


# ------------------------------------------------------------------------------ web folder


def web_folder_from_export(export_dir: str | Path, out_dir: str | Path) -> Path:
    """Lay out the web folder of an export's `mediapipe` artifacts under `out_dir` (files copied)."""
    from edgemod.manifest import read_manifest

    export_dir, out_dir = Path(export_dir), Path(out_dir)
    manifest = read_manifest(export_dir, "export")
    records = {name: r for name, r in manifest.details.get("artifacts", {}).items() if r.get("target") == "mediapipe"}
    if not records:
        raise EdgemodError(f"{export_dir} has no artifact with target 'mediapipe'",
                           "add `{target: mediapipe}` to the recipe's export list and re-run `edgemod export`")
    task = "image" if manifest.recipe.get("task") == "image-classification" else "text"
    artifacts = [_copy_artifact(export_dir, out_dir, name, record) for name, record in records.items()]
    shutil.copyfile(export_dir / "thresholds.json", out_dir / "thresholds.json")
    crop_pct = json.loads((export_dir / "preprocess.json").read_text())["crop_pct"] if task == "image" else None
    tasks = tasks_index(manifest.name, None, manifest.recipe.get("task", ""), list(manifest.details["labels"]),
                        artifacts, crop_pct)
    (out_dir / "tasks.json").write_text(json.dumps(tasks, indent=2) + "\n", encoding="utf-8")
    return out_dir


def _copy_artifact(export_dir: Path, out_dir: Path, name: str, record: dict) -> dict:
    model = f"mediapipe/{Path(record['file']).name}"
    golden = f"mediapipe/golden/{Path(record['golden']['file']).name}"
    for source, target in ((record["file"], model), (record["golden"]["file"], golden)):
        (out_dir / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_dir / source, out_dir / target)
    return {"name": name, "model": model, "golden": golden}


def read_tasks(web_folder: str | Path) -> dict:
    """tasks.json of a web folder, checked for what the page and the check rely on."""
    path = Path(web_folder) / "tasks.json"
    if not path.is_file():
        raise EdgemodError(f"no tasks.json in {web_folder}",
                           "pass a web folder (`edgemod pull NAME@VER --platform web --out DIR`) or an export folder")
    tasks = json.loads(path.read_text(encoding="utf-8"))
    if tasks.get("schema") != TASKS_SCHEMA or tasks.get("task") not in ("text", "image") or not tasks.get("artifacts"):
        raise EdgemodError(f"{path} is not an {TASKS_SCHEMA} file with a text/image task and artifacts",
                           "pull the release again with `--platform web`")
    return tasks


@contextlib.contextmanager
def web_folder_for(folder: str | Path) -> Iterator[Path]:
    """`folder` itself when it is a web folder; for an export folder, a temporary web folder built from it."""
    import tempfile

    folder = Path(folder)
    if (folder / "tasks.json").is_file() or not (folder / "manifest.json").is_file():
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="edgemod-web-") as scratch:
        yield web_folder_from_export(folder, scratch)


# ------------------------------------------------------------------------------ server


class _Handler(SimpleHTTPRequestHandler):
    """The page and its node_modules at /, the web folder at /release/."""

    # Module scripts and wasm streaming compilation refuse other MIME types; don't trust /etc/mime.types.
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".tflite": "application/octet-stream", ".json": "application/json",
                      ".css": "text/css", ".html": "text/html"}

    def __init__(self, *args, release: Path, **kwargs):
        self.release = release
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        if not path.startswith(RELEASE_ROUTE):
            return super().translate_path(path)
        page_dir, self.directory = self.directory, str(self.release)
        try:
            return super().translate_path(path[len(RELEASE_ROUTE) - 1:])
        finally:
            self.directory = page_dir

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a re-exported model must not come from the cache
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(web_folder: str | Path, port: int = 0) -> Iterator[str]:
    """Serve the page with `web_folder` at /release/ on 127.0.0.1 (port 0: a free one); yields the page URL."""
    handler = functools.partial(_Handler, release=Path(web_folder).resolve())
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="edgemod-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html?release={RELEASE_ROUTE}"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------ tools


def require_tools(chromium: str | Path = "/usr/bin/chromium") -> str:
    """The node executable, after checking Chromium and the pinned node_modules; errors name the fix."""
    node = shutil.which("node")
    if node is None:
        raise EdgemodError("the browser check needs Node.js, which is not installed",
                           f"install Node.js 20 (e.g. `apt-get install -y nodejs npm`), then `{NPM_CI}`")
    if shutil.which(str(chromium)) is None:
        raise EdgemodError(f"no Chromium at {chromium}",
                           "`apt-get install -y --no-install-recommends chromium` (Debian), or pass --chromium PATH")
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())["packages"]
    for package in NODE_PACKAGES:
        installed = WEB_DIR / "node_modules" / package / "package.json"
        if not installed.is_file():
            raise EdgemodError(f"{package} is not installed in {WEB_DIR / 'node_modules'}", NPM_CI)
        version, pinned = json.loads(installed.read_text())["version"], lock[f"node_modules/{package}"]["version"]
        if version != pinned:
            raise EdgemodError(f"{package} {version} is installed but package-lock.json pins {pinned}", NPM_CI)
    return node


# ------------------------------------------------------------------------------ the check


def check_web(web_folder: str | Path, chromium: str | Path = "/usr/bin/chromium",
              screenshot: str | Path | None = None) -> dict:
    """Every golden item of every artifact in tasks.json through the page in headless Chromium.

    Returns:
        {"folder", "task", "chromium", "artifacts": {name: {"items", "agree", "mismatches", "near_threshold",
        "max_abs_score_diff", "tolerance", "page_errors"}}, "passed"}. `agree` counts every item
        whose decision matches; `mismatches` lists the items that must match (threshold_margin above
        the tolerance) but do not, or failed; `near_threshold` lists the others, flipped or not.
    """
    web_folder = Path(web_folder).resolve()
    tasks = read_tasks(web_folder)
    node = require_tools(chromium)
    with serve(web_folder) as url:
        raw = _run_browser(node, url, web_folder, chromium, screenshot)
    artifacts = {report["artifact"]: compare(report) for report in raw["artifacts"]}
    return {"folder": str(web_folder), "task": tasks["task"], "chromium": raw["chromium"],
            "screenshot": str(screenshot) if screenshot else None, "artifacts": artifacts,
            "passed": all(not a["mismatches"] and a["items"] > 0 for a in artifacts.values())}


def _run_browser(node: str, url: str, web_folder: Path, chromium, screenshot) -> dict:
    command = [node, str(WEB_DIR / "golden_check.mjs"), "--url", url, "--folder", str(web_folder),
               "--chromium", str(chromium)]
    if screenshot:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        command += ["--screenshot", str(Path(screenshot).resolve())]
    try:
        with activity("web: golden vectors in headless Chromium"):
            done = subprocess.run(command, cwd=WEB_DIR, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgemodError(f"the browser check took over {BROWSER_TIMEOUT_S} s",
                           "open the page by hand (`edgemod harness web FOLDER --serve`) and look at its console") from None
    if done.returncode != 0:
        raise EdgemodError(f"the browser check failed: {done.stderr.strip()[-2000:]}",
                           "open the page by hand (`edgemod harness web FOLDER --serve`) and look at its console")
    return json.loads(done.stdout)


def _same(decision, expected) -> bool:
    """Labels compare as they are; multi-label decisions as sets."""
    if isinstance(expected, list):
        return isinstance(decision, list) and sorted(decision) == sorted(expected)
    return decision == expected


def compare(report: dict) -> dict:
    """One artifact's page results against its golden decisions (and scores, for information)."""
    tolerance = report["tolerance"]
    agree, mismatches, near, worst = 0, [], [], 0.0
    for item in report["items"]:
        same = "error" not in item and _same(item["decision"], item["expected_decision"])
        agree += same
        if "error" not in item:
            worst = max([worst, *(abs(a - b) for a, b in zip(item["scores"], item["expected_scores"]))])
        row = {k: item.get(k) for k in ("key", "kind", "decision", "expected_decision", "margin", "scores",
                                        "expected_scores", "error")}
        if item["margin"] is not None and item["margin"] <= tolerance:
            near.append({**row, "flipped": not same})
        elif not same:
            mismatches.append(row)
    return {"items": len(report["items"]), "agree": agree, "mismatches": mismatches, "near_threshold": near,
            "max_abs_score_diff": round(worst, 6), "tolerance": tolerance, "page_errors": report["page_errors"]}
