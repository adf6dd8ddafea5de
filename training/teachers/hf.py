"""`hf` teacher: a local transformers sequence-classification checkpoint."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher


class HFTeacher:
    """Scores texts with `AutoModelForSequenceClassification` on the CPU (or CUDA when present)."""

    def __init__(self, path: Path, max_length: int = 64, batch_size: int = 64,
                 multi_label: bool | None = None, threads: int | None = None):
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.path = path
        config = AutoConfig.from_pretrained(path)
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        problem = getattr(config, "problem_type", None)
        self.multi_label = multi_label if multi_label is not None else problem == "multi_label_classification"
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.parameters = int(sum(p.numel() for p in self.model.parameters()))
        self.pretrained = base_provenance(path)  # for the model card: what the teacher was fine-tuned from

    def identity(self) -> str:
        weights = sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))
        digest = ",".join(sha256_file(w)[:16] for w in weights)
        return f"hf:{self.path.name}:{digest}:len{self.max_length}"

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        import torch

        texts = [item.text for item in items]
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chosen = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in chosen], truncation=True, padding=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.float()
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                out[chosen] = probs.cpu().numpy()
        return out


def base_provenance(path: Path) -> dict | None:
    """The pretrained encoder a checkpoint from `edgemod teacher finetune` started from, or None."""
    import json

    manifest = path / "manifest.json"
    if not manifest.exists():
        return None
    base = json.loads(manifest.read_text()).get("details", {}).get("base_provenance")
    if not base:
        return None
    names = list(base["packages"])
    package = names[0] if len(names) == 1 else f"{names[0]} … {names[-1].rsplit('-', 1)[-1]}"
    return {"name": base["weights"], "package": package, "version": ",".join(sorted(set(base["packages"].values()))),
            "license": base["license"], "sha256": base.get("zip_sha256") or base.get("weights_sha256", "")}


@register_teacher("hf")
def build_hf_teacher(spec: TeacherSpec, context: TeacherContext) -> HFTeacher:
    options = dict(spec.options)
    known = {"max_length", "batch_size", "multi_label", "threads"}
    if set(options) - known:
        raise EdgemodError(f"unknown hf teacher option(s) {sorted(set(options) - known)}",
                           f"known options: {', '.join(sorted(known))}")
    if not spec.path:
        raise EdgemodError("the hf teacher needs 'path:' (a local transformers checkpoint folder)",
                           "fine-tune one with `edgemod teacher finetune RECIPE --out DIR`")
    path = Path(spec.path)
    if not (path / "config.json").exists():
        raise EdgemodError(f"no transformers checkpoint at {path} (config.json missing)",
                           "fine-tune one with `edgemod teacher finetune RECIPE --out "
                           f"{path}` or fix the path")
    return HFTeacher(path, **options)
