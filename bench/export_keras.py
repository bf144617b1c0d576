"""Rebuilds an edgetrain model version in Keras, loads its float32 weights,
checks that Keras gets the same float32 test accuracy, and quantizes it with
TensorFlow Lite's own post-training full-integer quantizer, calibrated on
exactly the samples edgetrain calibrated on. Used by bench/int8_vs_tflite.sh
and bench/ram_vs_tflm.sh.

    python3 bench/export_keras.py --project P --model ID --summary S.json \
        --out model.tflite [--edgetrain-float ACC] [--no-eval] > result.json

--summary: `edgetrain -C P model summary --json`, taken while the project's
impulse was the one the model was trained from (the script checks that every
layer with parameters has the same name and parameter count in Keras).
--edgetrain-float: edgetrain's float32 test accuracy (`edgetrain test
--json`); Keras' must be within 0.2 points of it, else the script fails.
--no-eval: convert only (any weights will do for the RAM benchmark).

Needs the pip Python with tensorflow (python3 -m pip install tensorflow-cpu).
Prints one JSON object: the feature set used, Keras' float32 and TFLite's
int8 test accuracy (tf.lite.Interpreter, default kernels), the sizes of the
.tflite and of edgetrain's model_int8.etrt, the versions.

Layouts (docs/FORMATS.md, weights.npy; node by node in graph order):
conv [out][kh][kw][in] -> Keras HWIO; depthwise [kh][kw][c*m] -> Keras
(kh, kw, c, m); dense [out][in] -> Keras (in, out); then bias; batch norm
gamma, beta, moving mean, moving variance (Keras' order too).
"""
import argparse
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MAX_FLOAT_GAP = 0.002  # Keras against edgetrain, float32 test accuracy


def features_dir(project, impulse):
    """The feature set (cache/features/<key>/) made by the impulse's input
    and processing blocks: the one whose meta.json holds the same blocks."""
    root = os.path.join(project, "cache", "features")
    for key in sorted(os.listdir(root)):
        meta_path = os.path.join(root, key, "meta.json")
        if not os.path.isfile(meta_path):
            continue
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("input") == impulse["input"] and meta.get("processing") == impulse["processing"]:
            return os.path.join(root, key), meta
    sys.exit(f"export_keras: no feature set in {root} for the impulse's input and processing "
             "blocks; run `edgetrain features` with that impulse")


class FeatureSet:
    """features.npy (memory-mapped), ids, labels remapped to the model's class order."""

    def __init__(self, path, meta, model_labels):
        self.x = np.load(os.path.join(path, "features.npy"), mmap_mode="r")
        self.ids = np.load(os.path.join(path, "ids.npy"))
        self.category = np.load(os.path.join(path, "categories.npy"))
        raw = np.load(os.path.join(path, "labels.npy"))
        to_class = np.array([model_labels.index(n) if n in model_labels else -1
                             for n in meta["labels"]], dtype=np.int64)
        self.y = to_class[raw]

    def test_rows(self):
        """Testing samples whose label the model knows (as edgetrain test)."""
        return np.flatnonzero((self.category == 1) & (self.y >= 0))

    def rows_of_ids(self, ids):
        pos = np.searchsorted(self.ids, ids)
        if np.any(pos >= len(self.ids)) or np.any(self.ids[np.minimum(pos, len(self.ids) - 1)] != ids):
            sys.exit("export_keras: calibration_ids.npy names samples that are not in the feature set")
        return pos


def head(x, learning, classes):
    """The transfer head (src/nn/arch_mobilenet.c), named as edgetrain names it."""
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    classifier = "dense"
    if learning.get("head_neurons", 16) > 0:
        x = keras.layers.Dense(learning.get("head_neurons", 16), activation="relu", name="dense")(x)
        classifier = "dense_1"
    if learning.get("dropout", 0.1) > 0:
        x = keras.layers.Dropout(learning.get("dropout", 0.1), name="dropout")(x)
    return keras.layers.Dense(classes, activation="softmax", name=classifier)(x)


def build(model_json, batch_size=None):
    """The Keras model of edgetrain's architecture (src/nn/arch_conv.c,
    src/nn/arch_mobilenet.c), with edgetrain's (= Keras' automatic) names.
    batch_size=1 gives the model to convert: a device runs one sample at a
    time, and a dynamic batch makes the converter emit Flatten as SHAPE,
    STRIDED_SLICE, PACK and RESHAPE."""
    h, w, c = model_json["input"]
    classes = model_json["classes"]
    learning = model_json["impulse"]["learning"]
    kind = learning.get("model", learning["type"]) if learning["type"] == "transfer" else "conv"
    inp = keras.Input((h, w, c), batch_size=batch_size, name="input")
    if kind == "conv":
        x = inp
        bn = learning.get("batch_norm", False)
        for i, layer in enumerate(learning["conv_layers"]):
            sfx = f"_{i}" if i else ""
            x = keras.layers.Conv2D(layer["filters"], layer["kernel"], padding="same",
                                    activation=None if bn else "relu", use_bias=not bn,
                                    name="conv2d" + sfx)(x)
            if bn:
                x = keras.layers.BatchNormalization(name="batch_normalization" + sfx)(x)
                x = keras.layers.ReLU(name="conv2d" + sfx + "_relu")(x)
            x = keras.layers.MaxPooling2D(2, 2, padding="same", name="max_pooling2d" + sfx)(x)
        x = keras.layers.Flatten(name="flatten")(x)
        d = 0
        for n in learning.get("dense_layers", []):
            x = keras.layers.Dense(n, activation="relu", name="dense" + (f"_{d}" if d else ""))(x)
            d += 1
        if learning.get("dropout", 0.25) > 0:
            x = keras.layers.Dropout(learning["dropout"], name="dropout")(x)
        out = keras.layers.Dense(classes, activation="softmax",
                                 name="dense" + (f"_{d}" if d else ""))(x)
        return keras.Model(inp, out), kind
    alpha = learning["alpha"]
    if kind == "mobilenetv2":
        base = keras.applications.MobileNetV2(input_tensor=inp, alpha=alpha, include_top=False,
                                              weights=None)
    elif kind == "mobilenetv1":
        base = keras.applications.MobileNet(input_tensor=inp, alpha=alpha, include_top=False,
                                            weights=None)
    else:
        sys.exit(f"export_keras: unknown model {kind!r}")
    return keras.Model(inp, head(base.output, learning, classes)), kind


def to_keras(layer, flat):
    """flat: one layer's parameters in edgetrain's layout -> Keras' arrays."""
    wanted = [v.shape for v in layer.weights]
    out, at = [], 0

    def take(n):
        nonlocal at
        a = flat[at:at + n]
        at += n
        return a

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, m = wanted[0]
        out.append(take(kh * kw * cin * m).reshape(kh, kw, cin, m))
    elif isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin, cout = wanted[0]
        out.append(take(cout * kh * kw * cin).reshape(cout, kh, kw, cin).transpose(1, 2, 3, 0))
    elif isinstance(layer, keras.layers.Dense):
        n_in, n_out = wanted[0]
        out.append(take(n_out * n_in).reshape(n_out, n_in).T)
    elif isinstance(layer, keras.layers.BatchNormalization):
        pass  # four vectors, same order in both
    else:
        sys.exit(f"export_keras: layer {layer.name} ({type(layer).__name__}) has weights the "
                 "script does not know how to map")
    for shape in wanted[len(out):]:
        out.append(take(int(np.prod(shape))).reshape(shape))
    if at != len(flat):
        sys.exit(f"export_keras: layer {layer.name}: {len(flat)} parameters in edgetrain, "
                 f"{at} in Keras")
    return [np.ascontiguousarray(a) for a in out]


def load_weights(model, flat, summary):
    """Walks edgetrain's layers in graph order (the summary) and gives each
    one's slice of weights.npy to the Keras layer of the same name."""
    at = 0
    done = set()
    for layer in summary["layers"]:
        n = layer["params"]
        if n == 0:
            continue
        try:
            k = model.get_layer(layer["name"])
        except ValueError:
            sys.exit(f"export_keras: edgetrain layer {layer['name']} has no Keras twin")
        if k.count_params() != n:
            sys.exit(f"export_keras: layer {layer['name']}: {n} parameters in edgetrain, "
                     f"{k.count_params()} in Keras")
        k.set_weights(to_keras(k, flat[at:at + n]))
        at += n
        done.add(k.name)
    missing = [k.name for k in model.layers if k.count_params() and k.name not in done]
    if at != len(flat) or missing:
        sys.exit(f"export_keras: weights.npy has {len(flat)} values, {at} used; "
                 f"Keras layers left without weights: {missing}")


def keras_accuracy(model, fs, rows, batch=256):
    correct = 0
    for i in range(0, len(rows), batch):
        r = rows[i:i + batch]
        p = model.predict_on_batch(np.asarray(fs.x[r]))
        correct += int(np.sum(np.argmax(p, axis=1) == fs.y[r]))
    return correct / len(rows)


def convert(model, calibration):
    """TFLite full-integer post-training quantization: int8 weights (per
    channel), int8 activations, int8 input and output; the representative
    dataset is the calibration samples, one at a time, in edgetrain's order."""

    def representative():
        for x in calibration:
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def quantize(x, scale, zero_point):
    """TFLite's Quantize: round half away from zero, in float32 (as etrt_quantize_s8)."""
    v = x.astype(np.float32) / np.float32(scale)
    v = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(v + zero_point, -128, 127).astype(np.int8)


def tflite_accuracy(tflite, fs, rows):
    """Accuracy of the int8 .tflite on rows, one sample per invoke, with
    TFLite's built-in kernels (bit-exact with its reference kernels, which
    edgetrain's runtime and TFLite Micro follow); the default XNNPACK
    delegate may round differently (bench/int8_infer_tflite.py reports it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(
            model_content=tflite, num_threads=1,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.
            BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    scale, zp = i["quantization"]
    correct = 0
    for r in rows:
        q = quantize(np.asarray(fs.x[r]), scale, zp)
        it.set_tensor(i["index"], q[None])
        it.invoke()
        correct += int(np.argmax(it.get_tensor(o["index"])[0]) == fs.y[r])
    return correct / len(rows)


def main():
    # The converter prints to stdout (Python and C++); keep stdout for the JSON.
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--model", required=True, type=int)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--out", required=True, help="where to write the int8 .tflite")
    ap.add_argument("--edgetrain-float", type=float, help="edgetrain's float32 test accuracy")
    ap.add_argument("--no-eval", action="store_true")
    a = ap.parse_args()

    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count())
    mdir = os.path.join(a.project, "models", str(a.model))
    with open(os.path.join(mdir, "model.json")) as f:
        model_json = json.load(f)
    with open(a.summary) as f:
        summary = json.load(f)
    if list(summary["input"]) != list(model_json["input"]) or summary["params"] != model_json["params"]:
        sys.exit(f"export_keras: {a.summary} is not the summary of model {a.model} "
                 "(input or parameter count differ)")
    fdir, meta = features_dir(a.project, model_json["impulse"])
    fs = FeatureSet(fdir, meta, model_json["labels"])

    model, kind = build(model_json)
    flat = np.load(os.path.join(mdir, "weights.npy"))
    load_weights(model, flat, summary)

    result = {"model_id": a.model, "architecture": kind, "features_dir": fdir,
              "tensorflow": tf.__version__, "keras": keras.__version__}
    rows = fs.test_rows()
    if not a.no_eval:
        acc = keras_accuracy(model, fs, rows)
        result.update(test_samples=len(rows), keras_float32_accuracy=acc)
        if a.edgetrain_float is not None:
            gap = abs(acc - a.edgetrain_float)
            result["edgetrain_float32_accuracy"] = a.edgetrain_float
            if gap > MAX_FLOAT_GAP + 1e-9:
                sys.exit(f"export_keras: SANITY CHECK FAILED: Keras float32 test accuracy "
                         f"{acc:.4f}, edgetrain's {a.edgetrain_float:.4f} (gap {100 * gap:.2f} "
                         f"points > {100 * MAX_FLOAT_GAP:.1f}): the Keras rebuild is not the "
                         "same model, and no int8 comparison would mean anything")

    cal_ids = np.load(os.path.join(mdir, "calibration_ids.npy"))
    cal = np.asarray(fs.x[fs.rows_of_ids(cal_ids)])
    single, _ = build(model_json, batch_size=1)
    single.set_weights(model.get_weights())
    tflite = convert(single, cal)
    with open(a.out, "wb") as f:
        f.write(tflite)
    result.update(calibration_samples=len(cal), tflite=a.out, tflite_bytes=len(tflite))
    etrt = os.path.join(mdir, "model_int8.etrt")
    if os.path.isfile(etrt):
        result["etrt_bytes"] = os.path.getsize(etrt)
    if not a.no_eval:
        result["tflite_int8_accuracy"] = tflite_accuracy(tflite, fs, rows)
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()


if __name__ == "__main__":
    main()
