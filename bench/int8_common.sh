# Sourced by bench/int8_vs_tflite.sh and bench/ram_vs_tflm.sh: the
# Fashion-MNIST project they share and the models trained in it, kept in
# WORK_DIR and reused by later runs (delete WORK_DIR to start over).

data=/usr/share/datasets/fashion-mnist

et() { "$build/edgetrain" "$@"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# TensorFlow's start-up chatter, off stderr; everything else stays.
quiet() { grep -v -e '^[WI]0000 ' -e '^WARNING: All log messages' -e '^INFO: Created TensorFlow' >&2 || true; }

# bench_subset N DIR: DIR holds the first N training images and labels of
# $data (IDX, gzip) and links to its test files; then data=DIR.
bench_subset() {
  local n=$1 dir=$2
  mkdir -p "$dir"
  if [[ ! -s $dir/train-labels-idx1-ubyte.gz ]]; then
    python3 - "$data" "$dir" "$n" <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for kind, header in (("images-idx3", 16), ("labels-idx1", 8)):
    with gzip.open(f"{src}/train-{kind}-ubyte.gz") as f:
        raw = f.read()
    head = bytearray(raw[:header])
    count = struct.unpack_from(">I", head, 4)[0]
    n = min(n, count)
    struct.pack_into(">I", head, 4, n)
    item = (len(raw) - header) // count
    with gzip.open(f"{dst}/train-{kind}-ubyte.gz.part", "wb") as f:
        f.write(bytes(head) + raw[header:header + n * item])
PY
    for kind in images-idx3 labels-idx1; do
      mv "$dir/train-$kind-ubyte.gz.part" "$dir/train-$kind-ubyte.gz"
      ln -sf "$data/t10k-$kind-ubyte.gz" "$dir/t10k-$kind-ubyte.gz"
    done
  fi
  data=$dir
}

# bench_setup BUILD_DIR WORK_DIR TARGETS...: the peers, the build, the project.
bench_setup() {
  build=$1 work=$2
  shift 2
  if ! python3 -c "import tensorflow" 2>/dev/null; then
    echo "installing the peer: tensorflow-cpu (pip)" >&2
    python3 -m pip install -q tensorflow-cpu >/dev/null
  fi
  [[ -d $data ]] || { echo "no $data: apt-get install dataset-fashion-mnist" >&2; exit 2; }
  [[ -f $build/CMakeCache.txt ]] || cmake -S . -B "$build" >/dev/null
  cmake --build "$build" --target edgetrain "$@" >/dev/null
  mkdir -p "$work"
  p=$work/fm
  if [[ ! -f $p/edgetrain.db ]]; then
    rm -rf "$p"
    et init "$p" >/dev/null
    et -C "$p" -q import "$data" >/dev/null
  fi
}

# bench_train NAME EPOCHS IMPULSE_SETTINGS...: sets the impulse, trains, tests
# (not with bench_no_test=1: a project without testing samples); once:
# NAME.summary.json, NAME.train.json, NAME.test.json in WORK_DIR.
bench_train() {
  local name=$1 epochs=$2 last=test
  shift 2
  [[ ${bench_no_test:-0} == 1 ]] && last=train
  [[ -s $work/$name.$last.json ]] && return
  echo "training $name ($epochs epochs)" >&2
  et -C "$p" -q impulse set "$@" >/dev/null
  et -C "$p" model summary --json >"$work/$name.summary.json"
  et -C "$p" train --epochs "$epochs" --json >"$work/$name.train.json.part"
  mv "$work/$name.train.json.part" "$work/$name.train.json"
  [[ $last == train ]] && return
  et -C "$p" -q test --model "$(bench_model_id "$name")" --json >"$work/$name.test.json"
}

bench_model_id() { jget "$work/$1.train.json" "d['model_id']"; }

# bench_export NAME [--no-eval]: the Keras rebuild and TFLite's int8 model,
# NAME.tflite and NAME.keras.json; with --no-eval, no accuracy (RAM only).
bench_export() {
  local name=$1 w=$work/$1
  shift
  if [[ -s $w.keras.json && -s $w.tflite ]]; then
    [[ ${1:-} == --no-eval ]] && return
    python3 -c "import json,sys; sys.exit('tflite_int8_accuracy' not in json.load(open(sys.argv[1])))" \
      "$w.keras.json" && return
  fi
  echo "$name: Keras rebuild, TFLite quantizer" >&2
  local float=()
  [[ ${1:-} == --no-eval ]] || float=(--edgetrain-float "$(jget "$w.test.json" "d['float32']['accuracy']")")
  python3 bench/export_keras.py --project "$p" --model "$(bench_model_id "$name")" \
    --summary "$w.summary.json" --out "$w.tflite" "${float[@]}" "$@" \
    >"$w.keras.json" 2> >(quiet)
}
