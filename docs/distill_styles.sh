#!/usr/bin/env bash
# How the bundled distilled styles in nstream/styles/ were made: a student per painting, distilled
# from Magenta's arbitrary-style network with that painting (`python -m nstream distill`) on
# BSDS500's training photos. Usage:
#   bash docs/distill_styles.sh [STEPS] [painting ...]     e.g. bash docs/distill_styles.sh 2000 wave udnie
# Works in $WORK (default /tmp/nstream-distill: the cached teacher outputs, resumable state), then
# copies each finished student to nstream/styles/<painting>_lite.pth (ARCHS="lite johnson" for both).
# Lite students of the paintings in $SSIM_PAINTINGS then get a second stage: 600 steps more with the
# SSIM term (--ssim-weight 0.1 at --lr 1e-3), which brings back the teacher's brush texture; wave
# stays at the first stage (there the term cost fidelity: docs/BENCHMARKS.md, "Distilled students").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${NSTREAM_DATA:-../shared/data}
WORK=${WORK:-/tmp/nstream-distill}
STEPS=${1:-2000}
shift || true
PAINTINGS=("$@")
[ ${#PAINTINGS[@]} -gt 0 ] || PAINTINGS=(starry_night wave the_scream udnie woman_with_hat)
ARCHS=${ARCHS:-"lite"}
SSIM_PAINTINGS=${SSIM_PAINTINGS:-"starry_night the_scream udnie woman_with_hat"}
mkdir -p "$WORK"

for painting in "${PAINTINGS[@]}"; do
  for arch in $ARCHS; do
    name=$painting$([ "$arch" = lite ] && echo _lite || true)
    echo "== $name ($arch, $STEPS steps) $(date -u +%H:%M:%S)"
    python -m nstream distill --teacher "nstream/paintings/$painting.jpg" --arch "$arch" \
      --data "$DATA"/train/bsds500/train --out "$WORK/$name.pth" --name "$name" --image-size 256 \
      --pool 1000 --batch-size 4 --max-steps "$STEPS" --lr 2e-3 --edge-weight 1 --jitter 0.15 \
      --checkpoint-every 100 --seed 0 ${EXTRA_ARGS:-}
    cp "$WORK/$name.pth" "nstream/styles/$name.pth"
    if [ "$arch" = lite ] && [[ " $SSIM_PAINTINGS " == *" $painting "* ]]; then
      echo "== $name: SSIM stage $(date -u +%H:%M:%S)"
      python -m nstream distill --teacher "nstream/paintings/$painting.jpg" --arch lite \
        --data "$DATA"/train/bsds500/train --out "$WORK/$name.ssim.pth" --name "$name" --image-size 256 \
        --pool 1000 --batch-size 4 --max-steps 600 --lr 1e-3 --edge-weight 1 --jitter 0.15 \
        --checkpoint-every 50 --seed 0 --init "$WORK/$name.pth" --ssim-weight 0.1 ${EXTRA_ARGS:-}
      cp "$WORK/$name.ssim.pth" "nstream/styles/$name.pth"
    fi
  done
done
echo "== done $(date -u +%H:%M:%S)"
