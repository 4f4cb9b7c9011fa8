"""Published FPS of one commit against an earlier one's, each measured by its own
``benchmarks/publish_latency.py`` (the showcase, demo models, frames from memory, a subscriber in
another process), in a git worktree of each, the two alternating run by run so that both see the
same machine load (edits in the working tree change neither).

    .venv/bin/python benchmarks/publish_ab.py --base 1525904 --pairs 5 --json benchmarks/publish-ab-cpu.json

Each run gives FPS without and with publishing (one of each, same process). Reported: the median
FPS with publishing per commit and their ratio (head / base), and the median of each run's own
with/without ratio (what publishing costs, free of the load's drift between runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(tree: Path, frames: int) -> dict:
    """One run of ``tree``'s publish benchmark, importing ``tree``'s rtseg."""
    out = Path(tempfile.mktemp(suffix=".json"))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, str(tree / "benchmarks/publish_latency.py"), "--frames", str(frames),
                    "--repeats", "1", "--json", str(out)], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    report = json.loads(out.read_text())
    out.unlink()
    return {"off": report["fps"]["off"][0], "on": report["fps"]["on"][0],
            "received": report["messages_received"], "expected": report["messages_expected"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--head", default="HEAD", help="the commit measured (default: HEAD)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", args.head], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    trees = {name: Path(tempfile.mkdtemp(prefix=f"rtseg-{name}-")) / "tree" for name in ("base", "head")}
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    try:
        for name, commit in (("base", args.base), ("head", head)):
            subprocess.run(["git", "worktree", "add", "--detach", str(trees[name]), commit], cwd=ROOT, check=True,
                           capture_output=True)
        for k in range(args.pairs):
            for name in ("base", "head") if k % 2 == 0 else ("head", "base"):
                runs[name].append(measure(trees[name], args.frames))
                print(f"pair {k + 1} {name}: {runs[name][-1]}", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False,
                           capture_output=True)

    def median(name: str, f) -> float:
        return round(statistics.median(f(r) for r in runs[name]), 3)

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "base": args.base, "head": head, "frames": args.frames,
        "pairs": args.pairs, "runs": runs,
        "fps_on_median": {n: median(n, lambda r: r["on"]) for n in runs},
        "fps_off_median": {n: median(n, lambda r: r["off"]) for n in runs},
        "on_over_off_median": {n: median(n, lambda r: r["on"] / r["off"]) for n in runs},
        "messages_lost": sum(r["expected"] - r["received"] for rs in runs.values() for r in rs),
    }
    report["fps_on_head_vs_base"] = round(report["fps_on_median"]["head"] / report["fps_on_median"]["base"], 3)
    report["on_over_off_head_vs_base"] = round(report["on_over_off_median"]["head"]
                                               / report["on_over_off_median"]["base"], 3)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
