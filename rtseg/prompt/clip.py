"""CLIP for prompts: load an open_clip model, and score texts against masked crops of segments.

Real use: ``ViT-B-32:laion2b_s34b_b79k`` (fetched on first use). The bundled shapes model goes through
the very same call: ``rtseg-shapes-clip:path/to/file.pt`` (its config ships in
``rtseg/model_configs`` and is registered with open_clip first). A spec ``NAME[:PRETRAINED]`` is parsed
by :func:`parse_clip_spec`.

:class:`TextScorer` encodes a text once and caches it; crops are encoded in one batch, and only when
the tracker asks (acquisition and re-acquisition), never for every mask of every frame.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from rtseg.errors import RtsegError
from rtseg.prompt.crops import masked_crop

_registered = False


def register_configs() -> None:
    """Register the model configs shipped in ``rtseg/model_configs`` with open_clip (once)."""
    global _registered
    if _registered:
        return
    import open_clip

    for entry in resources.files("rtseg").joinpath("model_configs").iterdir():
        if entry.name.endswith(".json"):
            open_clip.add_model_config(Path(str(entry)))
    _registered = True


def parse_clip_spec(spec: str) -> tuple[str, str | None]:
    """``"ViT-B-32:laion2b_s34b_b79k"`` -> ``("ViT-B-32", "laion2b_s34b_b79k")``; no colon -> no weights.

    >>> parse_clip_spec("rtseg-shapes-clip:samples/models/shapes-clip.pt")
    ('rtseg-shapes-clip', 'samples/models/shapes-clip.pt')
    """
    name, _, pretrained = spec.partition(":")
    if not name:
        raise RtsegError(f"bad CLIP model {spec!r}: expected NAME[:PRETRAINED], e.g. ViT-B-32:laion2b_s34b_b79k")
    return name, pretrained or None


def create_clip(name: str, pretrained: str | None, device: str = "cpu") -> tuple[Any, Any, Any]:
    """(model in eval mode, image preprocess, tokenizer) for an open_clip model name and weights.

    ``pretrained`` is an open_clip tag (downloaded on first use) or a local file; None leaves the
    model untrained (only for training it).
    """
    if os.environ.get("RTSEG_OFFLINE"):
        os.environ["HF_HUB_OFFLINE"] = "1"  # fail at once instead of trying the hub
    import open_clip

    register_configs()
    if name not in open_clip.list_models():
        raise RtsegError(f"unknown CLIP model {name!r}; open_clip knows e.g. ViT-B-32, and rtseg-shapes-clip")
    looks_like_file = pretrained is not None and (
        Path(pretrained).suffix in (".pt", ".pth", ".bin", ".safetensors") or "/" in pretrained)
    if looks_like_file and not Path(str(pretrained)).is_file():
        raise RtsegError(f"CLIP weights file not found: {pretrained}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    except RtsegError:
        raise
    except Exception as exc:  # open_clip raises many types for a missing download
        if pretrained and not looks_like_file:
            raise RtsegError(
                f"cannot load CLIP weights {name}:{pretrained} ({type(exc).__name__}); they are fetched on "
                f"first use, so connect once, or download open_clip_pytorch_model.bin for that tag and pass "
                f"--clip-model {name}:/path/to/open_clip_pytorch_model.bin") from exc
        raise RtsegError(f"cannot load CLIP weights {pretrained} for {name}: {exc}") from exc
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)



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

    @property
    def logit_scale(self) -> float:
        """The model's temperature: similarities times this are the logits of its softmax."""
        return float(self.model.logit_scale.detach().exp())

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
