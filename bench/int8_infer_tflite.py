"""TensorFlow Lite peer for bench/int8_infer.c: single-thread int8 inference
speed of an int8 .tflite (from bench/export_keras.py) with tf.lite.Interpreter,
one sample per invoke, only the invokes timed, after WARMUP untimed ones.

    python3 bench/int8_infer_tflite.py MODEL.tflite FEATURES_DIR MODEL_JSON \
        [--kernels auto|builtin|ref] [--limit N] [--warmup 10]

--kernels: auto = the interpreter's default (XNNPACK delegate, which runs
int8 too), builtin = TFLite's optimized built-in kernels without the default
delegate, ref = TFLite's reference kernels. --limit: time the first N testing
samples only (the reference kernels are slow); the accuracy is then over those.
Prints one JSON line.
"""
import argparse
import json
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

RESOLVERS = {
    "auto": tf.lite.experimental.OpResolverType.AUTO,
    "builtin": tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "ref": tf.lite.experimental.OpResolverType.BUILTIN_REF,
}


def quantize(x, scale, zero_point):
    """TFLite's Quantize: round half away from zero, in float32 (as etrt_quantize_s8)."""
    v = x.astype(np.float32) / np.float32(scale)
    v = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(v + zero_point, -128, 127).astype(np.int8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tflite")
    ap.add_argument("features_dir")
    ap.add_argument("model_json")
    ap.add_argument("--kernels", choices=RESOLVERS, default="auto")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()

    with open(os.path.join(a.features_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(a.model_json) as f:
        classes = json.load(f)["labels"]
    to_class = np.array([classes.index(n) if n in classes else -1 for n in meta["labels"]])
    x = np.load(os.path.join(a.features_dir, "features.npy"), mmap_mode="r")
    y = to_class[np.load(os.path.join(a.features_dir, "labels.npy"))]
    cat = np.load(os.path.join(a.features_dir, "categories.npy"))
    rows = np.flatnonzero((cat == 1) & (y >= 0))
    if a.limit:
        rows = rows[:a.limit]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=a.tflite, num_threads=1,
                                 experimental_op_resolver_type=RESOLVERS[a.kernels])
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    scale, zp = i["quantization"]
    q = quantize(np.asarray(x[rows]), scale, zp)
    for k in range(a.warmup):
        it.set_tensor(i["index"], q[k % len(q)][None])
        it.invoke()
    busy = 0.0
    correct = 0
    invoke, clock = it.invoke, time.perf_counter
    for k in range(len(rows)):
        it.set_tensor(i["index"], q[k][None])
        t0 = clock()
        invoke()
        busy += clock() - t0
        correct += int(np.argmax(it.get_tensor(o["index"])[0]) == y[rows[k]])
    print(json.dumps({"peer": "tflite " + tf.__version__, "kernels": a.kernels,
                      "samples": len(rows), "threads": 1, "seconds": round(busy, 4),
                      "samples_per_s": round(len(rows) / busy, 1),
                      "us_per_sample": round(1e6 * busy / len(rows), 2),
                      "accuracy": correct / len(rows)}))


if __name__ == "__main__":
    main()
