"""Text prompts: CLIP similarity between a text and the masked crops of candidate segments.

The text is encoded once and cached; crops are encoded in one batch, and only when the tracker asks
(acquisition and re-acquisition), never for every mask of every frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from rtseg.crops import masked_crop
from rtseg.models.clip import create_clip, parse_clip_spec


class TextScorer:
    """An open_clip model that embeds texts and masked crops (unit vectors: their dot product is the
    CLIP similarity). The tracker uses it for text prompts and as the appearance embedder.

    Args:
        spec: ``NAME[:PRETRAINED]``, e.g. ``ViT-B-32:laion2b_s34b_b79k`` or
            ``rtseg-shapes-clip:samples/models/shapes-clip.pt``.
        device: torch device.
    """

    def __init__(self, spec: str, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = device
        self.spec = spec
        self.model, self.preprocess, self.tokenizer = create_clip(*parse_clip_spec(spec), device=device)
        self._texts: dict[str, np.ndarray] = {}
        self.crops_encoded = 0  # how many crops went through the image tower (for tests and stats)
        self.batches = 0

    def encode_text(self, text: str) -> np.ndarray:
        """Unit-norm embedding (D,) of a text, computed once per text."""
        if text not in self._texts:
            with self.torch.inference_mode():
                emb = self.model.encode_text(self.tokenizer([text]).to(self.device)).float()
            self._texts[text] = (emb / emb.norm(dim=-1, keepdim=True))[0].cpu().numpy()
        return self._texts[text]

    def encode_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Unit-norm embeddings (N, D) of the masked crops of ``masks`` (N, H, W) in BGR ``image``."""
        if len(masks) == 0:
            return np.zeros((0, len(self.encode_text(""))), np.float32)
        batch = [self.preprocess(Image.fromarray(cv2.cvtColor(masked_crop(image, m), cv2.COLOR_BGR2RGB)))
                 for m in masks]
        with self.torch.inference_mode():
            emb = self.model.encode_image(self.torch.stack(batch).to(self.device)).float()
        self.crops_encoded += len(masks)
        self.batches += 1
        return (emb / emb.norm(dim=-1, keepdim=True)).cpu().numpy()
