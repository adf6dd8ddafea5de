"""The machinery every API teacher shares: `HttpTeacher` and its options.

API keys come from environment variables (never logged, cached or shown); scores go to an SQLite
cache (`http_cache.ScoreCache`); requests run on a thread pool bounded by `max_concurrency`, under
a client-side rate limit shared by the threads, with retries (exponential backoff and jitter,
honouring `Retry-After`). A vendor's teacher (`openai_teacher`, `anthropic_teacher`,
`hive_teacher`) only builds one request and parses one reply.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean
from edgemod.fsutil import sha256_text
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext
from edgemod.training.teachers.http_cache import ScoreCache

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- options


class HttpOptions(BaseModel):
    """Settings every API teacher accepts under `teachers[].options`."""

    model_config = ConfigDict(extra="forbid")

    api_key_env: str = Field(description="environment variable holding the API key")
    base_url: str = Field(description="API root; point it at a proxy or a local fake for tests")
    max_concurrency: int = Field(4, ge=1, le=64, description="requests in flight at once")
    requests_per_second: float | None = Field(5.0, gt=0, description="client-side cap; null: none")
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, description="retries on 429, 5xx, timeouts, connection errors")
    backoff_s: float = Field(1.0, ge=0, description="first retry wait; doubles each retry, with jitter")
    max_backoff_s: float = Field(60.0, ge=0)
    invalid_reply_retries: int = Field(2, ge=0, description="re-asks when a 200 reply cannot be read")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got '{url}'")
        return url.rstrip("/")


def parse_options(model: type[HttpOptions], spec: TeacherSpec) -> HttpOptions:
    """Validate `spec.options`, turning pydantic's error into one that says how to fix it."""
    try:
        return model.model_validate(spec.options)
    except ValidationError as error:
        known = list(model.model_fields)
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"]) or "options"
            if item["type"] == "extra_forbidden":
                problems.append(f"unknown option '{where}'{did_you_mean(str(item['loc'][-1]), known)}")
            else:
                problems.append(f"option '{where}': {item['msg']}")
        raise EdgemodError(f"teacher '{spec.name or spec.kind}': " + "; ".join(problems),
                           f"known {spec.kind} options: {', '.join(known)}") from None


# --------------------------------------------------------------------------- shared machinery


class _Secret:
    """An API key that prints as `***`, so a repr, log line or traceback cannot reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


class InvalidReply(Exception):
    """A 200 reply whose body does not hold usable scores (re-asked up to `invalid_reply_retries`)."""


class _Cancelled(Exception):
    """Another worker failed; stop retrying quietly."""


class RateLimiter:
    """A token bucket holding one token, in reservation form: each caller books the next free
    slot under a lock and sleeps outside it, so request starts are at least 1/rate apart across
    all threads without bursts."""

    def __init__(self, per_second: float | None):
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def _retry_after(response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date), else None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpTeacher:
    """Base of the API teachers. Subclasses set `kind`, `key_header` and implement `_request`
    (one HTTP request for a list of texts), `_parse` (the reply into rows of scores in
    `labels` order) and `_identity_config` (everything that changes scores besides the host)."""

    kind = "http"

    def __init__(self, options: HttpOptions, labels: list[str], multi_label: bool,
                 batch_size: int, context: TeacherContext):
        self.options = options
        self.labels = list(labels)
        self.multi_label = multi_label
        self.batch_size = batch_size  # texts per HTTP request
        self.host = urlsplit(options.base_url).netloc
        self._key: _Secret | None = None
        self._limiter = RateLimiter(options.requests_per_second)
        self._cache = ScoreCache(context.cache_dir / "http" / f"{self.kind}.sqlite")

    # ---- subclass hooks
    def _request(self, texts: list[str], key: str) -> dict[str, Any]:
        """Keyword arguments for `httpx.Client.post` (url, headers, json/data)."""
        raise NotImplementedError

    def _parse(self, body: Any, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def _identity_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _model_name(self) -> str:
        return getattr(self.options, "model", self.kind)

    # ---- Teacher protocol
    def identity(self) -> str:
        config = {"labels": self.labels, "multi_label": self.multi_label, **self._identity_config()}
        digest = sha256_text(json.dumps(config, sort_keys=True))[:16]
        return f"{self.kind}:{self._model_name()}@{self.host}#{digest}"

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        """Scores [len(items), len(labels)]; cached texts are never requested again."""
        identity = self.identity()
        shas = [sha256_text(item.text) for item in items]
        found = self._cache.get_many(identity, shas)
        todo = {sha: item.text for sha, item in zip(shas, items) if sha not in found}  # dedupes
        if todo:
            found.update(self._fetch(identity, todo, cached=len(set(shas)) - len(todo)))
        out = np.asarray([found[sha] for sha in shas], dtype=np.float32)
        return out.reshape(len(items), len(self.labels))

    def close(self) -> None:
        self._cache.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kind={self.kind!r}, model={self._model_name()!r}, "
                f"host={self.host!r}, labels={len(self.labels)})")

    # ---- fetching
    def _fetch(self, identity: str, todo: dict[str, str], cached: int) -> dict[str, list[float]]:
        """Request scores for uncached texts on a bounded pool; each finished request is cached
        at once, so an interrupted run keeps what it paid for."""
        key = self._api_key()
        pending = list(todo.items())
        chunks = [pending[i:i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        stop = threading.Event()
        started = time.monotonic()
        results: dict[str, list[float]] = {}
        with self._client() as client, ThreadPoolExecutor(
                max_workers=min(self.options.max_concurrency, len(chunks)),
                thread_name_prefix=f"edgemod-{self.kind}") as pool:
            futures = [pool.submit(self._score_chunk, client, key, identity, chunk, stop) for chunk in chunks]
            try:
                for future in as_completed(futures):
                    results.update(future.result())
            except BaseException:
                stop.set()  # the other workers give up at their next attempt
                for future in futures:
                    future.cancel()
                raise
        seconds = time.monotonic() - started
        log.debug("%s: %d texts in %d requests, %.2fs (%.1f items/s); %d from cache", self.kind,
                  len(todo), len(chunks), seconds, len(todo) / max(seconds, 1e-9), cached)
        return results

    def _client(self):
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("httpx", f"the '{self.kind}' API teacher") from None
        limits = httpx.Limits(max_connections=self.options.max_concurrency)
        return httpx.Client(base_url=self.options.base_url, timeout=self.options.timeout_s, limits=limits)

    def _score_chunk(self, client, key: _Secret, identity: str, chunk: list[tuple[str, str]],
                     stop: threading.Event) -> dict[str, list[float]]:
        texts = [text for _, text in chunk]
        problem = None
        for _ in range(self.options.invalid_reply_retries + 1):
            response = self._send(client, key, texts, stop)
            try:
                rows = self._parse(_decode(response), texts)
                break
            except InvalidReply as bad:
                problem = self._redact(str(bad), key)
                log.info("%s: unreadable reply (%s); asking again", self.kind, problem)
        else:
            raise EdgemodError(
                f"{self.kind}: the reply from {self.host} could not be read after "
                f"{self.options.invalid_reply_retries + 1} tries: {problem}",
                self._invalid_reply_hint())
        scored = {sha: [float(v) for v in row] for (sha, _), row in zip(chunk, rows)}
        self._cache.put_many(identity, scored)
        return scored

    def _invalid_reply_hint(self) -> str:
        return "raise options.invalid_reply_retries, or check options.base_url points at the real API"

    def _send(self, client, key: _Secret, texts: list[str], stop: threading.Event):
        """POST with retries; the first 2xx response."""
        import httpx

        attempts = self.options.max_retries + 1
        last = "no attempt"
        for attempt in range(1, attempts + 1):
            if stop.is_set():
                raise _Cancelled()
            self._limiter.wait()
            wait = None
            try:
                response = client.post(**self._request(texts, key.reveal()))
            except httpx.TimeoutException:
                last = f"timed out after {self.options.timeout_s:g}s"
            except httpx.TransportError as error:
                last = f"connection error ({type(error).__name__}: {self._redact(str(error), key)})"
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status != 429 and status < 500:
                    raise self._client_error(response, key)
                last, wait = f"HTTP {status}", _retry_after(response)
            if attempt == attempts:
                break
            delay = wait if wait is not None else self._backoff(attempt)
            log.info("%s: %s from %s; retry %d/%d in %.2fs", self.kind, last, self.host,
                     attempt, attempts - 1, delay)
            if stop.wait(delay):
                raise _Cancelled()
        raise self._exhausted_error(last, attempts)

    def _backoff(self, attempt: int) -> float:
        # Exponential, capped, with jitter so threads that failed together do not retry together.
        base = min(self.options.max_backoff_s, self.options.backoff_s * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)

    def _client_error(self, response, key: _Secret) -> EdgemodError:
        status = response.status_code
        detail = self._redact(response.text[:300].strip(), key)
        env = self.options.api_key_env
        if status in (401, 403):
            return EdgemodError(f"{self.kind}: {self.host} rejected the API key (HTTP {status}): {detail}",
                                f"check that ${env} holds a valid, active key for this API "
                                "(or set options.api_key_env to the variable that does)")
        return EdgemodError(f"{self.kind}: {self.host} refused the request (HTTP {status}): {detail}",
                            "check options.model, options.base_url and the other teacher options "
                            "against the provider's documentation")

    def _exhausted_error(self, last: str, attempts: int) -> EdgemodError:
        if last.startswith("timed out"):
            hint = "raise options.timeout_s, lower options.max_concurrency, or check the network"
        elif last.startswith("connection"):
            hint = "check options.base_url and the network, then run again (cached items are kept)"
        elif last.startswith("HTTP 5"):
            hint = ("the provider is failing: run again later (cached items are kept), lower "
                    "options.max_concurrency, or raise options.max_retries")
        else:
            hint = ("lower options.requests_per_second or options.max_concurrency, check your quota "
                    "and plan with the provider, or raise options.max_retries; cached items are kept")
        return EdgemodError(f"{self.kind}: {self.host} still failing after {attempts} attempts "
                            f"(last: {last})", hint)

    def _api_key(self) -> _Secret:
        # Read at the first request, not at construction: a fully cached run needs no key.
        if self._key is None:
            env = self.options.api_key_env
            value = os.environ.get(env, "").strip()
            if not value:
                raise EdgemodError(f"{self.kind} teacher: the API key variable ${env} is not set",
                                   f"export {env}=<your key> (or set options.api_key_env)")
            if not value.isascii() or any(ch.isspace() or not ch.isprintable() for ch in value):
                # httpx would put the key into its 'illegal header value' message.
                raise EdgemodError(f"{self.kind} teacher: ${env} contains spaces or non-ASCII characters",
                                   f"copy the key again into {env}, with nothing around it")
            self._key = _Secret(value)
        return self._key

    @staticmethod
    def _redact(text: str, key: _Secret) -> str:
        return text.replace(key.reveal(), "***") if key.reveal() else text


def _decode(response) -> Any:
    """The JSON body of a 2xx response; a proxy's HTML page or a cut-off body is re-asked."""
    try:
        return response.json()
    except ValueError:
        raise InvalidReply(f"the body is not JSON: {response.text[:200]!r}") from None


def number(value: Any, what: str) -> float:
    """`value` as a finite float; anything else is an unreadable reply."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidReply(f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidReply(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise InvalidReply(f"{what} is {value!r}")
    return number


def clip01(value: Any, what: str) -> float:
    """`value` as a number clipped to [0, 1]."""
    return min(1.0, max(0.0, number(value, what)))
