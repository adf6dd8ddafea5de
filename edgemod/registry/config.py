"""Where the registry is and which keys sign and verify: the `registry:` section of edgemod.yaml,
then EDGEMOD_* variables, then command-line flags."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgemod.errors import EdgemodError, validation_lines, yaml_problem

CONFIG_FILE = "edgemod.yaml"


def default_registry_url() -> str:
    """The embedded default: a folder in the user's data directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return str(Path(base) / "edgemod" / "registry")


class RegistryConfig(BaseModel):
    """The `registry:` section of edgemod.yaml; EDGEMOD_* variables and command-line flags override it."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(default_factory=default_registry_url, description="folder, s3://bucket/prefix or https://host/path")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible server (MinIO, R2, ...); default AWS")
    signing_key: Path | None = Field(None, description="ed25519 private key (PEM) used by publish")
    trusted_keys: list[Path] = Field(default_factory=list, description="public keys (PEM files or folders) pull accepts")
    stale_upload_after_s: float = Field(900.0, gt=0, description="an unfinished upload older than this may be taken over")
    user: str | None = Field(None, description="name recorded in history; default user@host")


ENV = {"url": "EDGEMOD_REGISTRY", "s3_endpoint_url": "EDGEMOD_S3_ENDPOINT_URL", "signing_key": "EDGEMOD_SIGNING_KEY",
       "trusted_keys": "EDGEMOD_TRUSTED_KEYS", "user": "EDGEMOD_USER"}


def load_config(config_file: str | Path | None = None, **overrides: Any) -> RegistryConfig:
    """edgemod.yaml (`config_file`, $EDGEMOD_CONFIG or ./edgemod.yaml), then EDGEMOD_* variables, then `overrides`."""
    data = _config_file_section(config_file)
    for key, variable in ENV.items():
        value = os.environ.get(variable)
        if value:
            data[key] = [p for p in value.split(os.pathsep) if p] if key == "trusted_keys" else value
    data.update({k: v for k, v in overrides.items() if v not in (None, [], ())})
    try:
        return RegistryConfig.model_validate(data)
    except ValidationError as error:
        raise EdgemodError(_config_errors(error),
                           f"edit the `registry:` section of {CONFIG_FILE} or the EDGEMOD_* variables") from None


def _config_file_section(config_file: str | Path | None) -> dict[str, Any]:
    import yaml

    from edgemod.fsutil import read_user_text

    path = Path(config_file or os.environ.get("EDGEMOD_CONFIG") or CONFIG_FILE)
    if not path.exists():
        if config_file or os.environ.get("EDGEMOD_CONFIG"):
            raise EdgemodError(f"config file {path} not found", "check the path, or drop it to use the defaults")
        return {}
    try:
        loaded = yaml.safe_load(read_user_text(path, "config file")) or {}
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an int of over 4300 digits
        raise EdgemodError(f"{path} is not valid YAML: {yaml_problem(error)}",
                           "fix the YAML at that position, or drop --config / EDGEMOD_CONFIG to use the defaults") from None
    if not isinstance(loaded, dict):
        raise EdgemodError(f"{path} must be a mapping at the top level, not a {type(loaded).__name__}", _EXAMPLE)
    section = loaded.get("registry") or {}
    if not isinstance(section, dict):
        raise EdgemodError(f"{path}: `registry:` must be a mapping, not a {type(section).__name__}", _EXAMPLE)
    for key in ("url", "signing_key"):
        if section.get(key) is not None and not isinstance(section[key], str):
            raise EdgemodError(f"{path}: registry.{key} must be a string, not {section[key]!r}", _EXAMPLE)
    keys = section.get("trusted_keys")
    if keys and not (isinstance(keys, str) or (isinstance(keys, list) and all(isinstance(k, str) for k in keys))):
        raise EdgemodError(f"{path}: registry.trusted_keys must be a path or a list of paths, not {keys!r}", _EXAMPLE)
    # Paths in the file are relative to the file, not to wherever the command runs.
    if section.get("signing_key"):
        section["signing_key"] = str(path.parent / Path(section["signing_key"]).expanduser())
    if keys:
        section["trusted_keys"] = [str(path.parent / Path(k).expanduser()) for k in ([keys] if isinstance(keys, str) else keys)]
    url = section.get("url")
    if isinstance(url, str) and "://" not in url and not Path(url).expanduser().is_absolute():
        section["url"] = str(path.parent / url)
    return dict(section)


_EXAMPLE = "write e.g.\nregistry:\n  url: s3://bucket/models\n  trusted_keys: [keys/edgemod-signing.pub]"


def _config_errors(error: ValidationError) -> str:
    return "invalid registry config:\n" + validation_lines(error, RegistryConfig.model_fields)
