# rtseg: `make demo` runs the bundled sample, `make test` runs the tests. Both set everything up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/demo
TORCH := torch==2.14.1 torchvision==0.29.1
# ultralytics and matplotlib keep their settings here, not in the home folder
export YOLO_CONFIG_DIR ?= $(CURDIR)/.cache/ultralytics
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
# Playwright drives the system Chromium (apt-get install chromium); it never downloads a browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup demo web test test-stress lint bench bench-hd bench-batch gpu-kit models samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/rtseg track samples/showcase/video.mp4 --config configs/demo.yaml \
		--prompts samples/showcase/prompts.yaml --no-show \
		--output $(OUT)/overlay.mp4 --save-masks $(OUT)/masks --save-json $(OUT)/tracks.jsonl
	$(BIN)/rtseg eval $(OUT)/masks samples/showcase/gt --json $(OUT)/scores.json
	@echo "overlay: $(OUT)/overlay.mp4  masks: $(OUT)/masks/  records: $(OUT)/tracks.jsonl"

# The browser app on http://127.0.0.1:7860 with the bundled models (Ctrl-C stops it).
web: setup
	$(BIN)/rtseg web --config configs/demo.yaml

# The tests in TEST_WORKERS processes (pytest-xdist), a file's tests in one of them (they share its
# fixtures: one model load, one run read by many tests); PYTEST_ARGS: more options (.ci/run adds
# --durations=30). TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

# The whole CI run three times in a row on fresh clones of HEAD, every core kept busy (.ci/stress).
test-stress:
	bash .ci/stress

lint: setup
	$(BIN)/pip install -q ruff mypy
	$(BIN)/ruff check rtseg tests
	$(BIN)/mypy

# Speed and quality against the bare model and ultralytics, in one run (7-20 minutes on 2 CPU
# cores): the showcase plus six scenario videos; results in benchmarks/ (see benchmarks/RESULTS.md).
BENCH_SAMPLES := occlusion crossing fast exit shake crowd
bench: setup
	for s in $(BENCH_SAMPLES); do $(BIN)/rtseg synth video out/samples/$$s --scenario $$s --seed 11 >/dev/null; done
	$(BIN)/rtseg bench samples/showcase $(addprefix out/samples/,$(BENCH_SAMPLES)) --frames 300 --export onnx \
		--out out/bench --json benchmarks/demo-cpu.json --md benchmarks/demo-cpu.md

# Camera resolutions (#15): the showcase and the crowd at 1280x720 and 1920x1080, the crowd at 3840x2160,
# against the bare forward in one run (about 15 minutes); --everything on ffmpeg's testsrc2 at 1080p and 4K
# (about 5; needs ffmpeg); then 2,000 frames at 3840x2160 for memory (about 15).
HD_SAMPLES := $(foreach z,1280x720 1920x1080,out/samples-hd/showcase-$(z) out/samples-hd/crowd-$(z)) out/samples-hd/crowd-3840x2160
bench-hd: setup
	for z in 1280x720 1920x1080 3840x2160; do for s in showcase crowd; do \
		$(BIN)/rtseg synth video out/samples-hd/$$s-$$z --scenario $$s --seed 11 --size $$z --frames 150 >/dev/null; done; done
	$(BIN)/rtseg bench $(HD_SAMPLES) --frames 150 --runs forward,track-point,track-box,everything,live \
		--out out/bench-hd --json benchmarks/hd-cpu.json --md benchmarks/hd-cpu.md
	@command -v ffmpeg >/dev/null || { echo "bench-hd: ffmpeg is missing (it makes the testsrc2 videos): apt install ffmpeg"; exit 1; }
	for z in 1920x1080 3840x2160; do ffmpeg -v error -y -f lavfi -i testsrc2=size=$$z:rate=30 -frames:v 150 \
		-pix_fmt yuv420p out/samples-hd/testsrc2-$$z.mp4; done  # 9-12 segments a frame, most of them large
	$(BIN)/rtseg bench out/samples-hd/testsrc2-1920x1080.mp4 out/samples-hd/testsrc2-3840x2160.mp4 --frames 150 \
		--runs forward,everything --out out/bench-hd --json benchmarks/hd-testsrc2-cpu.json --md benchmarks/hd-testsrc2-cpu.md
	$(BIN)/rtseg bench out/samples-hd/crowd-3840x2160 --frames 60 --runs forward --soak 2000 \
		--out out/bench-4k --json benchmarks/soak-4k-cpu.json --md benchmarks/soak-4k-cpu.md

# What benchmarks/gpu.sh needs on a lent GPU machine (Python 3.12, PyTorch, OpenCV, NumPy, SciPy; no
# network, no ffmpeg): rtseg's other packages as wheels at this venv's versions, and the testsrc2 videos.
GPU_WHEELS := ultralytics ultralytics-thop ultralytics-platform supervision pydeprecate defusedxml \
	open_clip_torch ftfy wcwidth trackeval
gpu-kit: setup
	@command -v ffmpeg >/dev/null || { echo "gpu-kit: ffmpeg is missing (it makes the testsrc2 videos): apt install ffmpeg"; exit 1; }
	rm -rf .gpu-kit && mkdir -p .gpu-kit/whl
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux2014_x86_64 -d .gpu-kit/whl $$($(BIN)/python -c "import importlib.metadata as m, sys; \
		print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))" $(GPU_WHEELS))
	for z in 1920x1080 3840x2160; do ffmpeg -v error -y -f lavfi -i testsrc2=size=$$z:rate=30 -frames:v 150 \
		-pix_fmt yuv420p .gpu-kit/testsrc2-$$z.mp4; done
	@du -sh .gpu-kit

# rtseg batch with 1 and 2 workers over the same 8 videos (about 5 minutes), and the cost of starting Ray.
bench-batch: setup
	$(BIN)/python benchmarks/batch_throughput.py --videos 8 --frames 150 --json benchmarks/batch-cpu.json

# Rebuild the bundled models from scratch and measure them (about 15 + 15 minutes on 2 CPU cores).
models: setup
	$(BIN)/rtseg synth dataset data/shapes-train --n 2000 --seed 0 --size 320x240 --object-scale 1.0
	$(BIN)/rtseg synth dataset data/shapes-holdout --n 300 --seed 1000 --size 640x480 --val-fraction 1.0
	$(BIN)/rtseg train segmenter data/shapes-train/data.yaml samples/models/shapes-seg.pt --epochs 12 --seed 0 --workdir data/runs
	$(BIN)/rtseg train text data/shapes-train samples/models/shapes-clip.pt --steps 2000 --seed 0
	$(BIN)/rtseg train check data/shapes-holdout --config configs/demo.yaml --json samples/models/quality.json

samples: setup
	$(BIN)/rtseg synth video samples/showcase --scenario showcase --seed 7
	$(BIN)/rtseg synth video samples/concept --scenario concept --seed 7 --frames 150

clean:
	rm -rf out data runs .pytest_cache
