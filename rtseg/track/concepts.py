"""Concept prompts: every instance of a phrase is an object with its own id, those that appear later too.

A concept is never bound once, as a text prompt is: on every frame the segments that no object
holds are candidates. CLIP judges a segment against all the phrases at once, the concepts' and the
contrast phrases (:class:`Judge`, :class:`~rtseg.config.ConceptConfig`), and the segment's track
keeps the verdict (:class:`~rtseg.track.state.Verdict`). A segment track whose votes agree on ``accept`` frames in a
row becomes an instance; an instance whose votes go against it on ``drop`` frames in a row is one no
longer. So one odd crop neither adds an object nor removes one. An instance is then followed as any
object (by mask IoU, shared out of merged segments, coasting when hidden); lost, it is re-acquired
only near where its motion puts it (its look is its kind's, not its own) and is retired after
``tracker.coast`` frames unseen: one that comes back later is a new instance.

What it costs: a segment is judged when its track is new, on its next frame while its votes are not
settled, when its area has grown by a third since its last verdict (an object coming into view; a
shrunk segment's crop says less, not more), and every ``every`` frames otherwise; never again
because it was merely seen. A judgment is one image embedding whatever the number of phrases (their
texts are embedded once), and all the frame's judgments go through CLIP in one batch.
"""

from __future__ import annotations

import numpy as np

from rtseg.config import ConceptConfig
from rtseg.prompt.prompts import ConceptPrompt, Prompt
from rtseg.track.appearance import TextEmbedder
from rtseg.track.state import SegmentFrame, Track, Verdict

# A candidate overlapping the objects' segments by more than this fraction of its area is a union or a
# fragment of them, not a new instance.
MAX_OVERLAP = 0.3
# Texts whose embeddings are this similar (cosine) say the same thing.
PARAPHRASE = 0.95
OTHER, UNSURE = -1, -2  # votes: a contrast phrase (sure), no phrase sure


class Judge:
    """The concepts' phrases and the contrast phrases, embedded once; votes on segment embeddings."""

    def __init__(self, embedder: TextEmbedder, config: ConceptConfig) -> None:
        self.embedder, self.config = embedder, config
        self.phrases: list[str] = []
        self._texts: np.ndarray | None = None
        self.scale = float(getattr(embedder, "logit_scale", 100.0))  # CLIP's temperature (100 for OpenAI's)
        self.judged = self.new = 0  # judgments (image embeddings) made, and of them segments judged first

    def clear(self) -> None:
        """No concepts (a reset)."""
        self.phrases, self._texts = [], None

    def add(self, phrase: str) -> int:
        """Judge ``phrase`` too; returns its index (its class id), the same one when it is known."""
        if phrase not in self.phrases:
            self.phrases.append(phrase)
            self._texts = None
        return self.phrases.index(phrase)

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        """(N, P + C) softmax over the concepts' phrases then the contrast phrases."""
        if self._texts is None:
            mine = np.stack([self.embedder.encode_text(t) for t in self.phrases])
            others = [self.embedder.encode_text(t) for t in self.config.contrast]
            # a contrast phrase that says what a concept says ("red circle", "the red circle") is none
            others = [e for e in others if float(np.max(mine @ e)) < PARAPHRASE]
            self._texts = np.concatenate([mine, np.reshape(others, (-1, mine.shape[1]))])
        logits = self.scale * emb @ self._texts.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def vote(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's vote and its probability: a concept's index; ``OTHER``, a contrast phrase
        at least as sure; or ``UNSURE``, no phrase at ``min_prob``."""
        p = self.probabilities(emb)
        best = p.argmax(axis=1)
        prob = p[np.arange(len(p)), best]
        sure = prob >= self.config.min_prob
        return np.where(sure & (best < len(self.phrases)), best, np.where(sure, OTHER, UNSURE)), prob


def due(t: Track, now: int) -> bool:
    """Whether segment track ``t`` is judged this frame."""
    v = t.verdict
    if v is None:
        return True
    return not v.forgotten and not v.settled and (now >= v.due or t.area > v.area * 4 / 3)


def judge(judge: Judge, frame: SegmentFrame, now: int, instance_of: dict[int, int]
          ) -> tuple[list[tuple[int, int]], list[int]]:
    """Judge this frame's segments that are due: those of unprompted tracks and of instances
    (``instance_of``: segment -> the concept index of the instance it holds). Returns the segments
    to make instances, with their concept, and the instances' segments to drop."""
    cfg = judge.config
    todo = np.array([c for c, t in sorted(frame.owner.items())
                     if (t.prompt is None or c in instance_of) and due(t, now)], dtype=int)
    if len(todo) == 0:
        return [], []
    emb = judge.embedder.encode_crops(frame.image, frame.full(todo))
    judge.judged += len(todo)
    judge.new += sum(frame.owner[c].verdict is None for c in todo.tolist())
    votes, probs = judge.vote(emb)
    held = [c for c, t in frame.owner.items() if t.prompt is not None]
    accept, drop = [], []
    for c, e, k, p in zip(todo.tolist(), emb, votes.tolist(), probs.tolist()):
        t = frame.owner[c]
        t.embedding = (e, t.area)
        v = t.verdict
        if c in instance_of:  # an instance: settled unless CLIP is sure it is something else
            against = 0 if k == instance_of[c] else (v.against if v else 0) + (k != UNSURE)
            t.verdict = Verdict(instance_of[c], p, cfg.accept, t.area,
                                now + (1 if 0 < against < cfg.drop else cfg.every), against)
            if against >= cfg.drop:
                t.verdict = Verdict(OTHER, p, 0, t.area, now + cfg.every)
                drop.append(c)
            continue
        votes_in_row = (v.votes + 1 if v is not None and v.concept == k else 1) if k >= 0 else 0  # OTHER, UNSURE: 0
        t.verdict = Verdict(k, p, votes_in_row, t.area, now + (1 if 0 < votes_in_row < cfg.accept else cfg.every))
        if votes_in_row >= cfg.accept:
            accept.append((c, k))
    accept.sort(key=lambda ck: frame.areas[ck[0]])  # the smaller first: a union of two is no instance
    out: list[tuple[int, int]] = []
    for c, k in accept:
        if _apart(frame, c, held):
            out.append((c, k))
            held.append(c)
    return out, drop


def _apart(frame: SegmentFrame, c: int, held: list[int]) -> bool:
    """Segment ``c`` is not mostly a part or a union of the segments ``held`` by objects."""
    if not held:
        return True
    inside = (frame.small[c][None] & frame.small[held]).sum(axis=(1, 2))
    return float(inside.max()) <= MAX_OVERLAP * max(float(frame.areas[c]), 1.0)


def instances(judge_: Judge, frame: SegmentFrame, now: int, prompts: dict[int, Prompt], next_id: int) -> int:
    """Judge what is due this frame (:func:`judge`): segments judged instances become objects with
    ids from ``next_id`` on (in ``prompts`` too), instances judged otherwise are objects no longer.
    Returns the next free id."""
    phrases = judge_.phrases
    instance_of = {c: phrases.index(t.prompt.text) for c, t in frame.owner.items()
                   if isinstance(t.prompt, ConceptPrompt)}
    accept, drop = judge(judge_, frame, now, instance_of)
    for c in drop:
        t = frame.owner[c]
        prompts.pop(t.id, None)
        t.id, t.prompt = 0, None
    for c, k in accept:
        t = frame.owner[c]
        t.id, next_id = next_id, next_id + 1
        t.prompt = prompts[t.id] = ConceptPrompt(phrases[k])
        t.score, t.appearance = t.verdict.prob, t.embedding[0]  # type: ignore[union-attr,index]
    return next_id
