"""The ``rtseg`` command line's arguments: one sub-parser per command."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


class _ObjectAction(argparse.Action):
    """Collects --point/--box/--text/--concept/--neg in command-line order into ``namespace.objects``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        objects = getattr(namespace, "objects", None) or []
        objects.append((self.dest, values))
        namespace.objects = objects


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 32 or h < 32:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None


def _size_or_full(text: str) -> str:
    """``WxH`` as the config writes it, or ``""`` for ``full`` (the frame's size)."""
    return "" if text.lower() == "full" else "{}x{}".format(*_size(text))


TRUST_HELP = ("load a .pt model even where it can run code (a pickle may; by default such a file is refused): "
              "only for files you trust")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (configs/*.yaml); options below override it")
    p.add_argument("--model", help="fastsam-s, fastsam-x, or a FastSAM .pt / exported model path")
    p.add_argument("--trust-weights", action="store_true", help=TRUST_HELP)
    p.add_argument("--clip-model", help="open_clip NAME[:PRETRAINED] for text prompts")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--imgsz", type=int, help="inference size (multiple of 32)")
    p.add_argument("--conf", type=float, help="least segment confidence")
    p.add_argument("--keyframes", type=int, metavar="K",
                   help="segment every K-th frame at most, carry the objects in between (1: every frame)")


def _prompt_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--point", dest="point", action=_ObjectAction, metavar="X,Y", help="a new object at this pixel")
    p.add_argument("--neg", dest="neg", action=_ObjectAction, metavar="X,Y",
                   help="a negative point for the object started just before")
    p.add_argument("--box", dest="box", action=_ObjectAction, metavar="X1,Y1,X2,Y2", help="a new object in this box")
    p.add_argument("--text", dest="text", action=_ObjectAction, metavar="TEXT",
                   help='a new object by text, e.g. "the red circle"')
    p.add_argument("--concept", dest="concept", action=_ObjectAction, metavar="PHRASE",
                   help='every instance of a phrase, each an object with its own id (repeatable), '
                        'e.g. "the red circle"')
    p.add_argument("--prompts", help="YAML file of objects (points, neg, box, text, concept), added after the options")
    p.add_argument("--everything", action="store_true", help="follow every segment, each with its own id")
    p.set_defaults(objects=[])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtseg", description="Real-time prompted video segmentation and tracking (FastSAM).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("track", help="segment and follow prompted objects in a video, camera or stream")
    t.add_argument("source", help="camera index (0), video file, image folder, image, rtsp/http URL, or a ROS 2 "
                                  "image topic (ros2:///camera/image_raw)")
    _model_options(t)
    _prompt_options(t)
    t.add_argument("--depth", metavar="SOURCE", help="depth beside the colour frames: a folder of 16-bit PNGs in "
                   "depth units (mm by default), one per frame; objects get 3D centroids (config: camera)")
    t.add_argument("--output", help="overlay video to write (.mp4)")
    t.add_argument("--save-masks", metavar="DIR", help="indexed PNG per frame, DIR/%%05d.png, pixel = track id")
    t.add_argument("--save-json", metavar="FILE", help="one JSON line per frame")
    t.add_argument("--save-mcap", metavar="FILE", help="the run as a ROS 2 bag in MCAP (detections, mask images, "
                   "3D objects under /NS/...), for Foxglove, ros2 bag or rosbags")
    t.add_argument("--mcap-frames", action="store_true", help="also record the source frames (JPEG) in --save-mcap")
    t.add_argument("--rerun", action="store_true", help="show the run in a Rerun viewer started for it")
    t.add_argument("--rerun-connect", metavar="ADDR", help="send the run to a Rerun viewer that runs (HOST:PORT)")
    t.add_argument("--rerun-save", metavar="FILE", help="save the run as a Rerun recording (.rrd)")
    t.add_argument("--ros2", action="store_true",
                   help="be a ROS 2 node on rmw_zenoh (no ROS install needed): NS/rtseg/detections, mask_image, "
                        "result_image, objects_3d; prompts on NS/rtseg/prompts (std_msgs/String); ROS_DOMAIN_ID")
    t.add_argument("--ros-namespace", default="/", metavar="NS",
                   help="the ROS 2 namespace of the node and of --save-mcap's topics (default /: /rtseg/detections)")
    show = t.add_mutually_exclusive_group()
    show.add_argument("--show", dest="show", action="store_true", default=None, help="open a live window")
    show.add_argument("--no-show", dest="show", action="store_false", help="no window")
    t.add_argument("--window-size", type=_size, metavar="WxH",
                   help="the window shows larger frames scaled down to fit this (default 1280x720; config: "
                        "output.window_size); clicks are mapped back to the frame's pixels")
    t.add_argument("--output-size", type=_size_or_full, metavar="WxH",
                   help="the overlay video (--output) scales larger frames down to fit this (default 1920x1080; "
                        "config: output.video_size; 'full': the frame's size); masks and JSON keep the frame's size")
    t.add_argument("--max-frames", type=int, help="stop after this many frames")
    t.add_argument("--reconnect", type=float, metavar="SECONDS",
                   help="reopen a camera or stream that drops, for up to this long (default 30; 0: stop at once)")
    t.add_argument("--quiet", action="store_true", help="no progress line")
    t.add_argument("--publish", metavar="KEY", help="publish each frame on Zenoh under KEY (KEY/objects, KEY/mask, "
                                                    "KEY/overlay) and take prompts on KEY/prompts")
    t.add_argument("--zenoh-config", metavar="FILE", help="a Zenoh config file (default: peer to peer on this machine)")
    t.add_argument("--overlay-hz", type=float, default=5.0, metavar="F",
                   help="most overlay JPEGs a second on KEY/overlay (default 5; 0: none)")

    li = sub.add_parser("listen", help="print what rtseg track --publish KEY publishes, a line a frame")
    li.add_argument("key")
    li.add_argument("--zenoh-config", metavar="FILE")
    li.add_argument("--count", type=int, metavar="N", help="stop after N frames")
    li.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")

    pr = sub.add_parser("prompt", help="send a prompt to a running rtseg track --publish KEY")
    pr.add_argument("key")
    what = pr.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help='a new object by text, e.g. "the red cup"')
    what.add_argument("--concept", metavar="PHRASE", help='every instance of a phrase, e.g. "the red cup"')
    what.add_argument("--point", metavar="X,Y", help="a new object at this pixel")
    what.add_argument("--box", metavar="X1,Y1,X2,Y2", help="a new object in this box")
    what.add_argument("--forget", type=int, metavar="ID", help="stop following object ID")
    what.add_argument("--reset", action="store_true", help="forget every object")
    pr.add_argument("--neg", action="append", default=[], metavar="X,Y", help="a negative point for the new object")
    pr.add_argument("--zenoh-config", metavar="FILE")
    pr.add_argument("--wait", type=float, default=5.0, metavar="S", help="how long to wait for the answer (default 5)")

    bt = sub.add_parser("batch", help="track many videos at once, on this machine or a Ray cluster")
    bt.add_argument("inputs", nargs="+", metavar="MANIFEST | VIDEO",
                    help="a manifest (.csv or .jsonl: source, prompts, gt, id per row), or videos sharing the "
                         "prompts given below")
    bt.add_argument("--out", required=True, metavar="DIR", help="DIR/<id>/ per video, and DIR/summary.csv")
    _model_options(bt)
    _prompt_options(bt)
    bt.add_argument("--address", help="a running Ray cluster: auto or ray://host:port (default: start one here)")
    bt.add_argument("--workers", type=int, metavar="N", help="videos at once (default: this machine's cores)")
    bt.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                    help="GPUs each worker takes, e.g. 0.25 for four FastSAM-s workers a GPU (default 0)")
    bt.add_argument("--overlay", action="store_true", help="also write DIR/<id>/overlay.mp4")
    bt.add_argument("--mcap", action="store_true", help="also write DIR/<id>/run.mcap, a ROS 2 bag (see --save-mcap)")
    bt.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                    help="skip the videos whose results are complete and up to date (default: on)")
    bt.add_argument("--max-retries", type=int, default=2, metavar="N",
                    help="times a video is tried again when its worker dies (default 2)")
    bt.add_argument("--quiet", action="store_true", help="no progress and no table")

    w = sub.add_parser("web", help="the browser app on localhost: upload or webcam, click objects, run, download")
    w.add_argument("--config", action="append", metavar="FILE",
                   help="YAML config (configs/*.yaml); give several to choose between them in the page")
    w.add_argument("--model", help="override the configs' model: fastsam-s, fastsam-x or a FastSAM .pt path")
    w.add_argument("--trust-weights", action="store_true", help=TRUST_HELP)
    w.add_argument("--clip-model", help="override the configs' open_clip NAME[:PRETRAINED] for text prompts")
    w.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    w.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    w.add_argument("--port", type=int, default=7860)
    w.add_argument("--max-concurrent", type=int, default=1, metavar="N", help="runs at once (default 1)")
    w.add_argument("--max-upload-mb", type=float, default=200, metavar="N", help="largest upload (default 200)")
    w.add_argument("--max-pixels", type=int, default=3840 * 2160, metavar="N",
                   help="largest frame of an upload, width x height (default 3840*2160)")
    w.add_argument("--max-minutes", type=float, default=30, metavar="M", help="longest video upload (default 30)")
    w.add_argument("--max-frames", type=int, metavar="N",
                   help="a run stops after this many decoded frames, whatever the file's header claims (default: "
                        "--max-minutes at 30 fps, 54000 frames: not at the file's own frame rate, which can lie)")
    w.add_argument("--max-job-minutes", type=float, default=10, metavar="M",
                   help="a run stops after this much wall time (default 10)")
    w.add_argument("--keep-results", type=float, default=24, metavar="HOURS",
                   help="sessions' results older than this are deleted (default 24)")
    w.add_argument("--auth", action="append", metavar="USER:PASSWORD", help="a login (repeatable)")
    w.add_argument("--auth-file", metavar="FILE", help="logins, one user:password a line")
    w.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a host name the page is opened by, besides loopback and --host (repeatable)")
    w.add_argument("--upload-quota-mb", type=float, metavar="N",
                   help="space all uploads may take at once (default 10 x --max-upload-mb)")
    w.add_argument("--keep-uploads", type=float, default=60, metavar="MINUTES",
                   help="uploads older than this are deleted when the quota is checked; a session keeps "
                        "the one it took (default 60)")

    x = sub.add_parser("export", help="export a FastSAM model (onnx, openvino, engine) for rtseg track --model")
    x.add_argument("model", help="fastsam-s, fastsam-x or a FastSAM .pt")
    x.add_argument("--trust-weights", action="store_true", help=TRUST_HELP)
    x.add_argument("--format", default="onnx", choices=["onnx", "openvino", "engine"])
    x.add_argument("--imgsz", type=int, default=640)
    x.add_argument("--half", action="store_true", help="fp16 weights (engine, openvino)")
    x.add_argument("--device", default="cpu")
    x.add_argument("--out", help="where to put the exported model (default: beside the .pt)")

    b = sub.add_parser("bench", help="time rtseg against the bare model and ultralytics on the same frames")
    b.add_argument("samples", nargs="+", help="sample folders (video.mp4, gt/, objects.json) or videos")
    b.add_argument("--config", default="configs/demo.yaml", help="YAML config (default: the demo models)")
    b.add_argument("--model", help="fastsam-s, fastsam-x, a FastSAM .pt / exported model")
    b.add_argument("--trust-weights", action="store_true", help=TRUST_HELP)
    b.add_argument("--arch", choices=["s", "x"], help="untrained FastSAM-s/-x architecture (timing only; no J)")
    b.add_argument("--segments-from", metavar="CONFIG",
                   help="with --arch: rtseg's runs take this config's model's segments (J is scored) at the "
                        "architecture's cost")
    b.add_argument("--forward-ms", type=float, metavar="MS",
                   help="the model's forward replaced by a wait of MS ms that leaves the CPU free, as a GPU's "
                        "does (its segments computed before timing): what rtseg's own work allows beside an "
                        "accelerator of that speed (rtseg's runs only)")
    b.add_argument("--device-masks", action="store_true",
                   help="with --forward-ms: the reported objects' full-size masks and edge refinement made "
                        "before timing too, as a GPU makes them beside its forward (their CPU cost left out)")
    b.add_argument("--clip-model", help="open_clip NAME[:PRETRAINED]")
    b.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    b.add_argument("--imgsz", type=int, help="inference size (multiple of 32)")
    b.add_argument("--half", action="store_true", default=None, help="fp16 (CUDA)")
    b.add_argument("--frames", type=int, default=150, help="frames of each sample (default 150)")
    b.add_argument("--keyframes", type=int, default=4, help="K of the keyframes-* runs (default 4)")
    b.add_argument("--runs", help="comma-separated subset of: forward, track-KIND, keyframes-KIND, ultralytics-KIND, "
                                  "ultralytics-track, live (KIND: point, box, text; default: all of these); "
                                  "also everything, ultralytics-track-bytetrack, ultralytics-track-botsort "
                                  "(no prompt; scored by MOT metrics, with TrackEval)")
    b.add_argument("--export", choices=["onnx", "openvino", "engine"], help="also time the model exported to this")
    b.add_argument("--soak", type=int, default=0, metavar="N", help="also run N frames and report memory growth")
    b.add_argument("--out", default="out/bench", help="folder for the runs' outputs (default out/bench)")
    b.add_argument("--json", help="write the report to this JSON file")
    b.add_argument("--md", help="write the report as Markdown tables to this file")
    b.add_argument("--quiet", action="store_true")

    e = sub.add_parser("eval", help="DAVIS J, F, J&F, recall and decay of a mask folder against ground truth")
    e.add_argument("pred_dir")
    e.add_argument("gt_dir")
    e.add_argument("--json", help="also write the scores to this JSON file")
    e.add_argument("--all-frames", action="store_true", help="score the first and last frames too")
    e.add_argument("--mot", action="store_true", help="also HOTA (DetA, AssA), IDF1, MOTA and ID switches by "
                   "mask IoU, with TrackEval (pip install 'trackeval>=1.3,<2'); any ids, e.g. --everything runs")
    e.add_argument("--min-visible", type=float, default=0.0, metavar="F",
                   help="with --mot: ignore an object in a frame where it shows under F of its largest area (MOT17)")

    s = sub.add_parser("synth", help="make synthetic shapes-world videos or training data")
    ssub = s.add_subparsers(dest="what", required=True, parser_class=_Parser)
    sv_ = ssub.add_parser("video", help="one video with DAVIS ground truth and first-frame prompts")
    sv_.add_argument("out")
    from rtseg.synth.video import SCENARIOS

    sv_.add_argument("--scenario", default="showcase", choices=SCENARIOS)
    sv_.add_argument("--seed", type=int, default=0)
    sv_.add_argument("--frames", type=int)
    sv_.add_argument("--size", type=_size, default=(640, 480))
    sv_.add_argument("--fps", type=float, default=30.0)
    sv_.add_argument("--depth", action="store_true",
                     help="also depth/%%05d.png (16-bit mm), the camera intrinsics and the true 3D centroids")
    from rtseg.synth.world import BACKGROUNDS, COLOURS

    sv_.add_argument("--background", choices=BACKGROUNDS, help="the background kind (default: drawn by the seed)")
    sv_.add_argument("--colour", choices=COLOURS, help="object 1's colour in the lone and pair scenarios")
    sd = ssub.add_parser("dataset", help="YOLO-seg images and labels plus captioned masked crops")
    sd.add_argument("out")
    sd.add_argument("--n", type=int, default=2000)
    sd.add_argument("--seed", type=int, default=0)
    sd.add_argument("--size", type=_size, default=(320, 240))
    sd.add_argument("--object-scale", type=float, help="object size relative to a 640x480 frame (default: image size)")
    sd.add_argument("--val-fraction", type=float, default=0.1)

    tr = sub.add_parser("train", help="rebuild the bundled shapes-world models from scratch")
    tsub = tr.add_subparsers(dest="what", required=True, parser_class=_Parser)
    ts = tsub.add_parser("segmenter", help="YOLOv8-seg, one class, FastSAM format")
    ts.add_argument("data", help="data.yaml from 'rtseg synth dataset'")
    ts.add_argument("out", help="checkpoint to write (.pt)")
    ts.add_argument("--epochs", type=int, default=12)
    ts.add_argument("--imgsz", type=int, default=320)
    ts.add_argument("--batch", type=int, default=16)
    ts.add_argument("--seed", type=int, default=0)
    ts.add_argument("--threads", type=int, default=2)
    ts.add_argument("--workdir", default="runs/train")
    tt = tsub.add_parser("text", help="tiny open_clip model on the captioned crops")
    tt.add_argument("data", help="dataset folder from 'rtseg synth dataset' (crops.jsonl)")
    tt.add_argument("out", help="weights to write (.pt)")
    tt.add_argument("--steps", type=int, default=2000)
    tt.add_argument("--batch", type=int, default=128)
    tt.add_argument("--lr", type=float, default=2e-3)
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--threads", type=int, default=2)
    tq = tsub.add_parser("check", help="measure the models' quality on held-out scenes")
    tq.add_argument("data", help="held-out dataset folder from 'rtseg synth dataset'")
    tq.add_argument("--config", default="configs/demo.yaml")
    tq.add_argument("--json", help="write the metrics to this JSON file")
    return parser
