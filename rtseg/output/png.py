"""Reading and writing DAVIS-style indexed PNG masks.

>>> import tempfile, pathlib
>>> labels = np.zeros((4, 6), np.uint8); labels[1:3, 2:5] = 2
>>> path = pathlib.Path(tempfile.mkdtemp()) / "00000.png"
>>> write_index_png(path, labels)
>>> bool((read_index_png(path) == labels).all())
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin


def davis_palette() -> list[int]:
    """The 256-colour palette of DAVIS annotations (flattened RGB), id 0 black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette.flatten().tolist()


_PALETTE = davis_palette()


def write_index_png(path: str | Path, labels: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as an 8-bit palette PNG (pixel value = object id)."""
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be (H, W) uint8, got {labels.shape} {labels.dtype}")
    h, w = labels.shape
    image = Image.frombuffer("P", (w, h), np.ascontiguousarray(labels), "raw", "P", 0, 1)  # as it is: no copy
    image.putpalette(_PALETTE)
    # zlib level 1 with its run-length strategy: 3.4 ms a 1920x1080 frame of 7 objects and 6.7 kB,
    # against 4.2 ms and 15 kB for Image.fromarray(...).convert("P") and the default strategy (13 / 18 ms at 4K)
    image.save(str(path), format="PNG", optimize=False, compress_level=1, compress_type=3)


def read_index_png(path: str | Path) -> np.ndarray:
    """Read an indexed PNG into an (H, W) uint8 label map (palette indices, not colours).

    Raises:
        OSError: the file cannot be read or is no image.
        ValueError: it is not an indexed PNG, or is too large (Pillow's decompression bomb limit).
    """
    # PIL's PNG reader directly: ultralytics patches ``Image.open`` to pip-install a HEIF plugin
    # when a file is no known image, which fails offline with an ImportError (and must not run).
    with open(path, "rb") as fp:
        try:
            image = PngImagePlugin.PngImageFile(fp, str(path))
        except (SyntaxError, EOFError) as exc:
            raise OSError(f"{path}: not a PNG file ({exc})") from exc
        w, h = image.size
        if Image.MAX_IMAGE_PIXELS and w * h > 2 * Image.MAX_IMAGE_PIXELS:
            raise ValueError(f"{path}: {w}x{h} pixels, over Pillow's decompression bomb limit")
        if image.mode not in ("P", "L"):
            raise ValueError(f"{path}: not an indexed PNG (mode {image.mode})")
        return np.array(image, dtype=np.uint8)
