#!/usr/bin/env bash
# Training throughput, edgetrain against PyTorch (Debian's python3-torch) and
# TensorFlow/Keras (PyPI tensorflow-cpu, in the python3 on PATH) in the same
# run: samples/s at batch 32 on all cores, for the default conv net on
# 28x28x1 and MobileNetV2 alpha 0.35 on 96x96x1. Prints all and the ratios,
# and the machine's load average before and after: timings compare only on an
# otherwise idle machine (on a 2-core VM shared with other jobs both peers get
# a fraction of the cores, OpenMP's barriers wait on descheduled threads, and
# ratios swing by 2x and more).
#   bench/train_throughput.sh [BUILD_DIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-20}
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "installing the peer: python3-torch" >&2
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
if ! python3 -c "import tensorflow" 2>/dev/null; then
  echo "installing the peer: tensorflow-cpu (pip)" >&2
  python3 -m pip install -q tensorflow-cpu >/dev/null
fi
cmake --build "$build" --target bench_train_throughput >/dev/null
sps() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['samples_per_s'])"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %6s %11s %11s %11s %9s %9s\n" model batch edgetrain pytorch keras "vs torch" "vs keras"
for model in conv mnv2; do
  s=$steps; [[ $model == mnv2 ]] && s=$(( steps / 2 > 3 ? steps / 2 : 3 ))
  a=$("$build/bench_train_throughput" "$model" 32 "$s" | sps)
  b=$(/usr/bin/python3 bench/train_throughput_torch.py "$model" 32 "$s" | sps)
  k=$(python3 bench/train_throughput_keras.py "$model" 32 "$s" 2>/dev/null | sps)
  printf "%-6s %6d %11s %11s %11s %8.2fx %8.2fx\n" "$model" 32 "$a" "$b" "$k" \
    "$(/usr/bin/python3 -c "print($a / $b)")" "$(/usr/bin/python3 -c "print($a / $k)")"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
