"""Published, versioned, signed model releases: publish, channels (promote / rollback), pull.

One layout on every backend (local folder, S3-compatible bucket, read-only HTTPS), so a bucket
behind a CDN is itself a registry apps can pull from:

    index.json                            catalogue for readers that cannot list (HTTPS, CDNs)
    <name>/history.jsonl                  append-only events: publish, promote, rollback (time, user, from → to)
    <name>/channels.json                  channel → version, derived from history.jsonl
    <name>/<version>/release.json         the release manifest; written LAST: its presence commits the release
    <name>/<version>/release.sig          ed25519 signature over the canonical JSON of release.json
    <name>/<version>/.upload/claim-N.json who uploads this version (create-only: one winner per N)
    <name>/<version>/android/ ios/ onnx/ shared/ model_card.md report.html gate.md gate.json bench.json

Versions are immutable. A publisher first wins a create-only claim, uploads, reads every file back
and checks its sha256, writes the signature, then creates release.json (create-only again). Readers
see a version only once release.json exists, so an interrupted upload is invisible. A publisher that
fails cleans up and marks its claim aborted, so a retry starts at once; one that was killed leaves
its claim "uploading", and a retry takes over after `stale_upload_after_s` (or at once with
`--reclaim`), removing the half-upload first. Index and channel updates are compare-and-swap loops.

Modules, by responsibility:

- `core` — `Registry` (reads, publish, promote, rollback, pull) and the one-call functions the CLI uses;
- `config` — the `registry:` section of edgemod.yaml, EDGEMOD_* variables and flags;
- `refs` — model names, channels, semantic versions, `name@version` / `name@channel`;
- `release` — a passing gate folder turned into release files and the manifest that is signed;
- `signing` — ed25519 key pairs, signing and verifying release manifests;
- `publish` — the claim, upload, read-back and commit of one version;
- `history` — the append-only history and the compare-and-swap loop for mutable keys;
- `pull` — verified, resumable downloads into a folder that appears in one rename;
- `store` — the storage protocol, with `store_local`, `store_s3` and `store_http` implementing it.
"""
