#!/usr/bin/env bash
# RAM of int8 models against TensorFlow Lite Micro: the arena edgetrain's
# runtime is planned to need (model_int8.etrt's arena_size) against the arena
# TFLM needs for TensorFlow Lite's int8 conversion of the same model
# (bench/export_keras.py), measured by the tflite-micro Python package
# (bench/ram_vs_tflm.py; installed here if missing:
# python3 -m pip install tflite-micro). Models: the default conv net on
# 28x28x1, MobileNetV1 alpha 0.25 and MobileNetV2 alpha 0.35 on 96x96x1. RAM
# does not depend on the weights, so each model is trained for one epoch on
# a small project of its own: the 10,000 Fashion-MNIST test images, imported
# as training data (links named train-*), so the run takes minutes.
#
#   bench/ram_vs_tflm.sh [BUILD_DIR] [WORK_DIR]
#
# Defaults: build, /tmp/edgetrain-ram-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/int8_common.sh
work=${2:-/tmp/edgetrain-ram-bench}
mkdir -p "$work/fm-small"
for kind in images-idx3 labels-idx1; do
  ln -sf "$data/t10k-$kind-ubyte.gz" "$work/fm-small/train-$kind-ubyte.gz"
done
data=$work/fm-small
bench_no_test=1
bench_setup "${1:-build}" "$work"
if ! python3 -c "import tflite_micro" 2>/dev/null; then
  echo "installing the peer: tflite-micro (pip)" >&2
  python3 -m pip install -q tflite-micro >/dev/null
fi

conv=conv-e1
mnv1=mnv1-a0.25-e1
mnv2=mnv2-a0.35-e1
bench_train "$conv" 1 learning.model=conv input.width=28 input.height=28 learning.batch_size=32
bench_train "$mnv1" 1 input.width=96 input.height=96 learning.model=mobilenetv1 \
  learning.alpha=0.25 learning.batch_size=32
bench_train "$mnv2" 1 input.width=96 input.height=96 learning.model=mobilenetv2 \
  learning.alpha=0.35 learning.batch_size=32
args=()
for name in "$conv" "$mnv1" "$mnv2"; do
  bench_export "$name" --no-eval
  args+=("$name=$p/models/$(bench_model_id "$name")/model_int8.etrt,$work/$name.tflite")
done
python3 bench/ram_vs_tflm.py "${args[@]}" | tee "$work/ram.json" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print("int8 arena, bytes; TFLite Micro", rows[0]["tflite_micro"], "(64-bit host build)")
h = ("model", "edgetrain", "TFLM minimum", "TFLM head", "TFLM tail", "TFLM/edgetrain", "head/edgetrain")
print("%-16s %10s %13s %10s %10s %15s %15s" % h)
for r in rows:
    print("%-16s %10d %13d %10d %10d %14.2fx %14.2fx" % (r["model"], r["edgetrain_arena"],
          r["tflm_minimum"], r["tflm_head"], r["tflm_tail"], r["ratio_minimum"], r["ratio_head"]))'
