"""Follow prompted objects (or every segment) from frame to frame by mask IoU.

Every segment of every frame is tracked, one-to-one (Hungarian on the IoU between each track's
motion-predicted mask and the new masks, on a downscaled grid; near-duplicate segments merged
first). Full-size masks are made only for the objects reported and for the segments a new prompt or
a re-acquisition looks at (see :mod:`rtseg.detections`): the rest of the scene costs only its grid.

A prompt binds a user id to one of these tracks (:mod:`rtseg.track.acquire`). Because the other
segments hold tracks of their own, an occluder or a crossing object claims its own mask, and the
prompted track is marked lost instead of jumping to it; a lost object is re-acquired by its text or
its appearance (:mod:`rtseg.track.appearance`). A segment that two prompted objects claim (touching
objects the model merges) is shared out between them by their predicted masks (:mod:`rtseg.track.split`).
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from rtseg.config import ConceptConfig, TrackerConfig
from rtseg.detections import PROMPT, concrete, grid_masks, take
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, Prompt, TextPrompt, with_negative
from rtseg.track.acquire import reacquire, select
from rtseg.track.appearance import ColourEmbedder, Embedder, TextEmbedder, embeddings, text_similarity
from rtseg.track.concepts import Judge, instances
from rtseg.track.associate import centroids, dedupe, iou_matrix, match, shift
from rtseg.track.reidentify import duplicates, free_segments, reidentify
from rtseg.track.split import share_unions
from rtseg.track.state import SegmentFrame, Track, Verdict


class PromptTracker:
    """Associates segments over frames; reports the prompted objects (or, with ``everything``, all).

    ``add(prompt)`` any time (acquired on the next ``update``); ``update(image, dets)`` per frame
    returns the visible objects as dense Detections with ``tracker_id`` and ``data[PROMPT]``
    (see :mod:`rtseg.detections`).

    Args:
        config: association settings.
        embedder: CLIP (a :class:`~rtseg.prompt.clip.TextScorer`, needed for text prompts) or None
            for :class:`~rtseg.track.appearance.ColourEmbedder`.
        everything: report every segment track, each with its own id.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), embedder: Embedder | None = None,
                 everything: bool = False, concepts: ConceptConfig = ConceptConfig()) -> None:
        self.config = config
        self.embedder: Embedder = embedder or ColourEmbedder()
        self.everything = everything
        # concept prompts (every instance of a phrase) need CLIP: rtseg.track.concepts
        self.judge = Judge(self.embedder, concepts) if isinstance(self.embedder, TextEmbedder) else None
        self.reset()

    def reset(self) -> None:
        """Forget every track and prompt."""
        self.tracks: list[Track] = []
        self.pending: list[tuple[int, Prompt]] = []
        self.prompts: dict[int, Prompt] = {}
        self._next_id = 1
        self.frame = 0  # frames seen (updated or carried)
        self.shape = (0, 0)  # the last frame's (height, width)
        self._previous: SegmentFrame | None = None  # the last update's frame (everything mode)
        if self.judge is not None:
            self.judge.clear()

    @property
    def concepts(self) -> list[str]:
        """The concept prompts' phrases, in the order added (a phrase's index is its class id)."""
        return list(self.judge.phrases) if self.judge is not None else []

    def add(self, prompt: Prompt) -> int:
        """Queue a prompt; returns the id its object will carry (0 for a concept: each instance
        gets an id of its own when it is found)."""
        if isinstance(prompt, (TextPrompt, ConceptPrompt)) and not isinstance(self.embedder, TextEmbedder):
            kind = "concept" if isinstance(prompt, ConceptPrompt) else "text"
            raise ValueError(f"a {kind} prompt needs a CLIP model")
        if isinstance(prompt, ConceptPrompt):
            if self.everything:
                raise ValueError("a concept prompt follows its instances, --everything every segment: give one")
            assert self.judge is not None
            self.judge.add(prompt.text)
            return 0
        oid = self._next_id
        self._next_id += 1
        self.pending.append((oid, prompt))
        self.prompts[oid] = prompt
        return oid

    def add_negative(self, oid: int, point: tuple[float, float]) -> None:
        """Add a negative point to object ``oid`` and acquire it again with it (a concept's instance:
        the segment that best fits its box, without the point), on top of a correction still waiting."""
        waiting = next((p for i, p in self.pending if i == oid), None)
        if isinstance(self.prompts[oid], ConceptPrompt):
            waiting = waiting or BoxPrompt(self.box(oid))
        self.correct(oid, with_negative(waiting or self.prompts[oid], point))  # type: ignore[arg-type]

    def correct(self, oid: int, fix: PointPrompt | BoxPrompt | TextPrompt) -> None:
        """Select object ``oid``'s segment again by ``fix`` on the next update, keeping its id. A text
        object and a concept's instance stay what they are (``fix`` only picks the segment); a point
        or box object becomes ``fix``."""
        if isinstance(self.prompts[oid], (PointPrompt, BoxPrompt)) or type(fix) is type(self.prompts[oid]):
            self.prompts[oid] = fix
        for t in self.tracks:
            if t.id == oid and t.prompt is not None:
                t.id, t.prompt = 0, None
        self.pending = [(i, p) for i, p in self.pending if i != oid] + [(oid, fix)]

    def box(self, oid: int) -> tuple[float, float, float, float]:
        """Object ``oid``'s box where it was last seen, in frame pixels."""
        return next(t for t in self.tracks if t.id == oid).box(self._factor(*self.shape))

    def forget(self, oid: int) -> None:
        """Stop following object ``oid``: its segment goes back to being an unnamed segment."""
        if oid not in self.prompts and not any(t.id == oid for t in self.tracks):
            raise KeyError(oid)
        self.prompts.pop(oid, None)
        self.pending = [(i, p) for i, p in self.pending if i != oid]
        for t in self.tracks:
            if t.id == oid:
                t.id, t.prompt = 0, None
                if t.verdict is not None:  # a concept's instance: not one again while it is tracked
                    t.verdict.forgotten = True

    # -- per frame -------------------------------------------------------------------------------
    def update(self, image: np.ndarray, dets: sv.Detections, frames: int = 1) -> sv.Detections:
        """Associate this frame's segments; returns the reported objects (a subset of ``dets``).

        ``frames``: frames since the previous ``update`` or ``carry`` (more than 1 when frames were
        skipped); motion is predicted over them."""
        cfg = self.config
        self.frame += frames
        h, w = self.shape = image.shape[:2]
        factor = self._factor(h, w)
        if self.everything:  # every segment is reported: its mask (box crops) is made anyway
            dets = concrete(dets, (h, w))
            small = grid_masks(dets, (h, w), factor)
        else:  # only the reported objects' (and new prompts' candidates') full-size masks are made
            small = grid_masks(dets, (h, w), factor)
        keep = np.nonzero(small.sum(axis=(1, 2)) * factor * factor >= cfg.min_area * h * w)[0]
        scores = dets.confidence[keep] if dets.confidence is not None else np.ones(len(keep))
        keep = keep[dedupe(small[keep], scores, cfg.duplicate_iou)]
        frame = SegmentFrame(image, take(dets, keep), small[keep])
        self._continue_tracks(frame)  # frame.owner: segment index -> the track it continues
        if self.everything:  # lost objects back with their ids (rtseg.track.reidentify)
            self._reidentify(frame)

        # Bind pending prompts, then re-acquire lost prompted objects.
        for oid, prompt in list(self.pending):  # a new object, or a correction (the object stays what it was)
            c, score = select(prompt, frame, self.embedder)
            if c is not None:
                self.pending.remove((oid, prompt))
                self._bind(oid, self.prompts.get(oid, prompt), c, frame, score=score, fixed=prompt)
        for t in [t for t in self.tracks if t.prompt is not None and t.lost > 0]:
            near = self._predict(t)[0] if t.lost <= cfg.coast else None
            instance = isinstance(t.prompt, ConceptPrompt)  # looks like its kind: found again only near its path
            if instance and near is None:  # retired: one that comes back later is a new instance
                self.prompts.pop(t.id, None)
                t.id, t.prompt = 0, None
                continue
            c = reacquire(t, frame, self.tracks, self.embedder, cfg, near, near_only=instance)
            if c is not None:
                self._bind(t.id, t.prompt, c, frame, score=t.score, appearance=t.appearance)  # type: ignore[arg-type]
                t.id, t.prompt, t.lost = 0, None, cfg.max_age + 1  # identity handed over

        # New segment tracks for what nobody claimed; drop stale unprompted tracks.
        if self.everything:
            self._births(frame)
        else:
            for c in range(len(frame.small)):
                if c not in frame.owner:
                    frame.owner[c] = self._new_track(frame, c)
            if self.judge is not None and self.judge.phrases:  # new instances get ids, dropped ones lose theirs
                self._next_id = instances(self.judge, frame, self.frame, self.prompts, self._next_id)
        self.tracks = [t for t in self.tracks if t.prompt is not None
                       or t.lost <= (cfg.memory if self.everything and t.id else cfg.max_age)]
        if self.everything:
            self._previous = frame
        return self._report(frame)

    def carry(self, image: np.ndarray, dets: sv.Detections) -> sv.Detections:
        """A frame without segmentation: the reported objects moved to it (``dets`` as the last
        ``update`` reported them, with moved masks) become their tracks' masks; returns those still
        followed."""
        self.frame += 1
        h, w = image.shape[:2]
        small = grid_masks(dets, (h, w), self._factor(h, w))
        cents = centroids(small)
        by_id = {t.id: t for t in self.tracks if t.id and not t.lost}
        keep = []
        for k, oid in enumerate(dets.tracker_id if dets.tracker_id is not None else []):
            t = by_id.get(int(oid))
            if t is None or not small[k].any():
                continue
            self._observe(t, small[k], cents[k], int(small[k].sum()))
            keep.append(k)
        return take(dets, np.array(keep, dtype=int))

    # -- helpers ---------------------------------------------------------------------------------
    def _factor(self, h: int, w: int) -> int:
        """How much an (h, w) frame's masks are downscaled for association (to ``config.grid``)."""
        return max(1, int(np.ceil(max(h, w) / self.config.grid)))

    def _predict(self, *tracks: Track) -> np.ndarray:
        """(N, h, w) bool: where the tracks' masks are now by their motion (10 frames ahead at most)."""
        steps = np.array([min(self.frame - t.seen, 10) for t in tracks], float)
        vel = np.array([t.velocity for t in tracks])
        return shift(np.stack([t.mask for t in tracks]), vel[:, 0] * steps, vel[:, 1] * steps)

    def _observe(self, t: Track, mask: np.ndarray, centroid: np.ndarray, area: int) -> None:
        """Track ``t`` is where ``mask`` is this frame: its velocity follows the move since it was seen."""
        cfg = self.config
        motion = (centroid - t.centroid) / max(self.frame - t.seen, 1)
        t.velocity = cfg.momentum * t.velocity + (1 - cfg.momentum) * motion
        t.mask, t.centroid, t.area, t.seen, t.peak = mask, centroid, area, self.frame, max(t.peak, area)

    def _continue_tracks(self, frame: SegmentFrame) -> None:
        """Match tracks to segments one-to-one by the IoU of their motion-predicted masks (prompted
        tracks win ties against hidden ones); unmatched tracks count the frames since they were seen."""
        cfg = self.config
        live = [t for t in self.tracks if t.lost <= (cfg.coast if t.prompt is not None else cfg.max_age)]
        predicted = self._predict(*live) if live else np.zeros((0, *frame.small.shape[1:]), bool)
        iou = iou_matrix(predicted, frame.small)
        if live:  # a segment far larger than the track is an occluder or a union, not the object grown
            areas = np.array([t.area for t in live], float)[:, None]
            iou[(frame.areas[None, :] > cfg.max_growth * areas) & (areas >= 50)] = 0.0
        bonus = np.array([0.05 if t.prompt is not None and not t.lost else 0.0 for t in live])[:, None]
        rows, cols = match(np.where(iou >= cfg.match_iou, iou + bonus, 0.0), cfg.match_iou)
        claims = share_unions(frame, live, predicted, {int(c): live[r] for r, c in zip(rows, cols)}, self.frame,
                              self._factor(*frame.image.shape[:2]))
        for c, t in claims.items():
            self._observe(t, frame.small[c], frame.cents[c], int(frame.areas[c]))
            t.lost, t.hits = 0, t.hits + 1
            frame.owner[c] = t
        matched = {id(t) for t in frame.owner.values()}
        for t in self.tracks:
            if id(t) not in matched:
                t.lost = self.frame - t.seen

    def _report(self, frame: SegmentFrame) -> sv.Detections:
        """The prompted objects (or every segment, in everything mode) seen this frame, with their
        masks at the frame's size (box crops): the only segments whose masks every frame needs."""
        report = [(c, t) for c, t in sorted(frame.owner.items()) if t.id and (self.everything or t.prompt is not None)]
        idx = np.array([c for c, _ in report], dtype=int)
        masks = frame.compact(idx)
        out = concrete(take(frame.dets, idx), frame.image.shape[:2], masks)
        seen = masks.area > 0  # the box of the mask reported (refined edges may reach past the model's box)
        out.xyxy[seen] = masks.bbox_xyxy[seen]
        out.tracker_id = np.array([t.id for _, t in report], dtype=int)
        out.data[PROMPT] = np.array([str(t.prompt) if t.prompt is not None else "everything" for _, t in report],
                                      dtype=object)
        return out

    def _reidentify(self, frame: SegmentFrame) -> None:
        """Everything mode: give the tracks lost this frame their looks (their segments' embeddings in
        the last update's frame), and lost tracks' objects back their segments (:mod:`rtseg.track.reidentify`)."""
        lost = [t for t in self.tracks if t.id and t.prompt is None and t.lost]
        free = free_segments(frame, self._previous, lost, self.embedder)
        for c, t in reidentify(lost, frame, free, self.frame, self.embedder, self.config).items():
            self._observe(t, frame.small[c], frame.cents[c], int(frame.areas[c]))
            t.lost, t.hits = 0, t.hits + 1
            frame.owner[c] = t

    def _births(self, frame: SegmentFrame) -> None:
        """Everything mode: a track for each segment nobody claimed, most confident first, except
        for a second mask of an object already tracked (:func:`~rtseg.track.reidentify.duplicates`)."""
        free = [c for c in range(len(frame.small)) if c not in frame.owner]
        conf = frame.dets.confidence if frame.dets.confidence is not None else np.ones(len(frame.small))
        for c in sorted(free, key=lambda c: -conf[c]):
            if not duplicates(frame.small, np.array([c]), np.array(sorted(frame.owner), dtype=int))[0]:
                frame.owner[c] = self._new_track(frame, c)

    def _new_track(self, frame: SegmentFrame, c: int) -> Track:
        t = Track(mask=frame.small[c], centroid=frame.cents[c], area=int(frame.areas[c]), seen=self.frame,
                  peak=int(frame.areas[c]))
        if self.everything:
            t.id = self._next_id
            self._next_id += 1
        self.tracks.append(t)
        return t

    def _bind(self, oid: int, prompt: Prompt, c: int, frame: SegmentFrame, score: float,
              appearance: np.ndarray | None = None, fixed: Prompt | None = None) -> None:
        """Give segment ``c`` the identity ``oid``, taking over its segment track if it has one
        (``fixed``: the prompt that picked it, when it corrects the object's)."""
        t = frame.owner.get(c)
        if t is None:
            t = frame.owner[c] = self._new_track(frame, c)
        corrected = fixed is not None and fixed is not prompt
        if corrected and isinstance(prompt, TextPrompt):  # its text's score now
            score = float(text_similarity(self.embedder, prompt, frame, np.array([c]))[0])  # type: ignore[arg-type]
        elif corrected and isinstance(prompt, ConceptPrompt):  # the user says it is an instance: no vote drops it
            assert self.judge is not None
            t.verdict = Verdict(self.judge.add(prompt.text), 1.0, 0, int(frame.areas[c]), 0, settled=True)
        t.id, t.prompt, t.score = oid, prompt, score
        if appearance is None and not isinstance(prompt, TextPrompt):
            appearance = embeddings(self.embedder, frame, np.array([c]))[0]
        t.appearance = appearance
