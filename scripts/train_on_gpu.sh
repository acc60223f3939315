#!/usr/bin/env bash
# Turn MINUTES on a machine with NVIDIA GPUs into a better checkpoint, evaluated through the product path.
#
#   scripts/train_on_gpu.sh OUTDIR MINUTES [more adamat train options]
#
# On a fresh Linux machine with the package registries: creates .venv (make setup; on Linux x86_64 PyPI's
# torch 2.13.0 wheel is the CUDA build), checks CUDA, continues weights/mobile.pt with the model card's recipe
# on every GPU (one process per GPU, torchrun's engine; the cores feed them as data workers), stops before the
# budget, ships the weight average and evaluates it on the held-back split through runtime.Matter (trimap and
# mask protocols, beside the shipped model). OUTDIR gets: run/ (last.pt, best.pt, log.csv, curves.png),
# candidate.pt, eval-trimap/ and eval-mask/ (eval.json, eval.md), throughput.json and script.log.
#
# MINUTES covers everything after the venv: training gets what is left once EVAL_MINUTES (default 3) are kept
# for shipping and evaluating. Environment: PYTHON (an existing interpreter with the project installed: skips
# the venv), ALLOW_CPU=1 (run on the CPU when there is no CUDA: a smoke test of this script), STEPS (the
# cosine schedule's length, default 3000), BATCH (per GPU, default 16), LR (default 5e-4).
# Ship the result with: cp OUTDIR/candidate.pt weights/mobile.pt (after reading OUTDIR/eval-*/eval.md).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: scripts/train_on_gpu.sh OUTDIR MINUTES [adamat train options]" >&2
  exit 2
fi
OUT=$1; MINUTES=$2; shift 2
if ! [[ $MINUTES =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "error: MINUTES must be a positive number, got '$MINUTES'" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/script.log") 2>&1

if [ -z "${PYTHON:-}" ]; then
  make setup
  PYTHON=.venv/bin/python
fi
START=$SECONDS

read -r DEVICES GPUS < <("$PYTHON" -c '
import torch
n = torch.cuda.device_count()
print("cuda" if n else "cpu", max(n, 1))
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs:",
      [torch.cuda.get_device_name(i) for i in range(n)], file=__import__("sys").stderr)')
if [ "$DEVICES" = cpu ] && [ "${ALLOW_CPU:-0}" != 1 ]; then
  echo "error: no CUDA device visible to torch (nvidia-smi, the driver, CUDA_VISIBLE_DEVICES); ALLOW_CPU=1 runs on the CPU" >&2
  exit 2
fi

EVAL_MINUTES=${EVAL_MINUTES:-3}
TRAIN_MINUTES=$("$PYTHON" -c "print(max(0.5, $MINUTES - $EVAL_MINUTES - ($SECONDS - $START) / 60))")
echo "== training on $GPUS $DEVICES process(es) for $TRAIN_MINUTES min"
"$PYTHON" -m adamat.cli train --nproc "$GPUS" --device "$DEVICES" --run-dir "$OUT/run" --config mobile \
  --init weights/mobile.pt --minutes "$TRAIN_MINUTES" --steps "${STEPS:-3000}" --batch "${BATCH:-16}" \
  --lr "${LR:-5e-4}" --warmup 50 --photo-fraction 0.5 --val-every 200 "$@"

echo "== throughput"
"$PYTHON" - "$OUT" "$GPUS" "${BATCH:-16}" "$DEVICES" <<'EOF'
import csv, json, sys
out, procs, batch, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = [r for r in csv.DictReader(open(f"{out}/run/log.csv")) if r.get("loss")]
t = [float(r["elapsed_s"]) for r in rows]
steps = len(rows) - 1
seconds = t[-1] - t[0] if steps > 0 else float("nan")
result = {"device": device, "processes": procs, "batch_per_process": batch, "steps": len(rows),
          "steps_per_s": steps / seconds if steps > 0 else None,
          "samples_per_s": steps * batch * procs / seconds if steps > 0 else None,
          "note": "from log.csv: steps after the first, validation time included"}
json.dump(result, open(f"{out}/throughput.json", "w"), indent=1)
print(json.dumps(result))
EOF

echo "== ship and evaluate"
"$PYTHON" -m adamat.cli ship --run-dir "$OUT/run" --out "$OUT/candidate.pt"
if [ -d "${ADAMATTING_SHARED_DATA:-../shared/data}" ]; then
  "$PYTHON" -m adamat.cli eval real --protocol trimap --images GT03 GT15 GT19 GT25 \
    --artifacts weights/mobile.pt "$OUT/candidate.pt" --baselines --out "$OUT/eval-trimap"
  "$PYTHON" -m adamat.cli eval real --protocol mask --recipe down8 --images GT03 GT15 GT19 GT25 \
    --artifacts weights/mobile.pt "$OUT/candidate.pt" --baselines --out "$OUT/eval-mask"
else
  echo "note: no real photos with ground truth here (../shared/data): not evaluated" >&2
fi
echo "== done in $(( (SECONDS - START) / 60 )) min: $OUT"
