"""Quantization-aware fine-tuning for static int8 image exports (`distill.qat_epochs`).

Static int8 TFLite/ONNX quantize every activation to 8 bits per tensor with ranges from the
calibration images (min/max), weights per channel (on their grid already with
`distill.int8_weights`). The student never saw that rounding in training, so a few decisions near a
threshold flip. After the normal epochs (best checkpoint loaded), this fine-tunes for a few epochs
at a lower learning rate with the same rounding simulated in the forward pass (fake quantization,
straight-through gradients) at the tensors the exported graph quantizes: the input, each conv's
output after its folded BatchNorm and activation, each residual sum and the pooled features (the
classifier itself stays float in our recipes: `float_ops: [FULLY_CONNECTED]`). Ranges are running
min/max over the fine-tuning batches (`distill.qat_ranges: running`), or (`validation`) the min/max
of the validation images through the trained student in eval mode, fixed while fine-tuning: the
ranges the exporter's min/max calibration on that split finds, rather than those of augmented
training batches. (On weapons neither brought static int8 within budget: README, "Quantization-aware
fine-tuning".)
"""
from __future__ import annotations

import time

import numpy as np

from edgemod.console import progress, say
from edgemod.errors import EdgemodError

LR_FACTOR = 0.1  # fine-tuning learning rate, relative to distill.lr


class _RangeQuantizer:
    """Running min/max of one tensor, and its int8 (asymmetric, per tensor) fake quantization."""

    def __init__(self):
        self.low, self.high = None, None
        self.frozen = False  # ranges fixed (taken from calibration images before fine-tuning)

    def observe(self, tensor) -> None:
        low, high = float(tensor.detach().min()), float(tensor.detach().max())
        self.low = min(low, 0.0) if self.low is None else min(self.low, low)
        self.high = max(high, 0.0) if self.high is None else max(self.high, high)

    def __call__(self, tensor):
        import torch

        if not self.frozen or self.low is None:
            self.observe(tensor)
        scale = max((self.high - self.low) / 255.0, 1e-8)
        zero_point = int(np.clip(round(-128 - self.low / scale), -128, 127))
        return torch.fake_quantize_per_tensor_affine(tensor, scale, zero_point, -128, 127)


class FakeQuant:
    """Forward hooks that fake-quantize the activations static int8 export quantizes, while training."""

    def __init__(self, model):
        self.quantizers: dict[str, _RangeQuantizer] = {}
        self.observing = False
        self.handles = [model.register_forward_pre_hook(self._input_hook("input"))]
        for name, module in model.named_modules():
            if type(module).__name__ == "BatchNormAct2d" or getattr(module, "has_skip", False) or name == "global_pool":
                self.handles.append(module.register_forward_hook(self._output_hook(name)))

    def _quantizer(self, name: str) -> _RangeQuantizer:
        return self.quantizers.setdefault(name, _RangeQuantizer())

    def _input_hook(self, name: str):
        def hook(module, args):
            if self.observing:
                self._quantizer(name).observe(args[0])
            if not module.training:
                return None
            return (self._quantizer(name)(args[0]), *args[1:])
        return hook

    def _output_hook(self, name: str):
        def hook(module, args, output):
            if self.observing:
                self._quantizer(name).observe(output)
            return self._quantizer(name)(output) if module.training else None
        return hook

    def calibrate(self, model, dataset, batch_size: int = 64) -> None:
        """Ranges from `dataset` through the model in eval mode (folded BatchNorm, as exported), then fixed."""
        import torch

        from edgemod.training.sampling import loader

        model.eval()
        self.observing = True
        with torch.no_grad():
            for *batch_inputs, _soft, _gold in loader(dataset, batch_size, 0, 0, shuffle=False):
                model(*batch_inputs)
        self.observing = False
        for quantizer in self.quantizers.values():
            quantizer.frozen = True

    def remove(self) -> dict:
        for handle in self.handles:
            handle.remove()
        return {"tensors": len(self.quantizers),
                "widest_range": round(max((q.high - q.low for q in self.quantizers.values()), default=0.0), 4)}


def fine_tune(model, recipe, inputs, split, console, validation=None) -> dict:
    """`distill.qat_epochs` epochs of fake-quantized fine-tuning of `model` (in place); a summary.
    `validation` (a Split) gives the fixed ranges of `distill.qat_ranges: validation`."""
    import torch

    from edgemod.training.distill import distillation_loss
    from edgemod.training.sampling import balancing, loader

    spec = recipe.distill
    say(console, f"train: {spec.qat_epochs} quantization-aware epoch(s) (int8 activations simulated)")
    from edgemod.training import freezing

    frozen = freezing.freeze(model, spec.freeze)
    fake = FakeQuant(model)
    if spec.qat_ranges == "validation":
        if validation is None:
            raise EdgemodError("distill.qat_ranges: validation needs the validation split",
                               "give the recipe a data.validation split, or use qat_ranges: running")
        fake.calibrate(model, inputs.eval_dataset(validation))
    sampler, class_weights = balancing(recipe, split)
    dataset = inputs.train_dataset(split)
    batches = loader(dataset, spec.batch_size, spec.seed + 1000, spec.num_workers, sampler=sampler)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=spec.lr * LR_FACTOR, weight_decay=spec.weight_decay)
    started, losses = time.time(), []
    for epoch in range(1, spec.qat_epochs + 1):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(spec.epochs + epoch)
        with progress(f"train quantization-aware epoch {epoch}/{spec.qat_epochs}", len(batches), console,
                      unit="steps") as bar:
            model.train()
            freezing.keep_frozen(model, frozen)
            for *batch_inputs, soft, gold in batches:
                if spec.channels_last:
                    batch_inputs = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                                    for x in batch_inputs]
                loss = distillation_loss(model(*batch_inputs), soft, gold, spec, recipe.multi_label, class_weights)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                losses.append(loss.item())
                bar.advance(note=f"loss {loss.item():.4f}")
    model.eval()
    return {"epochs": spec.qat_epochs, "ranges": spec.qat_ranges, "seconds": round(time.time() - started, 1),
            "train_loss": round(float(np.mean(losses)), 6) if losses else None, **fake.remove()}
