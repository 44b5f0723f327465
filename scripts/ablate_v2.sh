#!/usr/bin/env bash
# Extractor v2 ablation (issue 10, item 5): each change removed in turn, everything else
# as the v2 run, on the same zoo, seed and validation/calibration models (the ablations
# shrink only the training split; see fpattr.training.data.split_models).
#   bash scripts/ablate_v2.sh            # trains + exports every variant, resumable
#   python benchmarks/ablation_v2.py     # evaluates them -> docs/results/ablation_v2.json
# Knobs: RUN (the v2 run whose zoo and full model are the reference, default runs/v2pilot),
# STEPS (must equal the reference run's, default 3000), VARIANTS (subset, in order),
# THREADS.
set -euo pipefail
RUN=${RUN:-runs/v2pilot}
STEPS=${STEPS:-3000}
THREADS=${THREADS:-2}
OUT=${OUT:-$RUN/ablation}
VARIANTS=${VARIANTS:-no_new_families l2_only size60 v1_processing views64 half_zoo}
NEW='[{"family":"ldm_vae"},{"family":"vqgan"},{"family":"dit_patch"},{"family":"stylegan2"},{"family":"stylegan3"},{"family":"biggan"},{"family":"sr_cascade"}]'
NOT_L2='[{"loss":"l1"},{"loss":"l1_perceptual"},{"loss":"l1_perceptual_adv"}]'
command -v fpattr >/dev/null || { echo "fpattr is not on PATH: activate the venv" >&2; exit 2; }
mkdir -p "$OUT/models"
for v in $VARIANTS; do
  case $v in
    no_new_families) SET=(--set "exclude_where=$NEW") ;;  # v1's three families only
    l2_only) SET=(--set "exclude_where=$NOT_L2") ;;        # one loss, as v1's zoo
    v1_processing) SET=(--set 'augment={}') ;;             # v1's augmentation defaults
    views64) SET=(--set extractor.size=64 --set extractor.stem_stride=1) ;;  # v1's view size
    half_zoo) SET=(--set max_train_models=100) ;;          # zoo size (and the l2_only control)
    size60) SET=(--set max_train_models=60) ;;             # size control for no_new_families
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  # a finished variant (exported) is skipped: rerunning train on it would redo its final
  # evaluation and fusion fit for nothing
  [ -f "$OUT/models/$v.json" ] && { echo "== $v done"; continue; }
  echo "== $v $(date -u +%H:%M:%S)"
  fpattr train "$RUN/zoo" --out "$OUT/$v" --preset v2 --steps "$STEPS" --threads "$THREADS" \
    --seed 0 --device cpu -q "${SET[@]}"
  fpattr export "$OUT/$v" --out "$OUT/models" --name "$v" --fuse-spectrum
done
echo "== done $(date -u +%H:%M:%S)"
