#!/usr/bin/env bash
# The GPU tables of benchmarks/RESULTS.md ("GPU (not measured)") in one go, on a lent GPU machine
# that has Python, PyTorch, OpenCV, NumPy and SciPy but no network, no ffmpeg and none of rtseg's
# other packages. `make gpu-kit` packs what it lacks into .gpu-kit/ (the pure-Python wheels, from
# this machine's venv's versions, and ffmpeg's testsrc2 videos); carry .gpu-kit and run this from the
# repository root:
#
#     OUT=<folder for the results> bash benchmarks/gpu.sh
#
# It writes make demo's scores, each table's JSON and Markdown, and log.txt to $OUT (8 files), the
# most important table first, each step under its own time limit, so whatever ran stays when the
# machine is taken back; all of it stops by TOTAL_S (540 s: under the device tool's 600 s a call).
# Tried with DEVICE=cpu and 5 frames on 2 cores (below): 2 minutes.
# DEVICE (cuda), HALF (--half), FRAMES (300), HD_FRAMES (150) and TOTAL_S can be changed:
# `DEVICE=cpu HALF= FRAMES=5 HD_FRAMES=5` tries the script on a machine without a GPU.
set -uo pipefail
: "${OUT:?set OUT to the folder for the results}"
DEVICE=${DEVICE:-cuda} HALF=${HALF---half} FRAMES=${FRAMES:-300} HD_FRAMES=${HD_FRAMES:-150} TOTAL_S=${TOTAL_S:-540}
KIT=${KIT:-.gpu-kit}
WORK=${WORK:-/tmp/rtseg-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1

step() { echo "== $(date -u +%T) $*"; }
started=$SECONDS

step "install rtseg's packages from $KIT/whl"
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" "$KIT"/whl/*.whl \
    || exit 1
export PYTHONPATH="$WORK/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export YOLO_CONFIG_DIR="$WORK/ultralytics" MPLCONFIGDIR="$WORK/matplotlib"
rtseg() { $PY -m rtseg.cli "$@"; }
$PY - <<'EOF' || exit 1
import platform, torch, cv2, ultralytics, supervision, open_clip
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "opencv", cv2.__version__, "ultralytics", ultralytics.__version__, "supervision", supervision.__version__)
for i in range(torch.cuda.device_count()):
    print("gpu", i, torch.cuda.get_device_name(i))
print("cpu cores", __import__("os").cpu_count())
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv

step "make the synthetic samples (in the background, all at once, beside the demo run)"
S=$WORK/samples
rtseg synth video "$S/crowd" --scenario crowd --seed 11 >/dev/null &
crowd=$!
hd=()
for z in 1920x1080 3840x2160; do
    for s in showcase crowd; do
        [ "$s-$z" = showcase-3840x2160 ] && continue
        rtseg synth video "$S/$s-$z" --scenario "$s" --seed 11 --size "$z" --frames "$HD_FRAMES" >/dev/null &
        hd+=($!)
    done
done

limit() {  # the step's own limit, or what is left of TOTAL_S if less
    local left=$((TOTAL_S - SECONDS + started))
    echo $(($1 < left ? $1 : left))
}

bench() {  # LIMIT_S NAME ARGS...: one table, its JSON and Markdown in $OUT
    local limit name=$2
    limit=$(limit "$1"); shift 2
    [ "$limit" -gt 10 ] || { step "no time left for $name"; return; }
    step "bench $name (at most ${limit} s)"
    timeout "$limit" $PY -m rtseg.cli bench "$@" --device "$DEVICE" $HALF --out "$WORK/runs-$name" \
        --json "$OUT/$name.json" --md "$OUT/$name.md" --quiet
    echo "-- $name: exit $? after $((SECONDS - started)) s in all"
}

step "make demo's run on $DEVICE (quality as on the CPU? make demo: J&F 0.905, J 0.892)"
timeout "$(limit 90)" $PY -m rtseg.cli track samples/showcase/video.mp4 --config configs/demo.yaml --device "$DEVICE" \
    --prompts samples/showcase/prompts.yaml --no-show --quiet --output "$WORK/demo/overlay.mp4" \
    --save-masks "$WORK/demo/masks" --save-json "$WORK/demo/tracks.jsonl" \
    && $PY -m rtseg.cli eval "$WORK/demo/masks" samples/showcase/gt --json "$OUT/demo-scores.json"
echo "-- demo: exit $? after $((SECONDS - started)) s in all"

wait $crowd "${hd[@]}"  # no bench beside them: they would take its CPU
bench 200 fastsam-s-640-gpu samples/showcase "$S/crowd" --arch s --segments-from configs/demo.yaml \
    --frames "$FRAMES" --runs forward,track-point,track-text,keyframes-point,live,ultralytics-point,ultralytics-text
bench 200 hd-gpu "$S/showcase-1920x1080" "$S/crowd-1920x1080" "$S/crowd-3840x2160" \
    --frames "$HD_FRAMES" --runs forward,track-point,everything,live
bench 120 hd-testsrc2-gpu "$KIT/testsrc2-1920x1080.mp4" "$KIT/testsrc2-3840x2160.mp4" \
    --frames "$HD_FRAMES" --runs forward,everything
step "done after $((SECONDS - started)) s"
