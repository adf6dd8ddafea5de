"""The `scores` teacher (precomputed scores in a CSV, JSONL or Parquet file, e.g. scores bought from
an API) and the helpers every local teacher shares: option parsing, logits to probabilities, range
checks and batching.

A scores file holds one row per item: a key column that identifies the item and one numeric column
per teacher label.

```yaml
teachers:
  - kind: scores
    path: runs/perspective-scores.parquet
    options: {match: text_sha256, labels: [toxicity, insult]}
    map: {toxicity: offensive, insult: null}
```
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.fsutil import sha256_file, sha256_text
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher
from edgemod.training.teachers.common import (
    TeacherOptions,
    identity_string,
    parse_options,
    require_path,
)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
           ".pq": "parquet"}
# Cells read as missing in score columns. The key column is read verbatim: a text can be "NA".
CSV_MISSING = ["", "NA", "N/A", "NaN", "nan", "null", "None"]


class ScoresOptions(TeacherOptions):
    match: Literal["key", "text", "text_sha256"] = Field(
        "key", description="key: Item.key (dataset:split:id); text: exact text; text_sha256: sha256 of text"
    )
    key_column: str | None = Field(None, description="column holding the match value; default = match")
    batch_size: int = Field(4096, ge=1)


class ScoresTeacher:
    """Looks items up in a file of precomputed scores."""

    def __init__(self, path: Path, options: ScoresOptions):
        self.path = path
        self.options = options
        self.key_column = options.key_column or options.match
        self.multi_label = options.multi_label
        self.batch_size = options.batch_size
        frame = read_table(path, self.key_column)
        self.labels = _score_columns(frame, self.key_column, options.labels, path)
        self._index, self._scores = _index_scores(frame, self.key_column, self.labels, path, options)

    @cached_property
    def _file_sha256(self) -> str:
        return sha256_file(self.path)

    def identity(self) -> str:
        return identity_string(
            kind="scores", file_sha256=self._file_sha256, match=self.options.match,
            key_column=self.key_column, labels=self.labels, output=self.options.output,
            activation=self.options.resolved_activation,
        )

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        keys = [self._item_key(item) for item in items]
        rows = [self._index.get(key, -1) for key in keys]
        missing = [key for key, row in zip(keys, rows) if row < 0]
        if missing:
            raise self._missing_error(missing, len(items))
        return self._scores[np.asarray(rows, dtype=np.int64)].reshape(len(items), len(self.labels))

    def _item_key(self, item: Item) -> str:
        if self.options.match == "key":
            return item.key
        return item.text if self.options.match == "text" else sha256_text(item.text)

    def _missing_error(self, missing: list[str], total: int) -> EdgemodError:
        shown = ", ".join(repr(key[:60]) for key in missing[:5])
        return EdgemodError(
            f"scores file {self.path} has no row for {len(missing)} of {total} items "
            f"(matched by {self.options.match} on column '{self.key_column}'); first missing: {shown}",
            "score them or drop them from the recipe's data",
        )


def read_table(path: Path, key_column: str):
    """Read a CSV, JSONL or Parquet file as a DataFrame; CSV keys stay exactly as written."""
    import pandas as pd

    fmt = FORMATS.get(path.suffix.lower())
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "csv":
        # Keys must stay strings: "00123" and "1e5" are ids and "NA" is a text, not numbers or NaN.
        columns = pd.read_csv(path, nrows=0).columns
        numeric_na = {column: CSV_MISSING for column in columns if column != key_column}
        return pd.read_csv(path, keep_default_na=False, na_values=numeric_na, dtype={key_column: str})
    raise EdgemodError(
        f"unknown scores file type '{path.suffix}' ({path})",
        f"use one of: {', '.join(sorted(FORMATS))}",
    )


def _read_jsonl(path: Path):
    import pandas as pd

    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise EdgemodError(f"{path}:{number} is not valid JSON: {error}",
                                       "write one JSON object per line") from None
    return pd.DataFrame.from_records(records)


def _score_columns(frame, key_column: str, labels: list[str] | None, path: Path) -> list[str]:
    """The requested score columns, or every numeric column except the key."""
    import pandas as pd

    if key_column not in frame.columns:
        raise EdgemodError(
            f"scores file {path} has no key column '{key_column}'{did_you_mean(key_column, frame.columns)}; "
            f"columns: {list(frame.columns)}",
            "set options.key_column, or options.match to key | text | text_sha256",
        )
    if labels is None:
        labels = [c for c in frame.columns if c != key_column and pd.api.types.is_numeric_dtype(frame[c])]
        labels = [c for c in labels if not pd.api.types.is_bool_dtype(frame[c])]
    absent = [label for label in labels if label not in frame.columns]
    if absent:
        raise EdgemodError(
            f"scores file {path} has no column '{absent[0]}'{did_you_mean(absent[0], frame.columns)}; "
            f"columns: {list(frame.columns)}",
            "set options.labels to the file's score columns",
        )
    if not labels:
        raise EdgemodError(f"scores file {path} has no numeric score columns besides '{key_column}'",
                           "add one numeric column per label, or set options.labels")
    return [str(label) for label in labels]


def _index_scores(frame, key_column: str, labels: list[str], path: Path, options: ScoresOptions):
    """A key -> row index and the checked probability matrix."""
    frame = frame[[key_column, *labels]].drop_duplicates()  # repeated identical rows are harmless
    keys = frame[key_column].astype(str)
    if options.match == "text_sha256":
        keys = keys.str.lower()
    duplicated = keys[keys.duplicated()]
    if len(duplicated):
        raise EdgemodError(
            f"scores file {path} has {len(duplicated)} {key_column} values with different scores "
            f"(e.g. {duplicated.iloc[0][:60]!r})",
            "keep one row per item",
        )
    values = _numeric(frame, labels, path)
    try:
        probs = options.to_probabilities(values)
    except EdgemodError as error:
        raise EdgemodError(f"scores file {path}: {error.message}", error.hint) from None
    return dict(zip(keys, range(len(keys)))), probs


def _numeric(frame, labels: list[str], path: Path) -> np.ndarray:
    import pandas as pd

    values = frame[labels].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    empty = np.isnan(values)
    if empty.any():
        row, col = np.argwhere(empty)[0]
        raise EdgemodError(
            f"scores file {path} has {int(empty.sum())} missing or non-numeric scores "
            f"(first in column '{labels[col]}', row {row})",
            "fill them in, or drop those rows and the items from the recipe's data",
        )
    return values


@register_teacher("scores")
def build_scores_teacher(spec: TeacherSpec, context: TeacherContext) -> ScoresTeacher:
    options = parse_options(ScoresOptions, spec)
    path = require_path(spec.path, "scores file", "set path: to a .csv, .jsonl or .parquet file of scores")
    return ScoresTeacher(path, options)
