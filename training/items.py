"""The items a recipe trains and evaluates on: train, validation, test (gold) and transfer (unlabelled)."""
from __future__ import annotations

from edgemod.catalog import load_catalog, load_split, parse_ref
from edgemod.errors import EdgemodError
from edgemod.manifest import FileRef, file_ref
from edgemod.recipe import Recipe

GOLD_ROLES = ("train", "validation", "test")


def role_refs(recipe: Recipe) -> list[tuple[str, str]]:
    refs = [(role, getattr(recipe.data, role)) for role in GOLD_ROLES]
    return refs + [("transfer", ref) for ref in recipe.data.transfer]


def collect_items(recipe: Recipe):
    """One DataFrame of every item the recipe uses, with its role; gold labels checked against the recipe."""
    import pandas as pd

    frames = []
    for role, ref in role_refs(recipe):
        frame = load_split(ref, max_items=recipe.data.max_items_per_split, on_bad_row=recipe.data.on_bad_row)
        frame["role"] = role
        if role == "transfer":
            frame["label"] = None
        else:
            _check_gold_labels(frame, ref, recipe.labels)
        frames.append(frame)
    items = pd.concat(frames, ignore_index=True)
    # An item listed twice (e.g. a split used as gold and as transfer) keeps its first, gold role.
    return items.drop_duplicates("key", keep="first").reset_index(drop=True)


def _check_gold_labels(frame, ref: str, labels: list[str]) -> None:
    unknown = sorted(set(frame["label"]) - set(labels))
    if unknown:
        rows = frame.index[frame["label"].isin(unknown)][:3].tolist()
        raise EdgemodError(
            f"{ref} has gold label(s) {unknown} that are not among the recipe's labels {labels} "
            f"(first rows: {rows})",
            "add them to the recipe's 'labels', or use a split without them",
        )


def dataset_inputs(recipe: Recipe) -> dict[str, FileRef]:
    """The dataset files a recipe reads, with their sha256, for the manifest."""
    catalog = load_catalog()
    names = sorted({parse_ref(ref)[0] for _, ref in role_refs(recipe)})
    return {f"dataset:{n}": file_ref(catalog.resolve(catalog.entry(n).file)) for n in names}
