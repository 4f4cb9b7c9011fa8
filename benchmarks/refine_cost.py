"""What the mask-edge refinement (``model.refine``, :mod:`rtseg.segment.refine`) costs per frame.

    .venv/bin/python benchmarks/refine_cost.py samples/showcase/video.mp4 out/samples/crowd/video.mp4 \
        out/samples-hd/crowd-1920x1080/video.mp4 out/samples-hd/crowd-3840x2160/video.mp4 --repeats 2

For each video, on its first ``--frames`` frames: the frame-size masks (box crops, as the tracker
reports them) of the ``--objects`` largest segments, made by the same loaded model with
``refine: 0`` and with the config's ``refine`` (the same segments, interleaved frame by frame);
median ms of each, and the difference. Each repeat runs every video again (the machine is shared:
compare the two columns within a row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import conftest  # noqa: E402,F401  (sets the offline environment first)

from rtseg.capture.sources import open_source  # noqa: E402
from rtseg.config import load_config, override  # noqa: E402
from rtseg.detections import compact_of, take  # noqa: E402
from rtseg.segment.fastsam import FastSAMSegmenter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--config", default=str(conftest.DEMO_CONFIG))
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--objects", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    config = load_config(args.config)
    plain = FastSAMSegmenter.from_config(override(config, model={"refine": 0}).model)
    refined = plain.view(config.model)

    for _ in range(args.repeats):
        for video in args.videos:
            with open_source(video) as src:
                images = [f.image for _, f in zip(range(args.frames), src)]
            raw, ref = [], []
            for image in images:  # the same segments both ways: time only the masks of the largest
                dets, fine = plain(image), refined(image)
                boxes = dets.xyxy
                idx = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:args.objects]
                raw.append(_ms(compact_of, take(dets, idx), image.shape[:2]))
                ref.append(_ms(compact_of, take(fine, idx), image.shape[:2]))
            h, w = images[0].shape[:2]
            a, b = float(np.median(raw)), float(np.median(ref))
            print(f"{Path(video).parent.name:22s} {w}x{h}  {len(idx)} objects  "
                  f"refine 0: {a:5.1f} ms  refine {config.model.refine:g}: {b:5.1f} ms  (+{b - a:.1f})")


def _ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return 1000 * (time.perf_counter() - start)


if __name__ == "__main__":
    main()
