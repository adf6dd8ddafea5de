"""`edgemod data validate`: a whole dataset file checked against its catalog entry.

The row checks are `load_split`'s (catalog.row_problems); on top come the file's sha256, duplicate
ids, texts repeated within a split, texts shared by two splits (leakage) and missing image files.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from edgemod.catalog import (
    DEFAULT_MAX_TEXT_CHARS,
    PROBLEMS,
    Catalog,
    DatasetEntry,
    entry_frame,
    load_catalog,
    row_problems,
)
from edgemod.errors import EdgemodError


class RowIssue(BaseModel):
    """One kind of bad row: how many, the first data rows (1-based), and the offending values."""

    kind: str
    description: str
    count: int
    rows: list[int]
    values: dict[str, int] = Field(default_factory=dict, description="value -> rows (labels, splits)")


class DuplicateIssue(BaseModel):
    """Rows whose text repeats; `rows` are the first data rows involved (never the text itself)."""

    where: str = Field(description="a split, or 'a/b' for text shared by two splits")
    texts: int = Field(description="distinct texts involved")
    rows: list[int]


class ValidationReport(BaseModel):
    """What `edgemod data validate` found. `ok` is False when `errors` is not empty."""

    name: str
    file: str | None = None
    ok: bool = True
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sha256: str | None = None
    expected_sha256: str | None = None
    sha256_ok: bool | None = None
    rows: int = 0
    rows_per_split: dict[str, int] = Field(default_factory=dict)
    label_distribution: dict[str, dict[str, int]] = Field(default_factory=dict)
    malformed_rows: list[int] = Field(
        default_factory=list, description="data rows (1-based) whose field count differs from the header's")
    bad_rows: list[RowIssue] = Field(default_factory=list)
    duplicate_ids: int = 0
    duplicates_within_split: list[DuplicateIssue] = Field(default_factory=list)
    duplicates_across_splits: list[DuplicateIssue] = Field(default_factory=list)
    missing_files: int = 0
    missing_file_examples: list[str] = Field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)
        self.ok = False


def _scan_field_counts(path: Path) -> list[int]:
    """Record numbers (1-based, header excluded) whose field count differs from the header's."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        return [n for n, record in enumerate(reader, start=1) if record and len(record) != len(header)]


def normalise_text(text: str) -> str:
    """Lower-case and collapse whitespace: the form duplicates and leakage are compared in."""
    return " ".join(text.lower().split())


def _duplicates(frame, entry: DatasetEntry, first: int = 10) -> tuple[list[DuplicateIssue], list[DuplicateIssue]]:
    """Exact repeats inside each split, and normalised texts shared by two splits (leakage)."""
    within = []
    for split, part in frame.groupby("split", sort=False):
        repeated = part[part.duplicated(entry.content_column, keep=False)]
        if len(repeated):
            n_texts = repeated[entry.content_column].nunique()
            within.append(DuplicateIssue(where=str(split), texts=n_texts, rows=repeated.index[:first].tolist()))
    across = []
    norm = frame[entry.content_column].map(normalise_text)
    splits = [s for s in entry.splits if s in set(frame["split"])]
    for i, a in enumerate(splits):
        texts_a = set(norm[frame["split"] == a])
        for b in splits[i + 1 :]:
            in_b = norm[frame["split"] == b]
            shared = set(in_b[in_b.isin(texts_a)])
            if shared:
                rows = frame.index[frame["split"].isin([a, b]) & norm.isin(shared)][:first].tolist()
                across.append(DuplicateIssue(where=f"{a}/{b}", texts=len(shared), rows=rows))
    return within, across


def _check_images(frame, report: ValidationReport) -> None:
    missing = [p for p in frame["path"] if p and not Path(p).is_file()]
    report.missing_files = len(missing)
    report.missing_file_examples = missing[:5]
    if missing:
        report.error(f"{len(missing)} image file(s) listed in the labels file do not exist (e.g. {missing[0]})")


def _row_issues(frame, entry: DatasetEntry, max_text_chars: int | None) -> list[RowIssue]:
    issues = []
    for kind, mask in row_problems(frame, entry, max_text_chars).items():
        values = {}
        if kind in ("unknown_label", "unknown_split"):
            values = {str(k): int(v) for k, v in frame.loc[mask, kind.split("_")[1]].value_counts().items()}
        issues.append(
            RowIssue(
                kind=kind,
                description=PROBLEMS[kind].format(max_text_chars=max_text_chars),
                count=int(mask.sum()),
                rows=mask[mask].index[:10].tolist(),
                values=values,
            )
        )
    return issues


def _fill_counts(frame, report: ValidationReport) -> None:
    report.rows = len(frame)
    report.rows_per_split = {str(k): int(v) for k, v in frame["split"].value_counts(sort=False).items()}
    for split, part in frame.groupby("split", sort=False):
        counts = part["label"].fillna("<none>").value_counts()
        report.label_distribution[str(split)] = {str(k): int(v) for k, v in counts.items()}


def validate_dataset(
    name: str, catalog: Catalog | None = None, max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS
) -> ValidationReport:
    """Check a whole dataset file against its catalog entry.

    Errors (`ok` False): file missing or unparsable, sha256 differs from datasets.yaml, bad rows
    (see `load_split`), duplicate ids, missing image files. Warnings: the same text twice in a
    split, and the same normalised text in two splits (train/test leakage).

    Raises:
        EdgemodError: only for a dataset name the catalog does not have.
    """
    from edgemod.fsutil import sha256_file

    catalog = catalog or load_catalog()
    entry = catalog.entry(name)
    report = ValidationReport(name=name, expected_sha256=entry.sha256)
    try:
        path = catalog.resolve(entry.file, dataset=name)
    except EdgemodError as err:
        report.error(str(err))
        return report
    report.file = str(path)
    report.sha256 = sha256_file(path)
    if entry.sha256:
        report.sha256_ok = report.sha256 == entry.sha256
        if not report.sha256_ok:
            report.error(
                f"sha256 of {path} is {report.sha256}, datasets.yaml pins {entry.sha256}: the file "
                "changed; re-fetch it, or update sha256 in datasets.yaml if the change is intended"
            )
    try:
        frame = entry_frame(entry, path)
    except EdgemodError as err:
        report.error(str(err))
        if entry.format in ("csv", "image_folder"):
            report.malformed_rows = _scan_field_counts(path)
        return report
    _validate_rows(frame, entry, report, max_text_chars)
    return report


def _validate_rows(frame, entry: DatasetEntry, report: ValidationReport, max_text_chars: int | None) -> None:
    _fill_counts(frame, report)
    report.bad_rows = _row_issues(frame, entry, max_text_chars)
    for issue in report.bad_rows:
        report.error(f"{issue.count} row(s) with {issue.description} (data rows {issue.rows[:5]})")
    report.duplicate_ids = int(frame["id"][frame["id"] != ""].duplicated().sum())
    if report.duplicate_ids:
        report.error(f"{report.duplicate_ids} duplicate id(s): one id names two rows, so keys and score caches would mix them")
    if entry.is_image:
        _check_images(frame, report)
        return  # paths are unique by construction; near-duplicate photos need pixel hashes, not text
    within, across = _duplicates(frame, entry)
    report.duplicates_within_split, report.duplicates_across_splits = within, across
    for dup in within:
        report.warnings.append(f"{dup.texts} text(s) repeated within split '{dup.where}' (data rows {dup.rows[:5]})")
    for dup in across:
        report.warnings.append(
            f"{dup.texts} normalised text(s) appear in both {dup.where.replace('/', ' and ')}: "
            f"leakage between splits (data rows {dup.rows[:5]})"
        )
