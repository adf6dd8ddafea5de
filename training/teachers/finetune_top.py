"""Fine-tune only the top layers of a text encoder, on cached outputs of the frozen layers below.

A 12-layer MPNet-base costs about 8x MiniLM-L6 per token, so a full fine-tune is hours on a 2-core
CPU. With `--train-top-layers N` the lower layers run once, in eval mode, over the train and
validation texts (sorted by length and padded per batch); their outputs are kept in memory, and each
epoch trains only the top N layers and the classification head on them (N/12 of the work per
step, and no backward pass through the frozen layers). The saved model is the whole encoder:
frozen lower layers plus the trained top, so scoring it needs nothing special.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemod.console import progress, say
from edgemod.errors import EdgemodError

SUPPORTED = ("bert", "mpnet")


@dataclass
class CachedBatch:
    hidden: object  # float tensor [batch, tokens, width]: the output of the last frozen layer
    mask: object  # attention mask [batch, tokens]
    rows: np.ndarray  # row numbers of the texts in this batch


class TopLayers:
    """The top `count` layers of a sequence classifier, run from the hidden states below them."""

    def __init__(self, model, count: int):
        kind = model.config.model_type
        if kind not in SUPPORTED:
            raise EdgemodError(f"--train-top-layers supports {', '.join(SUPPORTED)} encoders, not '{kind}'",
                               "fine-tune all layers (leave --train-top-layers out)")
        layers = model.config.num_hidden_layers
        if not 1 <= count <= layers:
            raise EdgemodError(f"--train-top-layers {count}: the encoder has {layers} layers", f"use 1 to {layers}")
        self.model, self.kind, self.start = model, kind, layers - count
        encoder = model.base_model.encoder
        trainable = {id(p) for layer in encoder.layer[self.start:] for p in layer.parameters()}
        trainable |= {id(p) for p in self._head_parameters()}
        for parameter in model.parameters():
            parameter.requires_grad = id(parameter) in trainable

    def _head_parameters(self):
        model = self.model
        if self.kind == "mpnet":
            return list(model.classifier.parameters())
        pooler = model.base_model.pooler
        return list(model.classifier.parameters()) + (list(pooler.parameters()) if pooler is not None else [])

    def parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def lower(self, encoded):
        """Hidden states entering the first trained layer (no gradients, frozen layers in eval mode)."""
        import torch

        self.model.eval()
        with torch.inference_mode():
            states = self.model.base_model(**encoded, output_hidden_states=True).hidden_states
        return states[self.start].clone()

    def logits(self, hidden, mask):
        from transformers.masking_utils import create_bidirectional_mask

        base = self.model.base_model
        attention = create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=mask)
        bias = base.encoder.compute_position_bias(hidden) if self.kind == "mpnet" else None
        for layer in base.encoder.layer[self.start:]:
            out = layer(hidden, attention, bias) if self.kind == "mpnet" else layer(hidden, attention_mask=attention)
            hidden = out[0] if isinstance(out, tuple) else out
        if self.kind == "mpnet":
            return self.model.classifier(hidden)
        pooled = base.pooler(hidden) if base.pooler is not None else hidden[:, 0]
        return self.model.classifier(self.model.dropout(pooled))


def cache_lower(top: TopLayers, tokenizer, texts: list[str], max_length: int, batch_size: int,
                label: str, console) -> list[CachedBatch]:
    """The frozen layers' outputs for `texts`, in length-sorted batches padded per batch."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    batches = []
    with progress(label, len(texts), console, unit="texts") as bar:
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            encoded = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                                return_tensors="pt")
            batches.append(CachedBatch(top.lower(encoded), encoded["attention_mask"], rows))
            bar.advance(len(rows))
    return batches


def fit_top_layers(model, tokenizer, texts, y_train, valid, labels, config, console):
    """Train the top `config.train_top_layers` layers; (history, best state dict) like the full fine-tune."""
    import torch

    from edgemod.training.metrics import classification_report

    top = TopLayers(model, config.train_top_layers)
    say(console, f"teacher fine-tune: top {config.train_top_layers} of {model.config.num_hidden_layers} layers "
                 "trained on cached outputs of the frozen layers below")
    train = cache_lower(top, tokenizer, texts, config.max_length, config.batch_size, "teacher: frozen layers, train", console)
    validation = cache_lower(top, tokenizer, valid["text"].tolist(), config.max_length, 128,
                             "teacher: frozen layers, validation", console)
    steps = config.epochs * len(train)
    optimizer = torch.optim.AdamW(top.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps,
                                                   pct_start=0.1, anneal_strategy="linear")
    rng = np.random.default_rng(config.seed)
    targets = torch.as_tensor(y_train)
    best_f1, best_state, history = -1.0, None, []
    with progress("teacher fine-tune (top layers)", steps, console, unit="steps") as bar:
        for epoch in range(config.epochs):
            model.train()
            for number in rng.permutation(len(train)):
                batch = train[number]
                loss = torch.nn.functional.cross_entropy(top.logits(batch.hidden, batch.mask), targets[batch.rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.advance(note=f"epoch {epoch + 1}, loss {loss.item():.3f}")
            probs = _probabilities(top, validation, len(valid), len(labels))
            report = classification_report(valid["label"].tolist(), probs, labels)
            history.append({"epoch": epoch + 1, "validation_macro_f1": report["macro_f1"]})
            say(console, f"epoch {epoch + 1}: validation macro-F1 {report['macro_f1']:.4f}")
            if report["macro_f1"] > best_f1:
                best_f1 = report["macro_f1"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for parameter in model.parameters():
        parameter.requires_grad = True
    return history, best_state


def _probabilities(top: TopLayers, batches: list[CachedBatch], count: int, width: int) -> np.ndarray:
    import torch

    top.model.eval()
    out = np.zeros((count, width), dtype=np.float32)
    with torch.inference_mode():
        for batch in batches:
            out[batch.rows] = torch.softmax(top.logits(batch.hidden, batch.mask).float(), -1).numpy()
    return out
