"""Hash what ``rtseg track`` writes (mask PNGs and JSON lines) on the bundled samples, to show that a
change which should not alter behaviour does not: run it before and after, and compare.

    .venv/bin/python benchmarks/output_hashes.py --json before.json
    ... change the code ...
    .venv/bin/python benchmarks/output_hashes.py --json after.json --compare before.json

The scenario videos are made by ``rtseg synth video`` with seed 11 (as ``make bench`` makes them).
Overlay videos are not hashed: they carry the run's own FPS line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTSEG = [str(Path(sys.executable).parent / "rtseg")]
SCENARIOS = ("occlusion", "crossing", "fast", "exit", "shake", "crowd")


def digest(folder: Path) -> dict[str, str]:
    """sha256 of the mask PNGs (names and bytes, in name order) and of the JSON lines file."""
    masks = hashlib.sha256()
    pngs = sorted((folder / "masks").glob("*.png"))
    for png in pngs:
        masks.update(png.name.encode() + png.read_bytes())
    return {"frames": str(len(pngs)), "masks": masks.hexdigest()[:16],
            "jsonl": hashlib.sha256((folder / "tracks.jsonl").read_bytes()).hexdigest()[:16]}


def points(sample: Path) -> list[str]:
    args = []
    for o in json.loads((sample / "objects.json").read_text())["objects"]:
        args += ["--point", ",".join(f"{v:g}" for v in o["prompts"]["point"])]
    return args


def texts(sample: Path) -> list[str]:
    args = []
    for o in json.loads((sample / "objects.json").read_text())["objects"]:
        args += ["--text", o["prompts"]["text"]]
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/hashes", help="work folder")
    parser.add_argument("--json", help="write the hashes here")
    parser.add_argument("--compare", help="a JSON file of earlier hashes: exit 1 when any differs")
    args = parser.parse_args()
    out = Path(args.out)
    showcase = ROOT / "samples/showcase"
    for s in SCENARIOS:
        if not (out / "samples" / s / "objects.json").is_file():
            subprocess.run(RTSEG + ["synth", "video", str(out / "samples" / s), "--scenario", s, "--seed", "11"],
                           check=True, stdout=subprocess.DEVNULL)
    demo = ["--config", str(ROOT / "configs/demo.yaml")]
    runs: dict[str, list[str]] = {
        "showcase/prompts": [str(showcase / "video.mp4"), *demo, "--prompts", str(showcase / "prompts.yaml")],
        "showcase/everything": [str(showcase / "video.mp4"), *demo, "--everything", "--max-frames", "100"],
        "showcase/keyframes4": [str(showcase / "video.mp4"), *demo, "--keyframes", "4",
                                "--prompts", str(showcase / "prompts.yaml"), "--max-frames", "150"],
        "showcase/imgsz320": [str(showcase / "video.mp4"), *demo, "--imgsz", "320", *points(showcase),
                              "--max-frames", "150"],
    }
    for s in SCENARIOS:
        sample = out / "samples" / s
        runs[f"{s}/point"] = [str(sample / "video.mp4"), *demo, *points(sample), "--max-frames", "150"]
    runs["crowd/text"] = [str(out / "samples/crowd/video.mp4"), *demo, *texts(out / "samples/crowd"),
                          "--max-frames", "150"]
    hashes = {}
    for name, run in runs.items():
        folder = out / name
        subprocess.run(RTSEG + ["track", *run, "--no-show", "--quiet", "--save-masks", str(folder / "masks"),
                                "--save-json", str(folder / "tracks.jsonl")], check=True)
        hashes[name] = digest(folder)
        print(name, hashes[name], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(hashes, indent=1) + "\n")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        differ = [k for k in before if before[k] != hashes.get(k)]
        print("identical" if not differ else f"differ: {', '.join(differ)}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
