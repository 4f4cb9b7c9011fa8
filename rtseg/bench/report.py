"""The benchmark's report: a line per run, Markdown tables, the machine, and the ratios."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

EXPORT_NAMES = {"onnx": "model.onnx", "openvino": "model_openvino_model", "engine": "model.engine"}
MOT_COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def format_row(row: dict[str, Any]) -> str:
    ms = " ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}" for k, v in row["ms"].items())
    j = f"J {row['mean_j']:.3f}" if row.get("mean_j") is not None else ""
    if row.get("mot"):
        j = " ".join(f"{k} {row['mot'][k]:.3f}" for k in MOT_COLUMNS[:-1]) + f" IDSW {row['mot']['IDSW']}"
    lat = f"latency {row['latency_ms']['p50']:.0f}/{row['latency_ms']['p95']:.0f} ms" if "latency_ms" in row else ""
    return (f"{row['sample']:>10} {row['run']:<18} {row['fps']:6.1f} FPS  {ms}  peak {row['peak_rss_mb']:.0f} MB"
            f"  {j} {lat}").rstrip()


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one table of runs per sample, then the ratios."""
    m = report["machine"]
    lines = [f"{report['date']} | {m['cpu']} ({m['cores']} cores){', ' + m['gpu'] if m['gpu'] else ''} | "
             f"torch {m['torch']} | `{report['command']}`", ""]
    for sample in dict.fromkeys(r["sample"] for r in report["rows"]):
        lines += [f"**{sample}**", "", "| run | FPS | p50 / p95 ms by stage | peak RSS MB | mean J | other |",
                  "|---|---:|---|---:|---:|---|"]
        for r in (r for r in report["rows"] if r["sample"] == sample):
            ms = ", ".join(f"{k} {v['p50']:.1f} / {v['p95']:.1f}" for k, v in r["ms"].items())
            other = []
            if "segmented" in r:
                other.append(f"segmented {r['segmented']:.0%}")
            if "latency_ms" in r:
                other.append(f"latency {r['latency_ms']['p50']:.0f} / {r['latency_ms']['p95']:.0f} ms")
            if "growth_mb" in r:
                other.append(f"RSS growth {r['growth_mb']:+.1f} MB")
            if r.get("mot"):
                other.append(", ".join(f"{k} {r['mot'][k]}" for k in MOT_COLUMNS))
            j = f"{r['mean_j']:.3f}" if r.get("mean_j") is not None else "-"
            lines.append(f"| {r['run']} | {r['fps']:.1f} | {ms} | {r['peak_rss_mb']:.0f} | {j} | {'; '.join(other)} |")
        summary = report["summary"].get(sample, {})
        if summary:
            lines += ["", "ratios: " + ", ".join(f"{k} **{v}**" for k, v in summary.items())]
        lines.append("")
    return "\n".join(lines + mot_table(report["rows"]))


def mot_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines of the MOT metrics, a row per scored run (none when no row has them)."""
    scored = [r for r in rows if r.get("mot")]
    if not scored:
        return []
    lines = ["**MOT metrics** (TrackEval, by mask IoU)", "",
             "| sample | run | " + " | ".join(MOT_COLUMNS) + " | ids / gt ids |",
             "|---|---|" + "---:|" * (len(MOT_COLUMNS) + 1)]
    for r in scored:
        m = r["mot"]
        cells = [f"{m[k]:.3f}" if isinstance(m[k], float) else str(m[k]) for k in MOT_COLUMNS]
        lines.append(f"| {r['sample']} | {r['run']} | " + " | ".join(cells) + f" | {m['ids']} / {m['gt_ids']} |")
    return lines + [""]


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's ratios, per sample: end to end vs forward, text vs point, rtseg vs peers."""
    out: dict[str, Any] = {}
    for sample in sorted({r["sample"] for r in rows}):
        by = {r["run"]: r for r in rows if r["sample"] == sample}

        def ratio(a: str, b: str, by: dict[str, dict[str, Any]] = by) -> float | None:
            return round(by[a]["fps"] / by[b]["fps"], 3) if a in by and b in by and by[b]["fps"] > 0 else None

        s: dict[str, Any] = {
            "track_point_vs_forward": ratio("track-point", "forward"),
            "track_box_vs_forward": ratio("track-box", "forward"),
            "everything_vs_forward": ratio("everything", "forward"),
            "track_text_vs_point": ratio("track-text", "track-point"),
            "track_text_vs_ultralytics_text": ratio("track-text", "ultralytics-text"),
            "keyframes_point_vs_track_point": ratio("keyframes-point", "track-point"),
        }
        for fmt in EXPORT_NAMES:
            s[f"{fmt}_track_vs_{fmt}_forward"] = ratio(f"{fmt}-track-point", f"{fmt}-forward")
            s[f"{fmt}_track_vs_track_point"] = ratio(f"{fmt}-track-point", "track-point")
        js = {k: v["mean_j"] for k, v in by.items() if v.get("mean_j") is not None}
        peers = [v for k, v in js.items() if k.startswith("ultralytics")]
        ours = [v for k, v in js.items() if k.startswith("track-")]
        if peers and ours:
            s["mean_j_min_rtseg_minus_best_peer"] = round(min(ours) - max(peers), 4)
        if "keyframes-point" in js and "track-point" in js:
            s["keyframes_j_minus_track_j"] = round(js["keyframes-point"] - js["track-point"], 4)
        hota = {k: v["mot"]["HOTA"] for k, v in by.items() if v.get("mot")}
        trackers = [v for k, v in hota.items() if k.startswith("ultralytics-track-")]
        if "everything" in hota and trackers:
            s["hota_everything_minus_best_tracker"] = round(hota["everything"] - max(trackers), 4)
        if "live" in by and "latency_ms" in by["live"]:
            frame = by["live"]["ms"].get("frame", {}).get("p50")
            if frame:
                s["live_latency_p50_over_frame_p50"] = round(by["live"]["latency_ms"]["p50"] / frame, 3)
        out[sample] = {k: v for k, v in s.items() if v is not None}
    return out
