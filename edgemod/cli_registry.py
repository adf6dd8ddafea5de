"""`edgemod publish | promote | rollback | pull | list | show` and `edgemod registry keygen | check | prune`.

Mounted by edgemod/cli.py with `register_registry_commands(app)`. Commands only parse flags, build
the registry config (edgemod.yaml, then EDGEMOD_* variables, then these flags) and call
edgemod.registry.core. Nothing here imports torch, so pulls start fast on a build machine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)  # messages; results that scripts read (list, show --json) go to stdout
out_console = Console()
if not console.is_terminal:
    console.width = max(console.width, 140)
    out_console.width = max(out_console.width, 140)

RegistryOption = Annotated[str | None, typer.Option(
    "--registry", help="folder, s3://bucket/prefix or https://host/path (default: $EDGEMOD_REGISTRY, edgemod.yaml)")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="config file (default: $EDGEMOD_CONFIG or ./edgemod.yaml)")]
TrustedOption = Annotated[list[Path] | None, typer.Option(
    "--trusted-key", help="public key (PEM) or folder of them to accept; repeatable (default: $EDGEMOD_TRUSTED_KEYS)")]


def _config(config: Path | None, registry: str | None, **overrides):
    from edgemod.registry.config import load_config

    return load_config(config, url=registry, **overrides)


def publish_command(
    gate_run: Annotated[Path, typer.Argument(help="folder written by `edgemod gate` (its verdict must be pass)")],
    version: Annotated[str, typer.Option(help="semantic version, e.g. 1.4.0 or 2.0.0-rc.1; never reused")],
    name: Annotated[str | None, typer.Option(help="model name (default: the recipe's name)")] = None,
    channel: Annotated[str | None, typer.Option(help="also point this channel (stable, canary, ...) at the release")] = None,
    key: Annotated[Path | None, typer.Option(help="ed25519 private key (default: $EDGEMOD_SIGNING_KEY)")] = None,
    reclaim: Annotated[bool, typer.Option(help="take over an unfinished upload of this version whose publisher died")] = False,
    public: Annotated[bool, typer.Option(help="a release for everyone (e.g. the committed releases/): refuse a model "
                                              "trained on data whose licence does not allow shipping it")] = False,
    registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Publish a gated run as NAME@VERSION: per-platform models, golden vectors, reports, model card, signed manifest."""
    from edgemod.data_sources import data_sources, require_shippable
    from edgemod.manifest import read_manifest
    from edgemod.pipeline_publish import verify_gate
    from edgemod.registry.core import publish
    from edgemod.registry.refs import check_channel, check_name, check_version

    if public:
        recipe = read_manifest(gate_run, "gate").recipe
        require_shippable(data_sources(recipe.get("data", {})), f"the model of {gate_run}")
    name = read_manifest(gate_run, "gate").name if name is None else name  # `--name ""` is an error, not the default
    check_name(name)
    check_version(version)
    if channel is not None:
        check_channel(channel)
    verify_gate(gate_run)  # before the registry trusts gate.json's verdict
    result = publish(gate_run, name, version, channel, reclaim, _config(config, registry, signing_key=key))
    pointed = f", channel {result.channel} → {result.version}" if result.channel else ""
    console.print(f"[green]published[/green] {result.name}@{result.version}: {result.files} files, "
                  f"{result.bytes / 1e6:.2f} MB, signed by key {result.key_id}{pointed} in {result.seconds:.1f} s → {result.url}")


def promote_command(
    name: str, version: str,
    channel: Annotated[str, typer.Option(help="channel to move: stable, canary, or your own")],
    registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Point a channel at a published version (recorded in the model's history)."""
    from edgemod.registry.core import promote

    event = promote(name, version, channel, _config(config, registry))
    console.print(f"[green]promoted[/green] {name} {channel}: {event['from'] or '(new)'} → {event['to']}")


def rollback_command(
    name: str,
    channel: Annotated[str, typer.Option(help="channel to move back to its previous version")],
    registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Move a channel back to the version it pointed at before its latest promote."""
    from edgemod.registry.core import rollback

    event = rollback(name, channel, _config(config, registry))
    console.print(f"[green]rolled back[/green] {name} {channel}: {event['from']} → {event['to']}")


def pull_command(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@CHANNEL, e.g. text-hate@1.4.0, text-hate@stable")],
    platform: Annotated[str, typer.Option(help="android (TFLite), ios (Core ML), web (MediaPipe Tasks) or onnx")],
    out: Annotated[Path, typer.Option(help="folder to write (replaced atomically; a re-run resumes)")],
    trusted_key: TrustedOption = None, registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Download one platform's files of a release, verifying its ed25519 signature and every sha256."""
    from edgemod.registry.core import pull

    result = pull(ref, platform, out, _config(config, registry, trusted_keys=trusted_key))
    resumed = f", resumed {len(result.resumed)} partial file(s)" if result.resumed else ""
    console.print(f"[green]pulled[/green] {result.name}@{result.version} ({result.platform}): {result.files} files, "
                  f"{result.bytes / 1e6:.2f} MB ({result.downloaded / 1e6:.2f} MB downloaded{resumed}) in "
                  f"{result.seconds:.2f} s → {result.out}; signature (key {result.key_id}) and sha256 of every file verified")


def list_command(registry: RegistryOption = None, config: ConfigOption = None) -> None:
    """List published models, their versions and channels."""
    from rich.table import Table

    from edgemod.registry.core import list_models

    models = list_models(_config(config, registry))
    if not models:
        console.print("no models published yet")
        return
    table = Table("name", "versions", "channels", "latest")
    for name, entry in models.items():
        channels = ", ".join(f"{c} → {v}" for c, v in sorted(entry["channels"].items()))
        table.add_row(name, ", ".join(entry["versions"]), channels, entry["latest"])
    out_console.print(table)


def show_command(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@CHANNEL")],
    as_json: Annotated[bool, typer.Option("--json", help="print the release manifest as JSON")] = False,
    trusted_key: TrustedOption = None, registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Show a release (manifest summary, signature, files) or a model (versions, channels, history)."""
    from edgemod.registry.core import Registry
    from edgemod.registry.refs import parse_ref

    info = Registry(_config(config, registry, trusted_keys=trusted_key)).show(parse_ref(ref, need_target=False))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    elif "manifest" in info:
        _print_release(info)
    else:
        _print_model(info)


def _print_release(info: dict) -> None:
    from rich.table import Table

    m = info["manifest"]
    out_console.print(f"[bold]{m['name']}@{m['version']}[/bold]  published {m['created_at']} by {m['published_by']}  "
                      f"gate {m['gate']['verdict'].upper()}  channels: {', '.join(info['channels']) or '-'}")
    out_console.print(f"signature: {info['signature']}\nlocation: {info['location']}\nlabels: {', '.join(m['labels'])}")
    table = Table("platform", "artifact", "size MB", "macro-F1", "agreement vs fp32", "p50 ms (1 thread)", "parity")
    for name, artifact in m["artifacts"].items():
        metrics = m["metrics"]["artifacts"].get(name, {})
        table.add_row(artifact["platform"], name, str(artifact.get("size_mb")),
                      str((metrics.get("accuracy_at_thresholds") or {}).get("macro_f1", "-")),
                      str(metrics.get("decision_agreement_vs_fp32")), str(metrics.get("p50_ms_1thread")),
                      str(metrics.get("parity_mode") or ""))
    out_console.print(table)
    files = Table("file", "bytes", "platforms", "sha256")
    for f in m["files"]:
        files.add_row(f["path"], str(f["bytes"]), ", ".join(f["platforms"]) or "(registry only)", f["sha256"][:16])
    out_console.print(files)


def _print_model(info: dict) -> None:
    out_console.print(f"[bold]{info['name']}[/bold]  latest {info['latest']}")
    for version, summary in info["versions"].items():
        out_console.print(f"  {version}  {summary.get('created_at')}  {', '.join(summary.get('platforms', []))}")
    out_console.print("channels: " + (", ".join(f"{c} → {v}" for c, v in sorted(info["channels"].items())) or "-"))
    out_console.print("history:")
    for event in info["history"]:
        moved = (f"{event.get('channel')}: {event.get('from') or '(new)'} → {event.get('to')}"
                 if event.get("channel") else event.get("version") or ", ".join(event.get("versions", [])))
        out_console.print(f"  {event['at']}  {event['event']:8s} {moved}  by {event['by']}")


def keygen_command(
    out: Annotated[Path, typer.Option(help="folder for the key pair")],
    name: Annotated[str, typer.Option(help="file name stem")] = "edgemod-signing",
) -> None:
    """Create an ed25519 key pair: NAME.key signs publishes (keep it secret), NAME.pub verifies pulls (ship it)."""
    from edgemod.registry.signing import generate_keypair, load_trusted_keys

    private, public = generate_keypair(out, name)
    ident = next(iter(load_trusted_keys([public])))
    console.print(f"[green]key pair[/green] {private} (private, mode 600: EDGEMOD_SIGNING_KEY) and {public} "
                  f"(public: EDGEMOD_TRUSTED_KEYS), key id {ident}")


def trusts_command(
    key: Annotated[Path, typer.Argument(help="ed25519 private key (PEM) a release manager signs with")],
    trusted_key: TrustedOption = None, config: ConfigOption = None,
) -> None:
    """Exit 0 when the public half of KEY is among the trusted keys (so pulls will accept what it signs), 2 when not."""
    from edgemod.errors import EdgemodError
    from edgemod.registry.signing import key_id, load_private_key, load_trusted_keys

    trusted = load_trusted_keys(_config(config, None, trusted_keys=trusted_key).trusted_keys)
    ident = key_id(load_private_key(key).public_key())
    if ident not in trusted:
        raise EdgemodError(f"key {key} (id {ident}) is not among the trusted keys ({', '.join(sorted(trusted))})",
                           "add its public half beside the others (e.g. releases/keys/NAME.pub, committed) "
                           "or sign with a trusted key")
    console.print(f"[green]trusted[/green] key id {ident}")


def check_command(
    repair: Annotated[bool, typer.Option(help="complete or roll back what dead writers left; rebuild channels, index")] = False,
    deep: Annotated[bool, typer.Option(help="also verify every release's signature and the sha256 of every file "
                                            "(reads every byte; needs trusted keys)")] = False,
    trusted_key: TrustedOption = None, registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Check that every release is recorded once and channels point at releases (--deep: and that every file
    matches its signed sha256); exit 2 with a fix when not."""
    import time

    from edgemod.errors import EdgemodError
    from edgemod.registry.check import check
    from edgemod.registry.core import Registry

    target = Registry(_config(config, registry, trusted_keys=trusted_key))
    target._require_writable()
    target.require_found()
    started = time.perf_counter()
    report = check(target, repair, deep)
    seconds = time.perf_counter() - started
    for action in report.repaired:
        console.print(f"[green]repaired[/green] {action}")
    for intent in report.in_progress:
        console.print(f"in progress (live writer): {intent}")
    for finding in report.findings:
        how = f"--repair will {finding.fix}" if finding.repairable else f"by hand: {finding.fix}"
        console.print(f"[red]inconsistent[/red] {finding.where}: {finding.problem} ({how})", highlight=False)
    if report.findings:
        left = [f for f in report.findings if not f.repairable]
        if not left:
            hint = "run `edgemod registry check --repair`"
        elif len(left) < len(report.findings):
            hint = "fix the findings marked 'by hand', then run `edgemod registry check --repair`"
        else:  # --repair would do nothing
            hint = left[0].fix if len(left) == 1 else "fix the findings marked 'by hand', as each says"
        raise EdgemodError(f"{len(report.findings)} inconsistencies in {target.backend.url}", hint)
    read = (f"; every release's signature and the sha256 of its {report.files_read} files "
            f"({report.bytes_read / 1e6:.2f} MB, {report.releases_read} releases) verified in {seconds:.2f} s" if deep else "")
    console.print(f"[green]consistent[/green] {target.backend.url}: every release recorded once, channels point at "
                  f"releases{read}")


def prune_command(
    names: Annotated[list[str] | None, typer.Argument(help="models to prune (default: every model in the registry)")] = None,
    keep_previous: Annotated[int, typer.Option(help="earlier versions of each channel to keep for `rollback`")] = 1,
    dry_run: Annotated[bool, typer.Option(help="only say what would be removed")] = False,
    registry: RegistryOption = None, config: ConfigOption = None,
) -> None:
    """Remove old versions: keep what each channel points at, its KEEP_PREVIOUS earlier versions and
    unpromoted newer ones; recorded in history, so channels and rollbacks stay consistent."""
    from edgemod.registry.core import Registry
    from edgemod.registry.prune import prune

    target = Registry(_config(config, registry))
    target.require_found()
    for name in names or sorted(target.index()["models"]):
        plan = prune(target, name, keep_previous, dry_run)
        kept = ", ".join(f"{v} ({why})" for v, why in sorted(plan.kept.items(), key=lambda kv: kv[0]))
        verb = "would remove" if dry_run else "removed"
        gone = (f"{verb} {', '.join(plan.removed)} ({plan.bytes_removed / 1e6:.2f} MB)" if plan.removed
                else "nothing to remove")
        console.print(f"[green]{name}[/green]: kept {kept or '-'}; {gone}", highlight=False)


def register_registry_commands(app: typer.Typer) -> None:
    """Add publish, promote, rollback, pull, list, show and the `registry` group to `app` (once)."""
    if getattr(app, "_edgemod_registry_commands", False):
        return
    app._edgemod_registry_commands = True
    app.command("publish")(publish_command)
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)
    app.command("pull")(pull_command)
    app.command("list")(list_command)
    app.command("show")(show_command)
    registry_app = typer.Typer(help="Registry keys and maintenance.", no_args_is_help=True)
    registry_app.command("keygen")(keygen_command)
    registry_app.command("check")(check_command)
    registry_app.command("trusts")(trusts_command)
    registry_app.command("prune")(prune_command)
    app.add_typer(registry_app, name="registry",
                  help="Signing keys (keygen), consistency checks (check --repair, --deep) and old versions (prune).")
