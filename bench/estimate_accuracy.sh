#!/usr/bin/env bash
# The training-time estimate against the measured time (issue 6: within
# ±20 %): the default conv net (28x28) and MobileNetV2 alpha 0.35 (96x96),
# each trained on Fashion-MNIST subsets of several sizes, in projects of their
# own. The machine's figures are measured afresh at the start (an empty
# XDG_CACHE_HOME), as on a new machine, and each training then corrects them
# as it would for a user (et_machine_rates_learn). Prints one line per run:
# the estimate printed before training, the refined one after epoch 1, the
# measured time and their ratios. Needs a machine with nothing else running:
# the estimate prices this machine's speed as measured, and other load
# changes the speed.
#
#   bench/estimate_accuracy.sh [BUILD_DIR] [WORK_DIR] [SIZES] [CONV_EPOCHS] [MNV2_EPOCHS]
#
# Defaults: build, /tmp/edgetrain-estimate-bench, "3000 12000 48000"
# (training images, before the validation split), 3, 1.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/int8_common.sh
build=${1:-build}
work=${2:-/tmp/edgetrain-estimate-bench}
sizes=${3:-3000 12000 48000}
conv_epochs=${4:-3}
mnv2_epochs=${5:-1}
cmake --build "$build" --target edgetrain >/dev/null
rm -rf "$work" && mkdir -p "$work/cache"
export XDG_CACHE_HOME=$work/cache
full=$data
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-28s %8s %10s %10s %10s %8s %8s\n" model images estimate "after e1" measured "est/m" "e1/m"
for n in $sizes; do
  data=$full
  bench_subset "$n" "$work/data-$n"
  p=$work/p-$n
  et init "$p" >/dev/null
  et -C "$p" -q import "$data" >/dev/null
  for m in conv mnv2; do
    if [[ $m == conv ]]; then
      et -C "$p" -q impulse set learning.model=conv input.width=28 input.height=28 >/dev/null
      epochs=$conv_epochs name="conv net 28x28, $epochs ep"
    else
      et -C "$p" -q impulse set learning.model=mobilenetv2 learning.alpha=0.35 \
        input.width=96 input.height=96 >/dev/null
      epochs=$mnv2_epochs name="MobileNetV2 0.35 96x96, $epochs ep"
    fi
    et -C "$p" -q features >/dev/null
    et -C "$p" -q train --epochs "$epochs" --json >"$work/$m-$n.json"
    python3 - "$work/$m-$n.json" "$name" "$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e, e1, s = d["estimated_seconds"], d.get("estimated_seconds_after_epoch1"), d["seconds"]
print("%-28s %8s %9.1fs %10s %9.1fs %8.2f %8s" % (sys.argv[2], sys.argv[3], e,
      "%.1fs" % e1 if e1 else "-", s, e / s, "%.2f" % (e1 / s) if e1 else "-"))
PY
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
