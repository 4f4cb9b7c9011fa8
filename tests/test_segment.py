"""Lazy masks: FastSAMSegmenter's masks are ultralytics' own, made only for the rows asked for."""

from __future__ import annotations

import copy
import numpy as np
import pytest
import supervision as sv

from rtseg.detections import downscale
from rtseg.track.associate import iou_matrix
from rtseg.capture.sources import open_source
from rtseg.config import override
from rtseg.session import Session
from rtseg.detections import COEFFS, PROTOTYPES, concrete, grid_masks, masks_of, take
from rtseg.segment.fastsam import FastSAMSegmenter
from rtseg.segment.prototypes import Prototypes

from conftest import SHOWCASE, prompts_of


def frames(n: int) -> list[np.ndarray]:
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        return [f.image for _, f in zip(range(n), src)]


# 480 rows: the masks are made inside each box only; 470 rows: letterbox padding of half a prototype
# pixel, where ultralytics upsamples in two steps and rtseg calls it for the whole frame.
@pytest.mark.parametrize("imgsz,retina,rows", [(640, True, 480), (320, True, 480), (320, False, 480), (640, True, 470)])
def test_lazy_masks_are_ultralytics_masks(demo_config, imgsz, retina, rows):
    from ultralytics import FastSAM

    m = demo_config.model
    seg = FastSAMSegmenter(m.weights, "cpu", imgsz, m.conf, m.iou, retina_masks=retina, refine=0)
    plain = FastSAM(seg.path)  # ultralytics' own predictor: full-size masks of every segment
    for image in frames(6)[::2]:
        image = np.ascontiguousarray(image[:rows])
        lazy = seg(image)
        assert (lazy.metadata[PROTOTYPES]._window(image.shape[:2]) is None) == (rows == 470)
        eager = sv.Detections.from_ultralytics(plain.predict(image, **seg.kwargs)[0])
        assert lazy.mask is None and len(lazy) == len(eager) > 0
        np.testing.assert_allclose(lazy.xyxy, eager.xyxy, atol=1e-3)
        full = masks_of(lazy, image.shape[:2])
        assert full.shape == eager.mask.shape
        assert np.array_equal(full, eager.mask)
        some = np.array([len(lazy) - 1, 0])  # any rows, in any order
        assert np.array_equal(masks_of(take(lazy, some), image.shape[:2]), eager.mask[some])
        # the association grid: close to the full masks downscaled, without making them
        grid = grid_masks(lazy, image.shape[:2], 4)
        assert grid.shape == (len(lazy), -(-rows // 4), 160)
        iou = np.diag(iou_matrix(grid, downscale(eager.mask, 4)))
        assert iou.min() > 0.6 and np.median(iou) > 0.8, iou


def test_share_threads_gives_the_calling_thread_the_models_cpu_threads(segmenter):
    """A thread that ran torch with every core keeps that count; share_threads sets the model's."""
    import threading

    import torch
    from ultralytics.utils import NUM_THREADS

    seen = []

    def other(segmenter) -> None:
        torch.set_num_threads(NUM_THREADS + 1)
        segmenter.share_threads()
        seen.append(torch.get_num_threads())

    for threads in (None, 2):  # the model config's threads
        model = copy.copy(segmenter.inner)
        model.threads = threads
        worker = threading.Thread(target=other, args=(model,))
        worker.start()
        worker.join()
    assert seen == [NUM_THREADS, 2]  # ultralytics' own count on the CPU (cores - 1), else the config's


def test_concrete_drops_the_lazy_fields(segmenter):
    image = frames(1)[0]
    lazy = segmenter(image)
    out = concrete(lazy, image.shape[:2])
    assert isinstance(out.mask, sv.CompactMask) and out.mask.shape == (len(lazy), 480, 640)
    assert np.array_equal(np.asarray(out.mask), masks_of(lazy, image.shape[:2]))  # the box crops hold every pixel
    assert COEFFS not in out.data and PROTOTYPES not in out.metadata
    assert COEFFS in lazy.data and lazy.mask is None  # the input is left as it was


def test_only_reported_objects_get_full_size_masks(demo_config, segmenter, text_scorer, monkeypatch):
    made: list[int] = []
    crops = Prototypes.crops

    def counting(self, dets, shape):
        made.append(len(dets))
        return crops(self, dets, shape)

    monkeypatch.setattr(Prototypes, "crops", counting)
    session = Session(demo_config, segmenter=segmenter, text_scorer=text_scorer)
    session.add(prompts_of(SHOWCASE, "point")[0])
    segments = []
    for image in frames(12):
        segments.append(len(segmenter(image)))
        made.clear()
        dets, _ = session.process(image)
        assert len(dets) == 1 and dets.mask.shape == (1, 480, 640) and dets.mask.area[0] > 0
        if len(segments) > 1:  # after acquisition: the one object, and nothing else
            assert made == [1]
    assert min(segments) >= 4  # there was more to the scene than the object


def test_everything_mode_reports_every_segment_full_size(demo_config, segmenter):
    session = Session(override(demo_config), everything=True, segmenter=segmenter)
    image = frames(1)[0]
    dets, _ = session.process(image)
    assert len(dets) >= 4 and dets.mask.shape == (len(dets), 480, 640)
    assert (dets.mask.sum(axis=(1, 2)) > 0).all() and COEFFS not in dets.data


def test_refined_edges_are_closer_to_the_truth(demo_config):
    """The guided filter (model.refine) moves each mask's edge onto the frame's colour edge: on the
    showcase, each object's best segment overlaps its ground truth more than the model's own mask."""
    from rtseg.evaluate import jaccard, load_folder

    m = demo_config.model
    raw = FastSAMSegmenter(m.weights, "cpu", m.imgsz, m.conf, m.iou, refine=0)
    refined = raw.view(override(demo_config, model={"refine": 1.0}).model)
    _, truth = load_folder(SHOWCASE / "gt")
    gains = []
    for image, gt in list(zip(frames(40), truth))[::8]:
        dets = raw(image)
        plain, fine = masks_of(dets, image.shape[:2]), masks_of(refined(image), image.shape[:2])
        assert fine.shape == plain.shape
        for obj in np.unique(gt[gt > 0]):
            best = int(np.argmax([jaccard(p, gt == obj) for p in plain]))
            gains.append(jaccard(fine[best], gt == obj) - jaccard(plain[best], gt == obj))
    gains = np.array(gains)
    assert len(gains) >= 20 and np.median(gains) > 0.01 and gains.min() > -0.02, gains


@pytest.mark.parametrize("size,imgsz,retina", [((640, 480), 640, True), ((1920, 1080), 640, True),
                                               ((640, 470), 640, True), ((640, 480), 320, False)])
def test_edges_refined_on_the_device_as_on_the_cpu(demo_config, monkeypatch, size, imgsz, retina):
    """Beside a GPU the masks' edges are refined on it, in PyTorch (refine.guided_tensor), from masks
    that never leave it: the same masks as OpenCV's refinement on the CPU. (The tensor path runs on the
    CPU here; each of the mask-making paths: inside the boxes, whole-frame, input size.)"""
    import cv2

    m = demo_config.model
    seg = FastSAMSegmenter(m.weights, "cpu", imgsz, m.conf, m.iou, retina_masks=retina, refine=1.0)
    for image in frames(9)[::4]:
        image = cv2.resize(image, size) if size[0] != 640 else np.ascontiguousarray(image[:size[1]])
        dets = seg(image)
        on_cpu = masks_of(dets, image.shape[:2])
        monkeypatch.setattr(Prototypes, "refine_on_device", property(lambda self: True))
        on_device = masks_of(dets, image.shape[:2])
        monkeypatch.undo()
        assert len(dets) > 0 and on_device.shape == on_cpu.shape
        assert np.array_equal(on_device, on_cpu)
        assert not np.array_equal(on_cpu, masks_of(seg.view(override(demo_config, model={"refine": 0}).model)(image),
                                                   image.shape[:2]))  # the refinement changed something


@pytest.mark.parametrize("shape,radius", [((1, 1), 1), ((2, 9), 2), ((30, 41), 4), ((57, 23), 12), ((120, 90), 24)])
def test_guided_tensor_is_guided(shape, radius):
    """refine.guided_tensor against refine.guided on a noisy image of a square and a mask of any size
    (radius larger than the mask included), 2 pixels off the square: the same box, and at most a pixel
    in 1,000 apart (float rounding; none here on the CPU)."""
    import cv2
    import torch

    from rtseg.segment.refine import guided, guided_tensor

    rng = np.random.default_rng(radius)
    h, w = shape
    image = cv2.GaussianBlur(rng.integers(0, 120, (h + 60, w + 60, 3), dtype=np.uint8), (5, 5), 0)
    image[27:27 + h, 32:32 + w] += np.uint8(120)  # the object, where the mask is 2 px off
    mask = np.ones(shape, bool)
    a, ax, ay = guided(image, (mask, 30, 25), radius)
    b, bx, by = guided_tensor(torch.from_numpy(image), (torch.from_numpy(mask), 30, 25), radius)
    assert (ax, ay) == (bx, by) == (30 - radius, 25 - radius)
    assert a.shape == tuple(b.shape) == (h + 2 * radius, w + 2 * radius)
    assert (a != b.numpy()).mean() <= 1e-3
    if min(shape) > 20:  # the edge moved towards the square's
        truth, coarse = np.zeros_like(a), np.zeros_like(a)
        truth[radius + 2:radius + 2 + h, radius + 2:radius + 2 + w] = True
        coarse[radius:radius + h, radius:radius + w] = True
        assert iou_matrix(a[None], truth[None])[0, 0] > iou_matrix(coarse[None], truth[None])[0, 0] + 0.02
