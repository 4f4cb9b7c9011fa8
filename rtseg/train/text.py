"""Train the bundled tiny open_clip model contrastively on captioned masked crops.

The model is an open_clip config of rtseg's own (``rtseg-shapes-clip``: a small ModifiedResNet image
tower and a 3-layer text transformer over the standard open_clip tokenizer). The saved state dict is
loaded by ``open_clip.create_model_and_transforms("rtseg-shapes-clip", pretrained=path)``, the same
call that loads ViT-B-32.

Many captions in a batch describe the same colour and shape ("red", "the red circle"), so the loss
is a multi-positive contrastive loss: every caption that is true of a crop is a positive for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rtseg.synth.dataset import COLOUR_TEMPLATES, FULL_TEMPLATES, SHAPE_TEMPLATES
from rtseg.synth.world import COLOURS, SHAPES

MODEL_NAME = "rtseg-shapes-clip"


@dataclass(frozen=True)
class Caption:
    text: str
    colour: str | None
    shape: str | None

    def matches(self, colour: str, shape: str) -> bool:
        return self.colour in (None, colour) and self.shape in (None, shape)


def all_captions() -> list[Caption]:
    """Every caption the templates make: colour + shape, colour alone, shape alone."""
    out = [Caption(t.format(c=c, s=s), c, s) for c in COLOURS for s in SHAPES for t in FULL_TEMPLATES]
    out += [Caption(t.format(c=c), c, None) for c in COLOURS for t in COLOUR_TEMPLATES]
    out += [Caption(t.format(s=s), None, s) for s in SHAPES for t in SHAPE_TEMPLATES]
    return out


def load_crops(root: Path, split: str, preprocess) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Preprocessed crops (N, 3, S, S), colour indices (N,) and shape indices (N,) of one split."""
    images, colours, shapes = [], [], []
    with open(root / "crops.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec["split"] != split:
                continue
            bgr = cv2.imread(str(root / "crops" / rec["file"]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(root / "crops" / rec["file"])
            images.append(preprocess(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))))
            colours.append(COLOURS.index(rec["colour"]))
            shapes.append(SHAPES.index(rec["shape"]))
    return torch.stack(images), np.array(colours), np.array(shapes)


def multi_positive_loss(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy against soft targets spread evenly over every positive pair.

    Args:
        logits: (B, C) image-to-caption similarities, scaled.
        positive: (B, C) bool, True where caption j is true of image i (each row and column has one).
    """
    target = positive.float()
    i2t = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    t2i = -(target / target.sum(0, keepdim=True) * F.log_softmax(logits, 0)).sum(0).mean()
    return (i2t + t2i) / 2


def train_text_model(
    crops_root: str | Path,
    out: str | Path,
    steps: int = 2000,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    log_every: int = 100,
) -> dict:
    """Train ``rtseg-shapes-clip`` from scratch on ``crops_root/crops.jsonl``; save fp16 weights to ``out``."""
    from rtseg.prompt.clip import create_clip

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    model, preprocess, tokenizer = create_clip(MODEL_NAME, None)
    root = Path(crops_root)
    images, colours, shapes = load_crops(root, "train", preprocess)
    captions = all_captions()
    tokens = tokenizer([c.text for c in captions])
    # Which captions are true of which (colour, shape) pair.
    table = np.array([[[c.matches(col, shp) for c in captions] for shp in SHAPES] for col in COLOURS])
    full = np.array([c.colour is not None and c.shape is not None for c in captions])

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.02)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.05, 3 / steps))
    model.train()
    start = time.time()
    history = []
    for step in range(steps):
        idx = rng.integers(0, len(images), batch)
        # One true caption per crop: colour and shape 60% of the time, else colour or shape alone.
        cap_idx = np.empty(batch, int)
        for k, i in enumerate(idx):
            ok = table[colours[i], shapes[i]]
            pool = np.nonzero(ok & full)[0] if rng.random() < 0.6 else np.nonzero(ok & ~full)[0]
            cap_idx[k] = rng.choice(pool)
        x = images[idx]
        flip = torch.from_numpy(rng.random(batch) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        x = torch.rot90(x, int(rng.integers(0, 4)), (2, 3))
        positive = torch.from_numpy(table[colours[idx], shapes[idx]][:, cap_idx])
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(tokens[cap_idx]), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
        loss = multi_positive_loss(logits, positive)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0 or step == steps - 1:
            history.append({"step": step + 1, "loss": round(float(loss), 4), "s": round(time.time() - start, 1)})
            print(json.dumps(history[-1]), flush=True)
    wall = time.time() - start
    model.eval()
    with torch.no_grad():  # a word never seen in training adds nothing (and the file compresses well)
        unused = torch.ones(model.token_embedding.num_embeddings, dtype=torch.bool)
        unused[tokens.unique()] = False
        model.token_embedding.weight[unused] = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, out)
    return {"wall_s": round(wall, 1), "steps": steps, "batch": batch, "lr": lr, "seed": seed,
            "train_crops": len(images), "final_loss": history[-1]["loss"]}
