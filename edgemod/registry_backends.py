"""Where a registry's bytes live: a local folder, an S3-compatible bucket, or (read-only) HTTPS.

Every backend stores the same keys (`index.json`, `<name>/channels.json`, `<name>/<version>/...`)
so that a bucket served by a CDN is itself a readable registry. Writers need two conditional
writes, which is all the concurrency control the registry uses:

- `put(key, data, if_absent=True)`: create-only (S3 `If-None-Match: *`, local `link()`), so two
  publishers racing for one key get exactly one winner;
- `put(key, data, if_match=token)`: compare-and-swap on the token `get` returned (S3 ETag with
  `If-Match`; local: a lock file around a content-hash comparison), for index and channel updates.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import sha256_bytes

CHUNK = 1 << 16  # small enough that a dropped download keeps nearly everything it received, for resuming
ABSENT = ""  # an if_match token meaning "the key must not exist yet"


class PreconditionFailed(Exception):
    """A conditional write lost: the key exists (if_absent) or changed since it was read (if_match)."""


@dataclass
class Blob:
    data: bytes
    token: str  # S3 ETag or local content hash: what `put(..., if_match=)` compares against


class Backend(Protocol):
    url: str
    writable: bool

    def get(self, key: str) -> Blob | None: ...
    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def stream(self, key: str, start: int = 0) -> contextlib.AbstractContextManager[tuple[int, Iterator[bytes]]]: ...


def check_key(key: str) -> str:
    """Keys are relative POSIX paths without `..`: a tampered manifest must not reach outside the registry."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or "\\" in key or key != path.as_posix():
        raise EdgemodError(f"invalid registry key '{key}'", "keys are relative paths like name/1.0.0/android/model.tflite")
    return key


def open_backend(url: str, s3_endpoint_url: str | None = None) -> Backend:
    """`s3://bucket/prefix`, `http(s)://host/path` (read-only) or a local folder (`file://` optional)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise EdgemodError(f"registry URL '{url}' names no bucket", "use s3://BUCKET/optional/prefix")
        return S3Backend(bucket, prefix, s3_endpoint_url)
    if url.startswith(("http://", "https://")):
        return HttpBackend(url)
    if "://" in url and not url.startswith("file://"):
        raise EdgemodError(f"unsupported registry URL '{url}'",
                           "use a folder path, file:///path, s3://bucket/prefix or https://host/path")
    return LocalBackend(Path(url.removeprefix("file://")).expanduser())


# ---------------------------------------------------------------------------------------------- local


class LocalBackend:
    """A folder. Create-only writes use `link()` of a finished temp file, so a key appears complete
    or not at all; compare-and-swap holds `<key>.lock` (O_EXCL) while it compares and renames."""

    writable = True
    lock_timeout_s = 30.0
    stale_lock_s = 60.0  # a lock older than this belongs to a crashed writer (writes take milliseconds)

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get(self, key: str) -> Blob | None:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Blob(data, sha256_bytes(data))

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_match is not None:
            with self._locked(path):
                current = self.get(key)
                if (current.token if current else ABSENT) != if_match:
                    raise PreconditionFailed(key)
                self._write(path, data, exclusive=False)
            return
        self._write(path, data, exclusive=if_absent)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_beside(target)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes, exclusive: bool) -> None:
        tmp = self._temp_beside(path)
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:
                try:
                    os.link(tmp, path)  # fails if the key exists; the key is never seen half-written
                except FileExistsError:
                    raise PreconditionFailed(str(path)) from None
            else:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _temp_beside(path: Path) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        return Path(name)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock = path.with_name(path.name + ".lock")
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                break
            except FileExistsError:
                if self._break_stale(lock):
                    continue
                if time.monotonic() > deadline:
                    raise EdgemodError(f"{lock} has been held for {self.lock_timeout_s:.0f} s",
                                       "another edgemod is writing; if none is running, delete the .lock file") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)

    def _break_stale(self, lock: Path) -> bool:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < self.stale_lock_s:
            return False
        # Rename first so that two waiters cannot both delete (and one of them a fresh lock).
        aside = lock.with_name(f"{lock.name}.stale.{os.getpid()}.{time.monotonic_ns()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(lock, aside)
            aside.unlink()
        return True

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith((".tmp", ".lock")) and ".lock.stale." not in path.name:
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        path = self._path(key)
        if not path.is_file():
            raise EdgemodError(f"{key} is missing from registry {self.url}", "the release is incomplete; republish it")
        with open(path, "rb") as handle:
            handle.seek(start)
            yield start, iter(lambda: handle.read(CHUNK), b"")


# ---------------------------------------------------------------------------------------------- S3


class S3Backend:
    """Any S3-compatible store through boto3 (AWS, MinIO, R2, moto). Conditional writes need a store
    that honours `If-None-Match: *` and `If-Match` on PutObject (AWS since 2024, MinIO, moto)."""

    writable = True

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client=None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or _s3_client(endpoint_url)
        from botocore.exceptions import BotoCoreError, ClientError

        self.errors = (BotoCoreError, ClientError)  # what a failed request raises

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> Blob | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        except self.errors as error:  # access denied, missing bucket, unreachable endpoint, ...
            raise _s3_error(error, self.url) from None
        return Blob(response["Body"].read(), response["ETag"])

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        condition = {}
        if if_absent or if_match == ABSENT:
            condition["IfNoneMatch"] = "*"
        elif if_match is not None:
            condition["IfMatch"] = if_match
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
        except self.errors as error:
            if _s3_code(error) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise PreconditionFailed(key) from None
            raise _s3_error(error, self.url) from None

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as handle:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=handle)
            except self.errors as error:
                raise _s3_error(error, self.url) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except self.errors as error:
            raise _s3_error(error, self.url) from None

    def list(self, prefix: str) -> list[str]:
        # A listing prefix may end in "/" (a folder), so it is not checked as a key.
        root = f"{self.prefix}/" if self.prefix else ""
        full, strip = root + prefix, len(root)
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        except self.errors as error:
            raise _s3_error(error, self.url) from None
        return sorted(keys)

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except self.errors as error:
            if _s3_code(error) == "InvalidRange":  # the partial file is already as long as the object
                yield 0, iter(())
                return
            raise _s3_error(error, self.url) from None
        body = response["Body"]
        try:
            honoured = start if response.get("ContentRange") or not start else 0
            yield honoured, body.iter_chunks(CHUNK)
        finally:
            body.close()


def _s3_client(endpoint_url: str | None):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MissingDependencyError("boto3", "an S3 registry") from None
    # Path-style addressing works with every S3-compatible server (MinIO, moto, R2) and with AWS.
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"), config=config)


def _s3_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status or "")


def _s3_error(error: Exception, url: str) -> EdgemodError:
    code = _s3_code(error)
    if code in ("NoSuchBucket",):
        return EdgemodError(f"bucket of {url} does not exist", "create it, or fix registry.url / EDGEMOD_REGISTRY")
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        return EdgemodError(f"access to {url} denied ({code})",
                            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE with rights on the bucket")
    if type(error).__name__ in ("NoCredentialsError",):
        return EdgemodError(f"no credentials for {url}", "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
    if type(error).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return EdgemodError(f"cannot reach the S3 endpoint of {url}: {error}",
                            "check registry.s3_endpoint_url / AWS_ENDPOINT_URL and the network")
    return EdgemodError(f"S3 request to {url} failed: {error}", "check the bucket, the endpoint and the credentials")


# ---------------------------------------------------------------------------------------------- HTTP


class HttpBackend:
    """Read-only: a registry folder or bucket served over HTTPS (a CDN, nginx, S3 website). Needs only
    static files; listing comes from `index.json`. Resumes downloads with `Range` requests."""

    writable = False

    def __init__(self, base_url: str, timeout_s: float = 30.0):
        self.url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = None

    def _client(self):
        """One connection pool for all requests (a pull fetches a dozen files from one host)."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout_s, follow_redirects=True)
        return self._http

    def get(self, key: str) -> Blob | None:
        import httpx

        try:
            response = self._client().get(f"{self.url}/{check_key(key)}")
        except httpx.HTTPError as error:
            raise EdgemodError(f"cannot reach {self.url}: {error}", "check the registry URL and the network") from None
        if response.status_code == 404:
            return None
        _raise_for_status(response, key)
        return Blob(response.content, response.headers.get("etag", sha256_bytes(response.content)))

    def put(self, key: str, data: bytes, **_: object) -> None:
        raise self._read_only()

    def put_file(self, key: str, path: Path) -> None:
        raise self._read_only()

    def delete(self, key: str) -> None:
        raise self._read_only()

    def list(self, prefix: str) -> list[str]:
        raise self._read_only()

    def _read_only(self) -> EdgemodError:
        return EdgemodError(f"{self.url} is a read-only HTTP registry",
                            "publish, promote and roll back against the folder or bucket it serves "
                            "(EDGEMOD_REGISTRY=s3://bucket/prefix or a path)")

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        import httpx

        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            with self._client().stream("GET", f"{self.url}/{check_key(key)}", headers=headers) as response:
                if response.status_code == 416:  # the partial file already holds every byte
                    yield start, iter(())
                    return
                _raise_for_status(response, key)
                # A server that ignores Range answers 200 with the whole file: restart from byte 0.
                # Unsized iteration hands over bytes as they arrive, so a dropped connection keeps them.
                yield (start if response.status_code == 206 else 0), response.iter_bytes()
        except httpx.HTTPError as error:
            raise EdgemodError(f"download of {key} from {self.url} failed: {error}",
                               "run the same pull again: finished files are kept and a partial file resumes") from None


def _raise_for_status(response, key: str) -> None:
    if response.status_code == 404:
        raise EdgemodError(f"{key} is missing from the HTTP registry", "the release is incomplete or the URL is wrong")
    if response.status_code >= 400:
        raise EdgemodError(f"GET {key} answered HTTP {response.status_code}", "check the registry URL and its access rules")
