"""Published, versioned, signed model releases: publish, channels (promote / rollback), pull.

One layout on every backend (local folder, S3-compatible bucket, read-only HTTPS), so a bucket
behind a CDN is itself a registry apps can pull from:

    index.json                            catalogue for readers that cannot list (HTTPS, CDNs)
    .pending/<name>@<target>.<op>.<id>.json  write-ahead intents of publishes, promotes, rollbacks in flight
    .tmp/<host>-<pid>-<random>.tmp        temp files of a local folder's writers (never inside a version)
    <name>/history.jsonl                  append-only events: publish, promote, rollback (time, user, from → to)
    <name>/channels.json                  channel → version, derived from history.jsonl
    <name>/<version>/release.json         the release manifest; written LAST: its presence commits the release
    <name>/<version>/release.sig          ed25519 signature over the canonical JSON of release.json
    <name>/<version>/.upload/claim-N.json who uploads this version (create-only: one winner per N)
    <name>/<version>/android/ ios/ onnx/ shared/ model_card.md report.html gate.md gate.json bench.json

Versions are immutable; index.json and channels.json are views derived from the releases and history,
updated with compare-and-swap loops.

The commit protocol, like a database's log. Every writer first replays the intents of dead writers
(below), then writes its own intent (create-only) naming its steps, takes them (each idempotent),
and deletes the intent:

- publish: claim `.upload/claim-N.json` (create-only, naming the intent) → release files → read back
  every sha256 → release.sig → release.json (create-only: THE COMMIT POINT) → claim "committed" →
  history `publish` event → history `promote` event (with --channel) → channels.json → index.json;
- promote / rollback: history event carrying the intent id (THE COMMIT POINT) → channels.json → index.json.

An intent is dead when it is marked abandoned, when its host is this host and its pid is gone (or
reused: the process start time differs), or, for another host, after `stale_upload_after_s`. A dead
intent that reached its commit point is completed (every later step is skipped when already done:
a release is published once in history, a channel moved once per intent); one that did not is rolled
back (a publish's half-upload deleted and its claim fenced by a newer "rolled-back" claim). A writer
that fails or is interrupted (SIGINT) settles its own intent the same way before it exits. So at any
instant a reader sees no release or a committed one, and every committed release ends up in history
and the index exactly once, with the channel moved as asked: at once, or when the next writer (or
`edgemod registry check --repair`) runs. Intents of live writers are never touched and never waited for.

Locks (local folders only; a bucket uses conditional PUTs): `<key>.lock` is an flock, which the kernel
releases the instant its holder dies, so a crashed writer's lock is taken over at once, never after a
fixed wait; the file records the holder's host, pid and start time for messages and `check`. Temp
files live in `.tmp/`, named after their writer. Before it replays intents, every writer removes the
temp files of dead pids and every lock file nobody holds, since it may never take that lock itself
(a publish without --channel does not write channels.json; a no-op leaves the index alone).
A killed upload's claim stays "uploading": a retry on the same host takes it over at once when its
pid is gone, elsewhere after `stale_upload_after_s` (or at once with `--reclaim`).

`edgemod registry check` reports what breaks these invariants (a release without its history or
index entry, an entry without its release, a channel pointing at no release, channels.json out of
step with history, dead writers' intents, half-uploads, stale locks, stray temp files) and exits 2
with a `fix:` line; `--repair` completes or rolls back what it can. `--deep` also reads every committed
release: its signature, and each listed file against its signed sha256. The named steps above are
crash points (`crashpoints.py`): the fault-injection tests kill a real writer at each one.

Modules, by responsibility:

- `core` — `Registry` (reads, publish, promote, rollback, pull) and the one-call functions the CLI uses;
- `config` — the `registry:` section of edgemod.yaml, EDGEMOD_* variables and flags;
- `refs` — model names, channels, semantic versions, `name@version` / `name@channel`;
- `release` — a passing gate folder turned into release files and the manifest that is signed;
- `signing` — ed25519 key pairs, signing and verifying release manifests;
- `publish` — the claim, upload, read-back and commit of one version;
- `history` — the append-only history and the compare-and-swap loop for mutable keys;
- `journal` — write-ahead intents: begin, complete, roll back, replay dead writers' intents;
- `check` — `edgemod registry check [--repair] [--deep]`: the invariants above, their repair, file contents;
- `holders` — host, pid and start time of a writer, and whether it is still alive;
- `crashpoints` — named steps where the fault-injection tests kill a writer (a testing aid);
- `documents` — checked readers of index.json, channels.json, history.jsonl and release manifests;
- `pull` — verified, resumable downloads into a folder that appears in one rename, never through a planted link;
- `store` — the storage protocol, with `store_local`, `store_s3` and `store_http` implementing it.
"""
