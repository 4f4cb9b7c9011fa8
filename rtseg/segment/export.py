"""``rtseg export``: a FastSAM model exported through ultralytics, for ``rtseg track --model FILE``."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from rtseg.errors import RtsegError
from rtseg.segment.offline import prepare_ultralytics
from rtseg.segment.safe_load import open_fastsam
from rtseg.segment.weights import resolve_weights

FORMATS = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",), "engine": ("tensorrt",)}


def export_model(model: str, fmt: str, imgsz: int = 640, half: bool = False, out: str | None = None,
                 device: str = "cpu", trust_weights: bool = False) -> str:
    """Export ``model`` (a name or .pt) to ``fmt``; returns the path of the exported model. A ``.pt``
    that could run code is refused unless ``trust_weights`` (:mod:`rtseg.segment.safe_load`)."""
    if fmt not in FORMATS:
        raise RtsegError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    missing = [m for m in FORMATS[fmt] if importlib.util.find_spec(m) is None]
    if missing:  # ultralytics would try to pip-install them, which fails offline
        raise RtsegError(f"exporting to {fmt} needs the Python package(s) {', '.join(missing)}: pip install "
                         + " ".join(missing))
    if fmt == "openvino" and out and not Path(out).name.endswith("_openvino_model"):
        raise RtsegError(f"an OpenVINO model is a folder whose name ends with _openvino_model (that is how "
                         f"ultralytics recognises it), not {out}")
    if fmt == "engine" and not device.startswith("cuda"):
        raise RtsegError("a TensorRT engine is built on the GPU it will run on: pass --device cuda")
    prepare_ultralytics()
    path = resolve_weights(model)
    loaded = open_fastsam(path, trust_weights)
    try:
        exported = loaded.export(format=fmt, imgsz=imgsz, half=half, device=device, verbose=False)
    except Exception as exc:
        raise RtsegError(f"export to {fmt} failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if out and Path(out).resolve() != Path(exported).resolve():
        target = Path(out)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(exported), target)
        exported = str(target)
    return str(exported)
