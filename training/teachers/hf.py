"""`hf` teacher: a local transformers sequence-classification checkpoint."""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher

ENGINES = ("torch", "onnxruntime", "onnxruntime-int8")


class HFTeacher:
    """Scores texts with `AutoModelForSequenceClassification` on the CPU (or CUDA when present)."""

    def __init__(self, path: Path, max_length: int = 64, batch_size: int = 64,
                 multi_label: bool | None = None, threads: int | None = None, engine: str = "torch",
                 engine_check_items: int = 512, engine_min_agreement: float = 0.99,
                 engine_float_matmuls: tuple[str, ...] = ("/output/dense/",), cache_dir: Path | None = None):
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
        self.threads = threads
        self.engine = engine
        self.engine_check_items = engine_check_items
        self.engine_min_agreement = engine_min_agreement
        self.engine_float_matmuls = list(engine_float_matmuls)
        self._cache_dir = Path(cache_dir or path)

    def identity(self) -> str:
        # torch scores keep the identity they always had, so existing label caches stay valid
        engine = "" if self.engine == "torch" else f":{self.engine}"
        if self.engine == "onnxruntime-int8":
            engine += f":float{sorted(self.engine_float_matmuls)}"
        return f"hf:{self.path.name}:{self._digest}:len{self.max_length}{engine}"

    @cached_property
    def _digest(self) -> str:
        weights = sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))
        return ",".join(sha256_file(w)[:16] for w in weights)

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        return self.score(items, self.engine)

    def score(self, items: Sequence[Item], engine: str) -> np.ndarray:
        """Probabilities for these texts on `engine` (torch, onnxruntime or onnxruntime-int8)."""
        import torch

        texts = [item.text for item in items]
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chosen = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in chosen], truncation=True, padding=True,
                                     max_length=self.max_length, return_tensors="pt")
                if engine == "torch":
                    logits = self.model(**enc.to(self.device)).logits.float()
                else:
                    logits = torch.from_numpy(self._ort(enc["input_ids"].numpy(), enc["attention_mask"].numpy()))
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                out[chosen] = probs.cpu().numpy()
        return out

    def check_engine(self, items: Sequence[Item]) -> dict | None:
        """Before labelling through ONNX Runtime: its agreement with torch and the texts/s of both."""
        if self.engine == "torch":
            return None
        from edgemod.training.teachers.hf_onnx import compare_engines

        return {"engine": self.engine, **compare_engines(self, items, self.engine_check_items,
                                                         self.engine_min_agreement)}

    @cached_property
    def _ort(self):
        from edgemod.training.teachers.hf_onnx import OrtTextScorer, export_onnx, onnx_path, quantize_int8

        fp32 = export_onnx(self.model, onnx_path(self._cache_dir, self._digest, self.max_length, "onnxruntime"))
        if self.engine == "onnxruntime-int8":
            fp32 = quantize_int8(fp32, onnx_path(self._cache_dir, self._digest, self.max_length, self.engine,
                                                 self.engine_float_matmuls), self.engine_float_matmuls)
        return OrtTextScorer(fp32, self.threads)


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
    known = {"max_length", "batch_size", "multi_label", "threads", "engine", "engine_check_items",
             "engine_min_agreement", "engine_float_matmuls"}
    if set(options) - known:
        raise EdgemodError(f"unknown hf teacher option(s) {sorted(set(options) - known)}",
                           f"known options: {', '.join(sorted(known))}")
    if options.get("engine", "torch") not in ENGINES:
        raise EdgemodError(f"unknown hf teacher engine '{options['engine']}'", f"use one of: {', '.join(ENGINES)}")
    if not spec.path:
        raise EdgemodError("the hf teacher needs 'path:' (a local transformers checkpoint folder)",
                           "fine-tune one with `edgemod teacher finetune RECIPE --out DIR`")
    path = Path(spec.path)
    if not (path / "config.json").exists():
        raise EdgemodError(f"no transformers checkpoint at {path} (config.json missing)",
                           "fine-tune one with `edgemod teacher finetune RECIPE --out "
                           f"{path}` or fix the path")
    return HFTeacher(path, **options, cache_dir=context.cache_dir)
