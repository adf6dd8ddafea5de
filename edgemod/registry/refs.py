"""Model names, channels and semantic versions, and the `name@version` / `name@channel` references
the CLI accepts."""
from __future__ import annotations

import re
from dataclasses import dataclass

from edgemod.errors import EdgemodError

# `\Z`, not `$`: `$` also matches before a final newline, and these strings become folder names.
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
CHANNEL = re.compile(r"^[a-z][a-z0-9_-]*\Z")
# Each is one folder or file name in every backend: well under the 255 bytes file systems allow.
MAX_NAME_LENGTH = 100
MAX_VERSION_LENGTH = 64
# Semantic Versioning 2.0.0, without build metadata: `1.4.0+a` and `1.4.0+b` would share a precedence,
# which makes "which one is 1.4.0?" ambiguous for an immutable registry.
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?\Z")


@dataclass(frozen=True)
class Ref:
    name: str
    version: str | None = None
    channel: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version or self.channel}" if (self.version or self.channel) else self.name


def parse_ref(text: str, need_target: bool = True) -> Ref:
    """`name@1.4.0` (a version) or `name@stable` (a channel); `name` alone when `need_target` is false."""
    name, sep, target = text.partition("@")
    check_name(name)
    if not sep:
        if need_target:
            raise EdgemodError(f"'{text}' names no version or channel", f"write {name}@1.4.0 or {name}@stable")
        return Ref(name)
    if SEMVER.match(target):
        return Ref(name, version=check_version(target))
    if CHANNEL.match(target):
        return Ref(name, channel=target)
    raise EdgemodError(f"'{target}' in '{text}' is neither a semantic version nor a channel name",
                       "versions look like 1.4.0 or 2.0.0-rc.1; channels like stable, canary")


def check_name(name: str) -> str:
    if not NAME.match(name or "") or len(name) > MAX_NAME_LENGTH:
        shown = f"'{name}'" if len(name or "") <= MAX_NAME_LENGTH else f"'{name[:20]}...' ({len(name)} characters)"
        raise EdgemodError(f"invalid model name {shown}",
                           f"use lowercase letters, digits, '.', '_' and '-', at most {MAX_NAME_LENGTH}, e.g. text-hate")
    return name


def check_version(version: str) -> str:
    if len(version or "") > MAX_VERSION_LENGTH:
        raise EdgemodError(f"version '{version[:20]}...' is {len(version)} characters long",
                           f"use a semantic version of at most {MAX_VERSION_LENGTH} characters, e.g. 1.4.0 or 2.0.0-rc.1")
    if not SEMVER.match(version or ""):
        hint = "drop the build metadata (+...); use a pre-release instead, e.g. 1.4.0-rc.1" if "+" in (version or "") \
            else "use MAJOR.MINOR.PATCH, optionally with a pre-release: 1.4.0, 2.0.0-rc.1"
        raise EdgemodError(f"'{version}' is not a semantic version", hint)
    return version


def check_channel(channel: str) -> str:
    if not CHANNEL.match(channel or "") or SEMVER.match(channel or "") or len(channel) > MAX_NAME_LENGTH:
        raise EdgemodError(f"invalid channel name '{channel}'",
                           "use lowercase letters, digits, '_' and '-': stable, canary, beta")
    return channel


def semver_key(version: str) -> tuple:
    """Semantic-version precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0."""
    match = SEMVER.match(version)
    if not match:
        return (-1,)
    core = tuple(int(match.group(i)) for i in (1, 2, 3))
    if match.group(4) is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in match.group(4).split("."))
    return (*core, 0, parts)
