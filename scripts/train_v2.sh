#!/usr/bin/env bash
# Extractor v2 from scratch in one command, resumable at every stage (rerun after an
# interruption, on this machine or another: the zoo and the training are deterministic
# from their seeds, finished zoo models and training checkpoints are kept):
#   synthetic zoo (every registered family, incl. the real-decoder imitations)
#   -> extractor training (preset v2: 128-px views, publication chains)
#   -> ONNX export as models/$NAME.onnx with the fused spectrum and parity check.
#   bash scripts/train_v2.sh [REAL_PHOTOS_DIR]
# Knobs (environment): RUN, FAMILIES, MODELS, IMAGES, SIZE, MAX_STEPS, STEPS, WORKERS, DEVICE, PRESET,
# NAME. On a CUDA machine: DEVICE=cuda PRESET=v2-gpu WORKERS=<cores> MODELS=3000.
# Budget on 2 CPU cores with the defaults: see docs/methods/model-synthesis.md (Extractor v2).
set -euo pipefail
REAL=${1:-../shared/data/bsds500/train}
RUN=${RUN:-runs/v2}
MODELS=${MODELS:-900}
IMAGES=${IMAGES:-16}
SIZE=${SIZE:-192}
MAX_STEPS=${MAX_STEPS:-200}
STEPS=${STEPS:-6000}
WORKERS=${WORKERS:-2}
DEVICE=${DEVICE:-auto}
PRESET=${PRESET:-v2}
NAME=${NAME:-v2}
# the built-in families, named: the zoo (and its settings hash) must not change when a
# plugin that adds a family is installed
FAMILIES=${FAMILIES:-autoencoder gan_decoder diffusion_denoiser ldm_vae vqgan dit_patch stylegan2 stylegan3 biggan sr_cascade}
FAMILY_ARGS=()
for f in $FAMILIES; do FAMILY_ARGS+=(--family "$f"); done
case "$REAL" in *public-generators*) echo "never train on the evaluation generators" >&2; exit 2;; esac
mkdir -p "$RUN"
fpattr synth "$RUN/zoo" "${FAMILY_ARGS[@]}" --models "$MODELS" --images-per-model "$IMAGES" --size "$SIZE" \
  --real "$REAL" --workers "$WORKERS" --max-steps "$MAX_STEPS" --batch-size 16 --train-crop 64 \
  --seed 0 --device "$DEVICE" -q > "$RUN/synth.json"
fpattr train "$RUN/zoo" --out "$RUN/train" --preset "$PRESET" --steps "$STEPS" \
  --threads "$WORKERS" --seed 0 --device "$DEVICE"
fpattr export "$RUN/train" --out models --name "$NAME" --fuse-spectrum --replace-shipped
