"""The dataset catalog: the only reader of `datasets.yaml`.

A dataset reference in a recipe is `name:split` (`hatexplain:train`), `name` (all its splits) or
`name:split1+split2`. Loaded splits are DataFrames with the columns `key` (`name:split:id`, unique
across the catalog), `id`, `text` (or `path` for images), `label` (None when unlabelled), `split`,
`dataset`, followed by any other columns of the file (`source`, `subtask_b`, ...).

Loading is strict by default: a row with no id, an empty or oversized text, a label the catalog does
not list or a split it does not list is an error that names the file and the rows
(`on_bad_row="skip"` drops them with a warning instead). `dataset_validation.validate_dataset` runs
the same checks on a whole set plus duplicates, cross-split leakage, missing images and the file's sha256.
"""
from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from edgemod.errors import EdgemodError, did_you_mean, yaml_problem

CATALOG_ENV = "EDGEMOD_CATALOG"
DATA_DIR_ENV = "EDGEMOD_DATA_DIR"
DEFAULT_CACHE = Path.home() / ".cache" / "edgemod" / "data"
DEFAULT_MAX_TEXT_CHARS = 5000

OnBadRow = Literal["error", "skip"]


class BadRowsWarning(UserWarning):
    """Rows were dropped while loading a dataset (`on_bad_row="skip"`)."""


class RawFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    url: str
    sha256: str


class RawSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    converter: str
    files: list[RawFile]


class DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    description: str
    task: Literal["text-classification", "image-classification"]
    format: Literal["csv", "jsonl", "parquet", "image_folder"]
    file: str
    sha256: str | None = None
    columns: dict[str, str]
    labels: list[str]
    splits: list[str]
    license: str
    # Whether a model trained on this set may be redistributed (edgemod/data_sources.py): unset means
    # nobody checked, and a public release refuses it like `false`.
    ship_models: bool | None = None
    ship_note: str = ""
    evaluate: bool = True
    notes: str = ""
    raw: RawSource | None = None

    @property
    def has_split_column(self) -> bool:
        return "split" in self.columns

    @property
    def is_image(self) -> bool:
        return self.format == "image_folder"

    @property
    def content_column(self) -> str:
        """`path` for image sets, `text` otherwise."""
        return "path" if self.is_image else "text"


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mirrors: list[str] = Field(default_factory=list)
    datasets: dict[str, DatasetEntry]
    path: Path = Path("datasets.yaml")

    def entry(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise EdgemodError(
                f"unknown dataset '{name}'{did_you_mean(name, self.datasets)}",
                f"known datasets: {', '.join(sorted(self.datasets))} (see `edgemod data list`)",
            )
        return self.datasets[name]

    def data_roots(self) -> list[Path]:
        """Where dataset files are looked for, in order."""
        roots = []
        if os.environ.get(DATA_DIR_ENV):
            roots.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
        roots += [(self.path.parent / mirror).resolve() for mirror in self.mirrors]
        roots.append(DEFAULT_CACHE)
        return roots

    def resolve(self, relative: str, dataset: str | None = None) -> Path:
        """Absolute path of a catalog file, from the first root that has it.

        Args:
            relative: the file's path as written in datasets.yaml.
            dataset: the set it belongs to; only makes the error's fix more precise.
        """
        for root in self.data_roots():
            if (root / relative).exists():
                return root / relative
        tried = ", ".join(str(root / relative) for root in self.data_roots())
        raise EdgemodError(f"dataset file '{relative}' not found (tried: {tried})", self._fetch_hint(dataset))

    def _fetch_hint(self, dataset: str | None) -> str:
        mirror = f"set {DATA_DIR_ENV} to a folder that mirrors ../shared/data"
        if dataset and dataset in self.datasets and self.datasets[dataset].raw is None:
            return f"{mirror}; '{dataset}' has no public download (mirror only)"
        name = dataset or "<name>"
        return f"{mirror}, or run `edgemod data fetch {name}` on a machine with internet access"


def default_catalog_path() -> Path:
    if os.environ.get(CATALOG_ENV):
        return Path(os.environ[CATALOG_ENV])
    for candidate in (Path.cwd() / "datasets.yaml", Path(__file__).resolve().parent.parent / "datasets.yaml"):
        if candidate.exists():
            return candidate
    raise EdgemodError("datasets.yaml not found", f"run from the project root or set {CATALOG_ENV}")


@lru_cache(maxsize=8)
def _load_catalog_cached(path: str, mtime: float) -> Catalog:
    from pydantic import ValidationError

    from edgemod.errors import validation_lines
    from edgemod.fsutil import read_user_text

    fix = f"fix the catalog file, or point {CATALOG_ENV} at the project's datasets.yaml"
    try:
        data = yaml.safe_load(read_user_text(path, "dataset catalog"))
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an int of over 4300 digits
        raise EdgemodError(f"dataset catalog {path} is not valid YAML: {yaml_problem(error)}", fix) from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets", {}), dict):
        raise EdgemodError(f"dataset catalog {path} must be a mapping with a `datasets:` mapping", fix)
    for name, entry in data.get("datasets", {}).items():
        if not isinstance(entry, dict):
            raise EdgemodError(f"dataset catalog {path}: entry '{name}' must be a mapping", fix)
        entry["name"] = name
    try:
        return Catalog.model_validate({**data, "path": Path(path).resolve()})
    except ValidationError as error:
        raise EdgemodError(f"invalid dataset catalog {path}:\n{validation_lines(error, Catalog.model_fields)}", fix) from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    path = Path(path) if path else default_catalog_path()
    if not path.exists():
        raise EdgemodError(f"dataset catalog {path} not found", f"run from the project root or set {CATALOG_ENV}")
    return _load_catalog_cached(str(path.resolve()), path.stat().st_mtime)


def parse_ref(ref: str) -> tuple[str, list[str] | None]:
    """`name:split1+split2` -> (name, [split1, split2]); `name` -> (name, None)."""
    name, _, splits = ref.partition(":")
    return name.strip(), [s.strip() for s in splits.split("+")] if splits else None


# ---------------------------------------------------------------------------------------------
# Reading a catalog file


def _read_table(path: Path, fmt: str, name: str = "<name>"):
    """The file as a DataFrame of strings; missing values become '' so checks see them as empty."""
    import pandas as pd

    try:
        if fmt in ("csv", "image_folder"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=str)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as err:  # before ValueError, which it subclasses
        raise EdgemodError(f"dataset file {path} is empty", f"re-create it with `edgemod data fetch {name}`") from err
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as err:
        raise EdgemodError(
            f"cannot parse dataset file {path} as {fmt}: {str(err).strip()}",
            "repair the file (a quote or delimiter out of place is the usual cause) or re-create it "
            f"with `edgemod data fetch {name}`",
        ) from err
    # Short rows come back as NaN and JSON nulls as None; astype(str) alone would make them 'nan'.
    return frame.astype(object).where(frame.notna(), "").astype(str)


def entry_frame(entry: DatasetEntry, path: Path):
    """The file with catalog column names: id, text/path, label, split (+ other columns as they are)."""
    table = _read_table(path, entry.format, entry.name)
    missing = [src for src in entry.columns.values() if src not in table.columns]
    if missing:
        raise EdgemodError(
            f"dataset file {path} has no column(s) {missing} (it has: {list(table.columns)})",
            f"fix `columns:` of '{entry.name}' in datasets.yaml, or the file's header",
        )
    frame = table.rename(columns={src: ours for ours, src in entry.columns.items()})
    if "id" not in frame and not entry.is_image:
        # Row numbers would shift when the file changes, and keys must stay stable for score caches.
        raise EdgemodError(
            f"dataset '{entry.name}' maps no id column", f"add `id: <column>` to columns of '{entry.name}' in datasets.yaml"
        )
    if entry.is_image:
        # The relative path is the stable identity of an image; the absolute one depends on the mirror.
        if "id" not in frame:
            frame["id"] = frame["path"]
        frame["path"] = [str((path.parent / rel).resolve()) if rel else "" for rel in frame["path"]]
    if not entry.has_split_column:
        frame["split"] = entry.splits[0]
    if "label" not in entry.columns:
        frame["label"] = None
    frame.index = range(1, len(frame) + 1)  # 1-based data row numbers, header excluded
    return frame


def read_entry(name: str, catalog: Catalog | None = None):
    """The whole file of `name` with catalog column names and no row checks (counts, inspection)."""
    catalog = catalog or load_catalog()
    entry = catalog.entry(name)
    return entry_frame(entry, catalog.resolve(entry.file, dataset=name))


# ---------------------------------------------------------------------------------------------
# Row checks shared by load_split and dataset_validation.validate_dataset

PROBLEMS = {
    "missing_id": "missing id",
    "empty_text": "missing or empty text",
    "empty_path": "missing image path",
    "oversized_text": "text longer than {max_text_chars} characters",
    "unknown_label": "label not in the catalog's labels",
    "unknown_split": "split not in the catalog's splits",
}


def row_problems(frame, entry: DatasetEntry, max_text_chars: int | None) -> dict[str, Any]:
    """Boolean mask per problem kind (only the kinds that occur)."""
    content = frame[entry.content_column]
    masks = {
        "missing_id": frame["id"].str.strip() == "",
        ("empty_path" if entry.is_image else "empty_text"): content.str.strip() == "",
        "unknown_split": ~frame["split"].isin(entry.splits),
    }
    if not entry.is_image and max_text_chars:
        masks["oversized_text"] = content.str.len() > max_text_chars
    if "label" in entry.columns:
        masks["unknown_label"] = ~frame["label"].isin(entry.labels)
    return {kind: mask for kind, mask in masks.items() if mask.any()}


def _describe(kind: str, mask, frame, max_text_chars: int | None, first: int = 5) -> str:
    rows = mask[mask].index[:first].tolist()
    more = f" (+{int(mask.sum()) - len(rows)} more)" if mask.sum() > len(rows) else ""
    what = PROBLEMS[kind].format(max_text_chars=max_text_chars)
    if kind in ("unknown_label", "unknown_split"):
        column = kind.split("_")[1]
        values = sorted(set(frame.loc[mask, column]))[:5]
        what = f"{column} {', '.join(repr(v) for v in values)} not in the catalog's {column}s"
    return f"{what}: {int(mask.sum())} row(s), data rows {rows}{more}"


def _bad_row_hint(kinds: list[str], entry: DatasetEntry, frame, masks) -> str:
    fixes = []
    if "unknown_label" in kinds:
        values = sorted(set(frame.loc[masks["unknown_label"], "label"]))
        fixes.append(f"add {', '.join(repr(v) for v in values[:3])} to labels of '{entry.name}' in datasets.yaml")
    if "unknown_split" in kinds:
        fixes.append(f"add the split to splits of '{entry.name}' in datasets.yaml")
    if "oversized_text" in kinds:
        fixes.append("raise max_text_chars")
    fixes += ["fix the rows", "or set data.on_bad_row: skip in the recipe"]
    return ", ".join(fixes)


def _apply_bad_row_policy(frame, entry: DatasetEntry, path: Path, on_bad_row: OnBadRow, max_text_chars):
    masks = row_problems(frame, entry, max_text_chars)
    if not masks:
        return frame
    kinds = list(masks)
    details = "; ".join(_describe(kind, masks[kind], frame, max_text_chars) for kind in kinds)
    if on_bad_row == "error":
        raise EdgemodError(
            f"dataset '{entry.name}' file {path} has bad rows: {details}",
            _bad_row_hint(kinds, entry, frame, masks),
        )
    bad = sum(masks.values()).astype(bool)
    counts = ", ".join(f"{int(mask.sum())} {PROBLEMS[k].format(max_text_chars=max_text_chars)}" for k, mask in masks.items())
    # warnings, not logging: callers (and tests) can filter or escalate them by category.
    warnings.warn(
        f"dataset '{entry.name}' ({path}): skipped {int(bad.sum())} bad row(s): {counts}", BadRowsWarning, stacklevel=3
    )
    return frame[~bad]


def _check_splits(entry: DatasetEntry, wanted: list[str]) -> None:
    unknown = [s for s in wanted if s not in entry.splits]
    if unknown:
        raise EdgemodError(
            f"dataset '{entry.name}' has no split '{unknown[0]}'{did_you_mean(unknown[0], entry.splits)}",
            f"splits of {entry.name}: {', '.join(entry.splits)}",
        )


def load_split(
    ref: str,
    catalog: Catalog | None = None,
    max_items: int | None = None,
    on_bad_row: OnBadRow = "error",
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
):
    """Load `name:split` (or `name`, `name:a+b`) as a DataFrame.

    Args:
        ref: the dataset reference.
        catalog: defaults to `load_catalog()`.
        max_items: keep only the first rows (smoke runs).
        on_bad_row: "error" raises, naming the first bad rows of each kind; "skip" drops them
            with a `BadRowsWarning` that counts them per kind. Bad rows: no id, empty text (or image path), text longer than
            `max_text_chars`, a label or split the catalog does not list.
        max_text_chars: longest text accepted; None turns the check off.

    Returns:
        Columns key, id, text (or path: absolute image path), label, split, dataset, then the
        file's other columns.

    Raises:
        EdgemodError: unknown dataset or split, file missing or unparsable, bad rows (error mode).
    """
    if on_bad_row not in ("error", "skip"):
        raise EdgemodError(f"unknown on_bad_row '{on_bad_row}'", "use 'error' or 'skip'")
    catalog = catalog or load_catalog()
    name, splits = parse_ref(ref)
    entry = catalog.entry(name)
    wanted = splits or entry.splits
    _check_splits(entry, wanted)
    path = catalog.resolve(entry.file, dataset=name)
    frame = entry_frame(entry, path)
    # Rows of an unlisted split belong to no ref, so they are checked whatever is asked for.
    frame = frame[frame["split"].isin(wanted) | ~frame["split"].isin(entry.splits)]
    frame = _apply_bad_row_policy(frame, entry, path, on_bad_row, max_text_chars)
    frame = frame[frame["split"].isin(wanted)].copy()
    frame["dataset"] = name
    frame["key"] = name + ":" + frame["split"] + ":" + frame["id"]
    first = ["key", "id", entry.content_column, "label", "split", "dataset"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    if max_items:
        frame = frame.head(max_items)
    return frame.reset_index(drop=True)
