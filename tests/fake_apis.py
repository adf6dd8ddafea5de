"""Local stand-ins for the OpenAI moderation, Anthropic Messages and Hive sync-task APIs.

One threaded HTTP server on 127.0.0.1 speaks all three documented shapes, checks auth headers
(401 on a wrong key) and request bodies (400 when malformed), scores texts deterministically from
keywords, and injects faults on demand (429 with Retry-After, 500, a delay past the client's
timeout, non-JSON replies from "Claude"). It counts requests so tests can assert caching, retries,
concurrency and rate limits.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

OPENAI_CATEGORIES = [
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
    "violence", "violence/graphic",
]
HIVE_CLASSES = ["sexual", "hate", "violence", "bullying", "spam"]

# Category -> words that make it fire. A category named "normal" fires when nothing else does.
KEYWORDS = {
    "hate": ["hate"], "hatespeech": ["hate"], "hate/threatening": ["hate"],
    "harassment": ["idiot", "stupid"], "offensive": ["idiot", "stupid"], "bullying": ["idiot", "stupid"],
    "violence": ["kill"], "harassment/threatening": ["kill"], "sexual": ["sex"], "spam": ["buy now"],
}


def keyword_score(text: str, category: str, all_categories: list[str]) -> float:
    """Deterministic pseudo-probability: 0.9 on a keyword hit, a small text-dependent value else."""
    lowered = text.lower()
    if category == "normal":
        hit = not any(keyword_score(text, c, all_categories) > 0.5 for c in all_categories if c != "normal")
    else:
        hit = any(word in lowered for word in KEYWORDS.get(category, []))
    if hit:
        return 0.9
    jitter = int(hashlib.sha256(f"{category}|{text}".encode()).hexdigest()[:4], 16) / 0xFFFF
    return round(0.01 + 0.04 * jitter, 6)


def keyword_scores(text: str, categories: list[str]) -> dict[str, float]:
    return {c: keyword_score(text, c, categories) for c in categories}


def hive_severity(text: str, name: str) -> int:
    """Hive text classes are severity levels 0..3; -1 marks a head unsupported for the language."""
    if "zzunsupported" in text:
        return -1
    return 3 if any(w in text.lower() for w in KEYWORDS.get(name, [])) else 0


@dataclass
class Faults:
    """Faults applied to the next requests, in this order of precedence (each counts down)."""

    rate_limit: int = 0          # answer 429 with Retry-After
    retry_after: str = "0.05"
    server_error: int = 0        # answer 500
    slow: int = 0                # sleep `slow_s` before answering (past the client's timeout)
    slow_s: float = 1.0
    invalid_json: int = 0        # Claude replies with prose instead of JSON
    latency_s: float = 0.0       # every request takes this long (to observe concurrency)


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)   # path -> count (all requests)
    ok: Counter = field(default_factory=Counter)         # path -> count of 200 answers
    texts: Counter = field(default_factory=Counter)      # text -> times scored
    statuses: list[int] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: list[bytes] = field(default_factory=list)


class FakeAPI:
    """Run with `with FakeAPI(key="k") as api:`; `api.url` is the base_url for every kind."""

    def __init__(self, key: str = "test-key", faults: Faults | None = None):
        self.key = key
        self.faults = faults or Faults()
        self.stats = Stats()
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def total(self, path: str | None = None) -> int:
        with self.lock:
            return self.stats.requests[path] if path else sum(self.stats.requests.values())

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take_fault(self, name: str) -> bool:
        with self.lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


def _handler_for(api: FakeAPI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            with api.lock:
                api.stats.requests[self.path] += 1
                api.stats.started_at.append(time.monotonic())
                api.stats.in_flight += 1
                api.stats.max_in_flight = max(api.stats.max_in_flight, api.stats.in_flight)
            try:
                self._serve()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left
            finally:
                with api.lock:
                    api.stats.in_flight -= 1

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with api.lock:
                api.stats.bodies.append(body)
            route = {"/v1/moderations": _openai, "/v1/messages": _anthropic,
                     "/api/v2/task/sync": _hive}.get(self.path)
            try:
                if route is None:
                    raise ApiError(404, f"no route {self.path}")
                status, payload, headers = route(api, self.headers, body)
            except ApiError as error:
                status, payload, headers = error.status, {"error": {"message": error.message}}, {}
            if api.faults.latency_s:
                time.sleep(api.faults.latency_s)
            self._answer(status, payload, headers)

        def _answer(self, status: int, payload, headers: dict) -> None:
            with api.lock:
                api.stats.statuses.append(status)
                if status == 200:
                    api.stats.ok[self.path] += 1
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _faults(api: FakeAPI):
    """Shared fault injection; returns a response tuple or None to answer normally."""
    if api.take_fault("rate_limit"):
        return 429, {"error": {"message": "rate limit exceeded", "type": "rate_limit_error"}}, {
            "retry-after": api.faults.retry_after}
    if api.take_fault("server_error"):
        return 500, {"error": {"message": "internal error"}}, {}
    if api.take_fault("slow"):
        time.sleep(api.faults.slow_s)
    return None


def _json_body(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "body is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "body must be a JSON object")
    return value


def _openai(api: FakeAPI, headers, body: bytes):
    """POST /v1/moderations: {"model"?, "input": str | [str]} -> {"id", "model", "results": [...]}."""
    if headers.get("authorization") != f"Bearer {api.key}":
        # The real API echoes a masked key; echo it whole here to prove the client redacts it.
        raise ApiError(401, f"Incorrect API key provided: {headers.get('authorization', '')[7:]}")
    request = _json_body(body)
    texts = request.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, "'input' must be a string or a non-empty list of strings")
    if "model" in request and not isinstance(request["model"], str):
        raise ApiError(400, "'model' must be a string")
    if (fault := _faults(api)) is not None:
        return fault
    results = []
    for text in texts:
        scores = keyword_scores(text, OPENAI_CATEGORIES)
        results.append({"flagged": max(scores.values()) > 0.5,
                        "categories": {c: s > 0.5 for c, s in scores.items()},
                        "category_scores": scores,
                        "category_applied_input_types": {c: ["text"] for c in scores}})
        _count(api, text)
    return 200, {"id": "modr-fake", "model": request.get("model", "omni-moderation-latest"),
                 "results": results}, {}


def _anthropic(api: FakeAPI, headers, body: bytes):
    """POST /v1/messages: {model, max_tokens, system?, messages} -> {"content": [{"type": "text", ...}]}."""
    if headers.get("x-api-key") != api.key:
        raise ApiError(401, "invalid x-api-key")
    if headers.get("anthropic-version") != "2023-06-01":
        raise ApiError(400, "anthropic-version header missing or unknown")
    request = _json_body(body)
    messages = request.get("messages")
    if not isinstance(request.get("model"), str) or not isinstance(request.get("max_tokens"), int):
        raise ApiError(400, "'model' (string) and 'max_tokens' (integer) are required")
    if (not isinstance(messages, list) or not messages or messages[-1].get("role") != "user"
            or not isinstance(messages[-1].get("content"), str)):
        raise ApiError(400, "'messages' must end with a user message with string content")
    if (fault := _faults(api)) is not None:
        return fault
    # Like the real model, follow the categories the system prompt lists ("- name: definition").
    categories = re.findall(r"^- ([^:\n]+)", request.get("system", ""), flags=re.M)
    text = _between(messages[-1]["content"], "<message>\n", "\n</message>")
    _count(api, text)
    if api.take_fault("invalid_json"):
        reply = "I am sorry, I cannot classify this message."
    else:
        reply = _claude_reply(text, categories)
    return 200, {"id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"],
                 "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn",
                 "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 20}}, {}


def _claude_reply(text: str, categories: list[str]) -> str:
    """JSON in one of the shapes models really produce: bare, fenced, or after a sentence."""
    payload = json.dumps(keyword_scores(text, categories))
    style = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3
    return [payload, f"```json\n{payload}\n```", f"Here are the scores:\n{payload}"][style]


def _hive(api: FakeAPI, headers, body: bytes):
    """POST /api/v2/task/sync, form field text_data -> {"status": [{"response": {"output": [...]}}]}."""
    if (headers.get("authorization") or "").lower() != f"token {api.key}".lower():
        raise ApiError(401, "invalid token")
    if not (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        raise ApiError(400, "expected a form body")
    text = (parse_qs(body.decode(), keep_blank_values=True).get("text_data") or [""])[0]
    if not text:
        raise ApiError(400, "text_data is required")
    if (fault := _faults(api)) is not None:
        return fault
    _count(api, text)
    # One output entry per sentence, as Hive splits longer inputs into chunks.
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    output = [{"time": 0, "start_char_index": 0, "end_char_index": len(s),
               "classes": [{"class": c, "score": hive_severity(s, c)} for c in HIVE_CLASSES]}
              for s in sentences]
    return 200, {"id": "hive-fake", "code": 200, "status": [{
        "status": {"code": "0", "message": "SUCCESS"},
        "response": {"input": {"text": text}, "language": "EN", "moderated_classes": HIVE_CLASSES,
                     "text_filters": [], "pii_entities": [], "output": output}}]}, {}


def _between(text: str, start: str, end: str) -> str:
    if text.startswith(start) and text.endswith(end):
        return text[len(start):-len(end)]
    return text


def _count(api: FakeAPI, text: str) -> None:
    with api.lock:
        api.stats.texts[text] += 1
