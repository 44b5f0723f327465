#!/usr/bin/env bash
# One call on a lent GPU machine: the real-generator benchmark (background), a synthetic
# zoo, the extractor trained on it, and torch-CUDA throughput. Results land in $OUT.
# Time budgets keep it inside one 10-minute device call; every stage is resumable.
#   REAL=.gpu/bsds500/train OUT=/tmp/out bash scripts/gpu_run.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FPATTR_LOAD_PLUGINS=
OUT=${OUT:-/tmp/gpu-out}; REAL=${REAL:-.gpu/bsds500/train}; RUN=${RUN:-runs/gpu}
MODELS=${MODELS:-1500}; IMAGES=${IMAGES:-24}; SIZE=${SIZE:-128}
SYNTH_S=${SYNTH_S:-210}; TRAIN_S=${TRAIN_S:-210}; SYNTH_W=${SYNTH_W:-11}; DATA_W=${DATA_W:-11}
BENCH_SCALE=${BENCH_SCALE:-3}; BENCH_S=${BENCH_S:-300}; DEVICE=${DEVICE:-cuda}; PRESET=${PRESET:-gpu}
mkdir -p "$OUT" "$RUN"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c \
  'import torch,sys;print(sys.version);print(torch.__version__, torch.cuda.is_available())') \
  > "$OUT/env.txt" 2>&1

stamp "benchmark generators (background, 3 shards, ${BENCH_S}s budget)"
ids=$(python3 benchmarks/make_real_benchmark.py x --list | python3 -c \
  'import sys,json;print(" ".join(json.loads(l)["id"] for l in sys.stdin))')
i=0; for id in $ids; do shard[$((i % 3))]+="$id "; i=$((i + 1)); done
for s in 0 1 2; do
  timeout -s INT "$BENCH_S" python3 benchmarks/make_real_benchmark.py "$RUN/realbench" --real "$REAL" \
    --images-per-model 60 --steps-scale "$BENCH_SCALE" --device "$DEVICE" --threads 2 \
    --only ${shard[$s]} > "$RUN/realbench_$s.log" 2>&1 &
done

stamp "synth: up to $MODELS models, ${SYNTH_S}s budget"
timeout -s INT "$SYNTH_S" python3 -m fpattr synth "$RUN/zoo" --models "$MODELS" \
  --images-per-model "$IMAGES" --size "$SIZE" --real "$REAL" --workers "$SYNTH_W" \
  --device "$DEVICE" -q > "$RUN/synth.json" 2> "$RUN/synth.log"
stamp "synth exit $? ; models done: $(ls "$RUN"/zoo/*/done.json 2>/dev/null | wc -l)"

stamp "train: preset $PRESET, ${TRAIN_S}s budget"
python3 -m fpattr train "$RUN/zoo" --out "$RUN/train" --preset "$PRESET" --device "$DEVICE" \
  --set workers="$DATA_W" --set max_seconds="$TRAIN_S" -q > "$RUN/train.json" 2> "$RUN/train.log"
stamp "train exit $?"
python3 benchmarks/bench_torch_cuda.py "$RUN/train/extractor.pt" --device "$DEVICE" \
  --seconds 2 > "$OUT/torch_cuda_throughput.json" 2>&1
stamp "waiting for benchmark generators"
wait
stamp "packing"
cp "$RUN/train/extractor.pt" "$RUN/train/train_result.json" "$OUT/" 2>/dev/null
python3 - "$RUN" "$OUT" <<'PY'
import json, sys, tarfile, pathlib
run, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
done = sorted((run / "zoo").glob("*/done.json"))
(out / "zoo_manifest.json").write_text(json.dumps([json.loads(p.read_text()) for p in done]))
with tarfile.open(out / "logs.tar.gz", "w:gz") as t:
    for p in sorted(run.glob("*.log")) + sorted(run.glob("*.json")) + [run / "train" / "command.txt"]:
        if p.exists():
            t.add(p, arcname=p.name)
with tarfile.open(out / "realbench.tar.gz", "w:gz") as t:
    if (run / "realbench").is_dir():
        for p in sorted((run / "realbench").rglob("*")):
            if p.is_file() and "_ckpt" not in p.parts:
                t.add(p, arcname=str(p.relative_to(run)))
# a sample of the zoo (fidelity / figures here): 3 images of up to 100 models (< 16 MB)
with tarfile.open(out / "zoo_sample.tar.gz", "w:gz") as t:
    for d in [p.parent for p in done][:: max(1, len(done) // 100)][:100]:
        for f in sorted(d.glob("*.png"))[:3] + [d / "done.json"]:
            t.add(f, arcname=str(f.relative_to(run)))
PY
ls -la "$OUT"; stamp "done"
