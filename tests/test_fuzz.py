"""Fuzzed input: every parser, the config loader, ``rtseg eval``'s folder reader and the JSON/RLE writer
either work or raise RtsegError (for the command line: one line on stderr, exit 2); never another
exception, a hang, or a partial file. Then damaged videos and images through ``rtseg track``.

Hypothesis runs derandomized (the same examples every run) and without an example database.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
import ultralytics.utils.patches  # noqa: F401  (patches PIL's Image.open, as every rtseg run has it)
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from rtseg.cli import main
from rtseg.config import Config, load_config
from rtseg.errors import RtsegError
from rtseg.evaluate import evaluate_folders
from rtseg.output.records import frame_record
from rtseg.prompt.prompts import load_prompts_file, parse_box, parse_objects, parse_xy

from conftest import ROOT, SHOWCASE

# Nothing is decided on the clock: no deadline per example, no "data generation is slow" health check.
PARSERS = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])
FILES = settings(PARSERS, max_examples=100)
CLI = settings(PARSERS, max_examples=40,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.integers(-5, 1000), st.integers(), st.floats(-2, 2), st.floats(), st.floats(-1e300, 1e300),
                    st.sampled_from([2**31 - 1, 2**31, -(2**64), 10**400]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.one_of(st.text(max_size=8), st.integers(), st.none()), inner, max_size=3), max_leaves=8)


def one_line(exc: RtsegError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)


def parses(fn, *args):
    """``fn(*args)``, or None when it raised RtsegError (with a one-line message); anything else fails."""
    try:
        return fn(*args)
    except RtsegError as exc:
        one_line(exc)
        return None


# --- prompt parsers ------------------------------------------------------------------------------

coords = st.one_of(st.text(max_size=16), st.lists(numbers, max_size=5).map(lambda v: ",".join(map(str, v))),
                   st.text(alphabet="0123456789.,-+ eEinfa_", max_size=16))


@PARSERS
@given(coords, st.integers(1, 4))
@example("nan,1", 2)
@example("1e999,2", 2)
def test_parse_xy(text, n):
    values = parses(parse_xy, text, n, "point")
    if values is not None:
        assert len(values) == n and all(math.isfinite(v) for v in values)


@PARSERS
@given(coords)
@example("0,0,inf,inf")  # passed, and the run ended in "internal error: OverflowError"
def test_parse_box(text):
    box = parses(parse_box, text)
    if box is not None:
        assert all(math.isfinite(v) for v in box.box)


pairs = st.lists(st.one_of(st.lists(numbers, min_size=2, max_size=2), values), max_size=3)
entries = st.lists(st.one_of(values, st.dictionaries(
    st.sampled_from(["points", "neg", "box", "text", "colour"]),
    st.one_of(pairs, st.lists(numbers, min_size=4, max_size=4), st.text(max_size=12), values), max_size=3)),
    max_size=4)


def check_prompts(prompts) -> None:
    for p in prompts or []:
        coordinates = [*getattr(p, "points", ()), *getattr(p, "negatives", ()), getattr(p, "box", ())]
        assert all(isinstance(v, float) and math.isfinite(v) for xy in coordinates for v in xy)
        assert not hasattr(p, "text") or (isinstance(p.text, str) and p.text.strip())


@PARSERS
@given(entries)
@example([{"box": "1234"}])  # a string was read as the box 1,2,3,4
@example([{"text": None}])  # was the text prompt "None"
@example([{"points": [[True, 2]]}])
@example([{"points": [[float("nan"), 1]]}])
@example([{"box": [10**400, 0, 1, 1]}])  # too large for a float
def test_parse_objects(objects):
    check_prompts(parses(parse_objects, objects, "prompts"))


prompt_texts = st.one_of(entries.map(lambda e: yaml.safe_dump({"objects": e})), st.text(max_size=60),
                         st.just("objects:\n  - text: a\n    neg: [[1, 2001-13-01]]\n"))


@PARSERS
@given(st.one_of(prompt_texts, st.binary(max_size=40)))
@example(b"\xff\xfeobjects: []")  # not UTF-8: was UnicodeDecodeError
@example("objects:\n  - text: 2001-13-01\n")  # a date YAML cannot make: was ValueError
def test_load_prompts_file(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        check_prompts(parses(load_prompts_file, path))


# --- the config loader ---------------------------------------------------------------------------

SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def section(cls) -> st.SearchStrategy:
    keys = st.sampled_from([f.name for f in dataclasses.fields(cls)] + ["jump"])
    return st.dictionaries(keys, st.one_of(numbers, scalars, values), max_size=4)


config_docs = st.fixed_dictionaries({}, optional={**{name: st.one_of(section(cls), values)
                                                     for name, cls in SECTIONS.items()}, "extra": values})
config_texts = st.one_of(config_docs.map(yaml.safe_dump), st.text(max_size=60), st.binary(max_size=40))
settings_near_range = st.one_of(st.integers(0, 300), st.floats(0, 1), st.floats(0, 5), st.booleans(),
                                st.sampled_from(["mp4v", "XVID", "MJPG", "zzzz", "cpu", ""]))
plausible_configs = st.fixed_dictionaries({}, optional={name: st.dictionaries(
    st.sampled_from([f.name for f in dataclasses.fields(cls)]), settings_near_range, max_size=3)
    for name, cls in SECTIONS.items()}).map(yaml.safe_dump)


def check_config(config) -> None:
    if config is None:
        return
    assert isinstance(config, Config)
    for name in SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, name)).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert math.isfinite(value) and abs(value) < 2**31, (name, key, value)


@PARSERS
@given(config_texts)
@example("output: {fps: .inf}")  # loaded; the run ended in "internal error: OverflowError"
@example("model: {imgsz: 1099511627776}")  # loaded; OpenCV's resize failed ("internal error")
@example("model: {threads: 1099511627776}")  # loaded; torch failed ("internal error")
@example("camera: {fx: 1, fy: 1, cx: .inf, cy: 1}")
@example("tracker: {a: 1}\n")
@example("model:\n  weights: x\n  ~: 1\n")  # null and text keys: sorting them was TypeError
@example("model: 0")  # read as no model section at all
@example("model: {weights: " + "w" * 5000 + "}")  # File name too long (OSError) from the path check
@example(b"model: {device: \xff}")  # not UTF-8: was UnicodeDecodeError
@example("model: 2001-13-01")  # was ValueError
def test_load_config(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        check_config(parses(load_config, path))


# --- rtseg eval's folder reader ------------------------------------------------------------------

@st.composite
def mask_files(draw) -> dict:
    """Files for a folder: name -> ("png", mode, w, h, seed) | ("bytes", data) | ("truncated", n) | ("dir",)."""
    names = st.sampled_from(["00000.png", "00001.png", "00002.png", "a.png", "x.txt", "00000.PNG"])
    content = st.one_of(
        st.tuples(st.just("png"), st.sampled_from(["P", "P", "L", "RGB", "1", "I;16", "LA", "RGBA"]),
                  st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**16)),
        st.tuples(st.just("bytes"), st.binary(max_size=40)),
        st.tuples(st.just("truncated"), st.integers(0, 60)),
        st.just(("dir",)))
    return draw(st.dictionaries(names, content, max_size=4))


def write_files(folder: Path, files: dict) -> None:
    folder.mkdir()
    for name, spec in files.items():
        path = folder / name
        if spec[0] == "dir":
            path.mkdir()
        elif spec[0] == "bytes":
            path.write_bytes(spec[1])
        else:
            mode, w, h, seed = spec[1:] if spec[0] == "png" else ("P", 8, 8, spec[1])
            labels = np.random.default_rng(seed).integers(0, 4, (h, w)).astype(np.uint8)
            image = Image.fromarray(labels, "L")
            image = image.convert(mode) if mode != "I;16" else Image.fromarray(labels.astype(np.uint16))
            image.save(path, format="PNG")
            if spec[0] == "truncated":
                path.write_bytes(path.read_bytes()[:spec[1]])


@FILES
@given(mask_files(), mask_files())
@example({"00000.png": ("png", "P", 8, 8, 1), "00001.png": ("png", "P", 9, 8, 1)},
         {"00000.png": ("png", "P", 8, 8, 1)})  # masks of two sizes: was ValueError from np.stack
@example({"00000.png": ("bytes", b"")}, {})  # no image: ultralytics' patched Image.open pip-installed pi-heif
def test_evaluate_folders(gt, pred):
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp) / "gt", gt)
        write_files(Path(tmp) / "pred", pred)
        result = parses(evaluate_folders, Path(tmp) / "pred", Path(tmp) / "gt")
        assert result is None or set(result) == {"objects", "overall"}


def test_evaluate_refuses_a_decompression_bomb(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    for name in ("gt", "pred"):
        (tmp_path / name).mkdir()
    (tmp_path / "gt" / "00000.png").write_bytes(  # 100000 x 100000 declared: was DecompressionBombError
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", bytes(3)) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))
    with pytest.raises(RtsegError, match="00000.png"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt")


# --- the JSON lines and their RLE masks ----------------------------------------------------------

@st.composite
def detections(draw) -> sv.Detections:
    n, h, w = draw(st.integers(0, 4)), draw(st.integers(1, 24)), draw(st.integers(1, 24))
    any_float = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return sv.Detections(
        xyxy=draw(arrays(np.float64, (n, 4), elements=st.floats(-1e6, 1e6))),
        mask=draw(arrays(bool, (n, h, w))),
        confidence=draw(st.none() | arrays(np.float32, (n,), elements=any_float)),
        tracker_id=draw(st.none() | arrays(np.int64, (n,), elements=st.integers(0, 2**40))))


@PARSERS
@given(detections(), st.integers(0, 10**6), st.floats(allow_nan=True, allow_infinity=True))
@example(sv.Detections(xyxy=np.zeros((1, 4)), mask=np.ones((1, 2, 3), bool), confidence=np.array([np.nan])), 0,
         float("nan"))  # was written as NaN, which JSON has not
def test_frame_record_is_strict_json_and_its_rle_round_trips(dets, index, time_s):
    line = json.dumps(frame_record(index, time_s, dets), allow_nan=False)  # NaN used to be written as NaN
    record = json.loads(line)
    assert record["index"] == index and len(record["objects"]) == len(dets)
    for mask, obj in zip(dets.mask, record["objects"]):
        assert obj["area"] == int(mask.sum())
        if obj["mask"] is None:
            assert not mask.any()
            continue
        decoded = sv.rle_to_mask(obj["mask"]["counts"], obj["mask"]["size"][::-1])
        assert decoded.shape == mask.shape and (decoded == mask).all()


# --- a sample through the command line, in-process -----------------------------------------------

@pytest.fixture(scope="module")
def frame_png(tmp_path_factory) -> Path:
    cap = cv2.VideoCapture(str(SHOWCASE / "video.mp4"))
    path = tmp_path_factory.mktemp("frame") / "frame.png"
    cv2.imwrite(str(path), cap.read()[1])
    cap.release()
    return path


@pytest.fixture(scope="module")
def cached_models(segmenter, text_scorer):
    """Sessions the command line makes get the bundled models, loaded once."""
    import types

    from rtseg import session

    with pytest.MonkeyPatch.context() as mp:
        made = types.SimpleNamespace(from_config=lambda m, weights=None, trust_weights=False: segmenter)
        mp.setattr(session, "FastSAMSegmenter", made)
        mp.setattr(session, "TextScorer", lambda spec, device="cpu": text_scorer)
        yield


def run_cli(capfd, *argv) -> tuple[int, str]:
    capfd.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors: one line and exit 2 as well
        code = exc.code  # type: ignore[assignment]
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("rtseg: error: "), err
    return code, err


def check_run_outputs(out: Path) -> None:
    """Every mask PNG decodes and every JSON line parses, one line per mask."""
    from rtseg.output.png import read_index_png

    lines = (out / "t.jsonl").read_text().splitlines() if (out / "t.jsonl").exists() else []
    records = [json.loads(line) for line in lines]
    masks = sorted((out / "m").glob("*.png")) if (out / "m").exists() else []
    assert [p.name for p in masks] == [f"{r['index']:05d}.png" for r in records]
    for p in masks:
        read_index_png(p)


xy_in_frame = st.tuples(st.integers(0, 639), st.integers(0, 479))
in_frame = xy_in_frame.map(lambda xy: f"{xy[0]},{xy[1]}")
valid_prompts = st.lists(st.fixed_dictionaries({"points": st.lists(xy_in_frame.map(list), min_size=1, max_size=2)}),
                         min_size=1, max_size=2).map(lambda e: yaml.safe_dump({"objects": e}))


@CLI
@given(st.one_of(in_frame, coords), st.one_of(st.none(), valid_prompts, prompt_texts))
@example("77,298", "objects:\n  - text: \"a\\nb\"\n    neg: [[1000, 5]]\n")  # the error was two lines
@example("0,0", None)
def test_prompts_through_the_command_line(capfd, cached_models, frame_png, point, prompts_text):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        argv = ["track", frame_png, "--config", ROOT / "configs/demo.yaml", f"--point={point}", "--quiet",
                "--max-frames", "1", "--save-masks", out / "m", "--save-json", out / "t.jsonl"]
        if prompts_text is not None:
            (out / "p.yaml").write_text(prompts_text)
            argv += ["--prompts", out / "p.yaml"]
        event(f"exit {run_cli(capfd, *argv)[0]}")
        check_run_outputs(out)


@CLI
@given(st.one_of(plausible_configs, config_texts))
@example("output: {fps: .inf}")  # a folder source takes the config's fps: was "internal error: OverflowError"
@example("output: {fps: 1.0e+300}")  # the writer cannot open: OpenCV's own two lines came before rtseg's
@example("keyframes: {every: 3, scale: 0.01, search: 1}")
def test_configs_through_the_command_line(capfd, cached_models, frame_png, text):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "c.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
        code, _ = run_cli(capfd, "track", frame_png, "--config", out / "c.yaml", "--box", "40,260,120,340",
                          "--quiet", "--max-frames", "1", "--output", out / "o.mp4", "--save-masks", out / "m",
                          "--save-json", out / "t.jsonl")
        event(f"exit {code}")
        check_run_outputs(out)


def test_bad_box_is_refused_before_the_run(capfd, cached_models, frame_png):
    code, err = run_cli(capfd, "track", frame_png, "--config", ROOT / "configs/demo.yaml", "--box", "0,0,inf,inf")
    assert code == 2 and "bad box" in err


# --- damaged videos and images through rtseg track -----------------------------------------------

HANG_S = 300  # an input still running after this long hangs (each takes seconds, a few on a busy machine)


def test_damaged_inputs_exit_0_or_2_with_whole_outputs(tmp_path):
    """32 seeded inputs (4 of each kind of benchmarks/fuzz_inputs.py), each under a time limit in a
    worker process that a decoder crash would kill: recorded as a failure, not lost. The limit only
    tells a hang from a slow run: it is minutes, where an input takes seconds."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/fuzz_inputs.py"), "--per-kind", "4", "--timeout",
                           str(HANG_S), "--work", str(tmp_path / "work"), "--json", str(tmp_path / "rows.json")],
                          capture_output=True, text=True, timeout=1800, cwd=ROOT)
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert len(rows) == 32, proc.stdout + proc.stderr
    bad = [r for r in rows if r["outcome"] not in ("exit 0", "exit 2") or r["broken"]]  # a hang is "timeout after"
    assert not bad, bad
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert max(r["wall"] for r in rows) < HANG_S
    assert {r["outcome"] for r in rows} == {"exit 0", "exit 2"}  # some damage is survived, some refused
