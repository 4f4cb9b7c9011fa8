"""Mask edges snapped to the image's edges: a colour guided filter (He, Sun and Tang, "Guided Image
Filtering", TPAMI 2013) of each reported mask, guided by the frame.

FastSAM's masks are its prototypes (a quarter of the model's input) times each segment's
coefficients, upsampled: the edge can only be placed to within about one prototype cell, 4 input
pixels, which is 4 frame pixels at 640x480 and imgsz 640 and 12 at 1920x1080. On a small object
that is a few percent of its area, different from frame to frame. The guided filter fits, in every
window of ``2r + 1`` pixels, the mask as a linear function of the frame's colour; where the window
crosses the object's edge the fit follows the colour edge, where it does not it leaves the mask as
it is. Thresholded at 0.5, the mask keeps its shape and takes the image's edge within about ``r``
pixels of where the model put it. Cost: a few box filters over the mask's box, grown by ``r``.
With the model on a GPU the masks are refined there (:func:`guided_tensor`, the same maths in
PyTorch, the same masks): at 1920x1080 with 10-12 large segments a frame the refinement is 26 ms of
CPU time a frame (OpenCV), more than a GPU's forward.

>>> image = np.zeros((40, 40, 3), np.uint8); image[10:30, 10:30] = (40, 90, 200)  # a square
>>> coarse = np.zeros((40, 40), bool); coarse[8:28, 12:32] = True  # its mask, 2 px off
>>> crop, x, y = guided(image, (coarse[8:28, 12:32], 12, 8), radius=4)
>>> fine = np.zeros((40, 40), bool); fine[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
>>> truth = image[..., 0] > 0
>>> int((coarse != truth).sum()), int((fine != truth).sum())  # pixels wrong, before and after
(152, 27)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from rtseg.masks import Crop

EPS = 1e-2  # the guided filter's regulariser, for colours in [0, 1]: edges weaker than ~0.1 are smoothed over


def guided(image: np.ndarray, crop: Crop, radius: int, eps: float = EPS) -> Crop:
    """``crop`` (mask, x, y) of a mask on the BGR ``image``, its edge moved to the image's colour edges
    within about ``radius`` pixels; returned as (mask, x, y) over the crop's box grown by ``radius``.

    The fit is made at a 1/(radius // 2) scale (radius 2 there) and applied at full scale (the fast
    guided filter, He and Sun 2015): the edge still follows the full-scale image, at about half the
    cost at radius 4 (a 110 px object at 640x480: 0.7 against 1.3 ms) and less at larger radii. On
    the shapes world it is also a little more accurate than the fit at full scale (min J of the
    sweep's seed 11: 0.924 against 0.918)."""
    mask, x, y = crop
    if radius < 1 or not mask.any():
        return crop
    h, w = image.shape[:2]
    x0, y0 = max(x - radius, 0), max(y - radius, 0)
    x1, y1 = min(x + mask.shape[1] + radius, w), min(y + mask.shape[0] + radius, h)
    p = np.zeros((y1 - y0, x1 - x0), np.float32)
    p[y - y0:y - y0 + mask.shape[0], x - x0:x - x0 + mask.shape[1]] = mask
    guide = np.multiply(image[y0:y1, x0:x1], 1 / 255, dtype=np.float32)
    step = max(radius // 2, 1)
    if step == 1:
        coef, offset = fit(guide, p, radius, eps)
    else:
        size = (max((x1 - x0) // step, 1), max((y1 - y0) // step, 1))
        small = fit(cv2.resize(guide, size, interpolation=cv2.INTER_AREA),
                    cv2.resize(p, size, interpolation=cv2.INTER_AREA), max(radius // step, 1), eps)
        both = cv2.resize(np.concatenate([small[0], small[1][..., None]], -1), (x1 - x0, y1 - y0),
                          interpolation=cv2.INTER_LINEAR)
        coef, offset = both[..., :3], both[..., 3]
    return np.einsum("ijk,ijk->ij", coef, guide) + offset > 0.5, x0, y0


def fit(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter of ``p`` (h, w) float32 by the colour image ``guide`` (h, w, 3) float32, as the
    window-averaged linear fit: ``p`` filtered is ``(coef * guide).sum(-1) + offset``."""
    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(p)
    cov_ip = box(guide * p[..., None]) - mean_i * mean_p[..., None]
    # the colour covariance of each window (symmetric 3x3: 6 entries), plus eps on the diagonal
    var = {(i, j): box(guide[..., i] * guide[..., j]) - mean_i[..., i] * mean_i[..., j] + (eps if i == j else 0)
           for i in range(3) for j in range(i, 3)}
    a, b, c, d, e, f = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
    inv = (d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e, a * d - b * b)  # by cofactors
    det = a * inv[0] + b * inv[1] + c * inv[2]
    u, v, t = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    coef = np.stack([inv[0] * u + inv[1] * v + inv[2] * t,
                     inv[1] * u + inv[3] * v + inv[4] * t,
                     inv[2] * u + inv[4] * v + inv[5] * t], -1) / det[..., None]
    return box(coef), box(mean_p - np.einsum("ijk,ijk->ij", coef, mean_i))


def guided_tensor(image: Any, crop: tuple[Any, int, int], radius: int, eps: float = EPS) -> tuple[Any, int, int]:
    """:func:`guided` in PyTorch, on the device the tensors are on (a GPU's: the refinement then costs
    the CPU nothing). ``image``: (H, W, 3) uint8 tensor of the BGR frame; ``crop``: (bool tensor, x, y),
    cut to its mask's box. The same maths and resizes (cv2's ``INTER_AREA`` as area-weight matrices),
    the same mask as :func:`guided`'s (``tests/test_segment.py``)."""
    import torch
    import torch.nn.functional as F

    mask, x, y = crop
    if radius < 1 or not bool(mask.any()):
        return crop
    h, w = image.shape[:2]
    x0, y0 = max(x - radius, 0), max(y - radius, 0)
    x1, y1 = min(x + mask.shape[1] + radius, w), min(y + mask.shape[0] + radius, h)
    p = torch.zeros((1, y1 - y0, x1 - x0), dtype=torch.float32, device=mask.device)
    p[0, y - y0:y - y0 + mask.shape[0], x - x0:x - x0 + mask.shape[1]] = mask
    guide = image[y0:y1, x0:x1].permute(2, 0, 1).float() * (1 / 255)
    step = max(radius // 2, 1)
    if step == 1:
        coef, offset = fit_tensor(guide, p, radius, eps)
    else:
        size = (max((y1 - y0) // step, 1), max((x1 - x0) // step, 1))
        small = _area(torch.cat([guide, p]), size)
        coef, offset = fit_tensor(small[:3], small[3:], max(radius // step, 1), eps)
        both = F.interpolate(torch.cat([coef, offset])[None], size=(y1 - y0, x1 - x0), mode="bilinear",
                             align_corners=False)[0]
        coef, offset = both[:3], both[3:]
    return (coef * guide).sum(0) + offset[0] > 0.5, x0, y0


def fit_tensor(guide: Any, p: Any, radius: int, eps: float) -> tuple[Any, Any]:
    """:func:`fit` in PyTorch: ``guide`` (3, h, w), ``p`` (1, h, w) float32; returns ``coef`` (3, h, w)
    and ``offset`` (1, h, w)."""
    import torch

    def box(a: Any) -> Any:  # the mean over each window, borders reflected as cv2.BORDER_REFLECT does
        return torch.nn.functional.avg_pool2d(_reflected(a, radius)[None], 2 * radius + 1, stride=1)[0]

    g = guide
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    means = box(torch.cat([g, p, g * p, torch.stack([g[i] * g[j] for i, j in pairs])]))
    mean_i, mean_p = means[:3], means[3]
    cov_ip = means[4:7] - mean_i * mean_p
    var = {pair: means[7 + k] - mean_i[pair[0]] * mean_i[pair[1]] + (eps if pair[0] == pair[1] else 0)
           for k, pair in enumerate(pairs)}
    a, b, c, d, e, f = (var[pair] for pair in pairs)
    inv = (d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e, a * d - b * b)
    det = a * inv[0] + b * inv[1] + c * inv[2]
    u, v, t = cov_ip[0], cov_ip[1], cov_ip[2]
    coef = torch.stack([inv[0] * u + inv[1] * v + inv[2] * t,
                        inv[1] * u + inv[3] * v + inv[4] * t,
                        inv[2] * u + inv[4] * v + inv[5] * t]) / det
    out = box(torch.cat([coef, (mean_p - (coef * mean_i).sum(0))[None]]))
    return out[:3], out[3:]


def _area(a: Any, size: tuple[int, int]) -> Any:
    """(C, h, w) ``a`` shrunk to ``size`` (h, w) as cv2's ``INTER_AREA`` does, for any factor: each
    output pixel the mean of the input area it covers, pixels cut by its edge weighted by their part."""
    import torch

    def weights(n: int, m: int) -> Any:  # (m, n): output pixel i's share of input pixel j
        scale = n / m
        lo = torch.arange(m, device=a.device, dtype=torch.float32)[:, None] * scale
        j = torch.arange(n, device=a.device, dtype=torch.float32)[None]
        return (torch.minimum(j + 1, lo + scale) - torch.maximum(j, lo)).clamp_(min=0) / scale

    return weights(a.shape[1], size[0]) @ a @ weights(a.shape[2], size[1]).T


def _reflected(a: Any, r: int) -> Any:
    """(C, h, w) ``a`` padded by ``r`` on each side, mirrored edge pixel included ("cba|abc|cba", as
    cv2.BORDER_REFLECT), for any size."""
    import torch

    for dim in (1, 2):
        n = a.shape[dim]
        i = torch.arange(-r, n + r, device=a.device) % (2 * n)
        a = a.index_select(dim, torch.where(i >= n, 2 * n - 1 - i, i))
    return a
