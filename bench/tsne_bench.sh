#!/usr/bin/env bash
# The feature explorer against scikit-learn in the same run: t-SNE of the
# 10,000 Fashion-MNIST test images (PCA to 50 first, 2 threads), wall time and
# trustworthiness (k = 10, scikit-learn's measure, against the raw pixels).
# With "all": every one of the 70,000 images instead, no peer (scikit-learn
# would take most of an hour); the trustworthiness is that of the 10,000 test
# images' places in the full map.
#   bench/tsne_bench.sh [BUILD_DIR] [test|all]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mode=${2:-test}
[[ $mode == test || $mode == all ]] || { echo "usage: $0 [BUILD_DIR] [test|all]" >&2; exit 2; }
fm=/usr/share/datasets/fashion-mnist
if ! /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
  echo "installing the peer: python3-sklearn" >&2
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-sklearn >/dev/null
fi
cmake --build "$build" --target edgetrain >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
et="$build/edgetrain"
"$et" init "$work/p" >/dev/null
"$et" -q -C "$work/p" import "$fm" >/dev/null
"$et" -q -C "$work/p" features >/dev/null
category=testing; [[ $mode == all ]] && category=all
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
t0=$(date +%s.%N)
"$et" -q -C "$work/p" explore --category "$category" --limit 0 --csv "$work/map.csv" --out "$work/map.svg" >/dev/null
t1=$(date +%s.%N)
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
seconds=$(/usr/bin/python3 -c "print(round($t1 - $t0, 2))")
/usr/bin/python3 bench/tsne_bench.py "$fm/t10k-images-idx3-ubyte.gz" "$work/map.csv" "$seconds" "$mode"
