"""Where a model runs and where its weights are: devices, model names, files, first-use downloads."""

from __future__ import annotations

import os
from pathlib import Path

from rtseg.errors import RtsegError
from rtseg.segment.offline import prepare_ultralytics

KNOWN_WEIGHTS = {"fastsam-s": "FastSAM-s.pt", "fastsam-x": "FastSAM-x.pt", "fastsam": "FastSAM-x.pt"}
EXPORT_SUFFIXES = (".pt", ".onnx", ".engine", ".torchscript", ".xml", ".mlpackage", ".tflite")


def select_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is there, else ``mps`` on Apple silicon, else ``cpu``."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RtsegError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_weights(model: str) -> str:
    """A local file for a model name or path; fetches FastSAM-s/-x on first use where there is a network."""
    key = model.lower().removesuffix(".pt")
    if key in KNOWN_WEIGHTS:
        name = KNOWN_WEIGHTS[key]
        prepare_ultralytics()
        from ultralytics.utils import SETTINGS
        from ultralytics.utils.downloads import attempt_download_asset

        for candidate in (Path(name), Path(SETTINGS["weights_dir"]) / name):
            if candidate.is_file():
                return str(candidate)
        where = f"put {name} in {SETTINGS['weights_dir']} or the working folder, or pass --model /path/to/{name}"
        if os.environ.get("RTSEG_OFFLINE"):
            raise RtsegError(f"model weights {name} are missing (RTSEG_OFFLINE is set, so not downloaded): {where}")
        try:
            return str(attempt_download_asset(name))
        except Exception as exc:
            raise RtsegError(f"model weights {name} are missing and could not be downloaded "
                             f"({type(exc).__name__}): {where}") from exc
    path = Path(model)
    if not path.exists():
        raise RtsegError(f"model not found: {model} (use fastsam-s, fastsam-x or a path to a .pt or exported model)")
    if path.is_file() and path.suffix not in EXPORT_SUFFIXES:
        raise RtsegError(f"not a model file: {model} (expected one of {', '.join(EXPORT_SUFFIXES)})")
    return str(path)
