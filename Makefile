# AdaMatting edge pipeline. Every target runs inside .venv, which `make setup` creates.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/adamat
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: setup test demo train bench export-onnx export-trt export-openvino export-coreml clean help

help:
	@echo "make setup   create .venv and install the project (idempotent)"
	@echo "make demo    main job: calibration/validation sets, contact sheet, model alpha on real images"
	@echo "make test    the test suite (what CI runs)"
	@echo "make train   train the mobile model in the background-safe, resumable way (runs/mobile)"
	@echo "make export-onnx  FP32 + INT8 ONNX of weights/mobile.pt with manifests (out/export)"
	@echo "make export-openvino  OpenVINO IR FP32/FP16/INT8/accuracy-controlled INT8 (out/export)"
	@echo "make export-coreml    CoreML .mlpackage FP16/W8/PAL6/W8A8 (out/export; simulated accuracy on Linux)"
	@echo "make export-trt   FP16 + INT8 Q/DQ ONNX for TensorRT (out/export); engines where TensorRT imports,"
	@echo "                  else the trtexec lines and exit 3 (TRT_OPTIONAL=1: warning, exit 0)"
	@echo "make bench   benchmarks (metrics speed, model quality vs closed-form matting)"

setup: $(STAMP)

# Reinstalls only when pyproject.toml changes; a second `make setup` does nothing.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e ".[dev,export,coreml]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(CLI) demo --out $(OUT)/demo

train: $(STAMP)
	$(CLI) train --config mobile --run runs/mobile

export-onnx: $(STAMP)
	$(CLI) export onnx --checkpoint weights/mobile.pt --out $(OUT)/export

export-openvino: $(STAMP)
	$(CLI) export openvino --checkpoint weights/mobile.pt --out $(OUT)/export

export-coreml: $(STAMP)
	$(CLI) export coreml --checkpoint weights/mobile.pt --out $(OUT)/export

export-trt: $(STAMP)
	$(CLI) export trt --checkpoint weights/mobile.pt --out $(OUT)/export

bench: $(STAMP)
	$(PY) -m pytest -q benchmarks --benchmark-enable --benchmark-json=$(OUT)/bench/metrics.json
	$(CLI) eval-real --checkpoint weights/mobile.pt --out $(OUT)/bench

clean:
	rm -rf $(OUT) cache .pytest_cache
