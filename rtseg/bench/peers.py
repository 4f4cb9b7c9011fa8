"""What a user of ultralytics would run instead of rtseg, for ``rtseg bench`` to compare against.

- :func:`per_frame_prompts`: FastSAM with the first-frame prompt given again on every frame
  (``FastSAMPredictor.prompt`` with the same points, box or text): no memory of the object, so a
  point or box stays where the object was, and a text prompt re-runs CLIP on every mask of every
  frame. Text goes through the same CLIP model as rtseg's (ultralytics' own loader wants OpenAI's
  ``clip`` package and weights), all texts of a frame in one call, as ultralytics batches them.
- :func:`box_tracker`: ``model.track(persist=True)`` with ByteTrack on FastSAM's boxes (it drops
  prompts): the prompt picks a track id on the first frame, then that id is followed.
- :func:`all_tracks`: ``model.track(persist=True)`` with no prompt at all: every track id is an
  object (what ``rtseg track --everything`` does), for the MOT metrics.
- :func:`concept_tracks`: ``model.track(persist=True)`` and CLIP on every mask of every frame, each
  judged alone: a concept prompt (every instance of a phrase) the ultralytics way.

The first two return one label map (H, W) uint8 per frame (pixel = the object's id in ``objects``),
the last two (H, W) int32 (pixel = track id), and all the milliseconds each frame took.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import cv2
import numpy as np
import torch
from PIL import Image

from rtseg.prompt.crops import FILL
from rtseg.prompt.clip import TextScorer

Objects = list[dict[str, Any]]  # objects.json entries: id, point [x, y], box [x1, y1, x2, y2], text


class ClipForUltralytics:
    """The interface ``FastSAMPredictor._clip_inference`` calls (``ultralytics.nn.text_model.CLIP``),
    served by an open_clip model (rtseg's :class:`~rtseg.prompt.clip.TextScorer`)."""

    def __init__(self, scorer: TextScorer) -> None:
        self.scorer = scorer

    def image_preprocess(self, image: Image.Image) -> torch.Tensor:
        # rtseg's CLIP was trained on square crops padded with grey: give ultralytics' crops the same
        # padding, so only the crop itself (black outside the mask, box-shaped) differs.
        w, h = image.size
        square = Image.new("RGB", (max(w, h),) * 2, (FILL,) * 3)
        square.paste(image, ((max(w, h) - w) // 2, (max(w, h) - h) // 2))
        return self.scorer.preprocess(square)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            emb = self.scorer.model.encode_image(images).float()
        self.scorer.crops_encoded += len(images)
        return emb / emb.norm(dim=-1, keepdim=True)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.scorer.tokenizer(texts)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            emb = self.scorer.model.encode_text(tokens).float()
        return emb / emb.norm(dim=-1, keepdim=True)


def _masks(result: Any) -> np.ndarray:
    if result.masks is None or len(result) == 0:
        h, w = result.orig_shape
        return np.zeros((0, h, w), bool)
    return result.masks.data.cpu().numpy().astype(bool)


def _paint(shape: tuple[int, int], masks: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for oid, m in masks:
        out[m] = oid
    return out


def per_frame_prompts(model: Any, frames: Iterable[np.ndarray], objects: Objects, kind: str,
                      kwargs: dict[str, Any], scorer: TextScorer | None = None
                      ) -> tuple[list[np.ndarray], list[float]]:
    """FastSAM predict, then the first-frame prompt of each object (``kind`` point, box or text)
    applied to the frame's masks, frame after frame."""
    labels, times = [], []
    for image in frames:
        t0 = time.perf_counter()
        result = model.predict(image, **kwargs)[0]
        predictor = model.predictor
        picked: list[tuple[int, np.ndarray]] = []
        if kind == "text":
            if scorer is None:
                raise ValueError("text prompts need a CLIP model")
            predictor.clip = ClipForUltralytics(scorer)
            picked = _by_text(predictor, result, objects)
        else:
            for o in objects:
                key = {"point": dict(points=[o["point"]], labels=[1]), "box": dict(bboxes=[o["box"]])}[kind]
                chosen = _masks(predictor.prompt(result, **key)[0])
                if len(chosen):
                    picked.append((o["id"], np.asarray(chosen.any(axis=0))))
        times.append((time.perf_counter() - t0) * 1000)
        labels.append(_paint(image.shape[:2], picked))
    return labels, times


def _by_text(predictor: Any, result: Any, objects: Objects) -> list[tuple[int, np.ndarray]]:
    """All texts in one ``prompt`` call (ultralytics encodes the crops once for them); which mask
    each text chose is read from the similarity computed.

    ``_clip_inference`` is replaced by the same computation (preprocess each crop, encode the crops
    and the texts, ``text @ image.T``) on ``predictor.clip``: ultralytics' own version imports
    OpenAI's ``clip`` package first, which it would install from the network."""
    seen: list[torch.Tensor] = []
    clip = predictor.clip

    def inference(images: list[Image.Image], texts: list[str]) -> torch.Tensor:
        batch = torch.stack([clip.image_preprocess(image) for image in images])
        seen.append(clip.encode_text(clip.tokenize(texts)) @ clip.encode_image(batch).T)
        return seen[-1]

    predictor._clip_inference = inference
    try:
        predictor.prompt(result, texts=[o["text"] for o in objects])
    finally:
        del predictor._clip_inference
    masks = _masks(result)
    if not seen:
        return []
    keep = [i for i, m in enumerate(masks) if m.sum() > 100]  # the crops ultralytics scored
    best = seen[0].argmax(dim=-1).tolist()
    return [(o["id"], masks[keep[b]]) for o, b in zip(objects, best)]


def _tracked(model: Any, image: np.ndarray, kwargs: dict[str, Any], tracker: str) -> tuple[np.ndarray, list[int]]:
    """One frame through ``model.track(persist=True)``: (N, H, W) bool masks and the N' <= N track ids
    of the first N' (ultralytics leaves unconfirmed detections without an id)."""
    result = model.track(image, persist=True, tracker=tracker, **kwargs)[0]
    ids = result.boxes.id.int().tolist() if result.boxes is not None and result.boxes.id is not None else []
    return _masks(result), ids


def box_tracker(model: Any, frames: Iterable[np.ndarray], objects: Objects, kwargs: dict[str, Any],
                tracker: str = "bytetrack.yaml") -> tuple[list[np.ndarray], list[float]]:
    """ultralytics ``track()``: on the first frame each object's point picks the smallest tracked
    mask holding it; after that, the mask with that track id (none when the id is gone)."""
    labels, times = [], []
    chosen: dict[int, int] = {}  # object id -> track id
    for k, image in enumerate(frames):
        t0 = time.perf_counter()
        masks, ids = _tracked(model, image, kwargs, tracker)
        if k == 0:
            for o in objects:
                x, y = (int(v) for v in o["point"])
                holding = [i for i, m in enumerate(masks[: len(ids)]) if m[y, x]]
                if holding:
                    chosen[o["id"]] = ids[min(holding, key=lambda i: masks[i].sum())]
        by_track = {t: masks[i] for i, t in enumerate(ids)}
        picked = [(oid, by_track[t]) for oid, t in chosen.items() if t in by_track]
        times.append((time.perf_counter() - t0) * 1000)
        labels.append(_paint(image.shape[:2], picked))
    return labels, times


def all_tracks(model: Any, frames: Iterable[np.ndarray], kwargs: dict[str, Any],
               tracker: str = "bytetrack.yaml") -> tuple[list[np.ndarray], list[float]]:
    """ultralytics ``track()`` with no prompt: every mask with a track id is an object.

    Args:
        model: an ultralytics FastSAM of its own (the tracker's state lives in its predictor).
        frames: BGR (H, W, 3) uint8 images.
        kwargs: predict arguments (the segmenter's).
        tracker: ``bytetrack.yaml`` or ``botsort.yaml`` (ultralytics' configs; BoT-SORT's has no ReID).

    Returns:
        Per frame an (H, W) int32 map of track ids (0 = background; where masks overlap the smaller
        one is on top, as in rtseg's label maps) and the milliseconds the frame took.
    """
    labels, times = [], []
    for image in frames:
        t0 = time.perf_counter()
        masks, ids = _tracked(model, image, kwargs, tracker)
        out = np.zeros(masks.shape[1:], np.int32)
        for i in sorted(range(len(ids)), key=lambda i: -int(masks[i].sum())):
            out[masks[i]] = ids[i]
        times.append((time.perf_counter() - t0) * 1000)
        labels.append(resize_labels([out], image.shape[1::-1])[0])
    return labels, times


def concept_tracks(model: Any, frames: Iterable[np.ndarray], judge: Any, kwargs: dict[str, Any],
                   tracker: str = "bytetrack.yaml") -> tuple[list[np.ndarray], list[float]]:
    """A concept prompt the ultralytics way: ``track()`` (ByteTrack ids on FastSAM's boxes) and CLIP
    on every mask of every frame, each judged alone by rtseg's own rule (``judge``: a
    :class:`~rtseg.track.concepts.Judge`, the same phrases, contrast and ``min_prob``; the same crops),
    with no agreement over frames and no verdict kept. Returns :func:`all_tracks`' maps (only the
    masks judged instances) and milliseconds."""
    labels, times = [], []
    for image in frames:
        t0 = time.perf_counter()
        masks, ids = _tracked(model, image, kwargs, tracker)
        masks = np.stack([cv2.resize(m.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                          for m in masks[: len(ids)]]).astype(bool) if ids else np.zeros((0, *image.shape[:2]), bool)
        votes = judge.vote(judge.embedder.encode_crops(image, masks))[0] if len(masks) else np.zeros(0, int)
        out = np.zeros(image.shape[:2], np.int32)
        for i in sorted(np.flatnonzero(votes >= 0).tolist(), key=lambda i: -int(masks[i].sum())):
            out[masks[i]] = ids[i]
        times.append((time.perf_counter() - t0) * 1000)
        labels.append(out)
    return labels, times


def resize_labels(labels: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Label maps brought to (width, height) when masks came back at another size."""
    return [m if m.shape[::-1] == size else cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in labels]
