"""Load FastSAM ``.pt`` checkpoints so that the file cannot run code (unless the user trusts it).

A ``.pt`` file is a pickle, and ultralytics unpickles it with ``torch.load(weights_only=False)``: a
pickle can call any function. Here the load goes through torch's weights-only unpickler instead, with
an allow-list made for FastSAM checkpoints:

- A model class (an ``nn.Module`` under ``torch.nn.modules``, ``ultralytics.nn.modules``, the
  ``*Model`` classes of ``ultralytics.nn.tasks``; the loss helpers of ``ultralytics.utils.loss`` and
  ``.tal``) is allowed under its dotted name only as a *stand-in*: the pickle may make an instance
  with ``cls.__new__`` and set its state (NEWOBJ + BUILD, how ``torch.save`` writes a module), but
  calling it (REDUCE) is refused. Calling a model class would build a model from the pickle's own
  config, and ultralytics' ``parse_model`` looks names up and ``eval``\\s strings: code execution.
  The real class is allowed too, so that BUILD accepts its instances, but under a name with newlines
  in it, which a pickle's GLOBAL cannot spell.
- A few plain types that checkpoints hold (``IterableSimpleNamespace``, ``pathlib`` paths, numpy
  scalars and dtypes) and ``getattr`` restricted to a module's ``forward``/``forward_fuse``, as old
  checkpoints pickle ``Detect.forward``; the legacy names ultralytics maps (``ultralytics.yolo.*``,
  ``Silence``, YOLOv10) resolve as ultralytics' ``temporary_modules`` does.
- The unpickler sees exactly this allow-list, on this thread only, for this one load: not torch's
  process-wide ``add_safe_globals`` set, to which ultralytics' own safe mode adds the real model
  classes under their real names (which would make them callable again).

Every global the file names is checked before anything is unpickled; a file that names one outside
the list, or that calls a model class, is refused in one line (:class:`~rtseg.errors.RtsegError`).
ONNX, OpenVINO and TensorRT files are not pickles and do not come here; a TorchScript file is a
program (``torch.jit.load`` runs it), refused unless trusted.

>>> from rtseg.segment.safe_load import allowed
>>> allowed("ultralytics.nn.tasks.SegmentationModel"), allowed("posix.system")
(True, False)
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import re
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rtseg.errors import RtsegError

ADVICE = "load only files you trust with --trust-weights, or use an exported ONNX/OpenVINO model"
# Packages whose nn.Module classes a checkpoint may hold (as stand-ins), and modules whose own classes it may.
MODULE_PACKAGES = ("torch.nn.modules", "ultralytics.nn.modules")
CLASS_MODULES = ("ultralytics.utils.loss", "ultralytics.utils.tal")
TASKS = "ultralytics.nn.tasks"
# Old ultralytics module paths, as ultralytics' torch_safe_load maps them (temporary_modules).
LEGACY_MODULES = {"ultralytics.yolo.utils": "ultralytics.utils", "ultralytics.yolo.v8": "ultralytics.models.yolo",
                  "ultralytics.yolo.data": "ultralytics.data"}
LEGACY_NAMES = {"ultralytics.nn.modules.block.Silence": "torch.nn.modules.linear.Identity",
                "ultralytics.nn.tasks.YOLOv10DetectionModel": "ultralytics.nn.tasks.DetectionModel",
                "ultralytics.utils.loss.v10DetectLoss": "ultralytics.utils.loss.E2EDetectLoss"}
GETATTR_NAMES = ("forward", "forward_fuse")

_LOCK = threading.RLock()  # one rtseg load at a time: the patches below are process-wide
_THREAD = threading.local()  # .allowed: the allow-list of the load running on this thread
_STAND_INS: dict[type, type] = {}  # real class -> its stand-in
_REAL: dict[type, type] = {}  # stand-in -> real class


class _Refused(Exception):
    """Raised inside the unpickler; not an UnpicklingError, so torch passes it on as it is."""


class _Uncallable(type):
    """The type of stand-ins: calling one (a pickle's REDUCE) is refused."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise _Refused(f"it calls {cls.__module__}.{cls.__qualname__}")


def _stand_in(real: type) -> type:
    """A class that stands in for ``real`` in the unpickler: ``__new__`` makes a bare ``real``
    instance (for BUILD to fill in); calling it raises."""
    with _LOCK:
        if real not in _STAND_INS:
            def __new__(cls: type, *args: Any) -> Any:
                if args:  # torch.save writes modules as cls.__new__(cls) with no arguments
                    raise _Refused(f"it makes {real.__module__}.{real.__qualname__} with arguments")
                return real.__new__(real)  # type: ignore[call-overload]

            stand = _Uncallable(real.__name__, (), {"__new__": __new__, "__module__": real.__module__,
                                                     "__qualname__": real.__qualname__})
            _STAND_INS[real], _REAL[stand] = stand, real
        return _STAND_INS[real]


def _getattr(obj: Any, name: str) -> Any:
    """``getattr`` as old checkpoints use it: a module class's or module's forward, nothing else."""
    import torch

    real = _REAL.get(obj, obj) if isinstance(obj, type) else obj
    if name in GETATTR_NAMES:
        if isinstance(real, type) and issubclass(real, torch.nn.Module):
            return getattr(real, name)
        if isinstance(real, torch.nn.Module):
            return getattr(type(real), name).__get__(real)
    what = real.__qualname__ if isinstance(real, type) else type(real).__name__
    raise _Refused(f"it calls getattr({what}, {name!r})")


@functools.lru_cache(maxsize=1)
def _plain() -> dict[str, Any]:
    """The plain globals checkpoints hold (harmless to call), by the names pickles give them."""
    import pathlib

    import numpy as np
    from ultralytics.utils import IterableSimpleNamespace

    scalar = np.float64(0).__reduce__()[0]  # type: ignore[index]
    path = pathlib.WindowsPath if sys.platform == "win32" else pathlib.PosixPath
    return {"ultralytics.utils.IterableSimpleNamespace": IterableSimpleNamespace,
            "ultralytics.yolo.utils.IterableSimpleNamespace": IterableSimpleNamespace,
            "numpy.core.multiarray.scalar": scalar, "numpy._core.multiarray.scalar": scalar, "numpy.dtype": np.dtype,
            "builtins.getattr": _getattr,
            **{f"{m}.{c}": path for m in ("pathlib", "pathlib._local") for c in ("PosixPath", "WindowsPath")}}


def _resolve(name: str) -> Any:
    """What the unpickler gets for global ``name``: a plain global, a model class's stand-in, or None
    (not allowed). Only modules already imported are looked in: a file never makes rtseg import one."""
    import torch

    plain = _plain()
    if name in plain:
        return plain[name]
    module, _, attr = LEGACY_NAMES.get(name, name).rpartition(".")
    for old, new in LEGACY_MODULES.items():
        if module == old or module.startswith(old + "."):
            module = new + module[len(old):]
    obj = getattr(sys.modules.get(module), "__dict__", {}).get(attr)
    if not isinstance(obj, type):
        return None
    is_module = issubclass(obj, torch.nn.Module)
    if (is_module and any(module == p or module.startswith(p + ".") for p in MODULE_PACKAGES)
            or is_module and module == TASKS and attr.endswith("Model")
            or module in CLASS_MODULES and obj.__module__ == module):
        return _stand_in(obj)
    return None


def allowed(name: str) -> bool:
    """Whether a checkpoint may name global ``name`` (``module.Name``)."""
    _import_model_modules()
    return _resolve(name) is not None


def _import_model_modules() -> None:
    from rtseg.segment.offline import prepare_ultralytics

    prepare_ultralytics()
    import ultralytics.nn.tasks  # noqa: F401 (imports the model, loss and tal modules the allow-list looks in)


def _allow_list(names: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """The unpickler's allow-list for a file naming ``names``, and the names refused."""
    import numpy as np

    entries: dict[str, Any] = {}
    refused: list[str] = []
    token = secrets.token_hex(8)
    for name in names:
        obj = _resolve(name)
        if obj is None:
            refused.append(name)
            continue
        entries[name] = obj
        if obj in _REAL:  # BUILD checks the instance's type: the real class, under a name GLOBAL cannot spell
            entries[f"\n{token}\n{name}"] = _REAL[obj]
        if obj is np.dtype:  # a dtype instance's type, for BUILD
            for k, dtype_type in enumerate(t for t in vars(np.dtypes).values()
                                             if isinstance(t, type) and issubclass(t, np.dtype)):
                entries[f"\n{token}\nnumpy.dtypes.{k}"] = dtype_type
    return entries, refused


@contextlib.contextmanager
def _this_allow_list(entries: dict[str, Any]) -> Iterator[None]:
    """While open, torch's weights-only unpickler on this thread allows exactly ``entries`` beyond
    torch's own tensor globals; other threads see torch's usual list."""
    import torch._weights_only_unpickler as wo

    with _LOCK:
        original = wo._get_user_allowed_globals

        def user_allowed_globals() -> dict[str, Any]:
            mine = getattr(_THREAD, "allowed", None)
            return mine if mine is not None else original()

        wo._get_user_allowed_globals = user_allowed_globals
        _THREAD.allowed = entries
        try:
            yield
        finally:
            _THREAD.allowed = None
            wo._get_user_allowed_globals = original


def _refusal(path: Any, why: str) -> RtsegError:
    return RtsegError(f"refusing to load model {path}: it would run code ({why}); {ADVICE}")


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with the FastSAM allow-list (see the module's doc).

    Raises:
        RtsegError: the file names a global outside the list, or calls a model class.
    """
    import torch

    _import_model_modules()
    with _this_allow_list({}):  # every name outside torch's own list, whatever else the process allowed
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except ValueError:  # not a torch.save zip (legacy format, TorchScript): torch.load decides, on its own list
            names = []
        except pickle.UnpicklingError as exc:
            raise _refusal(path, f"its pickle uses operations weights never need: {exc}") from None
    entries, refused = _allow_list(names)
    if refused:
        raise _refusal(path, "it references " + ", ".join(sorted(refused)))
    with _this_allow_list(entries):
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except _Refused as exc:
            raise _refusal(path, str(exc)) from None
        except pickle.UnpicklingError as exc:  # a global the scan did not see; else a damaged file (ultralytics says)
            found = re.search(r"GLOBAL (\S+) was not an allowed|GLOBAL (\S+) whose module", str(exc))
            if found:
                raise _refusal(path, f"it references {found.group(1) or found.group(2)}") from None
            raise
    if isinstance(ckpt, dict) and ckpt.get("modelopt"):  # ultralytics would hand it to modelopt's restore
        raise _refusal(path, "it carries a modelopt quantization state, which is not checked")
    return ckpt


@contextlib.contextmanager
def model_loading(trust: bool = False) -> Iterator[None]:
    """While open, ultralytics' checkpoint loads on this thread (``FastSAM(path)``) use
    :func:`safe_torch_load`; with ``trust``, ultralytics' own unrestricted load."""
    if trust:
        yield
        return
    _import_model_modules()
    import ultralytics.nn.tasks as tasks

    with _LOCK:
        original, me = tasks.torch_load, threading.get_ident()

        def torch_load(file: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != me:  # not an rtseg load
                return original(file, *args, **kwargs)
            return safe_torch_load(file, kwargs.get("map_location", args[0] if args else "cpu"))

        tasks.torch_load = torch_load
        try:
            yield
        finally:
            tasks.torch_load = original


def open_fastsam(path: str, trust: bool = False) -> Any:
    """``ultralytics.FastSAM(path)`` loaded through :func:`model_loading`.

    Raises:
        RtsegError: the file is refused, or ultralytics cannot load it (its reason, in one line).
    """
    if Path(path).suffix.lower() == ".torchscript" and not trust:  # torch.jit.load runs the file's program
        raise RtsegError(f"refusing to load model {path}: a TorchScript file is a program, which rtseg does "
                         f"not check; {ADVICE}")
    _import_model_modules()
    from ultralytics import FastSAM

    try:
        with model_loading(trust):
            return FastSAM(path)
    except RtsegError:
        raise
    except Exception as exc:
        raise RtsegError(f"cannot load model {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
