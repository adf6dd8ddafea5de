"""Dataset converters: rebuild each catalog CSV from the raw upstream files listed under `raw:` in datasets.yaml.

One converter per set, registered beside its definition:

    @register_converter("olid")
    def convert_olid(raw: dict[str, Path]) -> pd.DataFrame: ...

`raw` maps each raw file's name (`labeled_data.csv`) to its local path. A converter returns the
converted table; `convert_dataset` checks the raw files' sha256, calls it and writes the CSV
atomically in the mirror's byte format (UTF-8, `\\r\\n` line ends, minimal quoting), so a
converter that `reproduces_mirror` gives the sha256 pinned in datasets.yaml.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from edgemod.catalog import DEFAULT_CACHE, Catalog, load_catalog
from edgemod.dataset_validation import normalise_text
from edgemod.errors import EdgemodError, unknown_choice
from edgemod.fsutil import atomic_path, sha256_file

if TYPE_CHECKING:
    import pandas as pd

ConverterFn = Callable[[dict[str, Path]], "pd.DataFrame"]


@dataclass(frozen=True)
class Converter:
    name: str
    fn: ConverterFn
    reproduces_mirror: bool = True  # False: the output is valid but not byte-equal to the mirror's file

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


_CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, *, reproduces_mirror: bool = True) -> Callable[[ConverterFn], ConverterFn]:
    """Register `fn(raw_files) -> DataFrame` as the converter named in datasets.yaml `raw.converter`."""

    def decorate(fn: ConverterFn) -> ConverterFn:
        if name in _CONVERTERS:
            raise ValueError(f"converter '{name}' is registered twice")
        _CONVERTERS[name] = Converter(name, fn, reproduces_mirror)
        return fn

    return decorate


def get_converter(name: str) -> Converter:
    if name not in _CONVERTERS:
        raise unknown_choice("converter", name, _CONVERTERS)
    return _CONVERTERS[name]


def list_converters() -> list[str]:
    return sorted(_CONVERTERS)


# ---------------------------------------------------------------------------------------------
# Running a converter


def write_converted(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write a converted table the way the mirror's CSVs are written (csv-module `\\r\\n` ends)."""
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\r\n", encoding="utf-8")
    return Path(out)


def raw_paths(name: str, catalog: Catalog, raw_root: str | Path | None = None) -> dict[str, Path]:
    """Local path of each raw file of `name`: under `raw_root`, else wherever the catalog finds it."""
    entry = catalog.entry(name)
    if entry.raw is None:
        raise EdgemodError(
            f"dataset '{name}' has no raw sources in datasets.yaml: it is available from the mirror only",
            "set EDGEMOD_DATA_DIR to a folder that mirrors ../shared/data",
        )
    paths = {}
    for raw in entry.raw.files:
        path = Path(raw_root) / raw.file if raw_root else catalog.resolve(raw.file, dataset=name)
        if not path.exists():
            raise EdgemodError(f"raw file {path} of '{name}' not found", f"run `edgemod data fetch {name}`")
        paths[Path(raw.file).name] = path
    return paths


def _verify_raw(name: str, catalog: Catalog, paths: dict[str, Path]) -> None:
    for raw in catalog.entry(name).raw.files:
        path = paths[Path(raw.file).name]
        actual = sha256_file(path)
        if actual != raw.sha256:
            raise EdgemodError(
                f"raw file {path} has sha256 {actual}, datasets.yaml pins {raw.sha256}",
                f"delete it and run `edgemod data fetch {name}` (converters assume the pinned upstream file)",
            )


def convert_dataset(
    name: str,
    catalog: Catalog | None = None,
    raw_root: str | Path | None = None,
    out: str | Path | None = None,
) -> Path:
    """Rebuild the converted file of `name` from its raw files.

    Args:
        name: a dataset with `raw:` in datasets.yaml.
        catalog: defaults to `load_catalog()`.
        raw_root: folder holding the raw files at their catalog paths; default: the catalog's roots.
        out: where to write; default: the download cache at the entry's `file` path.

    Returns:
        The written path.
    """
    catalog = catalog or load_catalog()
    entry = catalog.entry(name)
    paths = raw_paths(name, catalog, raw_root)
    _verify_raw(name, catalog, paths)
    frame = get_converter(entry.raw.converter).fn(paths)
    return write_converted(frame, Path(out) if out else DEFAULT_CACHE / entry.file)


# ---------------------------------------------------------------------------------------------
# Readers shared by the converters


def _need(raw: dict[str, Path], filename: str) -> Path:
    if filename not in raw:
        raise EdgemodError(
            f"converter input '{filename}' is missing (got: {sorted(raw)})",
            "list it under raw.files in datasets.yaml",
        )
    return raw[filename]


def _read(path: Path, sep: str = ","):
    import pandas as pd

    # keep_default_na=False: OLID's literal 'NULL' and any 'NA' text must stay text.
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)


def _map_codes(values: pd.Series, codes: dict[str, str], what: str, path: Path) -> pd.Series:
    unknown = sorted(set(values) - set(codes))
    if unknown:
        raise EdgemodError(
            f"{path}: unexpected {what} value(s) {unknown[:5]} (known: {sorted(codes)})",
            "the upstream file changed; check its sha256 against datasets.yaml",
        )
    return values.map(codes)


# ---------------------------------------------------------------------------------------------
# The converters


@register_converter("hatexplain")
def convert_hatexplain(raw: dict[str, Path]) -> pd.DataFrame:
    """MBIB's HateXplain CSV + the official post_id_divisions.json -> id,text,label,split."""
    import pandas as pd

    source = _need(raw, "092-HateXplain.csv")
    table = _read(source)
    divisions = json.loads(_need(raw, "post_id_divisions.json").read_text(encoding="utf-8"))
    split_of = {post: {"val": "validation"}.get(split, split) for split, posts in divisions.items() for post in posts}
    # MBIB keeps the post id in its unnamed index column and encodes the majority label in
    # `category`; its `label` is only the binary hate flag. Posts with no majority ('undecided')
    # are in no official split.
    return pd.DataFrame(
        {
            "id": table["Unnamed: 0"],
            "text": table["text"],
            "label": _map_codes(
                table["category"], {"0": "normal", "1": "hatespeech", "2": "offensive", "3": "undecided"}, "category", source
            ),
            "split": table["Unnamed: 0"].map(split_of).fillna("unassigned"),
        }
    )


@register_converter("olid")
def convert_olid(raw: dict[str, Path]) -> pd.DataFrame:
    """OLID v1.0 training TSV + level-A test set with its gold labels -> id,text,subtask_a/b/c,split."""
    import pandas as pd

    columns = ["id", "text", "subtask_a", "subtask_b", "subtask_c", "split"]
    train = _read(_need(raw, "olid-training-v1.0.tsv"), sep="\t").rename(columns={"tweet": "text"})
    train["split"] = "train"
    test = _read(_need(raw, "testset-levela.tsv"), sep="\t").rename(columns={"tweet": "text"})
    test["subtask_a"] = _labels_for(test, raw, "labels-levela.csv", required=True)
    # Levels B and C label only the offensive (resp. targeted) test tweets; the rest get OLID's
    # own placeholder 'NULL', as in the training file.
    test["subtask_b"] = _labels_for(test, raw, "labels-levelb.csv")
    test["subtask_c"] = _labels_for(test, raw, "labels-levelc.csv")
    test["split"] = "test"
    return pd.concat([train[columns], test[columns]], ignore_index=True)


def _labels_for(test, raw: dict[str, Path], filename: str, required: bool = False):
    if filename not in raw and not required:
        return "NULL"
    path = _need(raw, filename)
    labels = _read(path).set_index("id")["label"]
    mapped = test["id"].map(labels)
    if required and mapped.isna().any():
        missing = test["id"][mapped.isna()].head(3).tolist()
        raise EdgemodError(f"{path} has no label for test ids {missing}", "the upstream files do not match; re-fetch them")
    return mapped.fillna("NULL")


@register_converter("davidson")
def convert_davidson(raw: dict[str, Path]) -> pd.DataFrame:
    """Davidson et al. labeled_data.csv -> id,text,label,votes,hate_votes,offensive_votes,neither_votes."""
    import pandas as pd

    source = _need(raw, "labeled_data.csv")
    table = _read(source)
    return pd.DataFrame(
        {
            "id": table["Unnamed: 0"],
            "text": table["tweet"],
            "label": _map_codes(table["class"], {"0": "hate_speech", "1": "offensive_language", "2": "neither"}, "class", source),
            "votes": table["count"],
            "hate_votes": table["hate_speech"],
            "offensive_votes": table["offensive_language"],
            "neither_votes": table["neither"],
        }
    )


SMS_SPLITS = (("train", 0.70), ("validation", 0.85), ("test", 1.0))


def sms_split(text: str) -> str:
    """The split of one SMS: a hash of its normalised text placed on 70/15/15 cut points.

    Keyed by text, not by row, so repeated messages (the collection has hundreds) always share a
    split and cannot leak from train into test; stable under re-ordering and across machines.
    """
    digest = hashlib.sha256(("sms_spam|" + normalise_text(text)).encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    return next(split for split, cut in SMS_SPLITS if point < cut)


@register_converter("sms_spam", reproduces_mirror=False)
def convert_sms_spam(raw: dict[str, Path]) -> pd.DataFrame:
    """SMS Spam Collection v.1 (`label<TAB>text` lines) -> id,text,label,split (split by `sms_split`).

    The mirror's sms_spam.csv has the same ids (0-based line numbers), texts and labels, but its
    70/15/15 assignment came from an unrecorded shuffle that cannot be rebuilt, and it puts 150+
    identical messages in two splits. This converter assigns splits by `sms_split` instead, so
    its output is deterministic and leak-free but not byte-equal to the mirror's file.
    """
    import pandas as pd

    path = _need(raw, "SMSSpamCollection")
    # Split on '\n' only: str.splitlines would also break on \x0b/\u2028 inside messages.
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
    records = []
    for number, line in enumerate(lines):
        label, sep, text = line.partition("\t")
        if not sep or label not in ("ham", "spam"):
            raise EdgemodError(f"{path} line {number + 1} is not 'ham|spam<TAB>text'", "re-fetch the raw file")
        records.append((str(number), text, label, sms_split(text)))
    return pd.DataFrame.from_records(records, columns=["id", "text", "label", "split"])


# ---------------------------------------------------------------------------------------------
# Fetching from the public sources


class FetchResult(BaseModel):
    """What `fetch_dataset` did: the converted file, its sha256 and whether it equals the catalog's."""

    name: str
    path: str
    sha256: str
    matches_catalog: bool | None = Field(description="None when datasets.yaml pins no sha256")
    downloaded: list[str] = Field(default_factory=list)
    reused: list[str] = Field(default_factory=list, description="raw files already present with the right sha256")


def fetch_dataset(
    name: str, catalog: Catalog | None = None, dest: str | Path | None = None, timeout: float = 60.0
) -> FetchResult:
    """Download the raw files of `name`, check their sha256 and build its converted file.

    Files land at their catalog paths under `dest` (default: the download cache, which the
    catalog searches last), so `EDGEMOD_DATA_DIR=<dest>` makes them loadable. Raw files already
    present with the pinned sha256 are not downloaded again.

    Args:
        name: a dataset with `raw:` in datasets.yaml.
        catalog: defaults to `load_catalog()`.
        dest: root folder to write under.
        timeout: seconds per HTTP request (connect and each read).

    Raises:
        EdgemodError: mirror-only dataset, host unreachable, HTTP error, sha256 mismatch.
    """
    catalog = catalog or load_catalog()
    entry = catalog.entry(name)
    if entry.raw is None:
        raise EdgemodError(
            f"dataset '{name}' has no public download: it is available from the shared mirror only",
            "set EDGEMOD_DATA_DIR to a folder that mirrors ../shared/data",
        )
    dest = Path(dest) if dest else DEFAULT_CACHE
    result = {"downloaded": [], "reused": []}
    for raw in entry.raw.files:
        target = dest / raw.file
        if target.exists() and sha256_file(target) == raw.sha256:
            result["reused"].append(str(target))
            continue
        download(raw.url, target, raw.sha256, timeout)
        result["downloaded"].append(str(target))
    out = dest / entry.file
    # Same raw files and an output with the pinned hash: nothing to redo.
    up_to_date = not result["downloaded"] and out.exists() and sha256_file(out) == entry.sha256
    if not up_to_date:
        convert_dataset(name, catalog, raw_root=dest, out=out)
    sha = sha256_file(out)
    matches = sha == entry.sha256 if entry.sha256 else None
    if matches is False:
        _warn_differs(name, out, sha, entry.sha256, get_converter(entry.raw.converter))
    return FetchResult(name=name, path=str(out), sha256=sha, matches_catalog=matches, **result)


def _warn_differs(name: str, out: Path, sha: str, pinned: str, converter: Converter) -> None:
    why = (
        "its converter assigns splits by a documented rule the mirror's file predates"
        if not converter.reproduces_mirror
        else "the converter's output changed (pandas version?)"
    )
    message = (
        f"converted {out} has sha256 {sha}, datasets.yaml pins {pinned} (the mirror's file): {why}; "
        f"results on the fetched '{name}' are not comparable with results on the mirror"
    )
    warnings.warn(message, UserWarning, stacklevel=3)


def download(url: str, target: str | Path, sha256: str, timeout: float = 60.0) -> Path:
    """Stream `url` to `target` through a temp file; keep it only if its sha256 is `sha256`."""
    import httpx

    target = Path(target)
    if target.exists():
        target.unlink()  # a stale or corrupt copy must not survive a failed download
    digest = hashlib.sha256()
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes(1 << 16):
                    handle.write(chunk)
                    digest.update(chunk)
            handle.flush()
            if digest.hexdigest() != sha256:
                raise EdgemodError(
                    f"download of {url} has sha256 {digest.hexdigest()}, datasets.yaml pins {sha256}; "
                    "the partial file was deleted",
                    "the upstream file changed or the download was altered; check the URL and sha256 in "
                    "datasets.yaml, or use a mirror (EDGEMOD_DATA_DIR)",
                )
    except httpx.HTTPStatusError as err:
        raise EdgemodError(
            f"{url} answered HTTP {err.response.status_code}",
            "check the url in datasets.yaml, or set EDGEMOD_DATA_DIR to a mirror of ../shared/data",
        ) from err
    except httpx.TransportError as err:
        raise EdgemodError(
            f"this machine cannot reach {url} ({type(err).__name__}: {err})",
            "run on a machine with internet access, or set EDGEMOD_DATA_DIR to a folder that mirrors "
            "../shared/data (the shared data mirror)",
        ) from err
    return target
