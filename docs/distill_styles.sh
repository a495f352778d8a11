#!/usr/bin/env bash
# How the bundled distilled styles in nstream/styles/ were made: a student per painting, distilled
# from Magenta's arbitrary-style network with that painting (`python -m nstream distill`) on
# BSDS500's training photos. Usage:
#   bash docs/distill_styles.sh [STEPS] [painting ...]     e.g. bash docs/distill_styles.sh 2000 wave udnie
# Works in $WORK (default /tmp/nstream-distill: the cached teacher outputs, resumable state), then
# copies each finished student to nstream/styles/<painting>_lite.pth (ARCHS="lite johnson" for both).
# Lite students then go on with the SSIM term (--ssim-weight 0.1 at --lr 1e-3), which brings back the
# teacher's brush texture, for the stages ssim_stages lists (each starts from the one before):
# starry_night 600 then 900 steps, the_scream, udnie and woman_with_hat 600, wave none (there the
# term cost fidelity: docs/BENCHMARKS.md, "Distilled students").
# The paintings FINE lists (default: all but the_scream, whose plain student is within the fidelity goal)
# then get the detail stages, and the result replaces nstream/styles/<painting>_lite.pth: the plain
# student with a 16-channel full-resolution detail layer, 800 steps of the SSIM stage, then 300
# with the style-predictor term (--embedding-weight 1), and for the paintings embedding_stages lists
# more of those at a higher weight (woman_with_hat: 300 at 3). Regenerate the shipped graphs after
# copying (python -m nstream export-bundled).
# The johnson students (ARCHS=johnson) are copied by hand after measuring: starry_night ran 2000
# steps, the_scream and udnie 1200, wave 2000 and then resumed to 3000 (the same command with 3000: full rate
# again to step 2400, a tenth after) (ARCHS=johnson bash docs/distill_styles.sh 1200 the_scream);
# woman_with_hat's ran 2000; udnie's and woman_with_hat's then went on with the predictor stage:
# the distill command above with --init WORK/<painting>.pth --max-steps 300 --lr 1e-3
# --ssim-weight 0.1 --embedding-weight 1 --checkpoint-every 50
# (woman_with_hat's then once more with --embedding-weight 3 from that).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${NSTREAM_DATA:-../shared/data}
WORK=${WORK:-/tmp/nstream-distill}
STEPS=${1:-2000}
shift || true
PAINTINGS=("$@")
[ ${#PAINTINGS[@]} -gt 0 ] || PAINTINGS=(starry_night wave the_scream udnie woman_with_hat)
ARCHS=${ARCHS:-"lite"}
FINE=${FINE:-"starry_night wave udnie woman_with_hat"}
mkdir -p "$WORK"

# The last stage of the bundled students (stop 20), run with STAGE=unmirrored after all of the above:
# until then `nstream distill` mirrored half of its batches after the teacher had painted them, and a
# teacher's answer to a mirrored crop is not its mirrored answer (strokes have a direction), so half
# the targets asked for strokes no network paints. This stage goes on from each bundled network with
# the corrected distill at --lr 2e-4 and copies the result back; students whose last stage had the
# style predictor's term keep it (pixel terms alone cost them fidelity: docs/BENCHMARKS.md):
#   STAGE=unmirrored bash docs/distill_styles.sh 0 [painting ...]      (the steps argument is unused)
unmirrored_stage() {  # steps and extra arguments of a network's stage; "-" where it was not run
  case "$1" in
    wave_lite) echo "1000" ;;
    wave|starry_night|the_scream_lite) echo "400" ;;
    starry_night_lite|udnie_lite) echo "400 --ssim-weight 0.1 --embedding-weight 1" ;;
    woman_with_hat_lite) echo "400 --ssim-weight 0.1 --embedding-weight 3" ;;
    *) echo "-" ;;  # the_scream, udnie, woman_with_hat (johnson): within the goals already, not run (time)
  esac
}
if [ "${STAGE:-}" = unmirrored ]; then
  for painting in "${PAINTINGS[@]}"; do
    for name in "${painting}_lite" "$painting"; do
      read -r steps extra <<< "$(unmirrored_stage "$name")"
      [ "$steps" != - ] || continue
      echo "== $name: unmirrored stage, $steps steps $(date -u +%H:%M:%S)"
      cp "nstream/styles/$name.pth" "$WORK/$name.before-unmirrored.pth"
      # shellcheck disable=SC2086 # $extra holds several arguments
      python -m nstream distill --teacher "nstream/paintings/$painting.jpg" \
        --data "$DATA"/train/bsds500/train --out "$WORK/$name.unmirrored.pth" --name "$name" --image-size 256 \
        --pool 1000 --batch-size 4 --max-steps "$steps" --lr 2e-4 --edge-weight 1 --jitter 0.15 \
        --checkpoint-every 100 --seed 0 --init "$WORK/$name.before-unmirrored.pth" $extra ${EXTRA_ARGS:-}
      cp "$WORK/$name.unmirrored.pth" "nstream/styles/$name.pth"
    done
  done
  echo "== done $(date -u +%H:%M:%S)"
  exit 0
fi

embedding_stages() {  # the weights of the predictor stages, 300 steps each
  case "$1" in
    woman_with_hat) echo "1 3" ;;
    *) echo "1" ;;
  esac
}

ssim_stages() {
  case "$1" in
    starry_night) echo "600 900" ;;
    wave) echo "" ;;
    *) echo "600" ;;
  esac
}

for painting in "${PAINTINGS[@]}"; do
  for arch in $ARCHS; do
    name=$painting$([ "$arch" = lite ] && echo _lite || true)
    echo "== $name ($arch, $STEPS steps) $(date -u +%H:%M:%S)"
    python -m nstream distill --teacher "nstream/paintings/$painting.jpg" --arch "$arch" \
      --data "$DATA"/train/bsds500/train --out "$WORK/$name.pth" --name "$name" --image-size 256 \
      --pool 1000 --batch-size 4 --max-steps "$STEPS" --lr 2e-3 --edge-weight 1 --jitter 0.15 \
      --checkpoint-every 100 --seed 0 ${EXTRA_ARGS:-}
    [ "$arch" = lite ] || continue
    cp "$WORK/$name.pth" "nstream/styles/$name.pth"
    previous="$WORK/$name.pth"
    stage=0
    for steps in $(ssim_stages "$painting"); do
      stage=$((stage + 1))
      echo "== $name: SSIM stage $stage, $steps steps $(date -u +%H:%M:%S)"
      python -m nstream distill --teacher "nstream/paintings/$painting.jpg" --arch lite \
        --data "$DATA"/train/bsds500/train --out "$WORK/$name.ssim$stage.pth" --name "$name" --image-size 256 \
        --pool 1000 --batch-size 4 --max-steps "$steps" --lr 1e-3 --edge-weight 1 --jitter 0.15 \
        --checkpoint-every 50 --seed 0 --init "$previous" --ssim-weight 0.1 ${EXTRA_ARGS:-}
      previous="$WORK/$name.ssim$stage.pth"
      cp "$previous" "nstream/styles/$name.pth"
    done
    case " $FINE " in *" $painting "*) ;; *) continue ;; esac
    fine=${painting}_fine_lite
    echo "== $fine: detail stage $(date -u +%H:%M:%S)"
    previous="$WORK/$fine.detail.pth"
    extra=(--init "nstream/styles/$name.pth" --detail-channels 16 --max-steps 800)
    for weight in "" $(embedding_stages "$painting"); do
      if [ -n "$weight" ]; then
        echo "== $fine: predictor stage, weight $weight $(date -u +%H:%M:%S)"
        extra=(--init "$previous" --embedding-weight "$weight" --max-steps 300)
        previous="$WORK/$fine.embedding$weight.pth"
      fi
      python -m nstream distill --teacher "nstream/paintings/$painting.jpg" --arch lite \
        --data "$DATA"/train/bsds500/train --out "$previous" --name "$name" --image-size 256 \
        --pool 1000 --batch-size 4 --lr 1e-3 --edge-weight 1 --jitter 0.15 --ssim-weight 0.1 \
        --checkpoint-every 50 --seed 0 "${extra[@]}" ${EXTRA_ARGS:-}
    done
    cp "$previous" "nstream/styles/$name.pth"
  done
done
echo "== done $(date -u +%H:%M:%S)"
