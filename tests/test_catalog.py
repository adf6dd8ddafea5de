"""The catalog: real-data loads, bad-row handling, validation, converters vs the mirror, fetch, CLI."""
from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from edgemod.catalog import (
    CATALOG_ENV,
    DATA_DIR_ENV,
    BadRowsWarning,
    load_catalog,
    load_split,
)
from edgemod.cli_data import data_app
from edgemod.dataset_converters import (
    convert_dataset,
    fetch_dataset,
    get_converter,
    list_converters,
    register_converter,
)
from edgemod.dataset_validation import validate_dataset
from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get(DATA_DIR_ENV) or ROOT / "../shared/data").resolve()
needs_mirror = pytest.mark.skipif(not (MIRROR / "text").is_dir(), reason=f"no data mirror at {MIRROR}")
EXACT_CONVERTERS = ["hatexplain", "olid", "davidson"]


# ---------------------------------------------------------------------------------------------
# Helpers: a tiny catalog in tmp_path


def tiny_catalog(tmp_path: Path, csv_text: str, **entry_overrides):
    """A catalog with one text set 'tiny' (labels a, b; splits train, test) whose file is `csv_text`."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "tiny.csv").write_text(csv_text, encoding="utf-8")
    entry = {
        "description": "tiny test set",
        "task": "text-classification",
        "format": "csv",
        "file": "tiny.csv",
        "columns": {"id": "id", "text": "text", "label": "label", "split": "split"},
        "labels": ["a", "b"],
        "splits": ["train", "test"],
        "license": "test",
        "raw": {"converter": "hatexplain", "files": []},
        **entry_overrides,
    }
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump({"mirrors": ["data"], "datasets": {"tiny": entry}}), encoding="utf-8")
    return load_catalog(path)


GOOD = "id,text,label,split\n1,hello there,a,train\n2,good day,b,train\n3,see you,a,test\n"


@pytest.fixture(autouse=True)
def _no_data_dir_override(monkeypatch):
    # A developer's EDGEMOD_DATA_DIR must not shadow the tiny catalogs' files.
    if os.environ.get(DATA_DIR_ENV) and Path(os.environ[DATA_DIR_ENV]).resolve() != MIRROR:
        monkeypatch.delenv(DATA_DIR_ENV)


# ---------------------------------------------------------------------------------------------
# Real data


@needs_mirror
def test_hatexplain_test_split():
    frame = load_split("hatexplain:test")
    assert len(frame) == 1924
    assert set(frame["label"]) == {"normal", "offensive", "hatespeech"}
    assert list(frame.columns[:6]) == ["key", "id", "text", "label", "split", "dataset"]
    assert frame["key"].is_unique and frame["key"].str.startswith("hatexplain:test:").all()


@needs_mirror
def test_olid_train_and_davidson_single_split():
    olid = load_split("olid:train")
    assert len(olid) == 13240 and set(olid["label"]) == {"NOT", "OFF"}
    assert {"subtask_b", "subtask_c"} <= set(olid.columns)
    davidson = load_split("davidson")
    assert set(davidson["split"]) == {"all"} and len(davidson) == 24783
    assert len(load_split("davidson:all", max_items=10)) == 10


@needs_mirror
def test_weapons_gives_absolute_paths_without_opening_images():
    frame = load_split("weapons:test")
    assert "text" not in frame and {"path", "source"} <= set(frame.columns)
    first = frame.iloc[0]
    assert Path(first["path"]).is_absolute() and Path(first["path"]).is_file()
    assert first["key"] == f"weapons:test:{first['id']}" and not Path(first["id"]).is_absolute()


def test_unknown_split_suggests_the_right_one():
    with pytest.raises(EdgemodError, match="did you mean 'validation'"):
        load_split("hatexplain:valdation")


# ---------------------------------------------------------------------------------------------
# Bad rows


def test_unknown_label_names_label_row_and_fix(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD + "4,bad one,c,train\n")
    with pytest.raises(EdgemodError) as err:
        load_split("tiny:train", catalog)
    message = str(err.value)
    assert "'c'" in message and "data rows [4]" in message and "tiny.csv" in message
    assert "labels of 'tiny' in datasets.yaml" in err.value.hint and "on_bad_row: skip" in err.value.hint


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("4,,a,train", "missing or empty text"),
        ('4,"   ",a,train', "missing or empty text"),
        ("4," + "x" * 30 + ",a,train", "longer than 20 characters"),
        (",no id here,a,train", "missing id"),
        ("4,odd split,a,dev", "split 'dev' not in the catalog's splits"),
    ],
)
def test_bad_rows_are_errors_by_default(tmp_path, row, problem):
    catalog = tiny_catalog(tmp_path, GOOD + row + "\n")
    with pytest.raises(EdgemodError, match=problem):
        load_split("tiny", catalog, max_text_chars=20)


def test_skip_drops_bad_rows_with_counts(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD + "4,,a,train\n5,bad,c,train\n6,worse,c,test\n")
    with pytest.warns(BadRowsWarning, match=r"skipped 3 bad row\(s\): 1 missing or empty text, 2 label"):
        frame = load_split("tiny", catalog, on_bad_row="skip")
    assert frame["id"].tolist() == ["1", "2", "3"]


def test_bad_rows_in_other_splits_do_not_block_a_split(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD + "4,bad,c,train\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_split("tiny:test", catalog)["id"].tolist() == ["3"]


def test_missing_file_names_paths_and_fixes(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD, file="nowhere/tiny.csv")
    with pytest.raises(EdgemodError) as err:
        load_split("tiny", catalog)
    assert str(tmp_path / "data" / "nowhere" / "tiny.csv") in str(err.value)
    assert DATA_DIR_ENV in err.value.hint and "edgemod data fetch tiny" in err.value.hint


def test_empty_file_and_bad_on_bad_row(tmp_path):
    catalog = tiny_catalog(tmp_path, "")
    with pytest.raises(EdgemodError, match="is empty"):
        load_split("tiny", catalog)
    with pytest.raises(EdgemodError, match="unknown on_bad_row 'drop'"):
        load_split("tiny", catalog, on_bad_row="drop")


def test_malformed_csv_names_the_file(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD + "4,too,many,fields,here\n")
    with pytest.raises(EdgemodError, match=r"cannot parse dataset file .*tiny\.csv"):
        load_split("tiny", catalog)
    report = validate_dataset("tiny", catalog)
    assert not report.ok and report.malformed_rows == [4]


# ---------------------------------------------------------------------------------------------
# Validation


def test_validate_flags_leakage_and_duplicates_as_warnings(tmp_path):
    rows = "4,Hello   THERE,b,test\n5,good day,b,train\n"
    report = validate_dataset("tiny", tiny_catalog(tmp_path, GOOD + rows))
    assert report.ok and report.rows_per_split == {"train": 3, "test": 2}
    assert report.label_distribution["test"] == {"a": 1, "b": 1}
    [across] = report.duplicates_across_splits
    assert across.where == "train/test" and across.texts == 1 and across.rows == [1, 4]
    [within] = report.duplicates_within_split
    assert within.where == "train" and within.rows == [2, 5]
    assert any("leakage" in w for w in report.warnings)
    json.loads(report.model_dump_json())


def test_validate_errors_on_bad_rows_and_sha(tmp_path):
    catalog = tiny_catalog(tmp_path, GOOD + "4,x,c,train\n1,dup id,a,test\n", sha256="0" * 64)
    report = validate_dataset("tiny", catalog)
    assert not report.ok and report.sha256_ok is False and report.duplicate_ids == 1
    [issue] = report.bad_rows
    assert issue.kind == "unknown_label" and issue.values == {"c": 1} and issue.rows == [4]


def test_validate_reports_missing_images(tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "a.jpg").write_bytes(b"")
    csv_text = "path,label,split,source\nimages/a.jpg,a,train,s\nimages/gone.jpg,b,test,s\n"
    catalog = tiny_catalog(
        tmp_path, csv_text, task="image-classification", format="image_folder",
        columns={"path": "path", "label": "label", "split": "split", "source": "source"},
    )
    report = validate_dataset("tiny", catalog)
    assert not report.ok and report.missing_files == 1 and report.missing_file_examples[0].endswith("gone.jpg")
    assert load_split("tiny:train", catalog)["id"].tolist() == ["images/a.jpg"]


@needs_mirror
def test_validate_real_sms_spam_finds_cross_split_leakage():
    report = validate_dataset("sms_spam")
    assert report.ok and report.sha256_ok
    assert report.rows_per_split == {"train": 3902, "validation": 836, "test": 836}
    assert {d.where for d in report.duplicates_across_splits} >= {"train/test"}


# ---------------------------------------------------------------------------------------------
# Converters against the mirror


def test_converter_registry():
    assert set(list_converters()) >= {"hatexplain", "olid", "davidson", "sms_spam"}
    with pytest.raises(EdgemodError, match="did you mean 'olid'"):
        get_converter("olld")
    with pytest.raises(ValueError, match="registered twice"):
        register_converter("olid")(lambda raw: None)


@needs_mirror
@pytest.mark.parametrize("name", EXACT_CONVERTERS)
def test_converter_reproduces_mirror_byte_for_byte(tmp_path, name):
    catalog = load_catalog()
    out = convert_dataset(name, catalog, raw_root=MIRROR, out=tmp_path / f"{name}.csv")
    assert get_converter(name).reproduces_mirror
    assert sha256_file(out) == catalog.entry(name).sha256 == sha256_file(MIRROR / catalog.entry(name).file)


@needs_mirror
def test_sms_spam_converter_same_rows_documented_split(tmp_path):
    out = convert_dataset("sms_spam", raw_root=MIRROR, out=tmp_path / "sms.csv")
    ours = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("id")
    shipped = pd.read_csv(MIRROR / "text/sms_spam/sms_spam.csv", dtype=str, keep_default_na=False).set_index("id")
    shipped = shipped.loc[ours.index]
    assert len(ours) == 5574 and (ours["text"] == shipped["text"]).all() and (ours["label"] == shipped["label"]).all()
    fractions = ours["split"].value_counts(normalize=True)
    assert abs(fractions["train"] - 0.70) < 0.02 and abs(fractions["test"] - 0.15) < 0.02
    norm = ours["text"].str.lower().str.split().str.join(" ")
    assert (ours.groupby(norm)["split"].nunique() == 1).all()  # no message in two splits


# ---------------------------------------------------------------------------------------------
# Fetch from a local HTTP server that serves the mirror


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror_server():
    handler = functools.partial(_QuietHandler, directory=str(MIRROR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def served_catalog(base_url: str):
    """The real catalog with every raw URL pointing at `base_url`."""
    catalog = load_catalog().model_copy(deep=True)
    for entry in catalog.datasets.values():
        for raw in entry.raw.files if entry.raw else []:
            raw.url = f"{base_url}/{raw.file}"
    return catalog


@needs_mirror
def test_fetch_downloads_verifies_and_converts(tmp_path, mirror_server):
    catalog = served_catalog(mirror_server)
    result = fetch_dataset("olid", catalog, dest=tmp_path, timeout=10)
    assert result.matches_catalog and len(result.downloaded) == 5
    assert sha256_file(tmp_path / "text/olid/olid.csv") == catalog.entry("olid").sha256
    again = fetch_dataset("olid", catalog, dest=tmp_path, timeout=10)
    assert again.downloaded == [] and len(again.reused) == 5
    assert not list(tmp_path.rglob("*.tmp"))


@needs_mirror
def test_fetch_sha_mismatch_leaves_no_file(tmp_path, mirror_server):
    catalog = served_catalog(mirror_server)
    catalog.entry("davidson").raw.files[0].sha256 = "0" * 64
    with pytest.raises(EdgemodError, match="partial file was deleted"):
        fetch_dataset("davidson", catalog, dest=tmp_path, timeout=10)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@needs_mirror
def test_fetch_http_error(tmp_path, mirror_server):
    catalog = served_catalog(mirror_server)
    catalog.entry("sms_spam").raw.files[0].url = f"{mirror_server}/no/such/file"
    with pytest.raises(EdgemodError, match="answered HTTP 404"):
        fetch_dataset("sms_spam", catalog, dest=tmp_path, timeout=10)


@needs_mirror
def test_fetch_sms_spam_warns_that_it_differs_from_the_mirror(tmp_path, mirror_server, monkeypatch):
    catalog = served_catalog(mirror_server)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(catalog.model_dump(mode="json", exclude={"path"})), encoding="utf-8")
    monkeypatch.setenv(CATALOG_ENV, str(path))
    result = CliRunner().invoke(data_app, ["fetch", "sms_spam", "--dest", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "datasets.yaml pins" in result.output and "not comparable" in result.output and "EDGEMOD_DATA_DIR=" in result.output
    assert (tmp_path / "d/text/sms_spam/sms_spam.csv").is_file()


def test_fetch_unreachable_host_suggests_mirror(tmp_path):
    catalog = served_catalog("http://127.0.0.1:9")
    with pytest.raises(EdgemodError, match="cannot reach http://127.0.0.1:9/") as err:
        fetch_dataset("sms_spam", catalog, dest=tmp_path, timeout=5)
    assert DATA_DIR_ENV in err.value.hint


def test_fetch_mirror_only_dataset(tmp_path):
    with pytest.raises(EdgemodError, match="mirror only"):
        fetch_dataset("weapons", dest=tmp_path)


# ---------------------------------------------------------------------------------------------
# CLI


@needs_mirror
def test_cli_list_show_validate(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(data_app, ["list"])
    assert listed.exit_code == 0 and "hatexplain" in listed.output and "weapons" in listed.output
    shown = runner.invoke(data_app, ["show", "olid"])
    assert shown.exit_code == 0 and "13240" in shown.output
    report_path = tmp_path / "report.json"
    validated = runner.invoke(data_app, ["validate", "davidson", "--json", str(report_path)])
    assert validated.exit_code == 0 and json.loads(report_path.read_text())["rows"] == 24783
    fetched = runner.invoke(data_app, ["fetch", "weapons", "--dest", str(tmp_path / "d")])
    assert fetched.exit_code == 2 and "mirror only" in fetched.output


def test_cli_validate_fails_on_bad_data_and_unknown_name(tmp_path, monkeypatch):
    tiny_catalog(tmp_path, GOOD + "4,x,c,train\n")
    monkeypatch.setenv(CATALOG_ENV, str(tmp_path / "datasets.yaml"))
    runner = CliRunner()
    assert runner.invoke(data_app, ["validate", "tiny"]).exit_code == 1
    unknown = runner.invoke(data_app, ["validate", "tiyn"])
    assert unknown.exit_code == 2 and "did you mean 'tiny'" in unknown.output


def test_cli_data_does_not_import_torch():
    code = "import sys, edgemod.cli_data, edgemod.dataset_converters; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
