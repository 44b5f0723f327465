#!/usr/bin/env bash
# The v1 recipe (scripts/train_default.sh: three families, 640 models, 128-px images, the
# compact preset) on a zoo of siblings: each architecture built SIBLINGS times, differing
# only in seed and training photos (fpattr synth --siblings). Same compute as v1: half the
# architectures, twice the models each. Resumable at every stage (rerun after an
# interruption); exported to $RUN/export, not models/.
#   bash scripts/train_siblings.sh [REAL_PHOTOS_DIR]
# Then: python benchmarks/sibling_separation.py --run $RUN/train \
#   --extractor v1=models/default.json --extractor sib=$RUN/export/sib.json
# Knobs (environment): RUN, MODELS, SIBLINGS, STEPS, WORKERS, NAME.
set -euo pipefail
REAL=${1:-../shared/data/bsds500/train}
RUN=${RUN:-runs/sib}
MODELS=${MODELS:-640}
SIBLINGS=${SIBLINGS:-2}
STEPS=${STEPS:-4000}
WORKERS=${WORKERS:-2}
NAME=${NAME:-sib}
case "$REAL" in *public-generators*) echo "never train on the evaluation generators" >&2; exit 2;; esac
mkdir -p "$RUN"
fpattr synth "$RUN/zoo" --family autoencoder --family diffusion_denoiser --family gan_decoder \
  --siblings "$SIBLINGS" --models "$MODELS" --images-per-model 16 --size 128 --real "$REAL" \
  --workers "$WORKERS" --max-steps 150 --batch-size 16 --seed 0 -q > "$RUN/synth.json"
fpattr train "$RUN/zoo" --out "$RUN/train" --preset compact --steps "$STEPS" \
  --set eval_every=1000 --threads "$WORKERS" --seed 0
fpattr export "$RUN/train" --out "$RUN/export" --name "$NAME" --fuse-spectrum
