"""Training data from the shapes world: YOLO-seg labels and captioned masked crops.

``write_dataset(OUT, n)`` writes

- ``OUT/images/{train,val}/*.jpg`` and ``OUT/labels/{train,val}/*.txt``: one class ("object"), one
  polygon per visible object, normalised to [0, 1] (ultralytics' segment format);
- ``OUT/masks/{train,val}/*.png``: the ground-truth label map of each image (indexed PNG, object ids);
- ``OUT/data.yaml``: the dataset file for ultralytics, with absolute paths;
- ``OUT/crops/*.png`` and ``OUT/crops.jsonl``: each visible object cut out with :func:`masked_crop`,
  with its colour, shape, split and captions in several phrasings.

Images are JPEG-compressed at a random quality, as a video codec would leave them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import yaml

from rtseg.prompt.crops import masked_crop
from rtseg.output.png import write_index_png
from rtseg.synth.world import (
    MAX_RADIUS,
    MIN_RADIUS,
    SceneObject,
    draw_attributes,
    make_background,
    render,
    scale_for,
)

FULL_TEMPLATES = ("the {c} {s}", "a {c} {s}", "{c} {s}", "a photo of a {c} {s}", "the {s} that is {c}")
COLOUR_TEMPLATES = ("{c}", "the {c} one", "something {c}", "the {c} object")
SHAPE_TEMPLATES = ("{s}", "the {s}", "a {s}", "a {s} shape")


def captions(colour: str, shape: str) -> list[str]:
    """Every caption phrasing for one object: colour and shape, colour alone, shape alone.

    >>> captions("red", "circle")[:3]
    ['the red circle', 'a red circle', 'red circle']
    """
    return ([t.format(c=colour, s=shape) for t in FULL_TEMPLATES]
            + [t.format(c=colour) for t in COLOUR_TEMPLATES]
            + [t.format(s=shape) for t in SHAPE_TEMPLATES])


def random_scene(rng: np.random.Generator, height: int, width: int, scale: float | None = None) -> list[SceneObject]:
    """1 to 8 objects with distinct (colour, shape), random size, pose and overlap; some cut by the edge.

    Sizes follow the domain's 640x480 frame times ``scale`` (default: this frame's size relative to
    640x480; 1.0 makes a small image a crop of a full-size frame).
    """
    s = scale_for(height, width) if scale is None else scale
    objects = []
    for k, (colour, shape) in enumerate(draw_attributes(rng, int(rng.integers(1, 9)))):
        r = float(np.exp(rng.uniform(np.log(MIN_RADIUS), np.log(MAX_RADIUS)))) * s
        centre = (float(rng.uniform(-0.3 * r, width + 0.3 * r)), float(rng.uniform(-0.3 * r, height + 0.3 * r)))
        objects.append(SceneObject(k + 1, colour, shape, centre, r, float(rng.uniform(0, 360))))
    return objects


def _polygon(mask: np.ndarray) -> np.ndarray | None:
    """The outline (N, 2) of the largest part of a mask, or None when too small."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, 0.8, True).reshape(-1, 2)
    return c if len(c) >= 3 else None


def _jitter_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grow or shrink a mask by up to 2 px, like a predicted mask's imprecise edge."""
    k = int(rng.integers(-2, 3))
    if k == 0:
        return mask
    kernel = np.ones((2 * abs(k) + 1,) * 2, np.uint8)
    op = cv2.dilate if k > 0 else cv2.erode
    out = op(mask.astype(np.uint8), kernel).astype(bool)
    return out if out.any() else mask


def write_dataset(
    out: str | Path,
    n: int,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    val_fraction: float = 0.1,
    min_area: int = 40,
    object_scale: float | None = None,
) -> dict:
    """Write ``n`` random scenes (YOLO-seg + crops) into ``out``; returns counts.

    ``object_scale=1.0`` draws objects at their size in a 640x480 frame whatever ``size`` is: small
    training images are then crops of full frames, and a model trained on them at a small imgsz
    segments full frames at the full imgsz with the same object scale.
    """
    out = Path(out).resolve()
    width, height = size
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        (out / "masks" / split).mkdir(parents=True, exist_ok=True)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    n_val = int(round(n * val_fraction))
    counts = {"images": 0, "objects": 0, "crops": 0}
    with open(out / "crops.jsonl", "w") as crops_file:
        for i in range(n):
            rng = np.random.default_rng([seed, i])
            split = "val" if i < n_val else "train"
            objects = random_scene(rng, height, width, object_scale)
            image, labels = render(make_background(rng, height, width), objects, rng)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 96))])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # what the model will see
            assert decoded is not None
            image = decoded
            name = f"{seed:04d}_{i:06d}"
            (out / "images" / split / f"{name}.jpg").write_bytes(buf.tobytes())
            write_index_png(out / "masks" / split / f"{name}.png", labels)
            lines = []
            for obj in objects:
                mask = labels == obj.id
                if mask.sum() < min_area:
                    continue
                poly = _polygon(mask)
                if poly is None:
                    continue
                xy = (poly / [width, height]).clip(0, 1).flatten()
                lines.append("0 " + " ".join(f"{v:.5f}" for v in xy))
                crop = masked_crop(image, _jitter_mask(mask, rng))
                crop_name = f"{name}_{obj.id}.png"
                cv2.imwrite(str(out / "crops" / crop_name), crop)
                record = {"file": crop_name, "id": obj.id, "colour": obj.colour, "shape": obj.shape, "split": split,
                          "scene": name, "area": int(mask.sum()), "captions": captions(obj.colour, obj.shape)}
                crops_file.write(json.dumps(record) + "\n")
                counts["crops"] += 1
            (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            counts["images"] += 1
            counts["objects"] += len(lines)
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": {0: "object"}}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return counts
