"""A registry read over HTTPS: a folder or bucket served by a CDN, nginx or an S3 website."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_bytes
from edgemod.registry.store import Blob, check_key


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

    def leftovers(self) -> list[tuple[str, str]]:
        raise self._read_only()

    def remove_leftover(self, where: str) -> None:
        raise self._read_only()

    def sweep_leftovers(self) -> None:
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
