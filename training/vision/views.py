"""Multi-view teacher labels for image recipes (FKD: Shen & Xing, ECCV 2022).

A teacher that labels only the clean train image gives the student one fixed target, while the
student trains on random crops the teacher never saw; a teacher fine-tuned on those very images is
also near one-hot on them. Here every train (and transfer) image gets K views, each a random
resized crop and flip, optionally mixed with a view of another image (mixup or cutmix). The label
stage scores each view once and stores its parameters (a JSON string, column `view`) beside the
soft labels; the trainer renders exactly those views again, so teacher and student see the same
pixels, each at its own input size. Views are deterministic per (seed, item key, view number).
"""
from __future__ import annotations

import json
import math
import zlib

import numpy as np

from edgemod.recipe_views import ViewsSpec

VIEW_ROLE = "view"  # a row of the label table that is a view of its `parent` item
VIEW_SEPARATOR = "~view:"


def view_items(items, spec: ViewsSpec):
    """The view rows for the train/transfer images of the item table (role `view`, column `parent`)."""
    import pandas as pd

    sources = items[items["role"].isin(("train", "transfer"))]
    columns = ["key", "dataset", "split", "role", "path", "label", "parent", "view"]
    if not spec.per_image or sources.empty:
        return pd.DataFrame(columns=columns)
    sizes = [_image_size(path) for path in sources["path"]]
    pool = list(zip(sources["key"], sources["path"], sizes))
    rows = []
    for (key, path, size), item in zip(pool, sources.itertuples(index=False)):
        for number in range(spec.per_image):
            rng = np.random.default_rng([spec.seed, zlib.crc32(key.encode()), number])
            rows.append({"key": f"{key}{VIEW_SEPARATOR}{number}", "dataset": item.dataset, "split": item.split,
                         "role": VIEW_ROLE, "path": path, "label": None, "parent": key,
                         "view": json.dumps(sample_view(rng, size, spec, pool, key), sort_keys=True)})
    return pd.DataFrame(rows, columns=columns)


def sample_view(rng: np.random.Generator, size: tuple[int, int], spec: ViewsSpec, pool: list, key: str) -> dict:
    """One view's parameters: crop box (relative x0, y0, x1, y1), flip, and an optional mix."""
    view = {"box": crop_box(rng, size, spec), "flip": bool(rng.random() < spec.hflip), **photometric(rng, spec)}
    mix = spec.mix
    if mix is not None and len(pool) > 1 and rng.random() < mix.p:
        partner = int(rng.integers(len(pool) - 1))
        partner_key, partner_path, partner_size = pool[partner if pool[partner][0] != key else len(pool) - 1]
        lam = float(rng.beta(mix.alpha, mix.alpha))
        entry = {"kind": mix.kind, "key": partner_key, "path": partner_path,
                 "box": crop_box(rng, partner_size, spec), "flip": bool(rng.random() < spec.hflip),
                 **photometric(rng, spec)}
        if mix.kind == "cutmix":
            entry["cut"] = _cut_box(rng, 1 - lam)
            lam = 1 - (entry["cut"][2] - entry["cut"][0]) * (entry["cut"][3] - entry["cut"][1])
        entry["lam"] = round(lam, 6)
        view["mix"] = entry
    return view


def photometric(rng: np.random.Generator, spec: ViewsSpec) -> dict:
    """Rotation angle, colour-jitter factors and JPEG quality of one view (keys only for what is on,
    and no draws for what is off, so views of a spec without them stay as they were)."""
    params = {}
    if spec.rotation:
        params["angle"] = round(float(rng.uniform(-spec.rotation, spec.rotation)), 4)
    jitter = spec.color_jitter
    if jitter is not None:
        factors = [float(rng.uniform(max(0.0, 1 - f), 1 + f)) for f in (jitter.brightness, jitter.contrast,
                                                                        jitter.saturation)]
        params["jitter"] = [round(v, 6) for v in (*factors, float(rng.uniform(-jitter.hue, jitter.hue)))]
    if spec.jpeg is not None and rng.random() < spec.jpeg.p:
        params["jpeg"] = int(rng.integers(spec.jpeg.quality[0], spec.jpeg.quality[1] + 1))
    return params


def crop_box(rng: np.random.Generator, size: tuple[int, int], spec: ViewsSpec) -> list[float]:
    """A RandomResizedCrop box (torchvision's rule: 10 tries, then the largest centred crop that fits)."""
    width, height = size
    area = width * height
    log_ratio = (math.log(spec.ratio[0]), math.log(spec.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*spec.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            x, y = int(rng.integers(width - w + 1)), int(rng.integers(height - h + 1))
            return _relative((x, y, x + w, y + h), size)
    aspect = width / height
    if aspect < spec.ratio[0]:
        w, h = width, round(width / spec.ratio[0])
    elif aspect > spec.ratio[1]:
        w, h = round(height * spec.ratio[1]), height
    else:
        w, h = width, height
    x, y = (width - w) // 2, (height - h) // 2
    return _relative((x, y, x + w, y + h), size)


def render_view(view: dict, path: str, side: int, background: tuple[int, int, int]):
    """The view as a PIL RGB image of side x side pixels (before the model's normalisation)."""
    from PIL import Image

    image = _crop(path, view, side, background)
    mix = view.get("mix")
    if not mix:
        return image
    partner = _crop(mix["path"], mix, side, background)
    if mix["kind"] == "mixup":
        return Image.blend(image, partner, 1 - mix["lam"])  # lam * image + (1 - lam) * partner
    x0, y0, x1, y1 = (round(v * side) for v in mix["cut"])
    if x1 > x0 and y1 > y0:
        image.paste(partner.crop((x0, y0, x1, y1)), (x0, y0))
    return image


def view_transform(cfg):
    """Stored view (dict), image path -> normalised tensor at `cfg`'s input size."""
    from torchvision import transforms as T

    from edgemod.runtime.image import tensor_and_normalise

    side = cfg.input_size[1]
    to_tensor = T.Compose(tensor_and_normalise(cfg))
    background = tuple(cfg.alpha_background)
    return lambda view, path: to_tensor(render_view(view, path, side, background))


def is_mixed(view_json: str) -> bool:
    return "mix" in json.loads(view_json)


def _crop(path: str, view: dict, side: int, background):
    """Rotate, recolour and re-compress the source image as the view says (train_transform's order),
    then resize its crop box to side x side and mirror it."""
    from PIL import Image

    from edgemod.runtime.image import load_image

    image = load_image(path, background)
    if view.get("angle"):
        image = image.rotate(view["angle"], resample=Image.Resampling.BILINEAR, fillcolor=tuple(background))
    if "jitter" in view:
        image = _recolour(image, *view["jitter"])
    if "jpeg" in view:
        from edgemod.training.vision.augment import jpeg_reencode

        image = jpeg_reencode(image, view["jpeg"])
    box = view["box"]
    width, height = image.size
    pixels = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    image = image.resize((side, side), Image.Resampling.BILINEAR, box=pixels)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if view["flip"] else image


def _recolour(image, brightness: float, contrast: float, saturation: float, hue: float):
    """torchvision's ColorJitter with its factors given, in a fixed order."""
    from torchvision.transforms import functional as F

    image = F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(image, brightness), contrast), saturation)
    return F.adjust_hue(image, hue) if hue else image


def _cut_box(rng: np.random.Generator, share: float) -> list[float]:
    """A cutmix box covering about `share` of the output, centred anywhere, clipped to the frame."""
    side = math.sqrt(max(share, 0.0))
    cx, cy = rng.uniform(), rng.uniform()
    return [round(max(cx - side / 2, 0), 6), round(max(cy - side / 2, 0), 6),
            round(min(cx + side / 2, 1), 6), round(min(cy + side / 2, 1), 6)]


def _relative(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[float]:
    width, height = size
    return [round(box[0] / width, 6), round(box[1] / height, 6), round(box[2] / width, 6), round(box[3] / height, 6)]


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


class ViewTargets:
    """For each train row (a parent image): its K stored views, the teacher's scores of each, and the
    gold label of each (the parent's, or -1 for a mixed view: its target is the teacher's alone)."""

    def __init__(self, views: list[list[str]], soft: np.ndarray, gold: np.ndarray):
        self.views, self.soft, self.gold = views, soft, gold

    @classmethod
    def gather(cls, table, keys: list[str], soft: np.ndarray, gold: np.ndarray, per_image: int) -> ViewTargets:
        from edgemod.errors import EdgemodError

        view_rows = table.index[table["role"] == VIEW_ROLE].to_numpy()
        by_key = {key: row for row, key in zip(view_rows, table["key"].iloc[view_rows])}
        parent_gold = dict(zip(table["key"], gold))
        rows, missing = [], []
        for key in keys:
            found = [by_key.get(f"{key}{VIEW_SEPARATOR}{n}") for n in range(per_image)]
            if any(row is None for row in found):
                missing.append(key)
            rows.append(found)
        if missing:
            raise EdgemodError(f"{len(missing)} train image(s) lack their {per_image} labelled views "
                               f"(first: {missing[0]})", "re-run `edgemod label` with this recipe's views: section")
        rows = np.asarray(rows, dtype=np.int64)
        texts = table["view"].to_numpy()
        views = [[texts[r] for r in row] for row in rows]
        mixed = np.array([[is_mixed(v) for v in row] for row in views], dtype=bool)
        golds = np.where(mixed, -1, np.array([parent_gold[k] for k in keys])[:, None])
        return cls(views, soft[rows], golds.astype(np.int64))


class ViewEpochs:
    """Training rows `(image, soft, gold)`: each parent image as one of its stored views, a different
    one every epoch (a per-image offset, then in turn), with the teacher's scores of that very view.

    The choice depends only on (seed, epoch), like `ObfuscatedTexts`, and sits in shared memory so
    persistent DataLoader workers see it; the trainer calls `set_epoch` before it iterates."""

    def __init__(self, paths: list[str], targets: ViewTargets, transform, seed: int):
        import torch

        self.paths, self.views, self.transform = paths, targets.views, transform
        self.soft = torch.from_numpy(np.ascontiguousarray(targets.soft, dtype=np.float32))
        self.gold = torch.from_numpy(targets.gold)
        count = self.soft.shape[1]
        self.offset = np.random.default_rng([seed, 7]).integers(count, size=len(paths))
        self.choice = torch.zeros(len(paths), dtype=torch.int64).share_memory_()
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        import torch

        self.choice.copy_(torch.from_numpy((self.offset + epoch - 1) % self.soft.shape[1]))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        k = int(self.choice[index])
        image = self.transform(json.loads(self.views[index][k]), self.paths[index])
        return image, self.soft[index, k], self.gold[index, k]
