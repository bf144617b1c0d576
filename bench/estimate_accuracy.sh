#!/usr/bin/env bash
# The training-time estimate against the measured time (issue 6: within
# ±20 %): the default conv net (28x28) and MobileNetV2 alpha 0.35 (96x96),
# each trained on Fashion-MNIST subsets of several sizes, in projects of their
# own. The machine's figures are measured afresh at the start (an empty
# XDG_CACHE_HOME), as on a new machine: the first training of each model
# times the model itself (et_model_timing), later ones reuse that timing as
# the trainings before them corrected it (et_model_timing_learn), as for a
# user. Prints one line per run: the estimate printed before training, the
# refined one after epoch 1, the measured time and their ratios, and the
# load average. When the int8 fallbacks ran (int8 lost too much accuracy:
# MSE calibration, "fb", then, if still too much, quantization-aware
# fine-tuning, "fb+q"), the estimate column and est/m add what the estimate
# printed for the fallbacks that ran (before training it cannot know whether
# they will: it prints their cost apart). Other load on the machine changes
# the speed during a run: note the load average.
#
#   [BATCH=N] [MAX_DROP=X] bench/estimate_accuracy.sh [BUILD_DIR] [WORK_DIR] [SIZES] \
#       [CONV_EPOCHS] [MNV2_EPOCHS]
#
# Defaults: build, /tmp/edgetrain-estimate-bench, "3000 12000 48000"
# (training images, before the validation split), 3, 1. BATCH: the training
# batch size (default the impulse's, 32). MAX_DROP: --int8-max-drop, in
# accuracy points (100 never runs the fallbacks; default the CLI's).
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
extra=()
[[ -n ${BATCH:-} ]] && extra+=(--batch-size "$BATCH")
[[ -n ${MAX_DROP:-} ]] && extra+=(--int8-max-drop "$MAX_DROP")
printf "%-28s %8s %10s %10s %10s %8s %8s %4s %5s\n" model images estimate "after e1" measured \
  "est/m" "e1/m" fb load
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
    et -C "$p" train --epochs "$epochs" ${extra[@]+"${extra[@]}"} --json \
      >"$work/$m-$n.json" 2>"$work/$m-$n.log"
    python3 - "$work/$m-$n.json" "$work/$m-$n.log" "$name" "$n" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
e, e1, s = d["estimated_seconds"], d.get("estimated_seconds_after_epoch1"), d["seconds"]
log = open(sys.argv[2]).read()
fb = bool((d.get("quantization") or {}).get("fallback"))
qat = "int8 fine-tuning epoch" in log
# The fallbacks' estimate, as printed before training: "...; if int8 loses
# accuracy, MSE calibration adds 4.2s and fine-tuning 1m 5s)".
m = re.search(r"MSE calibration adds ([0-9hms. ]+?)(?: and fine-tuning ([0-9hms. ]+))?\)", log)
def seconds(text):
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u]
               for v, u in re.findall(r"([0-9.]+)([hms])", text or ""))
extra = (seconds(m.group(1)) if fb and m else 0) + (seconds(m.group(2)) if qat and m else 0)
load = open("/proc/loadavg").read().split()[0]
print("%-28s %8s %9.1fs %10s %9.1fs %8.2f %8s %4s %5s" % (sys.argv[3], sys.argv[4], e + extra,
      "%.1fs" % e1 if e1 else "-", s, (e + extra) / s, "%.2f" % (e1 / s) if e1 else "-",
      ("fb+q" if qat else "fb") if fb else "", load))
PY
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
