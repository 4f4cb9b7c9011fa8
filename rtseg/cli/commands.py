"""What each ``rtseg`` command does, from its parsed arguments; returns the exit code.

Heavy modules (torch, ultralytics, gradio) are imported inside the command that needs them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtseg.cli.objects import prompts_from_args
from rtseg.errors import RtsegError

if TYPE_CHECKING:
    from rtseg.config import Config


def _config_from_args(args: argparse.Namespace) -> Config:
    from rtseg.config import load_config, override

    window = getattr(args, "window_size", None)  # rtseg track's only
    return override(load_config(args.config), model={"weights": args.model, "clip": args.clip_model,
                                                      "device": args.device, "imgsz": args.imgsz, "conf": args.conf},
                    keyframes={"every": args.keyframes},
                    output={"window_size": "{}x{}".format(*window) if window else None,
                            "video_size": getattr(args, "output_size", None)})


def cmd_track(args: argparse.Namespace) -> int:
    from rtseg.capture.depth import with_depth
    from rtseg.capture.sources import Source, open_source
    from rtseg.output.sinks import JsonlSink, MaskSink, ProgressSink, Sink, VideoSink
    from rtseg.prompt.prompts import ConceptPrompt
    from rtseg.runner import run
    from rtseg.session import Session

    config = _config_from_args(args)
    timeline: list = []  # the prompts file's entries for later frames (rtseg.output.timeline)
    objects = prompts_from_args(args, timeline)
    if args.everything and any(isinstance(o, ConceptPrompt) for o in objects):
        raise RtsegError("--concept follows the phrase's instances and --everything every segment: give one")
    if args.publish or args.ros2:
        from rtseg.output.publish import import_zenoh

        import_zenoh()
    if args.ros2:
        from rtseg.ros2.node import check_node

        check_node(args.ros_namespace)
    # Check everything that can be checked before loading a model or opening a camera.
    sinks: list[Sink] = []
    if args.output:
        sinks.append(VideoSink(args.output, config.output.fps, config.output.codec, config.output.video))
    if args.save_masks:
        sinks.append(MaskSink(args.save_masks))
    if args.save_json:
        sinks.append(JsonlSink(args.save_json))
    if args.save_mcap:
        from rtseg.ros2.bag import McapSink

        sinks.append(McapSink(args.save_mcap, args.ros_namespace, args.mcap_frames))
    if args.rerun or args.rerun_connect or args.rerun_save:
        from rtseg.output.rerun_view import RerunSink

        sinks.append(RerunSink(args.rerun, args.rerun_connect, args.rerun_save))
    if not args.quiet:
        sinks.append(ProgressSink())
    if args.source.lower().startswith("ros2://"):
        from rtseg.ros2.source import open_topic

        source: Source = open_topic(args.source, args.reconnect, args.zenoh_config)
    else:
        source = open_source(args.source, args.reconnect)
    with with_depth(source, args.depth) as src:
        show = src.live and display_available() if args.show is None else args.show
        if show and not display_available():
            raise RtsegError("--show needs a display (DISPLAY is not set); use --output to save the overlay")
        if not objects and not args.everything and not show and not args.publish and not args.ros2:
            raise RtsegError("nothing to track: give --point, --box, --text, --concept, --prompts or --everything "
                             "(or click objects in the --show window, or send them with --publish or --ros2)")
        session = Session.for_prompts(config, objects, everything=args.everything, size=src.size,
                                      trust_weights=args.trust_weights)
        if timeline:
            from rtseg.output.timeline import Timeline

            sinks.append(Timeline(session, timeline))
        if show:
            from rtseg.output.window import Window

            sinks.append(Window(session))
        if args.publish:
            from rtseg.output.publish import Publisher

            sinks.append(Publisher(args.publish, session, args.zenoh_config, args.overlay_hz))
        if args.ros2:
            from rtseg.ros2.node import Ros2Node

            sinks.append(Ros2Node(session, args.ros_namespace, args.zenoh_config, args.overlay_hz))
        summary = run(src, session, sinks, max_frames=args.max_frames)
    if not args.quiet:
        start = "\r" if sys.stderr.isatty() else ""
        print(f"{start}done: {summary.line()}", file=sys.stderr)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from rtseg.batch.manifest import jobs_from_sources, read_manifest
    from rtseg.batch.run import import_ray, markdown, run_batch

    import_ray()  # before anything else: without the extra, one line and exit 2
    config = _config_from_args(args)
    objects = prompts_from_args(args)
    manifest = len(args.inputs) == 1 and Path(args.inputs[0]).suffix.lower() in (".csv", ".jsonl", ".ndjson")
    if manifest:
        if objects or args.everything:
            raise RtsegError("the prompts come from the manifest: drop --point/--box/--text/--prompts/--everything")
        jobs = read_manifest(args.inputs[0])
    else:
        jobs = jobs_from_sources(args.inputs, objects, args.everything)
    if args.workers is not None and args.workers < 1:
        raise RtsegError("--workers must be >= 1")
    if args.gpus_per_worker < 0 or args.max_retries < 0:
        raise RtsegError("--gpus-per-worker and --max-retries must be >= 0")
    extras = frozenset(name for name in ("overlay", "mcap") if getattr(args, name))
    if args.mcap:
        from rtseg.ros2.bag import import_mcap

        import_mcap()
    rows = run_batch(jobs, config, Path(args.out), args.address, args.workers, args.gpus_per_worker, extras,
                     args.resume, args.max_retries, args.quiet, trust_weights=args.trust_weights)
    if not args.quiet:
        print(markdown(rows))
    return 1 if any(r["status"] not in ("done", "skipped") for r in rows) else 0


def cmd_listen(args: argparse.Namespace) -> int:
    from rtseg.remote import listen

    listen(args.key, args.zenoh_config, args.count, args.timeout)
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    from rtseg.prompt.prompts import parse_xy
    from rtseg.remote import send_prompt

    message: dict = {}
    if args.text is not None:
        message["text"] = args.text
    elif args.concept is not None:
        message["concept"] = args.concept
    elif args.point is not None:
        message["point"] = list(parse_xy(args.point, 2, "point"))
    elif args.box is not None:
        message["box"] = list(parse_xy(args.box, 4, "box"))
    elif args.forget is not None:
        message["forget"] = args.forget
    else:
        message["reset"] = True
    if args.neg:
        message["neg"] = [list(parse_xy(n, 2, "negative point")) for n in args.neg]
    answer = send_prompt(args.key, message, args.zenoh_config, args.wait)
    print(json.dumps(answer))
    if answer.get("event") == "error":
        raise RtsegError(f"the tracker refused it: {answer['error']}")
    return 0


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def cmd_bench(args: argparse.Namespace) -> int:
    import shlex

    from rtseg.bench.models import build_architecture
    from rtseg.bench.command import run_bench
    from rtseg.bench.runs import RUNS
    from rtseg.config import load_config, override

    config = load_config(args.config)
    model: dict = {"weights": args.model, "clip": args.clip_model, "device": args.device, "imgsz": args.imgsz,
                   "half": args.half}
    if args.arch:  # random weights score nothing: keep every candidate, as many segments as a real scene
        model.update(weights=build_architecture(args.arch, Path(args.out)), conf=0.0, max_det=20)
    config = override(config, model=model)
    runs = [r for r in args.runs.split(",") if r] if args.runs is not None else list(RUNS)  # "" = only --soak
    if args.arch:
        runs = [r for r in runs if r != "ultralytics-track"]  # random boxes: nothing to track
    if args.forward_ms and args.runs is None:
        runs = [r for r in runs if not r.startswith("ultralytics")]
    run_bench(args.samples, config, runs, args.frames, args.keyframes, Path(args.out), args.export, args.soak,
              args.json, args.quiet, command=" ".join(["rtseg", *map(shlex.quote, args.argv)]), md_path=args.md,
              score=not args.arch or bool(args.segments_from),
              segments_from=load_config(args.segments_from) if args.segments_from else None,
              forward_ms=args.forward_ms or 0.0, device_masks=args.device_masks, trust_weights=args.trust_weights)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from rtseg.config import load_config, override
    from rtseg.web.models import config_names

    paths: list[str | None] = list(args.config or [None])
    configs = {}
    for name, path in zip(config_names(paths), paths):
        configs[name] = override(load_config(path), model={"weights": args.model, "clip": args.clip_model,
                                                           "device": args.device})
    from rtseg.web.server import auth_pairs, serve  # serve imports gradio (an extra) for this command only

    return serve(configs, args.host, args.port, args.max_concurrent, args.max_upload_mb,
                 auth_pairs(args.auth, args.auth_file), args.keep_results, args.max_pixels, args.max_minutes,
                 max_frames=args.max_frames, max_job_minutes=args.max_job_minutes,
                 allowed_hosts=args.allowed_host, upload_quota_mb=args.upload_quota_mb,
                 keep_uploads_min=args.keep_uploads, trust_weights=args.trust_weights)


def cmd_export(args: argparse.Namespace) -> int:
    from rtseg.segment.export import export_model

    print(export_model(args.model, args.format, args.imgsz, args.half, args.out, args.device, args.trust_weights))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rtseg.evaluate import evaluate_folders, format_table

    if args.mot:
        from rtseg.mot import import_trackeval

        import_trackeval()  # without TrackEval: one line saying how to install it, exit 2
    result = evaluate_folders(args.pred_dir, args.gt_dir, skip_ends=not args.all_frames)
    print(format_table(result))
    if args.mot:
        from rtseg.mot import evaluate_mot_folders, format_mot_table

        result["mot"] = evaluate_mot_folders(args.pred_dir, args.gt_dir, args.min_visible)
        print()
        print(format_mot_table([result["mot"]]))
    if args.json:  # NaN (no frame to score an object on) is not JSON: null
        Path(args.json).write_text(json.dumps(_finite(result), indent=1, allow_nan=False) + "\n")
    return 0


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in dicts and lists) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def cmd_synth(args: argparse.Namespace) -> int:
    if args.what == "video":
        from rtseg.synth.video import write_video

        meta = write_video(args.out, args.scenario, args.seed, args.frames, args.size, args.fps,
                           background=args.background, depth=args.depth, colour=args.colour)
        print(f"wrote {args.out}: {meta['frames']} frames, {len(meta['objects'])} objects ({args.scenario})")
    else:
        from rtseg.synth.dataset import write_dataset

        counts = write_dataset(args.out, args.n, args.seed, args.size, args.val_fraction,
                               object_scale=args.object_scale)
        print(f"wrote {args.out}: {counts}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "segmenter":
        from rtseg.train.segmenter import train_segmenter

        result = train_segmenter(args.data, args.out, args.workdir, args.epochs, args.imgsz, args.batch,
                                 args.seed, args.threads)
    elif args.what == "text":
        from rtseg.train.text import train_text_model

        result = train_text_model(args.data, args.out, args.steps, args.batch, args.lr, args.seed, args.threads)
    else:
        from rtseg.config import load_config
        from rtseg.train.quality import measure

        result = measure(args.data, load_config(args.config))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0
