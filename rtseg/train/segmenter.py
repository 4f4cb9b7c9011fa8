"""Train the bundled FastSAM-format segmenter (YOLOv8-seg, one class) on a synthetic dataset.

The result is a plain ultralytics checkpoint, loaded by ``ultralytics.FastSAM(path)`` exactly as
FastSAM-s.pt is.
"""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from rtseg.segment.offline import prepare_ultralytics

ARCH = "shapes-seg.yaml"


def train_segmenter(
    data: str | Path,
    out: str | Path,
    workdir: str | Path,
    epochs: int = 12,
    imgsz: int = 320,
    batch: int = 16,
    seed: int = 0,
    threads: int = 2,
) -> dict:
    """Train from scratch on ``data`` (an ultralytics data YAML); writes the best checkpoint to ``out``."""
    prepare_ultralytics()
    import torch
    from ultralytics import YOLO

    arch = resources.files("rtseg") / "model_configs" / ARCH
    model = YOLO(str(arch), task="segment")

    def set_threads(_trainer: object) -> None:  # ultralytics sets (cores - 1) threads on every setup
        torch.set_num_threads(threads)

    model.add_callback("on_pretrain_routine_end", set_threads)
    model.add_callback("on_train_epoch_start", set_threads)
    start = time.time()
    model.train(
        data=str(Path(data).resolve()), epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, deterministic=True,
        device="cpu", workers=0, mosaic=0.0, warmup_epochs=1, close_mosaic=0, plots=False, amp=False,
        project=str(Path(workdir).resolve()), name="segmenter", exist_ok=True, verbose=False, cache=False,
        fliplr=0.5, degrees=0.0, scale=0.5, translate=0.1,
    )
    wall = time.time() - start
    trainer = model.trainer
    assert trainer is not None  # set by train()
    best = Path(trainer.best)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    metrics = trainer.metrics
    return {"wall_s": round(wall, 1), "epochs": epochs, "imgsz": imgsz, "batch": batch, "seed": seed,
            "val": {k: round(float(v), 4) for k, v in metrics.items()}}
