#!/usr/bin/env bash
# How the project's first bundled styles were made: one recipe for every painting, johnson and lite,
# trained by `nstream train` on BSDS500 with the seeded random VGG16 (no ImageNet weights can be
# downloaded where this project is built). Every bundled network is now a distilled student
# (docs/distill_styles.sh); this stays the recipe for training without a teacher. Usage:
#   bash docs/train_styles.sh [STEPS] [style ...]        e.g. bash docs/train_styles.sh 700 wave the_scream
# Writes nstream/styles/<style>.pth (johnson) and <style>_lite.pth; run one at a time on a small CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${NSTREAM_DATA:-../shared/data}
STEPS=${1:-700}
shift || true
STYLES=("$@")
[ ${#STYLES[@]} -gt 0 ] || STYLES=(starry_night wave the_scream udnie)
ARCHS=${ARCHS:-"lite johnson"}

for style in "${STYLES[@]}"; do
  image=$(ls "$DATA"/styles/"$style".* | head -1)
  for arch in $ARCHS; do
    if [ "$arch" = lite ]; then out=nstream/styles/${style}_lite.pth lr=5e-3 warmup=50
    else out=nstream/styles/${style}.pth lr=1e-3 warmup=200; fi
    echo "== $style ($arch, $STEPS steps) $(date -u +%H:%M:%S)"
    python -m nstream train --style "$image" --data "$DATA"/train/bsds500/train --out "$out" \
      --name "$(basename "$out" .pth)" --arch "$arch" --lr "$lr" --loss-net random --image-size 128 \
      --batch-size 4 --max-steps "$STEPS" --style-weight 5 --content-weight 1 --tv-weight 0 \
      --identity-steps "$warmup" --style-size 256 --checkpoint-every 50 --seed 0 ${EXTRA_ARGS:-}
    rm -f "${out%.pth}.state.pt"
  done
done
echo "== done $(date -u +%H:%M:%S)"
