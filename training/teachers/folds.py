"""Out-of-fold image teachers: k teachers, each trained without one fold of the train images, so
every train image is labelled by a teacher that never saw it.

A teacher fine-tuned on the train frames is near one-hot on them (the label manifest's
`teacher_confidence`), so its labels there carry little beyond the gold label. `edgemod teacher
train --folds K` trains K teachers into `OUT/fold-0` ... and writes `OUT/folds.json` with the train
keys each one held out. A `timm` teacher whose path holds a `folds.json` then scores a train image
(and its views) with the one teacher that held it out, and every other item (validation, test,
transfer) with the average of all K, which none of them trained on.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.training.teachers.base import Item
from edgemod.training.teachers.common import identity_string

FOLDS_FILE = "folds.json"


def fold_of(keys, folds: int) -> np.ndarray:
    """The fold of each item key: crc32 of the key modulo `folds` (stable across runs and machines)."""
    return np.array([zlib.crc32(str(key).encode()) % folds for key in keys], dtype=np.int64)


def is_folded(folder: Path) -> bool:
    return (Path(folder) / FOLDS_FILE).is_file()


class FoldedTimmTeacher:
    """The `timm` teacher over out-of-fold members (see the module docstring)."""

    scores_views = True

    def __init__(self, folder: Path, member, options):
        """`member(folder)` builds the teacher of one fold's checkpoint folder."""
        self.folder = Path(folder)
        try:
            spec = json.loads((self.folder / FOLDS_FILE).read_text())
            self.members = [member(self.folder / name) for name in spec["members"]]
            self._fold = {key: int(fold) for fold, keys in spec["held_out"].items() for key in keys}
        except (OSError, ValueError, KeyError) as error:
            raise EdgemodError(f"out-of-fold teacher {self.folder} is incomplete: {error}",
                               "re-run `edgemod teacher train ... --folds K` into that folder") from None
        first = self.members[0]
        if any(m.labels != first.labels or m.preprocess != first.preprocess for m in self.members):
            raise EdgemodError(f"the fold teachers in {self.folder} differ in labels or pre-processing",
                               "train all folds with one `edgemod teacher train --folds K` command")
        self.labels, self.multi_label, self.options = first.labels, first.multi_label, options
        self.preprocess, self.parameters, self.pretrained = first.preprocess, first.parameters, first.pretrained

    def identity(self) -> str:
        return identity_string(kind="timm-out-of-fold", members=[m.identity() for m in self.members],
                               held_out_sha256=_held_out_digest(self._fold))

    def fold_of_item(self, item: Item) -> int | None:
        """The member that held this item's image out, or None (no member trained on it)."""
        from edgemod.training.vision.views import VIEW_SEPARATOR

        return self._fold.get(item.key.split(VIEW_SEPARATOR)[0])

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        folds = [self.fold_of_item(item) for item in items]
        out = np.zeros((len(items), len(self.labels)), dtype=np.float32)
        unseen = [i for i, fold in enumerate(folds) if fold is None]
        if unseen:
            subset = [items[i] for i in unseen]
            out[unseen] = np.mean([m.predict_proba(subset) for m in self.members], axis=0)
        for fold, member in enumerate(self.members):
            rows = [i for i, f in enumerate(folds) if f == fold]
            if rows:
                out[rows] = member.predict_proba([items[i] for i in rows])
        return out

    def check_engine(self, items: Sequence[Item]) -> dict | None:
        """Every member's export checked against its torch model; the first member's figures reported."""
        checks = [m.check_engine(items) for m in self.members]
        return None if checks[0] is None else {**checks[0], "members_checked": len(checks)}


def _held_out_digest(fold: dict[str, int]) -> str:
    from edgemod.fsutil import sha256_text

    return sha256_text(json.dumps(sorted(fold.items())))
