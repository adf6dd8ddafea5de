"""The items a recipe trains and evaluates on: train, validation, test (gold) and transfer (unlabelled)."""
from __future__ import annotations

from edgemod.catalog import load_catalog, load_split, parse_ref
from edgemod.errors import EdgemodError
from edgemod.manifest import FileRef, file_ref
from edgemod.recipe import Recipe

GOLD_ROLES = ("train", "validation", "test")
COUNTERFACTUAL = "counterfactual"  # identity-swapped copy of a train/transfer item (column `parent`)
OUT_OF_DOMAIN = "out_of_domain"  # labelled elsewhere; column `violating` (0/1), `label` left empty


def role_refs(recipe: Recipe) -> list[tuple[str, str]]:
    refs = [(role, getattr(recipe.data, role)) for role in GOLD_ROLES]
    return (refs + [("transfer", ref) for ref in recipe.data.transfer]
            + [(OUT_OF_DOMAIN, spec.ref) for spec in recipe.data.out_of_domain])


def collect_items(recipe: Recipe):
    """One DataFrame of every item the recipe uses, with its role; gold labels checked against the recipe."""
    import pandas as pd

    frames = []
    out_of_domain = {spec.ref: spec for spec in recipe.data.out_of_domain}
    for role, ref in role_refs(recipe):
        frame = load_split(ref, max_items=recipe.data.max_items_per_split, on_bad_row=recipe.data.on_bad_row)
        frame["role"] = role
        if role == OUT_OF_DOMAIN:
            frame["violating"] = _violating(frame, out_of_domain[ref])
            frame["label"] = None
        elif role == "transfer":
            frame["label"] = None
        else:
            _check_gold_labels(frame, ref, recipe.labels)
        frames.append(frame)
    items = pd.concat(frames, ignore_index=True)
    # An item listed twice (e.g. a split used as gold and as transfer) keeps its first, gold role.
    items = items.drop_duplicates("key", keep="first").reset_index(drop=True)
    if recipe.data.counterfactuals is not None:
        items = pd.concat([items, _counterfactual_items(items, recipe)], ignore_index=True)
    if recipe.views.per_image:
        from edgemod.training.vision.views import view_items

        items = pd.concat([items, view_items(items, recipe.views)], ignore_index=True)
    return items


def _violating(frame, spec) -> list[int]:
    unknown = sorted(set(spec.violating) - set(frame["label"]))
    if unknown:
        raise EdgemodError(f"data.out_of_domain {spec.ref}: labels {unknown} do not occur in it "
                           f"(its labels: {sorted(set(frame['label']))})", "fix 'violating:' in the recipe")
    return frame["label"].isin(spec.violating).astype(int).tolist()


def _counterfactual_items(items, recipe: Recipe):
    """Identity-swapped copies of the train/transfer text, keyed `<parent key>~cf:<from>><to>`."""
    import pandas as pd

    from edgemod.counterfactual import counterfactuals

    spec = recipe.data.counterfactuals
    rows = []
    for item in items[items["role"].isin(("train", "transfer"))].itertuples(index=False):
        for tag, text in counterfactuals(item.text, item.key, spec.per_item, spec.seed):
            rows.append({"key": f"{item.key}~cf:{tag}", "dataset": item.dataset, "split": item.split,
                         "role": COUNTERFACTUAL, "text": text, "label": None, "parent": item.key})
    return pd.DataFrame(rows, columns=["key", "dataset", "split", "role", "text", "label", "parent"])


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
