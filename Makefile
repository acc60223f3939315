# AdaMatting edge pipeline. Every target runs inside .venv, which `make setup` creates.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/adamat
STAMP  := $(VENV)/.installed
LOOPS  := loops
OUT    ?= out
# The model every export, gate and profile target works on, and its own folder of artifacts: the shipped
# model in out/export by default; `make gate WEIGHTS=weights/mobile.pt` exports the second model to every
# target in out/export/mobile and gates it. One model per folder.
DEFAULT_WEIGHTS := weights/mobile-int8.pt
WEIGHTS ?= $(DEFAULT_WEIGHTS)
model_folder = $(OUT)/export$(if $(filter-out $(DEFAULT_WEIGHTS),$(1)),/$(basename $(notdir $(1))))
EXPORT  ?= $(call model_folder,$(WEIGHTS))
VARIANT := weights/mobile.pt

.PHONY: setup loops test demo gate train bench bench-phone bench-bokeh bench-clips bench-baseline profile export-all export-band-refiner export-onnx export-trt export-openvino export-coreml export-executorch export-android verify-arm clean help

help:
	@echo "make setup   create .venv and install the project (idempotent)"
	@echo "make demo    main job: sets and figures, every export possible here, accuracy gates, latency,"
	@echo "             bokeh pipeline timing, reports/<timestamp>/report.md"
	@echo "make gate    export what is missing (reusing up-to-date artifacts), then the accuracy gates of"
	@echo "             benchmarks/gates.toml on every artifact in out/export (exit 1 listing violations)"
	@echo "             (the export, gate and profile targets take WEIGHTS=<checkpoint>: another model, in"
	@echo "             out/export/<its name>; EXPORT=<folder> overrides the folder)"
	@echo "make test    the layer contracts (lint-imports) and the test suite (what CI runs)"
	@echo "make train   continue the default model (mobile-int8, distilled from mobile) in the background-safe,"
	@echo "             resumable way (runs/mobile-int8); adamat ship --run runs/mobile-int8 ships it"
	@echo "make export-onnx  FP32 + INT8 ONNX of weights/mobile-int8.pt with manifests (out/export)"
	@echo "make export-openvino  OpenVINO IR FP32/FP16/INT8/accuracy-controlled INT8 (out/export)"
	@echo "make export-coreml    CoreML .mlpackage FP16/W8/PAL6/W8A8 (out/export; simulated accuracy on Linux)"
	@echo "make export-android   ExecuTorch .pte FP32/INT8 for Android, XNNPACK-delegated (out/export; also"
	@echo "                      make export-executorch)"
	@echo "make export-band-refiner  the band refiner for every target (out/export/band_refiner), each checked"
	@echo "             against PyTorch by its own runtime where it runs here"
	@echo "make export-trt   FP16 + INT8 Q/DQ ONNX for TensorRT (out/export); engines where TensorRT imports,"
	@echo "                  else the trtexec lines and exit 3 (TRT_OPTIONAL=1: warning, exit 0)"
	@echo "make bench   latency of every artifact + runtime stages + metrics (pytest-benchmark), compared with"
	@echo "             this device's baseline; model quality vs closed-form matting"
	@echo "make bench-phone  the phone path: adamat eval on the 12-megapixel set, the real photos (native, 2x, 4x)"
	@echo "             and the held-back split, each model beside the raw mask, a guided filter and closed-form"
	@echo "make bench-bokeh  adamat bokeh on a 12-megapixel photo with each INT8 export of the default model:"
	@echo "             per-stage medians of 5 runs and peak RSS, then warm (the model kept open)"
	@echo "             (benchmarks/measured/bokeh-runs-*.json); a 48 MP photo; a folder of 10 12 MP photos in one"
	@echo "             process against each alone (bokeh-folder-*.json)"
	@echo "make bench-clips  adamat eval clips (temporal coherence) and the clip path's speed at 1080p and 4K"
	@echo "             (benchmarks/measured/clip-quality-*.json, clip-speed-*.json)"
	@echo "make bench-baseline  save this device's latency baseline (benchmarks/baselines/<fingerprint id>/)"
	@echo "make verify-arm  the ONNX and ExecuTorch FP32/INT8 artifacts on Arm CPU kernels under qemu emulation"
	@echo "             (cortex-a76 and max), gated like make gate, and the runtime's loops built and run there"
	@echo "             against x86's; builds .arm/ once (docs/ARM.md)"
	@echo "make profile onnxruntime kernel time of the FP32 and INT8 ONNX by model stage and operator type,"
	@echo "             and int8 vs float kernel time for each of the model's convolution shapes"

setup: $(LOOPS)

# Reinstalls only when pyproject.toml changes; a second `make setup` does nothing.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e ".[dev,export,coreml,android]"
	touch $(STAMP)

# The runtime's per-pixel loops compiled ahead of time (runtime/kernel_build.py): a second run finds them built for
# their source and does nothing; without a C compiler it warns, the runtime compiles them just in time, and the
# next run tries again.
$(LOOPS): $(STAMP)
	$(PY) -m runtime.kernel_build

test: $(LOOPS)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

demo: $(LOOPS)
	$(CLI) demo --out $(OUT)/demo --export-dir $(OUT)/export

gate: $(LOOPS)
	$(CLI) export all --checkpoint $(WEIGHTS) --out $(EXPORT)
	$(CLI) export band-refiner --out $(EXPORT)/band_refiner
	$(CLI) gate --checkpoint $(WEIGHTS) --artifacts $(EXPORT)

export-all: $(LOOPS)
	$(CLI) export all --checkpoint $(WEIGHTS) --out $(EXPORT)
	$(CLI) export band-refiner --out $(EXPORT)/band_refiner

export-band-refiner: $(LOOPS)
	$(CLI) export band-refiner --out $(EXPORT)/band_refiner

train: $(LOOPS)
	$(CLI) train --config mobile-int8 --run-dir runs/mobile-int8 --init $(DEFAULT_WEIGHTS) --teacher $(VARIANT) \
		--crop 256 --lr 3e-4

export-onnx: $(LOOPS)
	$(CLI) export onnx --checkpoint $(WEIGHTS) --out $(EXPORT)

export-openvino: $(LOOPS)
	$(CLI) export openvino --checkpoint $(WEIGHTS) --out $(EXPORT)

export-coreml: $(LOOPS)
	$(CLI) export coreml --checkpoint $(WEIGHTS) --out $(EXPORT)

export-executorch: $(LOOPS)
	$(CLI) export executorch --checkpoint $(WEIGHTS) --out $(EXPORT)

export-android: export-executorch

export-trt: $(LOOPS)
	$(CLI) export trt --checkpoint $(WEIGHTS) --out $(EXPORT)

# Latency against this device's own baseline (benchmarks/baselines/<fingerprint id>/; see README).
bench: $(LOOPS)
	$(CLI) export all --out $(OUT)/export
	mkdir -p $(OUT)/bench
	args="$$($(PY) -m benchmarks.baseline compare)" && ADAMAT_ARTIFACTS=$(OUT)/export $(PY) -m pytest -q benchmarks \
		--benchmark-enable --benchmark-json=$(OUT)/bench/benchmarks.json $$args
	$(CLI) eval-real --checkpoint $(DEFAULT_WEIGHTS) --out $(OUT)/bench
	$(CLI) export all --checkpoint $(VARIANT) --targets onnx openvino --out $(call model_folder,$(VARIANT))
	$(PY) -m benchmarks.model_comparison $(OUT)/export $(call model_folder,$(VARIANT)) --out $(OUT)/bench/model-comparison.json
	$(MAKE) --no-print-directory bench-phone

# The phone path: the 12-megapixel set, the real photos at native resolution and upscaled 2x and 4x (mask
# protocol), the held-back split (trimap protocol): each model beside the raw mask, a guided filter and
# closed-form matting (out/bench/eval-*/eval.md and eval.json); the second model (mobile) beside the default
# on the real photos and the held-back split.
HELD_BACK := GT03 GT15 GT19 GT25
bench-phone: $(LOOPS)
	$(CLI) eval phone --also-unrefined --artifacts $(DEFAULT_WEIGHTS) $(OUT)/export/adamatting_mobile-int8_512x512_openvino_int8.xml --out $(OUT)/bench/eval-phone
	$(CLI) eval real --recipe down8 --also-unrefined --artifacts $(DEFAULT_WEIGHTS) $(VARIANT) --out $(OUT)/bench/eval-real-down8
	$(CLI) eval real --recipe phone --also-unrefined --artifacts $(DEFAULT_WEIGHTS) $(VARIANT) --out $(OUT)/bench/eval-real-phone
	$(CLI) eval real --protocol trimap --images $(HELD_BACK) --also-unrefined --artifacts $(DEFAULT_WEIGHTS) $(VARIANT) \
		--out $(OUT)/bench/eval-heldback-trimap
	$(CLI) eval real-2x --recipe down8 --also-unrefined --out $(OUT)/bench/eval-real-2x
	$(CLI) eval real-2x --recipe phone --also-unrefined --out $(OUT)/bench/eval-real-2x-phone
	$(CLI) eval real-4x --recipe down8 --images $(HELD_BACK) --out $(OUT)/bench/eval-real-4x

# adamat bokeh, whole, on a synthetic 12-megapixel JPEG with a 256-px mask: each INT8 export of the default model,
# one process per run, interleaved; per-stage medians and peak RSS (benchmarks/measured/bokeh-runs-*.json); then
# warm, as an app that keeps the model open renders: 6 renders per process, the medians of the last 5.
CLIP_EXPORT = $(OUT)/export/adamatting_mobile-int8_512x512_openvino_int8.xml
INT8_EXPORTS = $(addprefix $(OUT)/export/adamatting_mobile-int8_512x512_,openvino_int8.xml int8.onnx executorch_int8.pte)
bench-bokeh: $(LOOPS)
	$(CLI) export all --checkpoint $(DEFAULT_WEIGHTS) --targets onnx openvino executorch --out $(OUT)/export
	$(PY) -m benchmarks.bokeh_runs $(INT8_EXPORTS) --runs 5
	$(PY) -m benchmarks.bokeh_runs $(INT8_EXPORTS) --runs 2 --warm 5
	$(PY) -m benchmarks.bokeh_runs $(INT8_EXPORTS) --runs 2 --size 8000 6000
	$(PY) -m benchmarks.folder_runs $(OUT)/export/adamatting_mobile-int8_512x512_int8.onnx --photos 10
	$(PY) -m benchmarks.tile_batching $(addprefix $(OUT)/export/adamatting_mobile-int8_512x512_,openvino_int8.xml int8.onnx)

bench-clips: $(LOOPS)
	$(CLI) export all --checkpoint $(DEFAULT_WEIGHTS) --targets openvino --out $(OUT)/export
	$(CLI) eval clips --artifacts $(CLIP_EXPORT) --out $(OUT)/bench/eval-clips
	$(PY) -m benchmarks.clip_runs $(CLIP_EXPORT) --quality $(OUT)/bench/eval-clips/eval-clips.json
	$(PY) -m benchmarks.clip_runs $(CLIP_EXPORT) --frames 10 --size 2160 3840
	$(PY) -m benchmarks.clip_runs $(CLIP_EXPORT) --hdr

bench-baseline: $(LOOPS)
	$(CLI) export all --out $(OUT)/export
	args="$$($(PY) -m benchmarks.baseline save)" && ADAMAT_ARTIFACTS=$(OUT)/export $(PY) -m pytest -q benchmarks \
		--benchmark-enable $$args

# Where the FP32 and INT8 ONNX spend their time (onnxruntime profiler), what int8 can buy at most, and how
# fast this device's int8 kernels run each of the model's convolution shapes.
profile: $(LOOPS)
	$(CLI) export all --checkpoint $(WEIGHTS) --targets onnx --out $(EXPORT)
	$(PY) -m benchmarks.op_profile $(EXPORT)/adamatting_*_512x512_fp32.onnx $(EXPORT)/adamatting_*_512x512_int8.onnx
	$(PY) -m benchmarks.conv_kernels $(EXPORT)/adamatting_*_512x512_fp32.onnx

# The artifacts on Arm kernels under qemu's aarch64 emulation (docs/ARM.md); .arm/ is built once.
verify-arm: $(LOOPS)
	$(CLI) export all --checkpoint $(WEIGHTS) --targets onnx executorch --out $(EXPORT)
	scripts/verify_arm.sh --artifacts $(EXPORT) --checkpoint $(WEIGHTS) $(ARM_ARGS)
	$(PY) -m benchmarks.arm_loops --arm-dir "$${ARM_DIR:-.arm}" $(ARM_LOOPS_ARGS)

clean:
	rm -rf $(OUT) cache .pytest_cache
