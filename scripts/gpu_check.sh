#!/usr/bin/env bash
# Short GPU measurements for one device call (about 5 minutes), every stage side by side
# with the same machine's CPU: synthesis rate, training steps/s (gpu preset) and extractor
# throughput in torch (CUDA fp32/bf16 vs CPU) and ONNX Runtime (CPU). Needs a carried
# .gpu/ with bsds500/train (photos), zoo/ (a small pre-built zoo) and extractor.pt.
#   OUT=/tmp/out bash scripts/gpu_check.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FPATTR_LOAD_PLUGINS=
OUT=${OUT:-/tmp/gpu-out}; RUN=${RUN:-runs/gpu}; DEVICE=${DEVICE:-cuda}; PRESET=${PRESET:-gpu}
SYNTH_S=${SYNTH_S:-60}; TRAIN_S=${TRAIN_S:-90}; CPU_TRAIN_S=${CPU_TRAIN_S:-30}; W=${W:-6}
mkdir -p "$OUT" "$RUN"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/stages.txt"; }
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c \
  'import torch,sys;print(sys.version);print(torch.__version__, torch.cuda.is_available())') \
  > "$OUT/env.txt" 2>&1
stamp "synth on $DEVICE, $W workers, ${SYNTH_S}s"
timeout -s INT "$SYNTH_S" python3 -m fpattr synth "$RUN/zoo" --models 2000 --images-per-model 16 \
  --size 128 --real .gpu/bsds500/train --workers "$W" --device "$DEVICE" -q \
  > /dev/null 2> "$OUT/synth.log"
stamp "synth models done: $(ls "$RUN"/zoo/*/done.json 2>/dev/null | wc -l)"
for dev in "$DEVICE" cpu; do
  s=$TRAIN_S; [ "$dev" = cpu ] && s=$CPU_TRAIN_S
  stamp "train preset $PRESET on $dev, ${s}s"
  python3 -m fpattr train .gpu/zoo --out "$RUN/train_$dev" --preset "$PRESET" --device "$dev" \
    --set workers="$W" --set max_seconds="$s" --set eval_every=100000 -q \
    > "$OUT/train_$dev.json" 2> "$OUT/train_$dev.log"
  stamp "train $dev exit $?"
done
stamp "torch throughput (shipped extractor)"
python3 benchmarks/bench_torch_cuda.py .gpu/extractor.pt --device "$DEVICE" --seconds 1.5 \
  > "$OUT/torch_$DEVICE.json" 2>&1
python3 benchmarks/bench_torch_cuda.py .gpu/extractor.pt --device cpu --seconds 1.5 \
  --batches 256,1024 > "$OUT/torch_cpu.json" 2>&1
stamp "onnxruntime CPU throughput (models/default.onnx)"
python3 - > "$OUT/ort_cpu.json" 2>&1 <<'PY'
import json, os, time
import numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = os.cpu_count()
s = ort.InferenceSession("models/default.onnx", so, providers=["CPUExecutionProvider"])
inp = s.get_inputs()[0]; rows = []
for b in (64, 256, 1024):
    x = np.random.rand(b, *inp.shape[1:]).astype(np.float32); s.run(None, {inp.name: x})
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 1.5:
        s.run(None, {inp.name: x}); n += b
    rows.append({"batch_views": b, "views_per_s": round(n / (time.perf_counter() - t))})
print(json.dumps({"threads": os.cpu_count(), "ort": ort.__version__, "rows": rows}, indent=1))
PY
stamp "done"
