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

.PHONY: setup demo web test lint bench bench-hd bench-batch models samples clean

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

test: setup
	$(BIN)/python -m pytest -q

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
# against the bare forward in one run (about 15 minutes); then 2,000 frames at 3840x2160 for memory (about 15).
HD_SAMPLES := $(foreach z,1280x720 1920x1080,out/samples-hd/showcase-$(z) out/samples-hd/crowd-$(z)) out/samples-hd/crowd-3840x2160
bench-hd: setup
	for z in 1280x720 1920x1080 3840x2160; do for s in showcase crowd; do \
		$(BIN)/rtseg synth video out/samples-hd/$$s-$$z --scenario $$s --seed 11 --size $$z --frames 150 >/dev/null; done; done
	$(BIN)/rtseg bench $(HD_SAMPLES) --frames 150 --runs forward,track-point,track-box,everything,live \
		--out out/bench-hd --json benchmarks/hd-cpu.json --md benchmarks/hd-cpu.md
	$(BIN)/rtseg bench out/samples-hd/crowd-3840x2160 --frames 60 --runs forward --soak 2000 \
		--out out/bench-4k --json benchmarks/soak-4k-cpu.json --md benchmarks/soak-4k-cpu.md

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

clean:
	rm -rf out data runs .pytest_cache
