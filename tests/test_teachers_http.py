"""API teachers against local fake servers: shapes, retries, timeouts, caching, limits, secrecy."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from fake_apis import OPENAI_CATEGORIES, FakeAPI, hive_severity, keyword_scores

from edgemod.errors import EdgemodError
from edgemod.recipe import parse_recipe
from edgemod.training.teachers import anthropic_teacher, hive_teacher, openai_teacher  # noqa: F401  (registers the kinds)
from edgemod.training.teachers.base import TEACHERS, Item, TeacherContext, build_teacher

KEY = "sk-test-SECRET-4f9a7c2e1b"
LABELS = ["normal", "offensive", "hatespeech"]
TEXTS = ["have a nice day", "you are an idiot", "I hate them all", "kill it. then leave"]
ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "hive": "HIVE_API_KEY"}
# Small waits everywhere so the whole file runs in seconds.
FAST = {"backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0, "requests_per_second": None}


def make_teacher(kind, api, tmp_path, recipe_multi_label=False, **options):
    options = {"base_url": api.url, **FAST, **options}
    if kind == "hive":
        options.setdefault("classes", ["hate", "bullying", "violence"])
    spec = {"kind": kind, "options": options}
    recipe = parse_recipe({
        "name": "t", "labels": LABELS, "multi_label": recipe_multi_label,
        "data": {"train": "x:train", "validation": "x:validation", "test": "x:test"},
        "teachers": [spec], "student": {"arch": "text_cnn_small"},
    })
    return build_teacher(recipe.teachers[0], TeacherContext(recipe=recipe, cache_dir=tmp_path / "cache"))


def items(texts=TEXTS):
    return [Item(f"x:train:{i}", t) for i, t in enumerate(texts)]


@pytest.fixture
def api(monkeypatch):
    for env in ENV.values():
        monkeypatch.setenv(env, KEY)
    with FakeAPI(key=KEY) as server:
        yield server


def test_kinds_registered():
    assert {"openai", "anthropic", "hive"} <= set(TEACHERS)


# --------------------------------------------------------------------------- shapes and values


def test_openai_scores_and_batches(api, tmp_path):
    teacher = make_teacher("openai", api, tmp_path, batch_size=3)
    probs = teacher.predict_proba(items())
    assert teacher.labels == OPENAI_CATEGORIES and teacher.multi_label
    assert probs.shape == (4, 13) and probs.dtype == np.float32
    expected = [[keyword_scores(t, OPENAI_CATEGORIES)[c] for c in OPENAI_CATEGORIES] for t in TEXTS]
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert probs[2, OPENAI_CATEGORIES.index("hate")] == pytest.approx(0.9)
    assert api.total("/v1/moderations") == 2  # 4 texts, 3 per request


def test_openai_custom_categories_and_unknown_category(api, tmp_path):
    teacher = make_teacher("openai", api, tmp_path, categories=["hate", "violence"])
    assert teacher.predict_proba(items()).shape == (4, 2)
    wrong = make_teacher("openai", api, tmp_path, categories=["hate", "violenc"])
    with pytest.raises(EdgemodError, match="did you mean 'violence'"):
        wrong.predict_proba(items())


def test_anthropic_single_label_normalised(api, tmp_path):
    teacher = make_teacher("anthropic", api, tmp_path,
                           definitions={"hatespeech": "attacks a protected group"})
    probs = teacher.predict_proba(items())
    assert teacher.labels == LABELS and not teacher.multi_label
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert probs.argmax(axis=1).tolist() == [0, 1, 2, 0]
    raw = keyword_scores(TEXTS[1], LABELS)
    np.testing.assert_allclose(probs[1], np.array([raw[c] for c in LABELS]) / sum(raw.values()), atol=1e-6)
    assert api.total("/v1/messages") == 4  # one text per request
    assert "attacks a protected group" in api.stats.bodies[0].decode()


def test_anthropic_multi_label_follows_recipe_and_categories(api, tmp_path):
    teacher = make_teacher("anthropic", api, tmp_path, recipe_multi_label=True,
                           categories=["hate", "violence", "sexual"])
    probs = teacher.predict_proba(items())
    assert teacher.multi_label and teacher.labels == ["hate", "violence", "sexual"]
    assert probs[2, 0] == pytest.approx(0.9) and probs[3, 1] == pytest.approx(0.9)
    assert probs[0].max() < 0.1  # not normalised


def test_single_category_needs_multi_label(api, tmp_path):
    with pytest.raises(EdgemodError, match="single-label classifier needs 2"):
        make_teacher("anthropic", api, tmp_path, categories=["toxic"])
    assert make_teacher("anthropic", api, tmp_path, categories=["hate"], multi_label=True).multi_label


def test_empty_input_and_wal_mode(api, tmp_path):
    teacher = make_teacher("openai", api, tmp_path)
    assert teacher.predict_proba([]).shape == (0, 13)
    assert teacher._cache._run("PRAGMA journal_mode", [])[0][0] == "wal"
    assert api.total() == 0


def test_claude_reply_parsing_is_robust():
    from edgemod.training.teachers.anthropic_teacher import extract_json_object

    assert extract_json_object('```json\n{"a": 0.2}\n```') == {"a": 0.2}
    assert extract_json_object('Sure! {not json} then {"a": 1, "b": {"c": 2}} done') == {"a": 1, "b": {"c": 2}}
    assert extract_json_object("no object here") is None


def test_hive_scores_max_over_chunks_and_scale(api, tmp_path):
    teacher = make_teacher("hive", api, tmp_path)
    probs = teacher.predict_proba(items(TEXTS + ["zzunsupported hate"]))
    assert teacher.labels == ["hate", "bullying", "violence"] and teacher.multi_label
    assert probs.shape == (5, 3)
    # "kill it. then leave": two chunks, only the first mentions kill -> max is severity 3 -> 1.0
    assert probs[3].tolist() == [0.0, 0.0, 1.0]
    assert probs[2].tolist() == [1.0, 0.0, 0.0] and probs[1].tolist() == [0.0, 1.0, 0.0]
    assert probs[4].tolist() == [0.0, 0.0, 0.0]  # -1 (unsupported head) counts as nothing found
    assert hive_severity("I hate", "hate") == 3


def test_hive_unknown_class_and_missing_classes(api, tmp_path):
    teacher = make_teacher("hive", api, tmp_path, classes=["hat"])
    with pytest.raises(EdgemodError, match="no class 'hat'.*did you mean 'hate'"):
        teacher.predict_proba(items())
    spec_error = pytest.raises(EdgemodError, match="classes")
    with spec_error:
        make_teacher("hive", api, tmp_path, classes=[])


def test_unknown_option_is_a_clear_error(api, tmp_path):
    with pytest.raises(EdgemodError, match="unknown option 'max_concurency'.*did you mean 'max_concurrency'"):
        make_teacher("openai", api, tmp_path, max_concurency=2)


# --------------------------------------------------------------------------- retries and errors


def test_429_then_success_honours_retry_after(api, tmp_path):
    api.faults.rate_limit, api.faults.retry_after = 2, "0.2"
    teacher = make_teacher("hive", api, tmp_path, backoff_s=0.0, max_backoff_s=0.0)
    started = time.monotonic()
    probs = teacher.predict_proba(items(TEXTS[:1]))
    assert time.monotonic() - started >= 0.38  # two waits of Retry-After 0.2s, not the 0s backoff
    assert probs.shape == (1, 3)
    assert api.stats.statuses == [429, 429, 200]


def test_500_is_retried(api, tmp_path):
    api.faults.server_error = 2
    probs = make_teacher("openai", api, tmp_path).predict_proba(items())
    assert probs.shape == (4, 13)
    assert api.stats.statuses == [500, 500, 200]


def test_timeout_then_success(api, tmp_path):
    api.faults.slow, api.faults.slow_s = 1, 0.6
    teacher = make_teacher("anthropic", api, tmp_path, timeout_s=0.2)
    assert teacher.predict_proba(items(TEXTS[:1])).shape == (1, 3)
    assert api.total("/v1/messages") == 2


def test_timeouts_exhausted_raise_clear_error(api, tmp_path):
    api.faults.slow, api.faults.slow_s = 10, 0.5
    teacher = make_teacher("hive", api, tmp_path, timeout_s=0.15, max_retries=1)
    with pytest.raises(EdgemodError) as error:
        teacher.predict_proba(items(TEXTS[:1]))
    text = str(error.value)
    assert "after 2 attempts" in text and "timed out after 0.15s" in text and "timeout_s" in text


def test_exhausted_429_names_status_attempts_and_fix(api, tmp_path):
    api.faults.rate_limit, api.faults.retry_after = 10, "0"
    teacher = make_teacher("openai", api, tmp_path, max_retries=2)
    with pytest.raises(EdgemodError) as error:
        teacher.predict_proba(items())
    text = str(error.value)
    assert "HTTP 429" in text and "after 3 attempts" in text and "requests_per_second" in text
    assert "quota" in text
    assert api.total() == 3


def test_connection_refused_is_retried_then_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeAPI(key=KEY) as server:
        url = server.url
    teacher = make_teacher("openai", server, tmp_path, base_url=url, max_retries=1)
    with pytest.raises(EdgemodError, match="connection error.*after 2 attempts|after 2 attempts.*connection"):
        teacher.predict_proba(items())


def test_401_is_immediate_and_names_env_var(api, tmp_path, monkeypatch):
    monkeypatch.setenv("HIVE_API_KEY", "wrong-key")
    with pytest.raises(EdgemodError, match=r"(?s)HTTP 401.*\$HIVE_API_KEY"):
        make_teacher("hive", api, tmp_path, max_concurrency=2).predict_proba(
            items([f"text {i}" for i in range(20)]))
    assert api.total() <= 4  # not retried, and the queued texts are not sent after the failure


def test_400_is_immediate(api, tmp_path):
    teacher = make_teacher("hive", api, tmp_path)
    with pytest.raises(EdgemodError, match="HTTP 400.*text_data is required"):
        teacher.predict_proba(items([""]))  # the fake, like Hive, wants a non-empty text_data
    assert api.total() == 1


def test_missing_key_names_env_var(api, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(EdgemodError, match=r"\$ANTHROPIC_API_KEY is not set"):
        make_teacher("anthropic", api, tmp_path).predict_proba(items())
    monkeypatch.setenv("MY_KEY", KEY)
    teacher = make_teacher("anthropic", api, tmp_path, api_key_env="MY_KEY")
    assert teacher.predict_proba(items()).shape == (4, 3)
    assert api.total() == 4  # the first teacher never reached the server


def test_claude_invalid_json_retried_then_error(api, tmp_path):
    api.faults.invalid_json = 1
    teacher = make_teacher("anthropic", api, tmp_path)
    assert teacher.predict_proba(items(TEXTS[:1])).shape == (1, 3)
    assert api.total() == 2
    api.faults.invalid_json = 10
    teacher = make_teacher("anthropic", api, tmp_path, invalid_reply_retries=1)
    with pytest.raises(EdgemodError, match="could not be read after 2 tries.*no JSON object"):
        teacher.predict_proba(items(TEXTS[1:2]))
    assert api.total() == 4


# --------------------------------------------------------------------------- cache


def test_cache_hit_means_no_second_request(api, tmp_path):
    first = make_teacher("openai", api, tmp_path).predict_proba(items())
    assert api.total() == 1
    again = make_teacher("openai", api, tmp_path)  # a new instance reads the same file
    np.testing.assert_array_equal(again.predict_proba(items()), first)
    np.testing.assert_array_equal(again.predict_proba(items(TEXTS[::-1])), first[::-1])
    assert api.total() == 1
    again.predict_proba(items(TEXTS + ["a new text", "a new text"]))
    assert api.total() == 2 and api.stats.texts["a new text"] == 1  # only the new text, once
    assert (tmp_path / "cache" / "http" / "openai.sqlite").exists()


def test_fully_cached_run_needs_no_key(api, tmp_path, monkeypatch):
    make_teacher("hive", api, tmp_path).predict_proba(items())
    monkeypatch.delenv("HIVE_API_KEY")
    assert make_teacher("hive", api, tmp_path).predict_proba(items()).shape == (4, 3)


def test_identity_changes_with_what_changes_scores(api, tmp_path):
    base = make_teacher("anthropic", api, tmp_path)
    identity = base.identity()
    assert identity.startswith("anthropic:claude-haiku-4-5@127.0.0.1:")
    assert make_teacher("anthropic", api, tmp_path).identity() == identity
    assert make_teacher("anthropic", api, tmp_path, model="claude-x").identity() != identity
    assert make_teacher("anthropic", api, tmp_path, definitions={"normal": "benign"}).identity() != identity
    assert make_teacher("anthropic", api, tmp_path, categories=["a", "b"]).identity() != identity
    assert KEY not in identity


def test_corrupt_cache_file_is_moved_aside_with_clear_error(api, tmp_path):
    path = tmp_path / "cache" / "http" / "openai.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EdgemodError) as error:
        make_teacher("openai", api, tmp_path)
    text = str(error.value)
    assert str(path) in text and "moved aside" in text and "run again" in text
    assert not path.exists() and list(path.parent.glob("openai.sqlite.corrupt-*"))
    assert make_teacher("openai", api, tmp_path).predict_proba(items()).shape == (4, 13)


# --------------------------------------------------------------------------- concurrency and rate


def test_concurrency_limit_respected(api, tmp_path):
    api.faults.latency_s = 0.1
    teacher = make_teacher("hive", api, tmp_path, max_concurrency=2)
    teacher.predict_proba(items([f"text {i}" for i in range(8)]))
    assert api.stats.max_in_flight == 2
    assert api.total() == 8


def test_rate_limit_respected(api, tmp_path):
    teacher = make_teacher("anthropic", api, tmp_path, max_concurrency=4, requests_per_second=20)
    started = time.monotonic()
    teacher.predict_proba(items([f"text {i}" for i in range(10)]))
    elapsed = time.monotonic() - started
    starts = sorted(api.stats.started_at)
    assert starts[-1] - starts[0] >= 9 / 20 * 0.9  # 10 requests at 20/s span at least 0.45s
    assert elapsed < 5
    # No bursts, even with 4 threads: the i-th request starts no earlier than i/20 s after the first.
    # (Judged on the cumulative schedule, not on single gaps: a request the server happens to see late
    # shortens the gap to the next one without any burst.)
    schedule = np.arange(len(starts)) / 20
    assert (np.asarray(starts) - starts[0] >= schedule * 0.9 - 0.01).all()


# --------------------------------------------------------------------------- secrecy


def test_key_never_leaks(api, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    teacher = make_teacher("openai", api, tmp_path)
    api.faults.rate_limit = 1
    teacher.predict_proba(items())
    assert KEY not in repr(teacher) and KEY not in teacher.identity()
    assert KEY not in repr(teacher._key) and KEY not in str(vars(teacher))
    # A wrong key that the server echoes back in its 401 message must be redacted.
    other_key = "sk-other-SECRET-77aa"
    monkeypatch.setenv("OPENAI_API_KEY", other_key)
    with pytest.raises(EdgemodError) as error:
        make_teacher("openai", api, tmp_path).predict_proba(items(["new text"]))
    assert other_key not in str(error.value) and "***" in str(error.value)
    assert other_key not in repr(error.value) and other_key not in str(error.value.hint)
    cause = error.value
    while cause is not None:  # nor anywhere in the exception chain
        assert other_key not in str(cause)
        cause = cause.__cause__ or cause.__context__
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert KEY not in logged and other_key not in logged
    assert "retry 1/5" in caplog.text and "items/s" in caplog.text
    for file in (tmp_path / "cache").rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert KEY.encode() not in data and other_key.encode() not in data


def test_key_with_whitespace_is_rejected_without_echo(api, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad key\tSECRET")
    with pytest.raises(EdgemodError) as error:
        make_teacher("openai", api, tmp_path).predict_proba(items())
    assert "SECRET" not in str(error.value) and "OPENAI_API_KEY" in str(error.value)
