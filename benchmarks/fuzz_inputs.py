"""Byte-level fuzzing of ``rtseg track``'s inputs: damaged copies of the bundled sample video and of a
PNG frame of it (seeded), each run as

    rtseg track INPUT --config configs/demo.yaml --point 77,298 --max-frames 20 --quiet
                      --save-masks DIR --save-json FILE

Every run must end in bounded time with exit 0 (frames that decode, however garbled, are tracked;
the video may end early) or exit 2 with one line on stderr, never a crash, and every output file
there must be whole: each mask PNG decodes, each JSON line parses, one line per mask, in order.

    .venv/bin/python benchmarks/fuzz_inputs.py                      # 25 inputs of each of 8 kinds, seed 0
    .venv/bin/python benchmarks/fuzz_inputs.py --per-kind 4 --json out.json

Starting rtseg 200 times would spend most of the time loading models, so a worker process loads them
once and calls ``rtseg.cli.main`` in-process for each input (the segmenter's answer is cached per
frame). Each input has a time limit; a worker that dies (a decoder crash) or overruns is recorded
against that input and replaced, so one bad input never hides the others. Input i of a kind depends
only on the seed, the kind and i: ``--per-kind 4`` runs the first 4 inputs of each kind of a full run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import selectors
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "samples/showcase/video.mp4"
CONFIG = ROOT / "configs/demo.yaml"
ARGS = ["--config", str(CONFIG), "--point", "77,298", "--max-frames", "20", "--quiet"]
FRAMES = 20  # the frames a run reads: the damage goes where they are
MARK = "@@fuzz "


def mp4_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level boxes of an mp4: name -> (offset, size)."""
    boxes, at = {}, 0
    while at + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[at:at + 8])
        size = struct.unpack(">Q", data[at + 8:at + 16])[0] if size == 1 else size or len(data) - at
        boxes[name.decode("latin-1")] = (at, size)
        at += size
    return boxes


def head_span(data: bytes) -> tuple[int, int]:
    """Byte range of the first FRAMES frames: from the first chunk offset (stco) over their sizes (stsz)."""
    stsz, stco = data.rindex(b"stsz"), data.rindex(b"stco")
    count = struct.unpack(">I", data[stsz + 12:stsz + 16])[0]
    sizes = struct.unpack(f">{min(count, FRAMES)}I", data[stsz + 16:stsz + 16 + 4 * min(count, FRAMES)])
    start = struct.unpack(">I", data[stco + 12:stco + 16])[0]
    return start, start + sum(sizes)


def flip_bits(data: bytes, rng: random.Random, lo: int, hi: int, most: int) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, most)):
        out[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    return bytes(out)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def damage_ihdr(data: bytes, rng: random.Random) -> bytes:
    """A PNG whose header fields (size, bit depth, colour type, ...) are changed, with a valid CRC so the
    decoder believes them; or, one time in four, a chunk length or type damaged."""
    if rng.random() < 0.25:
        at = rng.choice([8, 12, 33, 37]) + rng.randrange(4)  # IHDR's length/type, the next chunk's
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    fields = list(struct.unpack(">IIBBBBB", data[16:29]))
    k = rng.randrange(7)
    extremes = [0, 1, 2, 7, 16, 255, 65535, 2**31 - 1, 2**32 - 1]
    fields[k] = rng.choice(extremes if k < 2 else [0, 1, 2, 3, 4, 6, 8, 16, 255]) % (2**32 if k < 2 else 256)
    return data[:8] + png_chunk(b"IHDR", struct.pack(">IIBBBBB", *fields)) + data[33:]


def video_kinds(data: bytes) -> dict[str, Callable[[random.Random], bytes]]:
    boxes = mp4_boxes(data)
    lo, hi = head_span(data)
    moov, ftyp = boxes["moov"], boxes["ftyp"]
    header = list(range(ftyp[0], ftyp[0] + ftyp[1])) + list(range(moov[0], moov[0] + moov[1]))

    def header_damage(rng: random.Random) -> bytes:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.choice(header)
            out[at:at + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)]))
        return bytes(out)

    def cut(rng: random.Random) -> bytes:
        a, n = rng.randrange(lo, hi), rng.randint(1, 65536)
        at, size = boxes["mdat"]  # its size shrinks with it, so the index after it is still found
        out = data[:at] + struct.pack(">I", size - n) + data[at + 4:a] + data[a + n:]
        return out

    def zeroed(rng: random.Random) -> bytes:
        a, n = rng.randrange(lo, hi), rng.randint(16, 65536)
        return data[:a] + bytes(len(data[a:a + n])) + data[a + n:]

    return {
        "video-truncated": lambda rng: data[:rng.randrange(len(data))],
        "video-cut": cut,  # bytes removed from the first frames, the index (moov) kept
        "video-bitflip": lambda rng: flip_bits(data, rng, lo, hi, 64),
        "video-zeroed": zeroed,
        "video-header": header_damage,  # ftyp and moov: sizes, counts, offsets, dimensions
    }


def png_kinds(data: bytes) -> dict[str, Callable[[random.Random], bytes]]:
    return {
        "png-truncated": lambda rng: data[:rng.randrange(len(data))],
        "png-bitflip": lambda rng: flip_bits(data, rng, 0, len(data), 32),
        "png-header": lambda rng: damage_ihdr(data, rng),
    }


def make_inputs(folder: Path, seed: int, per_kind: int) -> list[tuple[str, Path]]:
    """The damaged inputs, written under ``folder``: (kind, path), ``per_kind`` of each kind."""
    import cv2

    video = VIDEO.read_bytes()
    cap = cv2.VideoCapture(str(VIDEO))
    frame = cap.read()[1]
    cap.release()
    png = cv2.imencode(".png", frame)[1].tobytes()
    kinds = {**video_kinds(video), **png_kinds(png)}
    inputs = []
    for kind, damage in kinds.items():
        for i in range(per_kind):
            path = folder / f"{kind}-{i:03d}{'.png' if kind.startswith('png') else '.mp4'}"
            path.write_bytes(damage(random.Random(f"{seed}-{kind}-{i}")))
            inputs.append((kind, path))
    return inputs


def check_outputs(out: Path) -> list[str]:
    """What is not whole among a run's outputs (empty when all is well)."""
    from rtseg.output.png import read_index_png

    problems = []
    masks = sorted((out / "m").glob("*.png")) if (out / "m").is_dir() else []
    for png in masks:
        try:
            read_index_png(png)
        except (OSError, ValueError) as exc:
            problems.append(f"{png.name}: {exc}")
    left = [p.name for p in (out / "m").iterdir() if not p.name.endswith(".png")] if (out / "m").is_dir() else []
    problems += [f"left behind: {name}" for name in left]
    text = (out / "t.jsonl").read_text() if (out / "t.jsonl").exists() else ""
    if text and not text.endswith("\n"):
        problems.append("the JSON lines file ends in half a line")
    try:
        indices = [json.loads(line)["index"] for line in text.splitlines()]
    except ValueError as exc:
        return problems + [f"a JSON line does not parse: {exc}"]
    if indices != list(range(len(indices))) or [p.name for p in masks] != [f"{i:05d}.png" for i in indices]:
        problems.append(f"{len(masks)} masks and JSON lines {indices[:3]}... do not match frame for frame")
    return problems


def worker() -> None:
    """Run jobs from stdin through ``rtseg.cli.main`` in this process, the models loaded once."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # whatever else prints, the answers stay readable
    cache_models()
    print(MARK + "ready", file=proto)
    from rtseg.cli import main

    for line in sys.stdin:
        job = json.loads(line)
        with tempfile.TemporaryFile("w+") as err:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            t0 = time.perf_counter()
            try:
                rc: Any = main(job["argv"])
            except SystemExit as exc:
                rc = exc.code
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            wall = time.perf_counter() - t0
            err.seek(0)
            print(MARK + json.dumps({"rc": rc, "stderr": err.read()[-2000:], "wall": wall}), file=proto)


def cache_models() -> None:
    """Sessions made by ``rtseg.cli.main`` get the demo models, loaded once, and the segmenter
    remembers its answer for the last frames it saw (FastSAM is deterministic)."""
    import hashlib
    import types

    import numpy as np

    from rtseg import session
    from rtseg.config import load_config
    from rtseg.prompt.clip import TextScorer
    from rtseg.segment.fastsam import FastSAMSegmenter

    model = load_config(CONFIG).model
    inner, scorer = FastSAMSegmenter.from_config(model), TextScorer(model.clip)
    answers: collections.OrderedDict = collections.OrderedDict()

    class Cached:
        device = inner.device

        def __call__(self, image: np.ndarray) -> Any:
            key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).digest()
            if key not in answers:
                answers[key] = inner(image)
                if len(answers) > 64:
                    answers.popitem(last=False)
            answers.move_to_end(key)
            d = answers[key]
            return d[np.arange(len(d))]  # a copy: a tracker must not share it between runs

    session.FastSAMSegmenter = types.SimpleNamespace(from_config=lambda m, weights=None, trust_weights=False: Cached())  # type: ignore[attr-defined]
    session.TextScorer = lambda spec, device="cpu": scorer  # type: ignore[attr-defined]


class Runner:
    """A worker process, replaced when it dies or overruns."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if self.answer(300) != "ready":
            raise SystemExit("the fuzz worker did not start")

    def answer(self, timeout: float) -> str | None:
        """The worker's next answer, or None when it died or ``timeout`` seconds passed."""
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0 and sel.select(left):
                line = self.proc.stdout.readline()
                if not line:
                    return None
                if line.startswith(MARK):
                    return line[len(MARK):].strip()
        return None

    def run(self, argv: list[str], timeout: float) -> dict[str, Any]:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        self.proc.stdin.flush()
        line = self.answer(timeout)
        if line is not None:
            return json.loads(line)
        code = self.proc.poll()
        if code is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        what = f"timeout after {timeout:.0f} s" if code is None else f"worker died (exit {code})"
        return {"rc": what, "stderr": "", "wall": time.perf_counter() - t0}


def outcome(result: dict[str, Any]) -> str:
    """exit 0, exit 2, or what else happened (an exit 2 must say one line, and nothing says a traceback)."""
    lines = [line for line in result["stderr"].splitlines() if line.startswith("rtseg:") or "Traceback" in line]
    if result["rc"] == 0 and not lines:
        return "exit 0"
    if result["rc"] == 2 and len(lines) == 1 and lines[0].startswith("rtseg: error: "):
        return "exit 2"
    return f"other: {result['rc']} {' | '.join(lines)[:200]}"


def fuzz(seed: int, per_kind: int, timeout: float, work: Path) -> list[dict[str, Any]]:
    runner, rows = Runner(), []
    for kind, path in make_inputs(work, seed, per_kind):
        out = work / (path.stem + "-out")
        argv = ["track", str(path), *ARGS, "--save-masks", str(out / "m"), "--save-json", str(out / "t.jsonl")]
        result = runner.run(argv, timeout)
        noise = [line for line in result["stderr"].splitlines() if line.strip() and not line.startswith("rtseg:")]
        rows.append({"kind": kind, "input": path.name, "outcome": outcome(result), "broken": check_outputs(out),
                     "wall": round(result["wall"], 2), "error": result["stderr"].strip().splitlines()[-1:],
                     "decoder_lines": len(noise)})
    if runner.proc is not None:
        runner.proc.stdin.close()  # type: ignore[union-attr]
        runner.proc.wait()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The outcome table, one row per kind and a total, in Markdown."""
    lines = ["| inputs | tried | exit 0 | exit 2 | other | outputs not whole | decoder messages | max wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    groups = collections.defaultdict(list)
    for r in rows:
        groups[r["kind"]].append(r)
    for kind, rs in [*groups.items(), ("all", rows)]:
        count = collections.Counter(r["outcome"] if r["outcome"] in ("exit 0", "exit 2") else "other" for r in rs)
        name = f"**{kind}**" if kind == "all" else kind
        lines.append(f"| {name} | {len(rs)} | {count['exit 0']} | {count['exit 2']} | {count['other']} "
                     f"| {sum(bool(r['broken']) for r in rs)} | {sum(r['decoder_lines'] > 0 for r in rs)} "
                     f"| {max(r['wall'] for r in rs):.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=25, help="inputs of each of the 8 kinds")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one input may take")
    parser.add_argument("--work", help="folder for the inputs and outputs (default: a temporary one)")
    parser.add_argument("--json", help="write every run's row here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0
    with tempfile.TemporaryDirectory(prefix="rtseg-fuzz-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = fuzz(args.seed, args.per_kind, args.timeout, work)
    print(table(rows))
    for r in rows:
        if r["outcome"] not in ("exit 0", "exit 2") or r["broken"]:
            print(f"{r['input']}: {r['outcome']} {r['broken']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["outcome"] in ("exit 0", "exit 2") and not r["broken"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
