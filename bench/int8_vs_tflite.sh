#!/usr/bin/env bash
# int8 against TensorFlow Lite, from the same float32 weights, in one run:
#  1. accuracy: edgetrain trains a model on Fashion-MNIST and converts it to
#     int8 (its own quantizer, run by its runtime); bench/export_keras.py
#     rebuilds the model in Keras with edgetrain's weights (Keras' float32
#     test accuracy must be edgetrain's within 0.2 points, or it stops) and
#     quantizes it with TFLite's post-training full-integer quantizer,
#     calibrated on the very samples edgetrain calibrated on. Float32 and
#     int8 test accuracy of both, the drop of each, and the model sizes.
#  2. speed: single-thread int8 inference, one sample per invoke, invokes
#     timed only: edgetrain's runtime (bench_int8_infer) against
#     tf.lite.Interpreter (num_threads=1) with its default kernels (XNNPACK),
#     its built-in kernels and its reference kernels
#     (bench/int8_infer_tflite.py).
# Models: the default conv net on 28x28x1 (batch 32) and MobileNetV2 alpha
# 0.35 on 96x96x1, trained from scratch for a few epochs (the int8 drop is the
# point, not the accuracy) at batch 8: its batch norm moving averages
# (momentum 0.999, as Keras) need about 10,000 steps to forget their start
# values, and at batch 32 two epochs (3,000 steps) give a model at chance
# level in inference mode.
#
#   bench/int8_vs_tflite.sh [BUILD_DIR] [WORK_DIR] [CONV_EPOCHS] [MNV2_EPOCHS] [MNV2_BATCH] [REF_LIMIT] [TRAIN_LIMIT]
#
# Defaults: build, /tmp/edgetrain-int8-bench, 5, 3, 8, 1000 (the testing
# samples the slow reference kernels are timed on), 0. TRAIN_LIMIT > 0 trains
# on the first TRAIN_LIMIT training images only (a shorter run; the 10,000
# test images are always all there). Needs Debian's
# dataset-fashion-mnist and the pip Python with TensorFlow (installed here if
# missing: python3 -m pip install tensorflow-cpu). Trained models and results
# stay in WORK_DIR and are reused by a rerun with the same epochs (delete it
# to start over); bench/ram_vs_tflm.sh uses the same folder and models.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/int8_common.sh
conv_epochs=${3:-5}
mnv2_epochs=${4:-3}
mnv2_batch=${5:-8}
ref_limit=${6:-1000}
train_limit=${7:-0}
if ((train_limit > 0)); then
  mkdir -p "${2:-/tmp/edgetrain-int8-bench}"
  bench_subset "$train_limit" "${2:-/tmp/edgetrain-int8-bench}/fm-data"
fi
bench_setup "${1:-build}" "${2:-/tmp/edgetrain-int8-bench}" bench_int8_infer

# speed NAME: edgetrain's runtime, then TFLite's three kernel sets.
speed() {
  local name=$1 w=$work/$1 id fdir limit
  id=$(bench_model_id "$name")
  fdir=$(jget "$w.keras.json" "d['features_dir']")
  echo "$name: single-thread speed" >&2
  "$build/bench_int8_infer" "$p/models/$id/model_int8.etrt" "$fdir" >"$w.speed-edgetrain.json"
  for k in auto builtin ref; do
    limit=0
    [[ $k == ref ]] && limit=$ref_limit
    python3 bench/int8_infer_tflite.py "$w.tflite" "$fdir" "$p/models/$id/model.json" \
      --kernels "$k" --limit "$limit" >"$w.speed-tflite-$k.json" 2> >(quiet)
  done
}

conv=conv-e$conv_epochs
mnv2=mnv2-a0.35-e$mnv2_epochs-b$mnv2_batch
bench_train "$conv" "$conv_epochs" learning.model=conv input.width=28 input.height=28 \
  learning.batch_size=32
bench_train "$mnv2" "$mnv2_epochs" input.width=96 input.height=96 learning.model=mobilenetv2 \
  learning.alpha=0.35 learning.batch_size="$mnv2_batch"
for name in "$conv" "$mnv2"; do
  bench_export "$name"
  speed "$name"
done
python3 bench/int8_report.py "$work" "$conv" "$mnv2"
