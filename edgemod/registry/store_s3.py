"""The registry in any S3-compatible bucket through boto3 (AWS, MinIO, R2, moto)."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.registry.store import ABSENT, CHUNK, Blob, PreconditionFailed, check_key


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

    def leftovers(self) -> list[tuple[str, str]]:
        return []  # every PUT is atomic and there are no lock files: a killed writer leaves only its intent

    def remove_leftover(self, where: str) -> None:
        self.delete(where)

    def sweep_leftovers(self) -> None:
        pass

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except self.errors as error:
            if _s3_code(error) == "InvalidRange":  # the partial file is already as long as the object: keep it
                yield start, iter(())
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
